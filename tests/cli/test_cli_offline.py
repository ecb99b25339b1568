"""Commands that need no device: help, usage errors, decode, codegen, ports."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

from protocol import (
    Ack,
    Event,
    EventCode,
    HeaderFlags,
    Move,
    MoveMode,
    Nak,
    NakReason,
    Stop,
    encode,
)

if TYPE_CHECKING:
    from conftest import Cli


def test_help_lists_every_command_and_the_exit_codes(cli: Cli) -> None:
    proc = cli.run("--help")
    assert proc.returncode == 0
    for command in cli.commands:
        assert f"    {command} " in proc.stdout, command
    assert "130" in proc.stdout and "sim://" in proc.stdout and "FRESH" in proc.stdout


def test_usage_errors_are_one_line_with_code_2(cli: Cli) -> None:
    for args in (
        (),  # no command
        ("frobnicate",),
        ("jog", "--advance-mm", "1e9"),  # out of range
        ("jog", "--advance-mm", "nan"),
        ("jog", "--speed-mm-s", "-1"),
        ("home", "--speed-mm-s", "abc"),
        ("sim", "serve", "--seed", "-3"),
        ("run",),  # no profile
    ):
        line = cli.one_line_error(cli.run(*args), 2)
        assert "--help" in line, line


def test_global_options_are_accepted_after_the_command(cli: Cli, tmp_path: Path) -> None:
    capture = tmp_path / "c.bin"
    capture.write_bytes(encode(Stop(), seq=1))
    proc = cli.run("decode", str(capture), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["message"] == "STOP"


def _capture(tmp_path: Path) -> tuple[Path, list[tuple[int, str]]]:
    """Frames with noise between them (each noise burst ends in a delimiter, as on a
    line where the sender flushes), and a half frame at the end."""
    rng = random.Random(7)
    frames = [
        (encode(Move(MoveMode.RELATIVE, 500, 200), seq=1), 1, "MOVE"),
        (encode(Move(MoveMode.RELATIVE, 500, 200), seq=1, flags=HeaderFlags.RETRANSMIT), 1, "MOVE"),
        (encode(Ack(0x04), seq=1), 1, "ACK"),
        (encode(Nak(0x04, NakReason.NOT_HOMED, 0), seq=2), 2, "NAK"),
        (encode(Event(3, 123456, EventCode.STALL, 4200), seq=0), 0, "EVENT"),
    ]
    data = bytearray()
    for frame, _, _ in frames:
        data += bytes(rng.randrange(1, 256) for _ in range(rng.randrange(0, 40))) + b"\x00"
        data += frame
    corrupt = bytearray(encode(Stop(), seq=9))
    corrupt[3] ^= 0x40
    data += corrupt + encode(Stop(), seq=10)[:4]
    path = tmp_path / "capture.bin"
    path.write_bytes(bytes(data))
    return path, [(seq, name) for _, seq, name in frames]


def test_decode_prints_one_message_a_line_and_the_counters(cli: Cli, tmp_path: Path) -> None:
    path, expected = _capture(tmp_path)
    proc = cli.run("decode", str(path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(expected) + 1
    for line, (seq, name) in zip(lines, expected, strict=False):
        assert f"seq={seq} " in line and f" {name}" in line, line
    assert "RETRANSMIT" in lines[1] and "NOT_HOMED" in lines[3] and "STALL" in lines[4]
    assert lines[-1].startswith(f"decoded {len(expected)} frames")


def test_decode_json_lines(cli: Cli, tmp_path: Path) -> None:
    path, expected = _capture(tmp_path)
    proc = cli.run("--json", "decode", str(path))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["seq"], r["message"]) for r in rows[:-1]] == expected
    assert rows[0]["fields"] == {"mode": 1, "target_um": 500, "speed_um_s": 200}
    counters = rows[-1]["decoder"]
    assert counters["frames_ok"] == len(expected)
    assert counters["crc_failures"] + counters["malformed"] >= 1  # the corrupted STOP
    assert counters["bytes_pending"] == 4  # the half frame at the end
    assert counters["bytes_in"] == path.stat().st_size


def test_decode_of_noise_gives_counters_and_a_one_line_error(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "noise.bin"
    path.write_bytes(os.urandom(20_000))
    proc = cli.run("--json", "decode", str(path))
    line = cli.one_line_error(proc, 2)
    assert "no valid frame" in line
    counters = json.loads(proc.stdout.splitlines()[-1])["decoder"]
    assert counters["frames_ok"] == 0 and counters["bytes_in"] == 20_000
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert "empty" in cli.one_line_error(cli.run("decode", str(empty)), 2)
    assert "no such file" in cli.one_line_error(cli.run("decode", str(tmp_path / "x")), 2)
    cli.one_line_error(cli.run("decode", str(tmp_path)), 2)  # a directory


def test_codegen_c_writes_the_schema_header(cli: Cli, tmp_path: Path) -> None:
    from protocol import codegen

    out = tmp_path / "needle_protocol.h"
    proc = cli.run("codegen", "c", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == codegen.c_header()
    assert str(out) in proc.stdout
    line = cli.one_line_error(cli.run("codegen", "c", "-o", str(tmp_path / "no" / "x.h")), 2)
    assert "no such file" in line


def test_ports_json_lists_rigs_and_the_simulator(cli: Cli) -> None:
    proc = cli.run("ports", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["simulator"] == "sim://"
    for p in d["ports"]:
        assert set(p) >= {"url", "kind", "is_rig"}


def test_sim_lesions_lists_the_library(cli: Cli) -> None:
    from sim_device.lesions import library

    proc = cli.run("--json", "sim", "lesions")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["lesions"]
    assert [r["name"] for r in rows] == sorted(library())
    cto = next(r for r in rows if r["name"] == "dense-calcified-cto")
    assert cto["length_mm"] > 0 and "cto" in cto["tags"]
    human = cli.run("sim", "lesions")
    assert human.returncode == 0 and "dense-calcified-cto" in human.stdout


def test_stdout_closed_early_is_not_a_link_loss(cli: Cli) -> None:
    """`needlectl sim lesions | head -2`: the reader leaves. A well-behaved tool stops
    quietly (the status a tool killed by SIGPIPE has, 141), and says nothing about a
    cable. The pipe's read end is closed before the command writes, so every write
    meets EPIPE whatever the timing."""
    import subprocess

    for args in (("sim", "lesions"), ("status",), ("--json", "status"), ("events",)):
        read_fd, write_fd = os.pipe()
        os.close(read_fd)
        try:
            proc = subprocess.run(
                [str(cli.path), *args],
                stdout=write_fd,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
                check=False,
                env={k: v for k, v in os.environ.items() if k != "NEEDLECTL_PORT"},
            )
        finally:
            os.close(write_fd)
        assert proc.returncode == 141, (args, proc.returncode, proc.stderr)
        assert proc.stderr == "", (args, proc.stderr)


def test_decode_shows_hash_fields_in_hex_as_info_does(cli: Cli, tmp_path: Path) -> None:
    from protocol import PROTOCOL_VERSION, SCHEMA_HASH, Hello

    capture = tmp_path / "hello.bin"
    capture.write_bytes(encode(Hello(PROTOCOL_VERSION, SCHEMA_HASH), seq=1))
    proc = cli.run("decode", str(capture))
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.splitlines()[0]
    assert f"schema_hash={SCHEMA_HASH:#010x}" in line, line
    assert str(SCHEMA_HASH) not in line
    proc = cli.run("--json", "decode", str(capture))
    assert json.loads(proc.stdout.splitlines()[0])["fields"]["schema_hash"] == SCHEMA_HASH
