"""The load cell as a part with a datasheet: the rig's force sensor, cell + amplifier/ADC.

A part turns the force on the needle into readings the way a real bench's sensor does:

* a new **conversion** only every ``1 / sample_hz`` s; between conversions the firmware
  reads the last value again (held) — ``Rig.load_cell_fresh`` says which;
* each conversion is the **mean over its conversion period** of the force (a sinc1
  filter: the integrating delta-sigma converters here null a sinusoid whose period
  divides the conversion period — the HX711's 10 SPS rejects 50 and 60 Hz together);
* **offset** (the cell's zero balance, untared) and a slow **drift** (temperature:
  the cell's zero coefficient while the stage warms), **mains pickup** on the bridge
  wiring (50 or 60 Hz, through the same filter), **noise** (the bench's broadband noise,
  averaged over the conversion, plus the ADC's own input noise at that rate),
  **quantisation** at the ADC's code size, **clipping** at the rated load;
* faults: a **stuck** value (conversions go on, the code never changes), a bridge
  **disconnected** (reads the rail: all ones of the positive code range), a **silent**
  ADC (no conversion ever completes again) and **missing** samples at random.

``ideal`` is the simulator's sensor before this module: a fresh sample every 1 ms
control tick, 200 Hz first-order bandwidth, 0.05 N offset, 0.02 N RMS, 1 mN steps,
±50 N. The rig keeps its own, unchanged code path for it (rig_model.py), so every
figure measured before stays bit for bit.

Every number's source is in docs/simulator.md, "Load cell parts".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

# the bench's cell: 5 kg (≈ 50 N) single-point aluminium cell, 2 mV/V, 5 V excitation —
# 10 mV at the rated load, so 1 µV of input is 5 mN (docs/simulator.md)
CELL_RATED_N = 50.0
_N_PER_UV = CELL_RATED_N / 10_000.0
# bench noise before the ADC (stepper drivers, vibration): today's ideal sensor's figure,
# per 1 ms; a conversion averaging k ms of it sees 1/sqrt(k) of it
BENCH_NOISE_RMS_N = 0.02


class LoadCellError(ValueError):
    """An unknown part or a bad [load_cell] table: one line."""


@dataclass(frozen=True)
class LoadCellPart:
    """One sensor: the cell and its ADC, in force units (N) at the needle."""

    name: str
    sample_hz: float  # conversions per second
    lsb_n: float  # one ADC code
    adc_noise_rms_n: float  # the ADC's input-referred noise at this rate, per conversion
    bench_noise_rms_n: float = BENCH_NOISE_RMS_N  # per 1 ms, before the conversion's mean
    offset_n: float = 0.3  # zero balance of the untared cell
    drift_n_per_min: float = 0.01  # zero drift while the stage warms (linear)
    mains_hz: float = 50.0
    mains_pickup_n: float = 0.02  # amplitude of the hum at the ADC's input
    rated_load_n: float = CELL_RATED_N  # readings clip at ± this
    missing_fraction: float = 0.0  # conversions lost at random (0..1)
    description: str = ""

    @property
    def period_s(self) -> float:
        return 1.0 / self.sample_hz

    @property
    def ideal(self) -> bool:
        return self.name == "ideal"


def _adc_lsb_n(bits: int, full_scale_uv: float) -> float:
    """One code of a bipolar ``bits``-bit ADC whose ±full scale is ``full_scale_uv``."""
    return 2.0 * full_scale_uv * _N_PER_UV / 2.0**bits


# HX711 and HX717 at gain 128 (±20 mV full scale at AVDD 5 V: ±0.5·AVDD/128 = ±19.5 mV),
# ADS1220 at gain 128 (±VREF/128 with the 2.048 V internal reference = ±16 mV)
_HX_LSB_N = _adc_lsb_n(24, 19_531.0)
_ADS_LSB_N = _adc_lsb_n(24, 16_000.0)

PARTS: Mapping[str, LoadCellPart] = {
    p.name: p
    for p in (
        LoadCellPart(
            name="ideal",
            sample_hz=1000.0,
            lsb_n=0.001,
            adc_noise_rms_n=0.0,
            bench_noise_rms_n=0.02,
            offset_n=0.05,
            drift_n_per_min=0.0,
            mains_pickup_n=0.0,
            rated_load_n=50.0,
            description="the simulator's sensor before parts: fresh every 1 ms tick",
        ),
        LoadCellPart(
            name="hx711-10",
            sample_hz=10.0,
            lsb_n=_HX_LSB_N,
            adc_noise_rms_n=0.050 * _N_PER_UV,  # 50 nV rms input noise at 10 SPS
            description="HX711, RATE pin low: 10 SPS, 50/60 Hz nulled by its conversion",
        ),
        LoadCellPart(
            name="hx711-80",
            sample_hz=80.0,
            lsb_n=_HX_LSB_N,
            adc_noise_rms_n=0.090 * _N_PER_UV,  # 90 nV rms at 80 SPS
            description="HX711, RATE pin high: 80 SPS (Klipper's default rate for it)",
        ),
        LoadCellPart(
            name="hx717-320",
            sample_hz=320.0,
            lsb_n=_HX_LSB_N,
            adc_noise_rms_n=0.20 * _N_PER_UV,  # estimate: HX711's 80 SPS figure × √4
            description="HX717 at 320 SPS (Klipper's default rate for it)",
        ),
        LoadCellPart(
            name="ads1220-660",
            sample_hz=660.0,
            lsb_n=_ADS_LSB_N,
            adc_noise_rms_n=0.33 * _N_PER_UV,  # estimate, order of the ADS1220's noise tables
            description="ADS1220, turbo mode 660 SPS (Klipper's default rate for it)",
        ),
        LoadCellPart(
            name="ads1220-2000",
            sample_hz=2000.0,
            lsb_n=_ADS_LSB_N,
            adc_noise_rms_n=0.75 * _N_PER_UV,  # estimate, order of the ADS1220's noise tables
            description="ADS1220, turbo mode 2000 SPS",
        ),
    )
}

# what a [load_cell] table may set besides ``part``
_OVERRIDABLE = {
    f.name: f.type for f in fields(LoadCellPart) if f.name not in {"name", "description"}
}


def part_names() -> list[str]:
    return list(PARTS)


def get_part(name: str) -> LoadCellPart:
    """The part called ``name``; an unknown name is a LoadCellError naming the known ones."""
    try:
        return PARTS[name]
    except KeyError:
        raise LoadCellError(f"unknown load cell part {name!r}; known: {', '.join(PARTS)}") from None


def part_from_table(table: Any, where: str) -> LoadCellPart:
    """A ``[load_cell]`` table (lesion or rig file): ``part = "hx711-80"`` and any of the
    part's numbers to override (``rated_load_n = 10.0``, ``mains_hz = 60`` ...)."""
    if not isinstance(table, Mapping):
        raise LoadCellError(f"{where}: [load_cell] must be a table")
    name = table.get("part", "ideal")
    if not isinstance(name, str):
        raise LoadCellError(f"{where}: [load_cell] part must be a string")
    try:
        part = get_part(name)
    except LoadCellError as exc:
        raise LoadCellError(f"{where}: {exc}") from None
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key == "part":
            continue
        if key not in _OVERRIDABLE:
            allowed = ", ".join(["part", *_OVERRIDABLE])
            raise LoadCellError(f"{where}: [load_cell] unknown key {key!r} ({allowed})")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise LoadCellError(f"{where}: [load_cell] {key} must be a number, got {value!r}")
        changes[key] = float(value)
    if changes and part.ideal:
        raise LoadCellError(
            f"{where}: [load_cell] the ideal part takes no overrides (name a real part)"
        )
    return checked(replace(part, **changes), where)


def checked(part: LoadCellPart, where: str) -> LoadCellPart:
    """Refuse numbers no sensor has (one line naming the field)."""

    def bad(field: str, rule: str) -> LoadCellError:
        return LoadCellError(f"{where}: [load_cell] {field} = {getattr(part, field)!r} {rule}")

    for name in ("sample_hz", "lsb_n", "rated_load_n"):
        value = getattr(part, name)
        if not (math.isfinite(value) and value > 0):
            raise bad(name, "must be > 0")
    if part.sample_hz > 10_000:
        raise bad("sample_hz", "must be ≤ 10000 (the rig steps at 1 kHz)")
    for name in ("adc_noise_rms_n", "bench_noise_rms_n", "mains_pickup_n", "mains_hz"):
        value = getattr(part, name)
        if not (math.isfinite(value) and value >= 0):
            raise bad(name, "must be ≥ 0")
    for name in ("offset_n", "drift_n_per_min"):
        if not math.isfinite(getattr(part, name)):
            raise bad(name, "must be finite")
    if not 0.0 <= part.missing_fraction < 1.0:
        raise bad("missing_fraction", "must be in [0, 1)")
    return part


def mains_mean(amplitude_n: float, mains_hz: float, start_s: float, end_s: float) -> float:
    """Mean of ``amplitude · sin(2π f t)`` over [start, end]: what an integrating
    converter sees of the hum in one conversion (zero when the period divides it)."""
    if amplitude_n == 0.0 or mains_hz == 0.0 or end_s <= start_s:
        return 0.0
    w = 2.0 * math.pi * mains_hz
    return amplitude_n * (math.cos(w * start_s) - math.cos(w * end_s)) / (w * (end_s - start_s))


class Converter:
    """One part's conversions, stepped by the rig: the time-weighted mean of the force over
    each conversion period, plus the part's offset, drift, hum and noise, quantised and
    clipped. Returns whether a conversion completed in the step; ``value_n`` holds the
    latest reading (held between conversions). Not used for ``ideal`` (the rig's own path).
    """

    def __init__(
        self,
        part: LoadCellPart,
        rng: Any,
        *,
        noise_scale: float,
        drift_scale: float,
        initial_force_n: float = 0.0,
    ) -> None:
        self.part = part
        self._rng = rng
        self._period_s = part.period_s
        # conversions run free of the control tick: a seeded phase
        self._next_end_s = float(rng.uniform(0.0, self._period_s))
        self._t_s = 0.0
        self._sum_ns = 0.0  # ∫ force dt over the conversion so far
        self._w_s = 0.0
        k_ms = max(1.0, self._period_s * 1000.0)
        self._noise_rms_n = noise_scale * math.sqrt(
            part.bench_noise_rms_n**2 / k_ms + part.adc_noise_rms_n**2
        )
        self._drift_n_per_s = part.drift_n_per_min / 60.0 * drift_scale
        self._inv_lsb = 1.0 / part.lsb_n
        self.stuck = False
        self.disconnected = False
        self.silent = False
        self.conversions = 0
        self.missed = 0
        self.value_n = self._code(initial_force_n + part.offset_n)

    def _code(self, force_n: float) -> float:
        x = round(force_n * self._inv_lsb) * self.part.lsb_n
        fs = self.part.rated_load_n
        return fs if x > fs else (-fs if x < -fs else x)

    def step(self, dt_s: float, force_n: float) -> bool:
        t = self._t_s + dt_s
        self._t_s = t
        self._sum_ns += force_n * dt_s
        self._w_s += dt_s
        if t < self._next_end_s:
            return False
        period = self._period_s
        # one step may span several conversions (an idle stretch): the last one counts
        done = int((t - self._next_end_s) / period) + 1
        end_s = self._next_end_s + (done - 1) * period
        self._next_end_s = end_s + period
        mean_n = self._sum_ns / self._w_s
        self._sum_ns = 0.0
        self._w_s = 0.0
        part = self.part
        if self.silent:
            return False
        if part.missing_fraction and self._rng.random() < part.missing_fraction:
            self.missed += 1
            return False
        self.conversions += 1
        if self.stuck:
            return True  # the ADC converts, the code never changes
        if self.disconnected:
            self.value_n = part.rated_load_n  # an open bridge: the positive rail, all ones
            return True
        x = (
            mean_n
            + part.offset_n
            + self._drift_n_per_s * end_s
            + mains_mean(part.mains_pickup_n, part.mains_hz, end_s - period, end_s)
        )
        if self._noise_rms_n:
            x += self._noise_rms_n * float(self._rng.standard_normal())
        self.value_n = self._code(x)
        return True
