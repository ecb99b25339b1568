"""The rig server (`needlectl serve`): one process owns the port and keeps its session;
the CLI, a web page and a stop from any terminal are its clients (docs/architecture.md §9)."""
