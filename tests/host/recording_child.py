"""Child process for the recorder SIGKILL test: records a synthetic stream in real time
(batches of 10 rows every PERIOD_S, argv[2], default 0.01: 1 kHz) and prints the host time
of each batch it handed to the recorder, so the parent knows what was recorded when it
kills it."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from firmware_host.recorder import Recorder
from firmware_host.telemetry import TELEMETRY_DTYPE


def main() -> None:
    period_s = float(sys.argv[2]) if len(sys.argv) > 2 else 0.01
    rec = Recorder(sys.argv[1], extra_meta={"source": "synthetic"})
    rec.note("start")
    pace = threading.Event()  # never set: wait() paces the producer
    number = 0
    t0 = time.monotonic()
    while True:
        rows = np.zeros(10, dtype=TELEMETRY_DTYPE)
        now = time.monotonic()
        rows["sample_number"] = np.arange(number, number + 10)
        rows["host_time_s"] = now - t0 + np.arange(10) * 0.001
        rows["depth_mm"] = rows["sample_number"] / 1000.0
        number += 10
        rec.write_rows(rows)
        print(f"{rows['host_time_s'][-1]:.6f}", flush=True)
        pace.wait(period_s)


if __name__ == "__main__":
    main()
