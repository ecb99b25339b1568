"""The hazard analysis as doorstop keeps it (docs/safety/): hazards and risk controls."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

HAZARD_PREFIX = "HAZ"
CONTROL_PREFIX = "RC"
HAZARD_FIELDS = ("situation", "cause", "harm", "severity", "probability", "residual_risk")
CONTROL_FIELDS = ("where", "implemented_in")
# where a risk control lives (ISO 14971: in the design, a protective measure, information)
PLACES = ("device", "host", "procedure", "rig server", "operator")


class CaseError(ValueError):
    """The safety case's data cannot be loaded: one line."""


@dataclass(frozen=True)
class Hazard:
    uid: str
    text: str
    fields: dict[str, str]


@dataclass(frozen=True)
class Control:
    uid: str
    text: str  # the requirement the control implements
    hazards: tuple[str, ...]
    where: str
    implemented_in: str
    verified_in: str  # "" or the parallel work that will verify it ("issue 18")


@dataclass(frozen=True)
class Case:
    hazards: dict[str, Hazard]
    controls: dict[str, Control]
    problems: tuple[str, ...]  # the data's own defects: each one makes the step red


def load(repo: Path) -> Case:
    """Build the doorstop tree rooted at ``repo`` and read its HAZ and RC documents."""
    import doorstop
    from doorstop.common import DoorstopError

    # doorstop logs each item it loads at INFO and its validation findings at WARNING;
    # the findings that matter here are returned as problems instead
    logging.getLogger("doorstop").setLevel(logging.ERROR)
    try:
        tree = doorstop.build(cwd=str(repo), root=str(repo))
        hazard_doc = tree.find_document(HAZARD_PREFIX)
        control_doc = tree.find_document(CONTROL_PREFIX)
    except DoorstopError as exc:
        raise CaseError(f"the safety case in {repo / 'docs/safety'}: {exc}") from None
    problems: list[str] = []
    hazards: dict[str, Hazard] = {}
    for item in sorted(hazard_doc, key=lambda i: str(i.uid)):
        if not item.active:
            continue
        uid = str(item.uid)
        fields = {name: str(item.get(name) or "").strip() for name in HAZARD_FIELDS}
        problems += [f"{uid}: no {name}" for name, value in fields.items() if not value]
        hazards[uid] = Hazard(uid, str(item.text).strip(), fields)
    controls: dict[str, Control] = {}
    for item in sorted(control_doc, key=lambda i: str(i.uid)):
        if not item.active:
            continue
        uid = str(item.uid)
        links = tuple(str(link) for link in item.links)
        where = str(item.get("where") or "")
        if where not in PLACES:
            problems.append(f"{uid}: where {where!r} is not one of {', '.join(PLACES)}")
        problems += [f"{uid}: links to unknown hazard {h}" for h in links if h not in hazards]
        if not links:
            problems.append(f"{uid}: controls no hazard")
        if not str(item.text).strip():
            problems.append(f"{uid}: no requirement text")
        controls[uid] = Control(
            uid,
            str(item.text).strip(),
            links,
            where,
            str(item.get("implemented_in") or ""),
            str(item.get("verified_in") or ""),
        )
    for uid in hazards:
        if not any(uid in c.hazards for c in controls.values()):
            problems.append(f"{uid}: no risk control")
    return Case(hazards, controls, tuple(problems))
