"""The device's fixed facts: firmware version, hard limits (IDENTITY), planted defects, and
the clip to i32 that every integer the device reports goes through.

Shared by the control tick (sim_device/firmware.py) and the command handlers
(sim_device/commands.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FIRMWARE_VERSION = (0, 3, 0)

I32_MIN = -0x8000_0000
I32_MAX = 0x7FFF_FFFF

DEFECTS: dict[str, str] = {
    "no_repeat_detection": "a repeated command is executed again instead of replayed",
    "watchdog_disabled": "host silence never stops motion",
    "limit_off_by_one_step": "the soft depth limit lets the advance go one microstep beyond it",
    "stall_cutoff_disabled": "a stalled advance is never cut off",
    "telemetry_counter_stuck": "TELEMETRY.first_sample_number never advances",
    "nak_reason_swapped": "NOT_HOMED and BEYOND_LIMIT are reported as each other",
}


@dataclass(frozen=True)
class HardLimits:
    """The device's own limits (IDENTITY), from the rig's parameters."""

    travel_um: int = 150_000
    force_mn: int = 40_000
    max_speed_um_s: int = 20_000
    max_rate_mrpm: int = 120_000
    thrust_mn: int = 30_000
    um_per_microstep: float = 0.625

    @classmethod
    def from_params(cls, params: Any) -> HardLimits:
        """Read a RigParams-like object (missing fields keep these defaults)."""
        d = cls()

        def get(name: str, default: float) -> float:
            value = getattr(params, name, None)
            return default if value is None else float(value)

        return cls(
            travel_um=round(get("travel_limit_mm", d.travel_um / 1000) * 1000),
            force_mn=round(get("force_limit_n", d.force_mn / 1000) * 1000),
            max_speed_um_s=round(get("max_speed_mm_s", d.max_speed_um_s / 1000) * 1000),
            max_rate_mrpm=round(get("max_rate_rpm", d.max_rate_mrpm / 1000) * 1000),
            thrust_mn=round(get("thrust_limit_n", d.thrust_mn / 1000) * 1000),
            um_per_microstep=get("um_per_microstep", d.um_per_microstep),
        )


def clip_i32(value: float) -> int:
    """Round to an int and clip to i32 (NaN: i32 min, the "invalid" reading)."""
    if value != value:  # NaN
        return I32_MIN
    iv = round(value)
    return I32_MIN if iv < I32_MIN else I32_MAX if iv > I32_MAX else iv
