"""needlectl, the bench operator's CLI: a thin layer over the host library.

The console script is ``needlectl = "firmware_host.cli:main"``.
"""

from firmware_host.cli.app import main

__all__ = ["main"]
