"""`make demo`: a PIERCE run on a simulated calcified CTO, recorded and plotted.

It drives needlectl exactly as an operator would (the same commands, in-process),
on the simulator — nothing is served by hand and nothing real moves:

    needlectl --port 'sim://?lesion=dense-calcified-cto&seed=1' run pierce --record runs/demo-…
    needlectl plot runs/demo-…
"""

from __future__ import annotations

import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from firmware_host.cli import main as needlectl

LESION = "dense-calcified-cto"
SEED = 1
PROFILE = "pierce"


def main(argv: list[str] | None = None) -> int:
    runs = Path(argv[0] if argv else "runs")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = runs / f"demo-{LESION}-{stamp}"
    port = f"sim://?lesion={LESION}&seed={SEED}"
    steps = [
        ["--port", port, "run", PROFILE, "--record", str(run_dir)],
        ["plot", str(run_dir), "-o", str(run_dir / "plot.png")],
    ]
    print(f"needle-driver demo: the PIERCE procedure on the simulated lesion '{LESION}'")
    started_s = time.monotonic()
    for args in steps:
        print(f"\n$ needlectl {shlex.join(args)}", flush=True)
        code = needlectl(args)
        if code not in (0, 6):  # 6: not crossed is an outcome worth plotting too
            print(f"demo: `needlectl {shlex.join(args)}` failed with exit code {code}")
            return code
    print(
        f"\ndemo done in {time.monotonic() - started_s:.1f} s: the record is {run_dir}/,"
        f" the picture is {run_dir / 'plot.png'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
