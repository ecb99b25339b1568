"""Link fault injection itself: rates as asked, seeded, both directions independent."""

from __future__ import annotations

import pytest

from sim_device.linkfaults import ByteFaults, LinkFaultConfig, LinkFaults


@pytest.mark.parametrize("kind", ["corrupt", "drop", "duplicate"])
def test_fault_rate_matches_the_probability(kind: str) -> None:
    p = 0.01
    faults = ByteFaults(LinkFaultConfig(**{kind: p}), seed=5)
    data = bytes(range(256)) * 400  # 102 400 bytes, fed in uneven chunks
    out = bytearray()
    for i in range(0, len(data), 997):
        out += faults.apply(data[i : i + 997], 0.0)
    count = {"corrupt": faults.corrupted, "drop": faults.dropped, "duplicate": faults.duplicated}[
        kind
    ]
    expected = p * len(data)
    assert abs(count - expected) < 5 * expected**0.5
    assert len(out) == len(data) + {"corrupt": 0, "drop": -count, "duplicate": count}[kind]
    if kind == "corrupt":
        assert sum(a != b for a, b in zip(out, data, strict=True)) == count


def test_same_seed_same_faults_and_directions_differ() -> None:
    cfg = LinkFaultConfig(corrupt=0.01, drop=0.01, duplicate=0.01)
    data = bytes(range(256)) * 50
    a = LinkFaults(cfg, seed=3)
    b = LinkFaults(cfg, seed=3)
    assert a.to_host.apply(data, 0.0) == b.to_host.apply(data, 0.0)
    assert a.to_device.apply(data, 0.0) != a.to_host.apply(data, 0.0)


def test_cut_window_passes_nothing() -> None:
    faults = ByteFaults(LinkFaultConfig(cut_at_s=1.0, cut_for_s=0.5), seed=0)
    assert faults.apply(b"abc", 0.99) == b"abc"
    assert faults.apply(b"abc", 1.0) == b""
    assert faults.apply(b"abc", 1.49) == b""
    assert faults.apply(b"abc", 1.5) == b"abc"
    assert faults.cut_bytes == 6


def test_bad_probabilities_are_refused() -> None:
    with pytest.raises(ValueError, match="probability"):
        LinkFaultConfig(drop=1.5)
    with pytest.raises(ValueError, match="exceed 1"):
        LinkFaultConfig(drop=0.6, corrupt=0.6)
