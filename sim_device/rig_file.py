"""A simulator rig file (TOML): the bench being simulated, apart from the lesion.

    # my-bench.toml
    [load_cell]                 # the sensor (as a lesion file's [load_cell])
    part = "hx711-80"
    rated_load_n = 10.0

    [mechanics]                 # any of these RigParams (docs/simulator.md)
    backlash_mm = 0.05
    encoder_resolution_um = 5.0
    thrust_limit_n = 25.0
    track_winding = true
    wind_friction_gain = 0.1

Used with ``sim://?rig=my-bench.toml`` or ``needlectl sim serve --rig my-bench.toml``.
A load cell named in the URL (``load_cell=``) wins over the file's; the file's wins over
the lesion's. Every problem is one ``RigFileError`` line naming the file and the key.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sim_device.load_cells import LoadCellError, LoadCellPart, part_from_table

# the mechanics a bench may differ in; the rest of RigParams is the simulator's model
MECHANICS: dict[str, type] = {
    "backlash_mm": float,
    "encoder_resolution_um": float,
    "thrust_limit_n": float,
    "um_per_microstep": float,
    "track_winding": bool,
    "wind_friction_gain": float,
    "wind_relax_s": float,
}
_POSITIVE = {"encoder_resolution_um", "thrust_limit_n", "um_per_microstep", "wind_relax_s"}


class RigFileError(ValueError):
    """A rig file that cannot be used (one line)."""


@dataclass(frozen=True)
class RigFile:
    source: str
    load_cell: LoadCellPart | None
    mechanics: dict[str, Any]

    def params(self, base: Any) -> Any:
        """``base`` (RigParams) with this file's mechanics."""
        return replace(base, **self.mechanics) if self.mechanics else base


def read_rig_file(path: str | Path) -> RigFile:
    p = Path(path)
    src = str(p)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RigFileError(f"{src}: no such rig file") from None
    except OSError as exc:
        raise RigFileError(f"{src}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise RigFileError(f"{src}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise RigFileError(f"{src}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"load_cell", "mechanics"})
    if unknown:
        raise RigFileError(f"{src}: unknown section(s) {', '.join(unknown)} (load_cell, mechanics)")
    load_cell = None
    if "load_cell" in data:
        try:
            load_cell = part_from_table(data["load_cell"], src)
        except LoadCellError as exc:
            raise RigFileError(str(exc)) from None
    mech = data.get("mechanics", {})
    if not isinstance(mech, dict):
        raise RigFileError(f"{src}: [mechanics] must be a table")
    mechanics: dict[str, Any] = {}
    for key, value in mech.items():
        kind = MECHANICS.get(key)
        if kind is None:
            raise RigFileError(f"{src}: [mechanics] unknown key {key!r} ({', '.join(MECHANICS)})")
        if kind is bool:
            if not isinstance(value, bool):
                raise RigFileError(f"{src}: [mechanics] {key} must be true or false")
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RigFileError(f"{src}: [mechanics] {key} must be a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value) or value < 0 or (key in _POSITIVE and value == 0):
                rule = "> 0" if key in _POSITIVE else "≥ 0"
                raise RigFileError(f"{src}: [mechanics] {key} = {value:g} must be {rule}")
        mechanics[key] = value
    return RigFile(src, load_cell, mechanics)
