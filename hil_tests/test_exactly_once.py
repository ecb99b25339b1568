"""Exactly once: a command whose reply was lost is sent again with the same seq, and the
device answers from its reply cache without executing it a second time (protocol §2)."""

from __future__ import annotations

from typing import Any

import pytest

from hil_tests.dut import Dut
from hil_tests.session import HilSession
from protocol import Ack, HeaderFlags, Move, MoveMode, Nak, NakReason

STEP_UM = 1000
RESENDS = 3


@pytest.mark.control("RC-EXACTLYONCE")
def test_lost_reply_resend_executes_once(
    hil_homed: Dut, hil_session: HilSession, hil_figures: dict[str, Any]
) -> None:
    dut = hil_homed
    wire = dut.wire
    start = dut.status()
    move = Move(MoveMode.RELATIVE, STEP_UM, hil_session.speed_um_s)
    seq = wire.send(move)
    first = wire.reply(seq, 0.5)
    assert first is not None and isinstance(first.message, Ack), f"MOVE answered {first}"
    # The reply "was lost": the host never saw it and sends the same command again.
    replies = wire.received.replies[seq]
    for sent in range(2, RESENDS + 2):
        wire.resend(move, seq)
        wire.wait_for(lambda: len(replies) >= sent, 0.5)  # noqa: B023 (called right here)
    assert len(replies) == 1 + RESENDS, f"{len(replies)} replies to {1 + RESENDS} sends"
    for again in replies[1:]:
        assert again.message == first.message, f"replayed {again.message!r} ≠ {first.message!r}"
        assert again.flags & HeaderFlags.REPLAYED, "a repeated command's reply lacks REPLAYED"
    st = dut.wait_idle(30.0)
    moved_um = st.commanded_depth_um - start.commanded_depth_um
    hil_figures["commanded_move_um"] = moved_um
    hil_figures["encoder_move_um"] = st.depth_um - start.depth_um
    hil_figures["replies_replayed"] = st.replies_replayed - start.replies_replayed
    assert moved_um == STEP_UM, (
        f"one MOVE +{STEP_UM} µm sent {1 + RESENDS} times moved {moved_um} µm"
    )
    assert abs(st.depth_um - start.depth_um - STEP_UM) <= 5, "encoder disagrees with the move"
    # GET_STATUS counts as executed; MOVE once: the counters tell the same story.
    assert st.replies_replayed - start.replies_replayed == RESENDS


def test_same_seq_different_command_is_new(hil_homed: Dut, hil_session: HilSession) -> None:
    """A seq reused with another message id is a new command, not a replay."""
    dut = hil_homed
    wire = dut.wire
    start = dut.status()
    seq = wire.send(Move(MoveMode.RELATIVE, STEP_UM, hil_session.speed_um_s))
    assert wire.reply(seq, 0.5) is not None
    dut.wait_idle(30.0)
    from protocol import GetStatus, Status

    wire.send(GetStatus(), seq=seq)
    wire.wait_for(lambda: len(wire.received.replies[seq]) >= 2, 0.5)
    replies = wire.received.replies[seq]
    assert len(replies) == 2 and isinstance(replies[1].message, Status), (
        f"GET_STATUS reusing MOVE's seq got {replies[1:]!r}"
    )
    assert not replies[1].flags & HeaderFlags.REPLAYED
    assert replies[1].message.commanded_depth_um == start.commanded_depth_um + STEP_UM


def test_replayed_nak_is_the_stored_one(hil_homed: Dut, hil_session: HilSession) -> None:
    """A refused command sent again gets the same NAK, replayed (nothing re-evaluated)."""
    dut = hil_homed
    wire = dut.wire
    beyond = Move(MoveMode.ABSOLUTE, hil_session.identity.travel_limit_um + 1000, 1000)
    seq = wire.send(beyond)
    first = wire.reply(seq, 0.5)
    assert first is not None and isinstance(first.message, Nak)
    assert NakReason(first.message.reason) is NakReason.BEYOND_LIMIT
    wire.resend(beyond, seq)
    wire.wait_for(lambda: len(wire.received.replies[seq]) >= 2, 0.5)
    again = wire.received.replies[seq]
    assert len(again) == 2 and again[1].message == first.message
    assert again[1].flags & HeaderFlags.REPLAYED
