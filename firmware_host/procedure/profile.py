"""PIERCE procedure profiles: TOML files, validated into frozen dataclasses.

A profile is what the clinician's hands know: how fast to turn, how fast to push,
how hard to push before waiting, how long to wait before backing off, when to
give up, and what limits the device must enforce on its own. Every field is
declared once below with its unit, range and meaning; the validator, the error
messages and docs/procedure.md's table all come from that declaration.

Errors are one line (``ProfileError``, a ``ValueError``) naming the file, the
key and what is wrong: unknown key (with the nearest known one), wrong type,
out of range, or inconsistent with another key.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_PROFILE = "pierce"


class ProfileError(ValueError):
    """A profile could not be found, parsed or validated (one line: where and why)."""


# A profile field is declared in one call: its default, then its range (or its choices),
# its meaning and its unit, which the validator, the errors and docs/procedure.md read
# from the field's metadata.
def _num(default: float | None, lo: float, hi: float, doc: str, unit: str = "") -> Any:
    return field(default=default, metadata={"lo": lo, "hi": hi, "doc": doc, "unit": unit})


def _choice(default: str, choices: tuple[str, ...], doc: str) -> Any:
    return field(default=default, metadata={"choices": choices, "doc": doc})


@dataclass(frozen=True)
class Rotation:
    mode: str = _choice(
        "continuous", ("continuous", "oscillate"), "turn one way, or back and forth"
    )
    rate_rpm: float = _num(30.0, 1.0, 120.0, "rotation rate (slow: tens of rpm)", "rpm")
    oscillate_amplitude_deg: float = _num(
        180.0, 10.0, 720.0, "oscillate: amplitude either side of the start", "deg"
    )
    spin_up_s: float = _num(0.5, 0.0, 10.0, "rotate this long before the first advance", "s")


@dataclass(frozen=True)
class Advance:
    speed_mm_s: float = _num(0.5, 0.02, 5.0, "advance speed while the force allows", "mm/s")
    approach_speed_mm_s: float = _num(
        2.0, 0.02, 10.0, "advance speed while the force is low (lumen, soft tissue)", "mm/s"
    )
    approach_below_fraction: float = _num(
        0.25,
        0.0,
        0.9,
        "approach speed only while the force is below this × the ceiling (0: never)",
        "",
    )
    force_ceiling_n: float = _num(
        8.0, 0.5, 40.0, "filtered force at which the advance pauses (hold)", "N"
    )
    resume_fraction: float = _num(
        0.8, 0.3, 0.98, "a hold ends when the force falls below this × the ceiling", ""
    )
    force_filter_s: float = _num(
        0.03, 0.001, 1.0, "time constant of the load-cell low-pass filter (noise)", "s"
    )
    control_period_s: float = _num(0.01, 0.002, 0.2, "control loop period", "s")


@dataclass(frozen=True)
class Target:
    depth_mm: float | None = _num(
        None,
        0.5,
        300.0,
        "target depth (lesion end + margin); the run's --target-mm overrides it",
        "mm",
    )
    overshoot_limit_mm: float = _num(
        2.0, 0.1, 20.0, "device soft depth limit = target + this", "mm"
    )
    on_crossed: str = _choice(
        "stay", ("stay", "withdraw"), "at target: stay there, or withdraw to home"
    )
    withdraw_speed_mm_s: float = _num(2.0, 0.1, 10.0, "withdraw speed after crossing", "mm/s")


@dataclass(frozen=True)
class Hold:
    max_hold_s: float = _num(20.0, 0.5, 600.0, "a hold longer than this ends in a peck", "s")
    crack_drop_n: float = _num(
        1.0, 0.1, 20.0, "a filtered force drop this large within 50 ms is noted as a crack", "N"
    )
    puncture_drop_n: float = _num(
        0.15,
        0.0,
        20.0,
        "while advancing at a steady commanded speed, a drop this large of the fast-filtered"
        " force within 10 ms (or 2 sample periods), over by the next such window, is noted as"
        " a puncture: sized for sub-newton caps, above the sensor's noise (0: off, only"
        " crack_drop_n drops)",
        "N",
    )
    puncture_filter_s: float = _num(
        0.005, 0.001, 0.1, "time constant of the puncture detector's low-pass filter", "s"
    )
    puncture_settle_s: float = _num(
        0.5,
        0.0,
        10.0,
        "the puncture detector sleeps this long after each change of the commanded advance"
        " speed (a speed change moves the cutting force by tenths of a newton)",
        "s",
    )


@dataclass(frozen=True)
class Peck:
    back_off_mm: float = _num(0.5, 0.05, 10.0, "retract this far, then re-advance", "mm")
    speed_mm_s: float = _num(1.0, 0.05, 10.0, "speed of the back-off", "mm/s")
    dwell_s: float = _num(1.0, 0.0, 60.0, "rotate this long while backed off", "s")


@dataclass(frozen=True)
class Stall:
    max_pecks: int = _num(4, 1, 100, "pecks in a row without progress before the run stops stalled")
    progress_mm: float = _num(
        0.3, 0.01, 10.0, "depth gained since the last peck that counts as progress", "mm"
    )
    max_duration_s: float = _num(
        900.0, 10.0, 7200.0, "the run stops stalled after this long in all", "s"
    )


@dataclass(frozen=True)
class Escalate:
    max_force_ceiling_n: float | None = _num(
        None,
        0.5,
        40.0,
        "escalation on: the highest ceiling it may reach (below the stall threshold, at most"
        " 80 % of the force limit); unset: off",
        "N",
    )
    after_pecks: int = _num(
        1, 1, 100, "pecks in a row without progress at a ceiling before a step up"
    )
    step_n: float = _num(1.0, 0.1, 10.0, "how much one step raises the ceiling", "N")
    rate_rpm: float | None = _num(
        None, 1.0, 120.0, "rotation rate from the first step on (unset: unchanged)", "rpm"
    )


@dataclass(frozen=True)
class Sensor:
    max_mm_per_sample: float = _num(
        0.025,
        0.001,
        1.0,
        "the advance moves the needle at most this far between two fresh load-cell samples"
        " (Klipper: an HX711 at 80 Hz probes under 2 mm/s)",
        "mm",
    )
    on_slow_sensor: str = _choice(
        "slow",
        ("slow", "refuse"),
        "a load cell too slow for the advance speeds: advance slower (capped to"
        " max_mm_per_sample × its rate), or refuse the run",
    )
    max_fall_n_s: float = _num(
        1.0,
        0.1,
        20.0,
        "a reading falling steadily faster than this (4 steps of 80 ms in a row) with the"
        " advance at rest is a drifting cell: the run ends in a fault and the rig is"
        " e-stopped (far above a sound cell's thermal drift of mN a minute)",
        "N/s",
    )


@dataclass(frozen=True)
class Limits:
    force_limit_n: float = _num(
        15.0, 1.0, 50.0, "device force limit: above it the device stops and latches", "N"
    )
    stall_force_n: float = _num(
        12.0, 0.5, 50.0, "device stall threshold (force held at or above)", "N"
    )
    stall_time_s: float = _num(3.0, 0.01, 10.0, "device stall time at the stall threshold", "s")


@dataclass(frozen=True)
class Profile:
    """A validated PIERCE profile (see docs/procedure.md for every field)."""

    name: str = DEFAULT_PROFILE
    description: str = ""
    home_first: bool = True
    rotation: Rotation = field(default_factory=Rotation)
    advance: Advance = field(default_factory=Advance)
    target: Target = field(default_factory=Target)
    hold: Hold = field(default_factory=Hold)
    peck: Peck = field(default_factory=Peck)
    stall: Stall = field(default_factory=Stall)
    escalate: Escalate = field(default_factory=Escalate)
    sensor: Sensor = field(default_factory=Sensor)
    limits: Limits = field(default_factory=Limits)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for run metadata); None values left out, as TOML has no null."""
        return _drop_none(dataclasses.asdict(self))


SECTIONS: dict[str, type[Any]] = {
    "rotation": Rotation,
    "advance": Advance,
    "target": Target,
    "hold": Hold,
    "peck": Peck,
    "stall": Stall,
    "escalate": Escalate,
    "sensor": Sensor,
    "limits": Limits,
}
_TOP_LEVEL: dict[str, type] = {"name": str, "description": str, "home_first": bool}


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (_drop_none(v) if isinstance(v, dict) else v) for k, v in d.items() if v is not None}


def builtin_names() -> list[str]:
    """Names of the profiles shipped in firmware_host/profiles/."""
    folder = resources.files("firmware_host") / "profiles"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_profile(name_or_path: str | Path | None = None) -> Profile:
    """A built-in profile by name (default ``pierce``) or a TOML file by path."""
    spec = DEFAULT_PROFILE if name_or_path is None else str(name_or_path)
    path = Path(spec)
    if path.suffix == ".toml" or path.exists() or "/" in spec:
        if not path.is_file():
            raise ProfileError(f"profile file {spec} not found")
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ProfileError(
                f"{spec}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
            ) from None
        except OSError as exc:
            raise ProfileError(f"{spec}: cannot read it ({exc.strerror or exc})") from None
        default_name = path.stem
    else:
        names = builtin_names()
        if spec not in names:
            raise ProfileError(
                f"no built-in profile {spec!r} (built-in: {', '.join(names)}; "
                "or give a path to a .toml file)"
            )
        source = f"built-in profile {spec}"
        text = (resources.files("firmware_host") / "profiles" / f"{spec}.toml").read_text(
            encoding="utf-8"
        )
        default_name = spec
    return parse_profile(text, source=source, default_name=default_name)


def parse_profile(text: str, *, source: str = "profile", default_name: str = "") -> Profile:
    """Parse and validate a profile's TOML text (``source`` names it in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from None
    if not data:
        raise ProfileError(
            f"{source}: empty: no settings (start from a built-in profile, docs/procedure.md)"
        )
    return profile_from_dict(data, source=source, default_name=default_name)


def profile_from_dict(
    data: dict[str, Any], *, source: str = "profile", default_name: str = ""
) -> Profile:
    top: dict[str, Any] = {}
    sections: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ProfileError(f"{source}: [{key}] must be a table, not {_tname(value)}")
            sections[key] = _section(source, key, SECTIONS[key], value)
        elif key in _TOP_LEVEL:
            want = _TOP_LEVEL[key]
            if not isinstance(value, want):
                raise ProfileError(f"{source}: {key} must be {want.__name__}, not {_tname(value)}")
            top[key] = value
        else:
            raise ProfileError(
                f"{source}: unknown key {key!r}{_hint(key, [*_TOP_LEVEL, *SECTIONS])}"
            )
    if "name" not in top and default_name:
        top["name"] = default_name
    profile = Profile(**top, **sections)
    _check_consistent(source, profile)
    return profile


def _section(source: str, section: str, cls: type[Any], values: dict[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        where = f"{source}: [{section}] {key}"
        if key not in fields:
            raise ProfileError(f"{source}: unknown key [{section}] {key}{_hint(key, fields)}")
        meta = fields[key].metadata
        if "choices" in meta:
            if not isinstance(value, str) or value not in meta["choices"]:
                raise ProfileError(
                    f"{where} = {value!r}: must be one of {', '.join(meta['choices'])}"
                )
        else:
            integral = fields[key].type in ("int", int)
            if isinstance(value, bool) or not isinstance(value, int | float):
                kind = "an integer" if integral else "a number"
                raise ProfileError(f"{where} must be {kind}, not {_tname(value)}")
            if integral and not isinstance(value, int):
                raise ProfileError(f"{where} must be an integer, not {value!r}")
            lo, hi, unit = meta["lo"], meta["hi"], meta["unit"]
            if not lo <= value <= hi:
                u = f" {unit}" if unit else ""
                raise ProfileError(f"{where} = {value}{u} is out of range {lo}..{hi}{u}")
            value = value if integral else float(value)
        kwargs[key] = value
    return cls(**kwargs)


def _check_consistent(source: str, p: Profile) -> None:
    """Rules between fields: the ceiling must sit below the device's own cut-offs with
    room for load-cell noise and overshoot, or the device would stop a healthy run."""
    ceiling = p.advance.force_ceiling_n
    if ceiling >= p.limits.stall_force_n:
        raise ProfileError(
            f"{source}: [advance] force_ceiling_n = {ceiling} N must be below "
            f"[limits] stall_force_n = {p.limits.stall_force_n} N"
        )
    if p.limits.stall_force_n >= p.limits.force_limit_n:
        raise ProfileError(
            f"{source}: [limits] stall_force_n = {p.limits.stall_force_n} N must be below "
            f"[limits] force_limit_n = {p.limits.force_limit_n} N"
        )
    if ceiling > 0.8 * p.limits.force_limit_n:
        raise ProfileError(
            f"{source}: [advance] force_ceiling_n = {ceiling} N leaves no margin under "
            f"[limits] force_limit_n = {p.limits.force_limit_n} N (at most 80 %)"
        )
    if p.peck.back_off_mm >= 0.9 * (p.target.depth_mm or float("inf")):
        raise ProfileError(
            f"{source}: [peck] back_off_mm = {p.peck.back_off_mm} mm is too long for "
            f"[target] depth_mm = {p.target.depth_mm} mm"
        )
    if p.advance.approach_speed_mm_s < p.advance.speed_mm_s:
        raise ProfileError(
            f"{source}: [advance] approach_speed_mm_s = {p.advance.approach_speed_mm_s} mm/s "
            f"must not be below [advance] speed_mm_s = {p.advance.speed_mm_s} mm/s"
        )
    if p.advance.approach_below_fraction >= p.advance.resume_fraction:
        raise ProfileError(
            f"{source}: [advance] approach_below_fraction = "
            f"{p.advance.approach_below_fraction} must be below [advance] resume_fraction = "
            f"{p.advance.resume_fraction}"
        )
    if p.hold.max_hold_s >= p.stall.max_duration_s:
        raise ProfileError(
            f"{source}: [hold] max_hold_s = {p.hold.max_hold_s} s must be shorter than "
            f"[stall] max_duration_s = {p.stall.max_duration_s} s"
        )
    top = p.escalate.max_force_ceiling_n
    if top is not None:
        if top <= ceiling:
            raise ProfileError(
                f"{source}: [escalate] max_force_ceiling_n = {top} N must be above "
                f"[advance] force_ceiling_n = {ceiling} N (or unset: no escalation)"
            )
        if top >= p.limits.stall_force_n:
            raise ProfileError(
                f"{source}: [escalate] max_force_ceiling_n = {top} N must be below "
                f"[limits] stall_force_n = {p.limits.stall_force_n} N"
            )
        if top > 0.8 * p.limits.force_limit_n:
            raise ProfileError(
                f"{source}: [escalate] max_force_ceiling_n = {top} N leaves no margin under "
                f"[limits] force_limit_n = {p.limits.force_limit_n} N (at most 80 %)"
            )
    if p.advance.force_filter_s > 0.25 * p.limits.stall_time_s:
        raise ProfileError(
            f"{source}: [advance] force_filter_s = {p.advance.force_filter_s} s is too slow "
            f"for [limits] stall_time_s = {p.limits.stall_time_s} s (at most a quarter)"
        )


def _hint(key: str, known: Any) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _tname(value: Any) -> str:
    return {
        "str": "a string",
        "bool": "a boolean",
        "dict": "a table",
        "list": "an array",
        "int": "an integer",
        "float": "a number",
    }.get(type(value).__name__, type(value).__name__)


def field_table() -> list[tuple[str, str, str, str, str]]:
    """(key, default, range or choices, unit, meaning) for every section field (docs)."""
    rows = []
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            meta = f.metadata
            default = f.default if f.default is not dataclasses.MISSING else ""
            rng = (
                " / ".join(meta["choices"]) if "choices" in meta else f"{meta['lo']}..{meta['hi']}"
            )
            rows.append(
                (f"[{section}] {f.name}", repr(default), rng, meta.get("unit", ""), meta["doc"])
            )
    return rows
