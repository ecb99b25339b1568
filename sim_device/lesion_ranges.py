"""The calcium parameter ranges of the lesion library, as the markdown block that
docs/simulator.md carries between ``<!-- lesion-ranges:begin -->`` and
``<!-- lesion-ranges:end -->``. A test compares the two, so the page cannot drift from
the files; after editing a lesion file, refresh the page with

    python -m sim_device.lesion_ranges --write docs/simulator.md
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from sim_device.lesions import Lesion, library

BEGIN = "<!-- lesion-ranges:begin (generated: python -m sim_device.lesion_ranges) -->"
END = "<!-- lesion-ranges:end -->"
PARAMS = ("crack_force_n", "min_crack_force_n", "stiffness_n_per_mm", "fatigue_rev", "chunk_mm")


def _calcium(lesions: Iterable[Lesion], key: str) -> list[float]:
    return [
        float(seg.params[key])
        for les in lesions
        for seg in les.segments
        if seg.tissue == "calcium" and key in seg.params
    ]


def _span(values: list[float]) -> str:
    if not values:
        return "—"
    lo, hi = min(values), max(values)
    return f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"


def ranges_markdown(thrust_n: float) -> str:
    """The block: one row per group of lesions, then which ones a plain push can crack."""
    lib = library()
    groups = {
        "cohort-2021 (18)": [les for les in lib.values() if les.cohort == "cohort-2021"],
        "archetypes but uncrossable": [
            les for n, les in lib.items() if les.cohort is None and n != "uncrossable"
        ],
        "uncrossable": [lib["uncrossable"]],
        "whole library": list(lib.values()),
    }
    lines = [
        BEGIN,
        "",
        "| lesions | " + " | ".join(f"`{p}`" for p in PARAMS) + " |",
        "|---" * (len(PARAMS) + 1) + "|",
    ]
    for label, members in groups.items():
        cells = " | ".join(_span(_calcium(members, p)) for p in PARAMS)
        lines.append(f"| {label} | {cells} |")
    below = sorted(
        f"{les.name} {v:g} N"
        for les in lib.values()
        for v in _calcium([les], "crack_force_n")
        if v < thrust_n
    )
    lines += [
        "",
        f"Calcium blocks whose unrotated `crack_force_n` is below the {thrust_n:g} N thrust"
        " (a plain push may crack them, if the friction already on the needle leaves"
        f" room): {', '.join(below) or 'none'}.",
        "",
        END,
    ]
    return "\n".join(lines)


def doc_block(text: str) -> str | None:
    """The generated block as it stands in a page (None if the markers are missing)."""
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(END)]


def main(argv: list[str] | None = None) -> int:
    from sim_device.rig_model import RigParams

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--write", type=Path, help="replace the block in this page")
    args = ap.parse_args(argv)
    block = ranges_markdown(RigParams().thrust_limit_n)
    if args.write is None:
        print(block)
        return 0
    text = args.write.read_text(encoding="utf-8")
    old = doc_block(text)
    if old is None:
        print(f"{args.write}: no {BEGIN!r} … {END!r} block", file=sys.stderr)
        return 1
    args.write.write_text(text.replace(old, block), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
