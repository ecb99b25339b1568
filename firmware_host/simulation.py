"""Whether a run or a reading comes from a simulated device, said everywhere it shows.

IDENTITY's ``simulated`` flag is the device's own word; the lesion and seed are known
to the host only for the in-process simulator (``sim://?lesion=NAME&seed=N``, whose
defaults are the simulator's). A simulator served on a pty or TCP does not report
them over the link: they are ``None`` then (see the terminal running ``sim serve``).
"""

from __future__ import annotations

from typing import Any

DEFAULT_LESION = "soft-stenosis"
DEFAULT_SEED = 0


def simulation_of(port: str | None, identity: Any) -> dict[str, Any] | None:
    """``{"lesion": ..., "seed": ...}`` when the device says it is simulated, else None."""
    if not bool(getattr(identity, "simulated", False)):
        return None
    if port is None or not port.startswith("sim://"):
        return {"lesion": None, "seed": None}
    from urllib.parse import parse_qsl, urlsplit

    query = dict(parse_qsl(urlsplit(port).query))
    seed_text = query.get("seed", "")
    try:
        seed: int | None = int(seed_text, 0) if seed_text else DEFAULT_SEED
    except ValueError:
        seed = None
    return {"lesion": query.get("lesion") or DEFAULT_LESION, "seed": seed}


def simulated_label(simulation: dict[str, Any] | None) -> str:
    """'SIMULATED (lesion NAME, seed N)' for a human line; '' for a real device."""
    if simulation is None:
        return ""
    if simulation.get("lesion") is None:
        return "SIMULATED (lesion and seed as the served simulator was started)"
    return f"SIMULATED (lesion {simulation['lesion']}, seed {simulation['seed']})"
