"""Line noise before a frame (docs/protocol.md): the host sends a delimiter before every
frame, so garbage on the line is cut off from the next command instead of being glued
to it — an ESTOP after noise is acknowledged at once, with no retransmission."""

from __future__ import annotations

from firmware_host.client import NeedleDriver
from protocol import DeviceState, FaultFlags

# bytes of a half-sent frame and a noise burst: no 0x00 among them
_NOISE = bytes([0x17, 0x42, 0x99, 0xFE, 0x01, 0x33, 0x80, 0x7F, 0x55])


def test_estop_after_line_noise_is_acknowledged_without_retransmission() -> None:
    with NeedleDriver.open("sim://?seed=11") as nd:
        nd.home()
        nd.advance_mm(5.0, 2.0)
        nd.wait_s(0.2)
        bad_before = nd.status().counters.frames_bad
        nd.link.transport.write(_NOISE)  # garbage reaches the device, no delimiter after it
        nd.estop()
        assert nd.stats.retransmits == 0
        st = nd.status()
        assert st.counters.frames_bad == bad_before + 1  # the noise alone was dropped
        assert st.state is DeviceState.ESTOPPED and st.latched_faults & FaultFlags.ESTOP


def test_every_frame_sent_starts_with_a_delimiter() -> None:
    with NeedleDriver.open("sim://?seed=12") as nd:
        frames_before = nd.stats.frames_out
        written: list[bytes] = []
        transport = nd.link.transport
        real_write = transport.write

        def spy(data: bytes) -> None:
            written.append(bytes(data))
            real_write(data)

        transport.write = spy  # type: ignore[method-assign]
        nd.status()
        nd.wait_s(0.2)  # heartbeats
        assert len(written) == nd.stats.frames_out - frames_before >= 3
        assert all(
            w[:1] == b"\x00" and w[-1:] == b"\x00" and b"\x00" not in w[1:-1] for w in written
        )
