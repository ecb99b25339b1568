"""needle-driver host library: transports, link, NeedleDriver client, telemetry,
recording, procedures and the needlectl CLI."""

__version__ = "0.1.0"
