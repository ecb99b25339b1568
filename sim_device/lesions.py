"""Lesion library: profiles of tissue segments along depth, read from TOML files.

A lesion file (format documented in docs/simulator.md):

    name = "fibrous-cto"
    description = "..."
    start_mm = 20.0                 # proximal end, depth from the home switch
    tags = ["cto", "tibial"]
    cohort = "cohort-2021"          # optional

    [[segment]]
    tissue = "cap"                  # lumen | soft | fibrous | cap | calcium
    length_mm = 1.0                 # or start_mm / end_mm (depth from the home switch)
    puncture_force_n = 1.2          # optional: overrides the tissue's default

    [load_cell]                     # optional: the bench's sensor (sim_device/load_cells.py)
    part = "hx711-80"
    rated_load_n = 10.0             # optional: overrides the part's number

Every problem is reported as a LesionError with one line naming the file, the
segment and the field.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from sim_device.load_cells import LoadCellError, LoadCellPart, part_from_table
from sim_device.physics import TISSUE_DEFAULTS

LIBRARY_DIR = Path(__file__).with_name("lesions")

_TOP_KEYS = frozenset({"name", "description", "start_mm", "tags", "cohort", "segment", "load_cell"})
_SEGMENT_KEYS = frozenset({"tissue", "length_mm", "start_mm", "end_mm"})
MIN_CHUNK_MM = 0.05  # finer chunks would only multiply the per-chunk state


class LesionError(ValueError):
    """A lesion file or name that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Segment:
    tissue: str
    start_mm: float
    end_mm: float
    params: Mapping[str, float]  # every parameter of the tissue, defaults filled in

    @property
    def length_mm(self) -> float:
        return self.end_mm - self.start_mm


@dataclass(frozen=True)
class Lesion:
    name: str
    description: str
    start_mm: float
    end_mm: float
    segments: tuple[Segment, ...]
    tags: frozenset[str] = field(default_factory=frozenset)
    cohort: str | None = None
    source: str = ""
    # the bench's sensor this lesion is run with ([load_cell]); None: the simulator's
    # choice (a sim:// URL's load_cell=, else ideal)
    load_cell: LoadCellPart | None = None

    @property
    def length_mm(self) -> float:
        return self.end_mm - self.start_mm

    @property
    def is_cto(self) -> bool:
        return "cto" in self.tags


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LesionError(f"{where}: {key} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise LesionError(f"{where}: {key} must be finite, got {value!r}")
    return number


def _parse_segment(
    where: str, raw: Any, cursor_mm: float | None
) -> tuple[str, float, float, dict[str, float]]:
    if not isinstance(raw, dict):
        raise LesionError(f"{where}: must be a table ([[segment]])")
    if "tissue" not in raw:
        raise LesionError(f"{where}: missing field 'tissue'")
    tissue = raw["tissue"]
    if not isinstance(tissue, str) or tissue not in TISSUE_DEFAULTS:
        known = ", ".join(sorted(TISSUE_DEFAULTS))
        raise LesionError(f"{where}: unknown tissue type {tissue!r} (known: {known})")
    defaults = TISSUE_DEFAULTS[tissue]
    for key in raw:
        if key not in _SEGMENT_KEYS and key not in defaults:
            allowed = ", ".join(sorted(_SEGMENT_KEYS | set(defaults)))
            raise LesionError(f"{where}: unknown key {key!r} for tissue {tissue!r} ({allowed})")
    has_length = "length_mm" in raw
    has_start = "start_mm" in raw
    has_end = "end_mm" in raw
    if has_length and has_end:
        raise LesionError(f"{where}: give length_mm or end_mm, not both")
    if has_start:
        start = _number(where, "start_mm", raw["start_mm"])
    elif cursor_mm is None:
        raise LesionError(f"{where}: missing field 'start_mm' (no lesion start_mm to follow)")
    else:
        start = cursor_mm
    if has_length:
        length = _number(where, "length_mm", raw["length_mm"])
        if length <= 0:
            raise LesionError(f"{where}: length_mm must be > 0, got {length:g}")
        end = start + length
    elif has_end:
        end = _number(where, "end_mm", raw["end_mm"])
        if end <= start:
            raise LesionError(f"{where}: end_mm ({end:g}) must be > start_mm ({start:g})")
    else:
        raise LesionError(f"{where}: missing field 'length_mm' (or 'end_mm')")
    if start < 0:
        raise LesionError(f"{where}: start_mm must be >= 0, got {start:g}")
    params = dict(defaults)
    for key in defaults:
        if key in raw:
            value = _number(where, key, raw[key])
            if value < 0 and key != "arc_center_deg":
                raise LesionError(f"{where}: {key} must be >= 0, got {value:g}")
            params[key] = value
    if tissue == "calcium":
        if params["min_crack_force_n"] > params["crack_force_n"]:
            raise LesionError(
                f"{where}: min_crack_force_n ({params['min_crack_force_n']:g}) must be "
                f"<= crack_force_n ({params['crack_force_n']:g})"
            )
        for key in ("chunk_mm", "fatigue_rev", "stiffness_n_per_mm", "min_crack_force_n"):
            if params[key] <= 0:
                raise LesionError(f"{where}: {key} must be > 0, got {params[key]:g}")
        if params["chunk_mm"] < MIN_CHUNK_MM:
            raise LesionError(
                f"{where}: chunk_mm must be >= {MIN_CHUNK_MM:g}, got {params['chunk_mm']:g}"
            )
        if params["damage_carry"] > 1:
            raise LesionError(f"{where}: damage_carry must be in [0, 1]")
        if not 0 < params["arc_deg"] <= 360:
            raise LesionError(f"{where}: arc_deg must be in (0, 360], got {params['arc_deg']:g}")
    if tissue == "cap":
        for key in ("stiffness_n_per_mm", "puncture_force_n"):
            if params[key] <= 0:
                raise LesionError(f"{where}: {key} must be > 0, got {params[key]:g}")
    return tissue, start, end, params


def parse_lesion(data: Mapping[str, Any], source: str) -> Lesion:
    """Validate a parsed TOML document; every error names ``source``."""
    for key in data:
        if key not in _TOP_KEYS:
            allowed = ", ".join(sorted(_TOP_KEYS))
            raise LesionError(f"{source}: unknown key {key!r} (allowed: {allowed})")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise LesionError(f"{source}: missing field 'name' (a non-empty string)")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise LesionError(f"{source}: description must be a string")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise LesionError(f"{source}: tags must be a list of strings")
    cohort_name = data.get("cohort")
    if cohort_name is not None and not isinstance(cohort_name, str):
        raise LesionError(f"{source}: cohort must be a string")
    cursor: float | None = None
    if "start_mm" in data:
        cursor = _number(source, "start_mm", data["start_mm"])
        if cursor < 0:
            raise LesionError(f"{source}: start_mm must be >= 0, got {cursor:g}")
    raw_segments = data.get("segment")
    if not isinstance(raw_segments, list) or not raw_segments:
        raise LesionError(f"{source}: missing field 'segment' (at least one [[segment]])")
    segments: list[Segment] = []
    for i, raw in enumerate(raw_segments, start=1):
        where = f"{source}: segment {i}"
        tissue, start, end, params = _parse_segment(where, raw, cursor)
        if segments and start < segments[-1].end_mm - 1e-9:
            raise LesionError(
                f"{where}: overlaps segment {i - 1} (starts at {start:g} mm, "
                f"segment {i - 1} ends at {segments[-1].end_mm:g} mm)"
            )
        segments.append(Segment(tissue, start, end, params))
        cursor = end
    load_cell = None
    if "load_cell" in data:
        try:
            load_cell = part_from_table(data["load_cell"], source)
        except LoadCellError as exc:
            raise LesionError(str(exc)) from None
    return Lesion(
        name=name,
        description=description,
        start_mm=segments[0].start_mm,
        end_mm=segments[-1].end_mm,
        segments=tuple(segments),
        tags=frozenset(tags),
        cohort=cohort_name,
        source=source,
        load_cell=load_cell,
    )


def read_lesion_file(path: Path) -> Lesion:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LesionError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LesionError(f"{path}: not valid TOML: {exc}") from None
    return parse_lesion(data, str(path))


@cache
def _library() -> dict[str, Lesion]:
    lesions: dict[str, Lesion] = {}
    for path in sorted(LIBRARY_DIR.glob("*.toml")):
        lesion = read_lesion_file(path)
        if lesion.name in lesions:
            raise LesionError(f"{path}: duplicate lesion name {lesion.name!r}")
        lesions[lesion.name] = lesion
    return lesions


def library() -> dict[str, Lesion]:
    """Every named lesion shipped with the simulator (archetypes + cohort)."""
    return dict(_library())


def cohort(name: str = "cohort-2021") -> list[Lesion]:
    """The lesions of a named cohort, in name order."""
    members = [les for les in _library().values() if les.cohort == name]
    members.sort(key=lambda les: les.name)
    if not members:
        raise LesionError(f"unknown cohort {name!r}")
    return members


# Lesions built in memory (a generated family member) and made loadable by name in this
# process, so ``sim://?lesion=NAME`` can use them without a file.
_REGISTERED: dict[str, Lesion] = {}


@contextmanager
def registered(lesion: Lesion) -> Iterator[str]:
    """Make ``lesion`` loadable by its name in this process for the block's duration
    (yields the name). A name of the library, or one already registered, is refused."""
    if lesion.name in _library() or lesion.name in _REGISTERED:
        raise LesionError(f"lesion name {lesion.name!r} is already taken")
    _REGISTERED[lesion.name] = lesion
    try:
        yield lesion.name
    finally:
        _REGISTERED.pop(lesion.name, None)


def load_lesion(name_or_path: str) -> Lesion:
    """A library lesion by name, a registered in-memory lesion, or a lesion file by path
    (anything ending in .toml)."""
    lib = _library()
    if name_or_path in lib:
        return lib[name_or_path]
    if name_or_path in _REGISTERED:
        return _REGISTERED[name_or_path]
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.exists():
        if not path.is_file():
            raise LesionError(f"{name_or_path}: no such lesion file")
        return read_lesion_file(path)
    names = ", ".join(sorted(n for n, les in lib.items() if les.cohort is None))
    raise LesionError(
        f"unknown lesion {name_or_path!r}: not a library name ({names}, or a cohort "
        "member) nor a .toml file"
    )
