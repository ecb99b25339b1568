"""``python -m sim_device serve [--pty | --tcp HOST:PORT] ...`` (see sim_device.serve)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "serve":
        print(
            "usage: python -m sim_device serve [--pty | --tcp HOST:PORT] [options]", file=sys.stderr
        )
        print("       python -m sim_device serve --help", file=sys.stderr)
        return 2
    from sim_device.serve import serve_main

    return serve_main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
