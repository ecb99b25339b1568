"""A sweep file (TOML) read into the list of jobs it means, in a fixed order.

    name = "example"
    seeds = [1, 2]                       # simulator seeds
    noise = [1.0, 2.0]                   # load-cell noise scale
    load_cells = ["ideal", "hx711-80"]   # load cell parts (sim_device/load_cells.py)
    drift = [1.0, 3.0]                   # the part's drift multiplier
    margin_mm = 3.0                      # target depth = lesion end + this
    lesions = ["soft-stenosis", "my.toml"]   # library names or files (relative to this file)

    [[family]]                           # generated lesions (sim_device.families)
    name = "calcium"
    count = 4                            # members per grid point
    seed = 1                             # which members
    params = { calcium_floor_n = { from = 3.0, to = 9.0, step = 3.0 }, length_mm = [10, 30] }

    [[profile]]
    name = "pierce"                      # built-in name or file (relative to this file)
    grid = { "advance.force_ceiling_n" = [7.0, 8.0] }   # every value, crossed

Every lesion is resolved here, in the client, into a ``Lesion`` object that travels
with its job: a worker (another machine's Dask worker too) needs no file.
Errors are one ``SweepError`` line naming the file and the key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_host.procedure.profile import ProfileError, load_profile, profile_from_dict
from sim_device.families import FamilyError, build_lesion, draw_params, features
from sim_device.lesions import Lesion, LesionError, load_lesion
from sim_device.load_cells import LoadCellError, get_part
from studies.sweep.job import Job

_TOP_KEYS = {
    "name",
    "description",
    "seeds",
    "noise",
    "load_cells",
    "drift",
    "margin_mm",
    "lesions",
    "family",
    "profile",
}
_FAMILY_KEYS = {"name", "count", "seed", "params"}
_PROFILE_KEYS = {"name", "grid"}


class SweepError(ValueError):
    """A sweep file that cannot be run (one line: the file, the key, the problem)."""


@dataclass(frozen=True)
class LesionCase:
    label: str  # library name, file stem, or family member name
    family: str  # "" for a lesion file or library name
    lesion: Lesion
    params: dict[str, float]  # the family member's parameters ({} for a file)


@dataclass(frozen=True)
class ProfileCase:
    label: str  # "pierce" or "pierce[advance.force_ceiling_n=7]"
    overrides: dict[str, float | int | str]
    data: dict[str, Any]  # a validated profile, as Profile.to_dict()


@dataclass(frozen=True)
class Sweep:
    name: str
    source: Path
    jobs: list[Job]


def _list(where: str, value: Any, kind: type | tuple[type, ...], what: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise SweepError(f"{where} must be a non-empty list of {what}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, kind):
            raise SweepError(f"{where}: {v!r} is not {what}")
    return value


def _tables(
    src: str, data: dict[str, Any], key: str, known: set[str], default: list[Any]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The sweep file's array of tables ``[[key]]`` (``default`` when absent; an empty one
    given is an error where the default is not empty), one at a time with where it is
    ("FILE: key N"), each checked to be a table of known keys only."""
    tables = data.get(key, default)
    if not isinstance(tables, list) or (default and not tables):
        raise SweepError(f"{src}: {key} must be an array of tables ([[{key}]])")
    for i, table in enumerate(tables, start=1):
        where = f"{src}: {key} {i}"
        if not isinstance(table, dict):
            raise SweepError(f"{where} must be a table")
        unknown = sorted(set(table) - known)
        if unknown:
            raise SweepError(f"{where}: unknown key(s) {', '.join(unknown)}")
        yield where, table


def load_sweep(path: str | Path) -> Sweep:
    path = Path(path)
    src = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepError(f"{src}: no such sweep file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{src}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise SweepError(f"{src}: unknown key(s) {', '.join(unknown)} (known: {sorted(_TOP_KEYS)})")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise SweepError(f"{src}: name must be a non-empty string")
    seeds = _list(f"{src}: seeds", data.get("seeds", [1]), int, "integers")
    if any(not 0 <= s < 2**32 for s in seeds):
        raise SweepError(f"{src}: seeds must be within 0..2^32-1")
    noise = [
        float(n) for n in _list(f"{src}: noise", data.get("noise", [1.0]), (int, float), "numbers")
    ]
    if any(not 0 <= n <= 10 for n in noise):
        raise SweepError(f"{src}: noise scales must be within 0..10")
    parts = _list(f"{src}: load_cells", data.get("load_cells", ["ideal"]), str, "part names")
    for part in parts:
        try:
            get_part(part)
        except LoadCellError as exc:
            raise SweepError(f"{src}: load_cells: {exc}") from None
    drift = [
        float(d) for d in _list(f"{src}: drift", data.get("drift", [1.0]), (int, float), "numbers")
    ]
    if any(not 0 <= d <= 100 for d in drift):
        raise SweepError(f"{src}: drift multipliers must be within 0..100")
    margin = data.get("margin_mm", 3.0)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 < margin <= 50:
        raise SweepError(f"{src}: margin_mm must be a number within (0, 50]")
    lesions = _lesion_cases(path, data)
    profiles = _profile_cases(path, data)
    jobs = [
        _job(les, prof, seed, nz, float(margin), part, dr)
        for les, prof, part, nz, dr, seed in itertools.product(
            lesions, profiles, parts, noise, drift, seeds
        )
    ]
    ids = [j.run_id for j in jobs]
    if len(set(ids)) != len(ids):
        raise SweepError(f"{src}: the same run appears twice (a lesion, seed or value repeated)")
    return Sweep(name=name, source=path, jobs=jobs)


def _lesion_cases(path: Path, data: dict[str, Any]) -> list[LesionCase]:
    src = str(path)
    cases: list[LesionCase] = []
    names = data.get("lesions", [])
    if names:
        _list(f"{src}: lesions", names, str, "lesion names or files")
    for spec in names:
        candidate = path.parent / spec
        try:
            lesion = load_lesion(str(candidate) if candidate.is_file() else spec)
        except LesionError as exc:
            raise SweepError(f"{src}: lesions: {exc}") from None
        cases.append(LesionCase(lesion.name, "", lesion, {}))
    for where, fam in _tables(src, data, "family", _FAMILY_KEYS, default=[]):
        fname = fam.get("name")
        if not isinstance(fname, str) or not fname.replace("-", "").replace("_", "").isalnum():
            raise SweepError(f"{where}: name must be a word (letters, digits, - or _)")
        count, seed = fam.get("count", 1), fam.get("seed", 0)
        if isinstance(count, bool) or not isinstance(count, int):
            raise SweepError(f"{where}: count must be an integer")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SweepError(f"{where}: seed must be an integer")
        params = fam.get("params", {})
        if not isinstance(params, dict):
            raise SweepError(f"{where}: params must be a table")
        try:  # its messages begin with where: the file is named once
            drawn = draw_params(params, count, seed, where=f"{where} ({fname})")
        except FamilyError as exc:
            raise SweepError(str(exc)) from None
        for k, p in enumerate(drawn):
            member = f"{fname}-{k:05d}"
            try:  # its messages name the member only
                lesion = build_lesion(member, p)
            except FamilyError as exc:
                raise SweepError(f"{where} ({fname}): {exc}") from None
            cases.append(LesionCase(member, fname, lesion, p))
    if not cases:
        raise SweepError(f"{src}: no lesions: give lesions = [...] or a [[family]]")
    return cases


def _profile_cases(path: Path, data: dict[str, Any]) -> list[ProfileCase]:
    src = str(path)
    cases: list[ProfileCase] = []
    for where, spec in _tables(src, data, "profile", _PROFILE_KEYS, default=[{"name": "pierce"}]):
        pname = spec.get("name")
        if not isinstance(pname, str):
            raise SweepError(f"{where}: name must be a profile name or file")
        candidate = path.parent / pname
        try:
            base = load_profile(candidate if candidate.is_file() else pname)
        except ProfileError as exc:
            raise SweepError(f"{where}: {exc}") from None
        grid = spec.get("grid", {})
        if not isinstance(grid, dict):
            raise SweepError(f'{where}: grid must be a table of "section.key" = [values]')
        keys = sorted(grid)
        for key in keys:
            _list(f"{where}: grid {key!r}", grid[key], (int, float, str), "values")
            if key.count(".") != 1:
                raise SweepError(f'{where}: grid key {key!r} must be "section.key"')
        for values in itertools.product(*(grid[k] for k in keys)):
            overrides = dict(zip(keys, values, strict=True))
            d = base.to_dict()
            for key, value in overrides.items():
                section, field = key.split(".")
                if not isinstance(d.get(section), dict):
                    raise SweepError(f"{where}: grid key {key!r}: no section [{section}]")
                d[section][field] = value
            label = base.name + (
                "[" + ",".join(f"{k}={v}" for k, v in overrides.items()) + "]" if overrides else ""
            )
            try:
                prof = profile_from_dict(d, source=f"{src}: profile {label}")
            except ProfileError as exc:
                raise SweepError(str(exc)) from None
            cases.append(ProfileCase(label, overrides, prof.to_dict()))
    return cases


def _lesion_digest(lesion: Lesion) -> str:
    """The lesion's content (so an edited file is a new run, not a resumed one)."""
    segs = [(s.tissue, s.start_mm, s.end_mm, sorted(s.params.items())) for s in lesion.segments]
    return hashlib.sha256(repr(segs).encode()).hexdigest()[:16]


def _job(
    les: LesionCase,
    prof: ProfileCase,
    seed: int,
    noise: float,
    margin_mm: float,
    load_cell: str = "ideal",
    drift: float = 1.0,
) -> Job:
    target = round(les.lesion.end_mm + margin_mm, 3)
    parts: list[Any] = [les.label, _lesion_digest(les.lesion), prof.label, prof.data, seed]
    parts += [noise, target]
    if load_cell != "ideal" or drift != 1.0:  # the runs of sweeps before parts keep their ids
        parts += [load_cell, drift]
    key = json.dumps(parts, sort_keys=True)
    run_id = hashlib.sha256(key.encode()).hexdigest()[:16]
    inputs: dict[str, Any] = {
        "run_id": run_id,
        "lesion": les.label,
        "family": les.family,
        "lesion_params": json.dumps(les.params, sort_keys=True),
        "seed": seed,
        "noise": noise,
        "load_cell": load_cell,
        "drift": drift,
        "profile": prof.label,
        "profile_params": json.dumps(prof.overrides, sort_keys=True),
        "target_mm": target,
        **features(les.lesion),
    }
    return Job(
        run_id=run_id,
        lesion=les.lesion,
        profile_data=prof.data,
        seed=seed,
        noise=noise,
        target_mm=target,
        inputs=inputs,
        load_cell=load_cell,
        drift=drift,
    )
