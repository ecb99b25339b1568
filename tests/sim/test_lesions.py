"""Lesion library and lesion file validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_device.lesions import LesionError, cohort, library, load_lesion, parse_lesion
from sim_device.physics import TISSUE_DEFAULTS

ARCHETYPES = [
    "soft-stenosis",
    "fibrous-cto",
    "dense-calcified-cto",
    "eccentric-calcium",
    "pedal-arch-calcification",
    "uncrossable",
]

GOOD = """\
name = "operator-lesion"
description = "written by hand"
start_mm = 12.0
tags = ["cto", "tibial"]

[[segment]]
tissue = "cap"
length_mm = 1.0

[[segment]]
tissue = "calcium"
length_mm = 5.0
crack_force_n = 30.0

[[segment]]
tissue = "fibrous"
start_mm = 20.0
end_mm = 26.0
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lesion.toml"
    path.write_text(text)
    return path


def test_library_has_the_archetypes_and_every_file_loads() -> None:
    lib = library()
    for name in ARCHETYPES:
        assert lib[name].name == name
        assert lib[name].cohort is None
    for lesion in lib.values():
        assert lesion.segments and lesion.length_mm > 0
        assert lesion.start_mm == lesion.segments[0].start_mm


def test_cohort_2021_composition() -> None:
    members = cohort("cohort-2021")
    assert len(members) == 18
    assert sum("cto" in m.tags for m in members) == 15
    assert sum("stenosis" in m.tags for m in members) == 3
    assert all(("cto" in m.tags) != ("stenosis" in m.tags) for m in members)
    assert any("tibial" in m.tags for m in members)
    assert any("pedal" in m.tags for m in members)
    assert all(("tibial" in m.tags) != ("pedal" in m.tags) for m in members)
    # the article: 8 bidirectional, 10 retrograde approaches
    assert sum("bidirectional" in m.tags for m in members) == 8
    assert sum("retrograde" in m.tags for m in members) == 10
    for m in members:
        assert 10.0 <= m.length_mm <= 60.0, m.name
        calcium = [s for s in m.segments if s.tissue == "calcium"]
        # severely calcified: a good share of the length, and a plain push cannot crack it
        assert sum(s.length_mm for s in calcium) >= 0.3 * m.length_mm, m.name
        assert max(s.params["crack_force_n"] for s in calcium) > 25.0, m.name
        # crossable under a ~8-12 N ceiling once rotation has worn it down
        assert all(s.params["min_crack_force_n"] <= 6.0 for s in calcium), m.name
        assert m.end_mm < 140.0


def test_unknown_cohort() -> None:
    with pytest.raises(LesionError, match="unknown cohort 'nope'"):
        cohort("nope")


def test_load_by_name_and_by_path(tmp_path: Path) -> None:
    assert load_lesion("fibrous-cto").name == "fibrous-cto"
    lesion = load_lesion(str(write(tmp_path, GOOD)))
    assert lesion.name == "operator-lesion"
    assert lesion.start_mm == 12.0 and lesion.end_mm == 26.0 and lesion.length_mm == 14.0
    assert [s.tissue for s in lesion.segments] == ["cap", "calcium", "fibrous"]
    assert lesion.segments[1].start_mm == 13.0 and lesion.segments[1].end_mm == 18.0
    calcium = lesion.segments[1].params
    assert calcium["crack_force_n"] == 30.0
    assert calcium["chunk_mm"] == TISSUE_DEFAULTS["calcium"]["chunk_mm"]  # default filled in
    assert lesion.tags == {"cto", "tibial"} and lesion.is_cto


def test_unknown_name() -> None:
    with pytest.raises(LesionError, match="unknown lesion 'nope'") as err:
        load_lesion("nope")
    assert "soft-stenosis" in str(err.value)
    with pytest.raises(LesionError, match="no such lesion file"):
        load_lesion("/nonexistent/x.toml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('tissue = "cap"', 'tissue = "bone"'), r"segment 1: unknown tissue type 'bone'"),
        (("length_mm = 5.0", "length_mm = -5.0"), r"segment 2: length_mm must be > 0, got -5"),
        (('tissue = "cap"\n', ""), r"segment 1: missing field 'tissue'"),
        (('name = "operator-lesion"\n', ""), r"missing field 'name'"),
        (("start_mm = 20.0", "start_mm = 16.0"), r"segment 3: overlaps segment 2"),
        (
            ("crack_force_n = 30.0", "crack_forse_n = 30.0"),
            r"segment 2: unknown key 'crack_forse_n'",
        ),
        (('tags = ["cto", "tibial"]', 'tag = ["cto"]'), r"unknown key 'tag'"),
        (("crack_force_n = 30.0", 'crack_force_n = "high"'), r"crack_force_n must be a number"),
        (("crack_force_n = 30.0", "crack_force_n = 3.0"), r"min_crack_force_n \(5\) must be <="),
        (("end_mm = 26.0", "end_mm = 19.0"), r"segment 3: end_mm \(19\) must be > start_mm"),
        (("start_mm = 12.0\n", ""), r"segment 1: missing field 'start_mm'"),
        (("length_mm = 1.0", "width_mm = 1.0"), r"segment 1: unknown key 'width_mm'"),
        (("tags = [", "tags = ["), None),  # control: unchanged text loads
        (('name = "operator-lesion"', "name = operator"), r"not valid TOML"),
        (("length_mm = 1.0", "length_mm = 1.0\nend_mm = 2.0"), r"give length_mm or end_mm"),
        (("crack_force_n = 30.0", "crack_force_n = 30.0\nchunk_mm = 0"), r"chunk_mm must be > 0"),
        (("crack_force_n = 30.0", "crack_force_n = true"), r"crack_force_n must be a number"),
        (
            ("crack_force_n = 30.0", "crack_force_n = 30.0\narc_deg = 400"),
            r"arc_deg must be in \(0, 360\]",
        ),
        (
            ("crack_force_n = 30.0", "crack_force_n = 30.0\nchunk_mm = 0.001"),
            r"chunk_mm must be >= 0.05",
        ),
    ],
)
def test_validation_errors_are_one_clear_line(
    tmp_path: Path, change: tuple[str, str], message: str | None
) -> None:
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    if message is None:
        assert load_lesion(str(path)).name == "operator-lesion"
        return
    with pytest.raises(LesionError, match=message) as err:
        load_lesion(str(path))
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(str(path))


def test_a_segment_overrides_its_tissues_cutting_force(tmp_path: Path) -> None:
    # cohort-2021's CTOs carry a body softer than its cap: tip_force_n per segment
    text = GOOD.replace('tissue = "fibrous"\n', 'tissue = "fibrous"\ntip_force_n = 0.25\n')
    text = text.replace('tissue = "cap"\n', 'tissue = "cap"\ntip_force_n = 0.2\n')
    lesion = load_lesion(str(write(tmp_path, text)))
    cap, _, body = lesion.segments
    assert cap.params["tip_force_n"] == 0.2 and body.params["tip_force_n"] == 0.25
    assert TISSUE_DEFAULTS["fibrous"]["tip_force_n"] == 1.2  # the default is untouched
    assert load_lesion(str(write(tmp_path, GOOD))).segments[2].params["tip_force_n"] == 1.2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-0.4", r"segment 3: tip_force_n must be >= 0, got -0.4"),
        ('"soft"', r"segment 3: tip_force_n must be a number, got 'soft'"),
        ("nan", r"segment 3: tip_force_n must be finite"),
        ("true", r"segment 3: tip_force_n must be a number, got True"),
    ],
)
def test_a_bad_cutting_force_override_is_one_clear_line(
    tmp_path: Path, value: str, message: str
) -> None:
    text = GOOD.replace('tissue = "fibrous"\n', f'tissue = "fibrous"\ntip_force_n = {value}\n')
    path = write(tmp_path, text)
    with pytest.raises(LesionError, match=message) as err:
        load_lesion(str(path))
    assert "\n" not in str(err.value) and str(err.value).startswith(str(path))


def test_cohort_ctos_bodies_are_softer_than_their_caps() -> None:
    # docs/simulator.md §5: a CTO's body (and the rest of its cap after the puncture) cuts
    # at 0.3 x its cap's puncture force, so the puncture is a force drop (Okamura 2004)
    for lesion in cohort():
        if not lesion.is_cto:
            continue
        cap = lesion.segments[0]
        assert cap.tissue == "cap", lesion.name
        puncture_n = cap.params["puncture_force_n"]
        cut_n = round(0.3 * puncture_n, 2)
        for seg in lesion.segments:
            if seg.tissue in ("cap", "fibrous"):
                assert seg.params["tip_force_n"] == pytest.approx(cut_n), lesion.name
                assert seg.params["tip_force_n"] < 0.5 * puncture_n


def test_no_segments(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "x"\nstart_mm = 1.0\n')
    with pytest.raises(LesionError, match="missing field 'segment'"):
        load_lesion(str(path))


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "dir.toml"
    path.mkdir()
    with pytest.raises(LesionError, match="no such lesion file"):
        load_lesion(str(path))


def test_the_example_in_docs_simulator_md_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "simulator.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    lesion = load_lesion(str(write(tmp_path, example)))
    assert [s.tissue for s in lesion.segments] == ["cap", "fibrous", "calcium", "soft"]
    assert lesion.segments[3].start_mm - lesion.segments[2].end_mm == 3.0  # as the comment says


def test_lesions_pickle_for_worker_processes() -> None:
    import pickle

    lesion = load_lesion("dense-calcified-cto")
    assert pickle.loads(pickle.dumps(lesion)) == lesion


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-100, 100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(sorted(TISSUE_DEFAULTS)),
)
_KEYS = st.sampled_from(
    [
        "name",
        "description",
        "start_mm",
        "tags",
        "cohort",
        "segment",
        "tissue",
        "length_mm",
        "end_mm",
        "crack_force_n",
        "chunk_mm",
        "bogus",
    ]
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=7))
def test_any_document_gives_a_lesion_or_a_lesion_error(data: dict[str, Any]) -> None:
    try:
        lesion = parse_lesion(data, "fuzz.toml")
    except LesionError as err:
        assert str(err).startswith("fuzz.toml") and "\n" not in str(err)
    else:
        assert lesion.length_mm > 0


@settings(max_examples=100, deadline=None)
@given(
    st.floats(0.0, 100.0),
    st.lists(
        st.tuples(st.sampled_from(sorted(TISSUE_DEFAULTS)), st.floats(0.1, 30.0)),
        min_size=1,
        max_size=8,
    ),
)
def test_valid_segments_tile_the_lesion(start_mm: float, parts: list[tuple[str, float]]) -> None:
    lesion = parse_lesion(
        {
            "name": "x",
            "start_mm": start_mm,
            "segment": [{"tissue": t, "length_mm": length} for t, length in parts],
        },
        "gen.toml",
    )
    assert lesion.start_mm == start_mm
    assert lesion.length_mm == pytest.approx(sum(length for _, length in parts))
    for before, after in zip(lesion.segments, lesion.segments[1:], strict=False):
        assert after.start_mm == before.end_mm


def test_simulator_page_states_the_library_ranges_as_the_files_hold_them() -> None:
    """docs/simulator.md's calcium ranges are generated from the lesion files: a file edited
    without refreshing the page (python -m sim_device.lesion_ranges --write …) fails here."""
    from sim_device.lesion_ranges import doc_block, ranges_markdown
    from sim_device.rig_model import RigParams

    page = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"
    block = doc_block(page.read_text(encoding="utf-8"))
    assert block is not None, "docs/simulator.md lost its lesion-ranges block"
    expected = ranges_markdown(RigParams().thrust_limit_n)
    assert block == expected, (
        "docs/simulator.md is stale: python -m sim_device.lesion_ranges --write docs/simulator.md"
    )
    # the figures the reviewer checked by hand
    assert "| whole library | 6–150 |" in expected
    assert "cohort-2021-04 28.6 N" in expected and "eccentric-calcium 20 N" in expected
