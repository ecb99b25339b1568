"""The rig configuration (``--rig-config FILE``, TOML): what the suite may do with a rig
and what it expects of it. Every key is optional; see docs/hil.md for the file.

Without a file, a simulated device gets settings that exercise everything (the simulator
can be driven anywhere and provoked by fault injection); a real rig gets cautious ones,
and tests that need something the rig must provide (a load for the force test, a block
for the stall test, full travel) are skipped with the key to set.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


class RigConfigError(ValueError):
    """A rig file that cannot be used (one line: the file, the key, what is wrong)."""


@dataclass(frozen=True)
class RigConfig:
    # [identity]: what IDENTITY must say (None: not checked)
    travel_mm: float | None = None
    force_limit_n: float | None = None
    watchdog_ms: int | None = None
    serial_number: str | None = None
    # [motion]
    test_depth_mm: float | None = None  # deepest ordinary tests go (None: 5 mm, sim: 20 mm)
    speed_mm_s: float = 2.0
    homing_speed_mm_s: float = 5.0
    homing_timeout_s: float = 120.0
    full_travel: bool | None = None  # the hard-limit test may drive to hard travel
    # the advance's acceleration, at most (None: the ramp is not checked)
    max_accel_mm_s2: float | None = None
    # [force]: the force-limit test drives to depth_mm, where the rig loads the needle
    # above limit_n (the simulator: its lesion)
    force_test_limit_n: float | None = None
    force_test_depth_mm: float | None = None
    # [stall]: a solid block at block_depth_mm that the advance cannot pass
    stall_block_depth_mm: float | None = None
    stall_latency_limit_ms: float | None = None  # None: the suite's own bound (10 ms)
    # [load_cell]: its nominal rate (IDENTITY must say it), and the bench faults the suite
    # may provoke: turning backward faster than silent_backward_rpm silences the sensor
    # (a slip ring losing contact); driving to saturation_depth_mm loads it beyond its rail
    load_cell_sample_hz: int | None = None
    load_cell_silent_backward_rpm: float | None = None
    load_cell_saturation_depth_mm: float | None = None

    source: str = "(defaults)"


_SECTIONS: dict[str, dict[str, str]] = {
    "identity": {
        "travel_mm": "travel_mm",
        "force_limit_n": "force_limit_n",
        "watchdog_ms": "watchdog_ms",
        "serial_number": "serial_number",
    },
    "motion": {
        "test_depth_mm": "test_depth_mm",
        "speed_mm_s": "speed_mm_s",
        "homing_speed_mm_s": "homing_speed_mm_s",
        "homing_timeout_s": "homing_timeout_s",
        "full_travel": "full_travel",
        "max_accel_mm_s2": "max_accel_mm_s2",
    },
    "force": {"limit_n": "force_test_limit_n", "depth_mm": "force_test_depth_mm"},
    "stall": {
        "block_depth_mm": "stall_block_depth_mm",
        "latency_limit_ms": "stall_latency_limit_ms",
    },
    "load_cell": {
        "sample_hz": "load_cell_sample_hz",
        "silent_backward_rpm": "load_cell_silent_backward_rpm",
        "saturation_depth_mm": "load_cell_saturation_depth_mm",
    },
}
_TYPES = {f.name: f.type for f in fields(RigConfig)}


def load_rig_config(path: str | Path | None) -> RigConfig:
    if path is None:
        return RigConfig()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RigConfigError(f"rig config {p}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RigConfigError(f"rig config {p}: not valid TOML ({exc})") from None
    values: dict[str, Any] = {"source": str(p)}
    for section, table in data.items():
        keys = _SECTIONS.get(section)
        if keys is None or not isinstance(table, dict):
            raise RigConfigError(
                f"rig config {p}: unknown section [{section}] (known: {', '.join(_SECTIONS)})"
            )
        for key, value in table.items():
            if key not in keys:
                raise RigConfigError(
                    f"rig config {p}: unknown key {section}.{key} (known: {', '.join(keys)})"
                )
            values[keys[key]] = _check(p, f"{section}.{key}", _TYPES[keys[key]], value)
    return RigConfig(**values)


def _check(p: Path, key: str, type_text: Any, value: Any) -> Any:
    text = str(type_text)
    if "bool" in text:
        if not isinstance(value, bool):
            raise RigConfigError(f"rig config {p}: {key} must be true or false")
        return value
    if "str" in text:
        if not isinstance(value, str):
            raise RigConfigError(f"rig config {p}: {key} must be a string")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RigConfigError(f"rig config {p}: {key} must be a number")
    if value < 0:
        raise RigConfigError(f"rig config {p}: {key} must not be negative")
    return int(value) if "int" in text and "float" not in text else float(value)
