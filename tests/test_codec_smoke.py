from protocol import EStop, Move, MoveMode, Stop, StreamDecoder, encode


def test_move_round_trips_through_a_frame() -> None:
    msg = Move(MoveMode.RELATIVE, 500, 200)
    frames = StreamDecoder().feed(encode(msg, seq=7))
    assert [(f.seq, f.message) for f in frames] == [(7, msg)]


def test_messages_with_equal_fields_but_different_types_differ() -> None:
    assert Stop() != EStop()
