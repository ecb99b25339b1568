"""The schema hash is a function of the whole wire format: any change to a message moves it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from protocol.schema import SCHEMA_HASH, canonical_schema, compute_schema_hash

# Protocol v1's schema hash and the SHA-256 of its canonical JSON, written down by hand
# (docs/protocol.md §10 publishes the hash). Not derived from protocol/: a change to the
# wire format moves them, and this test stops it until the change is deliberate — then
# bump what must be bumped and write the new values here.
PINNED_SCHEMA_HASH = 0x410F9B8C
PINNED_CANONICAL_SHA256 = "410f9b8cc06812a17d5012ecb2ca18b5885777f73c4ad74eba0ccdf577156641"


def test_hash_is_pinned_to_the_published_value() -> None:
    import hashlib

    from protocol import canonical_json

    assert SCHEMA_HASH == PINNED_SCHEMA_HASH, (
        f"the schema hash moved to {SCHEMA_HASH:#010x} (pinned {PINNED_SCHEMA_HASH:#010x}): "
        "the wire format changed"
    )
    digest = hashlib.sha256(canonical_json().encode("ascii")).hexdigest()
    assert digest == PINNED_CANONICAL_SHA256, f"the canonical JSON changed: {digest}"
    assert int(PINNED_CANONICAL_SHA256[:8], 16) == PINNED_SCHEMA_HASH  # its first 4 bytes
    assert compute_schema_hash(canonical_schema()) == PINNED_SCHEMA_HASH


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


# ---------------------------------------------------------------- the documented recipe


def _json_text(value: Any) -> str:
    """The canonical JSON of docs/protocol.md §3, written out by hand (not json.dumps):
    keys sorted by code point, no whitespace, \\uXXXX for non-ASCII, plain decimal ints."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        out = ['"']
        for ch in value:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ord(ch) < 0x20 or ord(ch) > 0x7E:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return "".join(out) + '"'
    if isinstance(value, list):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ",".join(f"{_json_text(k)}:{_json_text(value[k])}" for k in sorted(value)) + "}"


def _documented_schema() -> dict[str, Any]:
    """The canonical schema built from the recipe in docs/protocol.md §3, from the schema's
    declarations (not from protocol's canonical_schema())."""
    from protocol import fields as f
    from protocol import schema as s

    def field_objects(cls: type[Any]) -> list[dict[str, Any]]:
        out = []
        for spec in s.fields_of(cls):
            if isinstance(spec.wire, f.Array):
                type_name = f"{spec.wire.record.__name__}[<={spec.wire.max_count}]"
            else:
                type_name = spec.wire.name
            obj: dict[str, Any] = {"name": spec.name, "type": type_name}
            if spec.range is not None:
                obj["range"] = [spec.range.lo, spec.range.hi]
            if spec.enum is not None:
                obj["enum"] = spec.enum.enum_type.__name__
            out.append(obj)
        return out

    replies = {"Hello": "Identity", "GetStatus": "Status", "GetEvents": "EventLog"}
    messages = []
    for cls in sorted(s.MESSAGES, key=lambda m: s.MSG_ID[m]):
        direction = s.DIRECTION[cls].value
        name = cls.__name__
        reply = replies.get(name, "Ack" if direction == "host->device" else None)
        messages.append(
            {
                "id": s.MSG_ID[cls],
                "name": name,
                "direction": direction,
                "reply": reply,
                "fields": field_objects(cls),
            }
        )
    return {
        "protocol_version": 1,
        "framing": {
            "cobs_delimiter": 0,
            "crc": "CRC-32/ISO-HDLC",
            "header": "<BBBH",
            "max_payload": 250,
        },
        "enums": {e.__name__: {m.name: int(m.value) for m in e} for e in s.ENUMS},
        "records": {r.__name__: field_objects(r) for r in s.RECORDS},
        "messages": messages,
    }


def test_hash_recomputed_from_the_documented_recipe() -> None:
    import hashlib
    import re

    from protocol import canonical_json, codegen

    text = _json_text(_documented_schema())
    assert text == canonical_json()
    recomputed = int.from_bytes(hashlib.sha256(text.encode("ascii")).digest()[:4], "big")
    assert recomputed == SCHEMA_HASH
    docs = codegen.DOCS_PATH.read_text()
    shown = re.search(r"\| schema hash \| `0x([0-9A-F]{8})` \|", docs)
    assert shown is not None and int(shown.group(1), 16) == SCHEMA_HASH
    # the recipe's example of HELLO's entry is literally in the text
    hello = re.search(r"`(\{\"direction\":\"host->device\",\"fields\":.*?\"Identity\"\})`", docs)
    assert hello is not None and hello.group(1) in text
    assert "\n" not in text and " " not in text


def test_codegen_prints_the_canonical_json(capsys: pytest.CaptureFixture[str]) -> None:
    from protocol import canonical_json, codegen

    assert codegen.main(["canonical"]) == 0
    assert capsys.readouterr().out == canonical_json() + "\n"
