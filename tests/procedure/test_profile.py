"""Profiles: built-ins load, files load, and every kind of mistake gives one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_host.procedure import (
    DEFAULT_PROFILE,
    Profile,
    ProfileError,
    builtin_names,
    load_profile,
    parse_profile,
)


def test_builtin_profiles_all_load_and_default_is_pierce() -> None:
    names = builtin_names()
    assert DEFAULT_PROFILE == "pierce" and "pierce" in names
    for name in names:
        p = load_profile(name)
        assert p.name == name
        assert p.advance.force_ceiling_n < p.limits.stall_force_n < p.limits.force_limit_n
    assert load_profile(None).name == "pierce"


def test_file_profile_overrides_only_what_it_names(tmp_path: Path) -> None:
    f = tmp_path / "gentle.toml"
    f.write_text('[advance]\nspeed_mm_s = 0.2\n[rotation]\nmode = "oscillate"\nrate_rpm = 20\n')
    p = load_profile(f)
    assert p.name == "gentle"
    assert p.advance.speed_mm_s == 0.2
    assert p.rotation.mode == "oscillate"
    assert p.rotation.rate_rpm == 20.0 and isinstance(p.rotation.rate_rpm, float)
    assert p.advance.force_ceiling_n == Profile().advance.force_ceiling_n
    assert load_profile(str(f)) == p


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[advance]\nsped_mm_s = 1.0\n",
            "unknown key [advance] sped_mm_s (did you mean speed_mm_s?)",
        ),
        ("colour = 'red'\n", "unknown key 'colour'"),
        ("[hodl]\nmax_hold_s = 3\n", "unknown key 'hodl' (did you mean hold?)"),
        ("[advance]\nspeed_mm_s = 'fast'\n", "[advance] speed_mm_s must be a number, not a string"),
        ("[advance]\nspeed_mm_s = true\n", "[advance] speed_mm_s must be a number, not a boolean"),
        ("[stall]\nmax_pecks = 2.5\n", "[stall] max_pecks must be an integer, not 2.5"),
        (
            "[rotation]\nrate_rpm = 600\n",
            "[rotation] rate_rpm = 600 rpm is out of range 1.0..120.0 rpm",
        ),
        ("[advance]\nspeed_mm_s = -1\n", "[advance] speed_mm_s = -1 mm/s is out of range"),
        (
            "[rotation]\nmode = 'spin'\n",
            "[rotation] mode = 'spin': must be one of continuous, oscillate",
        ),
        ("advance = 3\n", "[advance] must be a table, not an integer"),
        ("home_first = 'yes'\n", "home_first must be bool, not a string"),
        ("[advance\n", "not valid TOML"),
        (
            "[advance]\nforce_ceiling_n = 13.0\n",
            "[advance] force_ceiling_n = 13.0 N must be below [limits] stall_force_n = 12.0 N",
        ),
        (
            "[limits]\nstall_force_n = 20.0\nforce_limit_n = 16.0\n",
            "[limits] stall_force_n = 20.0 N must be below [limits] force_limit_n = 16.0 N",
        ),
        (
            "[advance]\nforce_ceiling_n = 9.0\n"
            "[limits]\nforce_limit_n = 10.0\nstall_force_n = 9.5\n",
            "leaves no margin under [limits] force_limit_n = 10.0 N",
        ),
        ("[target]\ndepth_mm = 1.0\n[peck]\nback_off_mm = 1.0\n", "[peck] back_off_mm = 1.0 mm"),
        ("[hold]\nmax_hold_s = 100\n[stall]\nmax_duration_s = 60\n", "must be shorter than"),
    ],
)
@pytest.mark.control("RC-PROFILECHECK")
def test_bad_profiles_give_one_clear_line(text: str, expected: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, source="bad.toml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("bad.toml: ") or "not valid TOML" in message
    assert expected in message


def test_unknown_builtin_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"no built-in profile 'pirce' \(built-in: .*pierce"):
        load_profile("pirce")
    missing = tmp_path / "nope.toml"
    with pytest.raises(ProfileError, match=r"nope.toml not found"):
        load_profile(missing)


def test_profile_error_is_a_value_error() -> None:
    assert issubclass(ProfileError, ValueError)


def test_to_dict_round_trips_through_toml_shape() -> None:
    p = load_profile("pierce")
    d = p.to_dict()
    assert d["advance"]["force_ceiling_n"] == p.advance.force_ceiling_n
    assert "depth_mm" not in d["target"]  # None is left out (TOML has no null)
    from firmware_host.procedure.profile import profile_from_dict

    assert profile_from_dict(d) == p


def test_docs_table_lists_every_field_with_its_default_and_range() -> None:
    from firmware_host.procedure.profile import field_table

    doc = (Path(__file__).parents[2] / "docs" / "procedure.md").read_text(encoding="utf-8")
    for key, default, rng, unit, meaning in field_table():
        assert f"| `{key}` | {default} | {rng} | {unit} | {meaning} |" in doc, key
