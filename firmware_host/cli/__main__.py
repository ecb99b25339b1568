"""``python -m firmware_host.cli`` is needlectl."""

import sys

from firmware_host.cli import main

sys.exit(main())
