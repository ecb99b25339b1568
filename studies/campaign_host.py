"""The host of one posix-port campaign trial, as its own process (studies/campaign_posix.py
starts it): a PIERCE run over the real pty, recorded, its outcome as one JSON line on
stdout. Its own process so the campaign can freeze it (SIGSTOP) as a real host freezes.

    python -m studies.campaign_host --port /dev/pts/N --target-mm T --record DIR
                                    [--clock-jump-after-s S]

``--clock-jump-after-s``: S s (monotonic) after the run starts, the process's wall clock
(time.time, datetime.now) steps forward CLOCK_JUMP_S, and CLOCK_BACK_S later back twice
that (time-machine: the monotonic clock the link and the procedure read is untouched).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from studies.campaign import CLOCK_BACK_S, CLOCK_JUMP_S


def _jump_later(wall: Any, after_s: float, stop: threading.Event) -> threading.Thread:
    def jump() -> None:
        if stop.wait(after_s):
            return
        wall.shift(CLOCK_JUMP_S)
        if stop.wait(CLOCK_BACK_S):
            return
        wall.shift(-2 * CLOCK_JUMP_S)

    thread = threading.Thread(target=jump, daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies.campaign_host")
    parser.add_argument("--port", required=True)
    parser.add_argument("--target-mm", type=float, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--clock-jump-after-s", type=float, default=None)
    args = parser.parse_args(argv)
    logging.getLogger("firmware_host").setLevel(logging.ERROR)
    from firmware_host.client import NeedleDriver
    from firmware_host.errors import NeedleDriverError
    from firmware_host.procedure import load_profile, run_procedure
    from firmware_host.recorder import Recorder

    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        wall = None
        if args.clock_jump_after_s is not None:
            import time_machine

            wall = stack.enter_context(time_machine.travel(time.time(), tick=True))
        try:
            nd = stack.enter_context(NeedleDriver.open(args.port))
        except NeedleDriverError as exc:
            print(f"campaign_host: {exc}", file=sys.stderr)
            return 2
        recorder = Recorder(args.record, nd, mcap=False)
        if wall is not None:
            _jump_later(wall, args.clock_jump_after_s, stop)
        try:
            out = run_procedure(nd, load_profile("pierce"), target_depth_mm=args.target_mm,
                                recorder=recorder)  # fmt: skip
            outcome, reason = out.result.value, out.reason
        except NeedleDriverError as exc:
            outcome, reason = "error", str(exc)
        stop.set()
        recorder.close()  # what came after (the stream runs on) is not the recording's
        stats = nd.link.stats
        print(
            json.dumps(
                {
                    "outcome": outcome,
                    "reason": reason,
                    "rows": recorder.rows_written,
                    "samples": int(stats.telemetry_samples),
                    "samples_lost": int(stats.telemetry_samples_lost),
                    "events_lost": int(stats.events_lost),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
