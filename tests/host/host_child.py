"""A host process for the SIGKILL test: connects to the served device, homes, starts a long
advance, reports (host monotonic time, depth) and keeps the link alive until killed."""

from __future__ import annotations

import sys
import time

from firmware_host.client import NeedleDriver


def main() -> None:
    with NeedleDriver.open(sys.argv[1]) as nd:
        nd.home()
        nd.advance_mm(50.0, 2.0)
        nd.wait_s(0.3)
        st = nd.status()
        print(f"moving {time.monotonic():.6f} {st.depth_mm:.4f}", flush=True)
        nd.wait_s(60.0)


if __name__ == "__main__":
    main()
