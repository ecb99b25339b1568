"""The schema hash is a function of the whole wire format: any change to a message moves it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from protocol.schema import SCHEMA_HASH, canonical_schema, compute_schema_hash


def test_hash_is_stable_and_derived_from_the_canonical_schema() -> None:
    assert compute_schema_hash(canonical_schema()) == SCHEMA_HASH
    assert compute_schema_hash() == SCHEMA_HASH
    assert 0 <= SCHEMA_HASH < 2**32


Edit = Callable[[dict[str, Any]], None]


def _set(path: list[Any], value: Any) -> Edit:
    """An edit setting schema[path[0]][path[1]]... to value."""

    def edit(schema: dict[str, Any]) -> None:
        node: Any = schema
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _edits(schema: dict[str, Any]) -> list[tuple[str, Edit]]:
    """One change per aspect of every message, record and enum."""
    edits: list[tuple[str, Edit]] = []
    for mi, msg in enumerate(schema["messages"]):
        name = msg["name"]

        def set_msg(key: str, value: Any, mi: int = mi) -> Edit:
            return lambda s: s["messages"][mi].__setitem__(key, value)

        edits += [
            (f"{name}: id", set_msg("id", msg["id"] + 0x40)),
            (f"{name}: name", set_msg("name", name + "X")),
            (f"{name}: direction", set_msg("direction", "both")),
            (f"{name}: reply", set_msg("reply", "Nope")),
            (
                f"{name}: extra field",
                set_msg("fields", [*msg["fields"], {"name": "x", "type": "u8"}]),
            ),
        ]
        for fi, field in enumerate(msg["fields"]):

            def set_field(key: str, value: Any, mi: int = mi, fi: int = fi) -> Edit:
                return lambda s: s["messages"][mi]["fields"][fi].__setitem__(key, value)

            label = f"{name}.{field['name']}"
            edits += [
                (f"{label}: name", set_field("name", field["name"] + "_x")),
                (f"{label}: type", set_field("type", "i16" if field["type"] != "i16" else "u16")),
                (f"{label}: range", set_field("range", [0, 7])),
                (f"{label}: enum", set_field("enum", "Other")),
            ]
        if len(msg["fields"]) > 1:
            edits.append((f"{name}: field order", set_msg("fields", list(reversed(msg["fields"])))))
    for rec in schema["records"]:
        edits.append((f"{rec}: field type", _set(["records", rec, 0, "type"], "u64")))
    for enum_name, members in schema["enums"].items():
        first = next(iter(members))
        edits.append((f"{enum_name}.{first}: value", _set(["enums", enum_name, first], 0x7E)))
    edits.append(("max payload", lambda s: s["framing"].__setitem__("max_payload", 251)))
    edits.append(("protocol version", lambda s: s.__setitem__("protocol_version", 2)))
    return edits


def test_any_change_to_any_message_changes_the_hash() -> None:
    base = canonical_schema()
    seen = {SCHEMA_HASH: "original"}
    edits = _edits(base)
    assert len(edits) > 200
    for label, edit in edits:
        changed = copy.deepcopy(base)
        edit(changed)
        if changed == base:
            continue  # e.g. a range edit to the range it already has
        h = compute_schema_hash(changed)
        assert h not in seen, f"{label} gives the same hash as {seen.get(h)}"
        seen[h] = label


@pytest.mark.parametrize("key", ["messages", "enums", "records", "framing"])
def test_dropping_a_section_changes_the_hash(key: str) -> None:
    schema = canonical_schema()
    del schema[key]
    assert compute_schema_hash(schema) != SCHEMA_HASH
