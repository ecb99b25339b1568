"""What the procedure knows of its load cell, and what that allows.

A load cell gives a fresh force only every ``1 / sample_hz`` s (IDENTITY's
``load_cell_sample_hz``; an HX711 80 times a second, an ideal bench sensor every 1 ms
tick); between conversions each telemetry sample carries the last value again
(``force_fresh`` false). Two rules follow (Klipper's load-cell guide: "a 500 Hz sensor
moving at 5 mm/s has the same safety factor as a 100 Hz sensor moving at only 1 mm/s"):

* the advance may move the needle at most ``[sensor] max_mm_per_sample`` between two
  fresh samples: a faster profile is slowed to that (``on_slow_sensor = "slow"``) or
  refused before any motion, in one line saying why (``"refuse"``);
* the force ceiling allows for the sensor's latency: the force the host sees is up to
  ``latency_s`` old (a conversion averages one period and arrives at its end; the host
  may see it up to one more period later), so a hold begins when the measured force
  *plus its rise over that latency* reaches the ceiling. An ideal 1 kHz sensor has no
  extra latency, and the procedure is what it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IDEAL_SAMPLE_HZ = 1000.0  # a device that does not say: fresh every 1 ms control tick


class SensorRefused(ValueError):
    """The profile advances too fast for the device's load cell (one line)."""


@dataclass(frozen=True)
class SensorPlan:
    """The speeds a run may use with this sensor, and its latency allowance."""

    sample_hz: float
    approach_speed_mm_s: float
    speed_mm_s: float
    capped: bool  # the profile's speeds were lowered for this sensor
    # extra age of a fresh force beyond the ideal sensor's: 1.5 periods − 1.5 ms
    latency_s: float

    @property
    def period_s(self) -> float:
        return 1.0 / self.sample_hz


def sample_hz_of(identity: Any) -> float:
    """The load cell's nominal rate from IDENTITY (the ideal 1 kHz if it does not say)."""
    hz = float(getattr(identity, "load_cell_sample_hz", 0.0) or 0.0)
    return hz if hz > 0.0 else IDEAL_SAMPLE_HZ


def plan_for(profile: Any, sample_hz: float) -> SensorPlan:
    """The speeds allowed with a sensor of ``sample_hz``; raises SensorRefused when the
    profile's advance is too fast for it and the profile says refuse."""
    s = profile.sensor
    a = profile.advance
    max_speed_mm_s = s.max_mm_per_sample * sample_hz
    fast = [
        (name, v)
        for name, v in (
            ("approach_speed_mm_s", a.approach_speed_mm_s),
            ("speed_mm_s", a.speed_mm_s),
        )
        if v > max_speed_mm_s + 1e-12
    ]
    if fast and s.on_slow_sensor == "refuse":
        name, v = fast[0]
        raise SensorRefused(
            f"profile {profile.name}: [advance] {name} = {v:g} mm/s moves the needle "
            f"{v / sample_hz * 1000:.0f} µm between two fresh samples of the device's "
            f"{sample_hz:g} Hz load cell, more than [sensor] max_mm_per_sample = "
            f"{s.max_mm_per_sample * 1000:g} µm: advance at most {max_speed_mm_s:.3g} mm/s "
            f'(or set [sensor] on_slow_sensor = "slow")'
        )
    latency_s = max(0.0, 1.5 / sample_hz - 1.5 / IDEAL_SAMPLE_HZ)
    return SensorPlan(
        sample_hz=sample_hz,
        approach_speed_mm_s=min(a.approach_speed_mm_s, max_speed_mm_s),
        speed_mm_s=min(a.speed_mm_s, max_speed_mm_s),
        capped=bool(fast),
        latency_s=latency_s,
    )
