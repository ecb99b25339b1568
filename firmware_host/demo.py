"""`make demo` until the simulator and CLI exist: the protocol's identity and one frame."""

from protocol import PROTOCOL_VERSION, SCHEMA_HASH, Move, MoveMode, StreamDecoder, encode


def main() -> None:
    frame = encode(Move(MoveMode.RELATIVE, 500, 200), seq=1)
    decoded = StreamDecoder().feed(frame)[0]
    print(f"protocol v{PROTOCOL_VERSION}, schema hash {SCHEMA_HASH:#010x}")
    print(f"MOVE +0.5 mm at 0.2 mm/s, seq 1: {frame.hex(' ')}")
    print(f"decoded back: {decoded.message}")


if __name__ == "__main__":
    main()
