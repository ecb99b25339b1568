"""Commands that need no device: decode, codegen c, sim serve, sim lesions, ports."""

from __future__ import annotations

import argparse
import enum
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware_host.cli.command import Command, int_in
from firmware_host.cli.exits import CliError, Exit
from firmware_host.cli.output import Output, jsonable
from firmware_host.cli.sweepcmd import SIM_SWEEP

if TYPE_CHECKING:
    from protocol.codec import Frame

# ---------------------------------------------------------------- decode

_READ_CHUNK_BYTES = 1 << 16


def _wire_name(cls: type[Any]) -> str:
    """SetLimits -> SET_LIMITS, EStop -> ESTOP (the name used in docs/protocol.md)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__).upper()


def _enum_text(enum_type: type[enum.IntEnum] | type[enum.IntFlag], value: int) -> str:
    if issubclass(enum_type, enum.IntFlag):
        names = [m.name for m in enum_type if m.value & value and m.name]
        return "|".join(names) if names else "0"
    try:
        return enum_type(value).name
    except ValueError:
        return str(value)


def _fields(frame: Frame, named: bool) -> dict[str, Any]:
    """The message's fields; enum values by name when ``named``."""
    from protocol import fields_of, message_to_dict

    values = message_to_dict(frame.message)
    if named:
        for spec in fields_of(type(frame.message)):
            if spec.enum is not None and isinstance(values.get(spec.name), int):
                values[spec.name] = _enum_text(spec.enum.enum_type, values[spec.name])
    return values


def _frame_line(index: int, frame: Frame) -> str:
    from protocol.schema import HeaderFlags

    parts = []
    for key, value in _fields(frame, named=True).items():
        if isinstance(value, list):
            parts.append(f"{key}=[{len(value)} records]")
        elif key.endswith("hash") and isinstance(value, int):
            parts.append(f"{key}={value:#010x}")  # as `needlectl info` shows it
        else:
            parts.append(f"{key}={value}")
    flags = _enum_text(HeaderFlags, frame.flags) if frame.flags else ""
    head = f"{index:6d}  seq={frame.seq:<5d} {_wire_name(type(frame.message))}"
    if flags:
        head += f" [{flags}]"
    return f"{head} {' '.join(parts)}".rstrip()


def cmd_decode(ns: argparse.Namespace, out: Output) -> int:
    """Decode a raw capture streaming, chunk by chunk, so a large file costs no memory."""
    from protocol import StreamDecoder
    from protocol.schema import HeaderFlags

    decoder = StreamDecoder()
    count = 0
    source = sys.stdin.buffer if ns.file == "-" else open(ns.file, "rb")  # noqa: SIM115
    with source:
        while chunk := source.read(_READ_CHUNK_BYTES):
            for frame in decoder.feed(chunk):
                count += 1
                if out.json_mode:
                    out.emit(
                        {
                            "index": count,
                            "seq": frame.seq,
                            "flags": _enum_text(HeaderFlags, frame.flags) if frame.flags else "",
                            "message": _wire_name(type(frame.message)),
                            "fields": _fields(frame, named=False),
                        }
                    )
                else:
                    out.line(_frame_line(count, frame))
    stats = asdict(decoder.stats)
    stats["frames_bad"] = decoder.stats.frames_bad
    # bytes of an unterminated frame at the end (the decoder keeps them pending)
    stats["bytes_pending"] = len(getattr(decoder, "_pending", b""))
    summary = (
        f"decoded {count} frames from {stats['bytes_in']} bytes: "
        f"{stats['crc_failures']} CRC failures, {stats['malformed']} malformed, "
        f"{stats['oversize']} oversize, {stats['unknown_id']} unknown id, "
        f"{stats['bytes_skipped']} bytes skipped, {stats['bytes_pending']} bytes unterminated"
    )
    if out.json_mode:
        out.emit({"decoder": stats})
    else:
        out.line(summary)
    if stats["bytes_in"] == 0:
        raise CliError(f"{ns.file}: the capture is empty — capture the serial line's raw bytes")
    if count == 0:
        raise CliError(
            f"{ns.file}: no valid frame in {stats['bytes_in']} bytes "
            f"({stats['crc_failures']} CRC failures, {stats['malformed']} malformed, "
            f"{stats['oversize']} oversize) — is it a raw capture of the rig's line?"
        )
    return Exit.OK


# ---------------------------------------------------------------- codegen


def cmd_codegen_c(ns: argparse.Namespace, out: Output) -> int:
    from protocol import codegen

    header = codegen.c_header()
    if ns.output == "-":
        out.write(header)
        return Exit.OK
    path = Path(ns.output)
    path.write_text(header, encoding="utf-8")
    out.result(
        {"output": str(path), "bytes": len(header.encode())},
        f"wrote {path} ({len(header.splitlines())} lines)",
    )
    return Exit.OK


# ---------------------------------------------------------------- sim


def cmd_sim_serve(ns: argparse.Namespace, out: Output) -> int:
    """Delegate to the simulator's own server (it prints the port and runs until a signal)."""
    from sim_device.device import check_lesion_fits
    from sim_device.lesions import load_lesion
    from sim_device.serve import serve_main

    argv: list[str] = ["--tcp", ns.tcp] if ns.tcp else ["--pty"]
    if ns.lesion:
        # a bad lesion, or one beyond the travel, is needlectl's one-line error, exit 2
        check_lesion_fits(load_lesion(ns.lesion))
        argv += ["--lesion", ns.lesion]
    if ns.seed is not None:
        argv += ["--seed", str(ns.seed)]
    if ns.stats:
        argv += ["--stats", ns.stats]
    if out.json_mode:
        argv += ["--json"]
    argv += list(getattr(ns, "serve_extra", []))
    _check_serve_options(argv)
    return int(serve_main(argv))


def _check_serve_options(argv: list[str]) -> None:
    """The simulator's own parser checks the options passed through; a wrong one is
    needlectl's one-line usage error, not the simulator's usage text."""
    from sim_device.serve import build_parser

    parser = build_parser()
    parser.exit_on_error = False
    try:
        _, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as exc:
        raise CliError(f"sim serve: {exc} — see `python -m sim_device serve --help`") from None
    if unknown:
        raise CliError(
            f"sim serve: unrecognized arguments: {' '.join(unknown)} — see"
            " `python -m sim_device serve --help`"
        )


def cmd_sim_lesions(ns: argparse.Namespace, out: Output) -> int:
    from sim_device import lesions

    lib = lesions.library()
    rows = []
    for name, lesion in sorted(lib.items()):
        rows.append(_lesion_row(name, lesion))
    if out.json_mode:
        out.emit({"lesions": rows})
        return Exit.OK
    width = max((len(r["name"]) for r in rows), default=4)
    tags_width = max((len(",".join(r["tags"])) for r in rows), default=4)
    out.line(
        f"{'name':<{width}}  {'start_mm':>8}  {'length_mm':>9}  {'tags':<{tags_width}}  description"
    )
    for r in rows:
        tags = ",".join(r["tags"])
        out.line(
            f"{r['name']:<{width}}  {r['start_mm']:8.1f}  {r['length_mm']:9.1f}"
            f"  {tags:<{tags_width}}  {r['description']}"
        )
    out.line(f"{len(rows)} lesions; use one with --port 'sim://?lesion=NAME' or sim serve --lesion")
    return Exit.OK


def _lesion_row(name: str, lesion: Any) -> dict[str, Any]:
    return {
        "name": name,
        "start_mm": round(float(lesion.start_mm), 3),
        "length_mm": round(float(lesion.length_mm), 3),
        "tags": sorted(lesion.tags),
        "cohort": lesion.cohort,
        "description": lesion.description,
    }


# ---------------------------------------------------------------- ports


def cmd_ports(ns: argparse.Namespace, out: Output) -> int:
    from firmware_host.transports import discovery

    found = discovery.find_rigs(all_ports=bool(getattr(ns, "all", False)))
    rows = [jsonable(p) for p in found]
    if out.json_mode:
        out.emit({"ports": rows, "simulator": "sim://"})
        return Exit.OK
    if not rows:
        out.line(
            "no rig found (serial ports or USB devices with VID:PID 1209:4e44; --all lists "
            "every serial port); the simulator is always there: sim://"
        )
        return Exit.OK
    for p in found:
        mark = "rig " if p.is_rig else "    "
        sn = f"  serial {p.serial_number}" if p.serial_number else ""
        out.line(f"{mark} {p.url}  ({p.kind}: {p.description}){sn}")
    return Exit.OK


# ---------------------------------------------------------------- the commands


def _ports_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true", help="list every serial port, rig or not")


def _decode_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="raw bytes as captured from the wire ('-': stdin)")


def _sim_serve_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a new pty (default)")
    where.add_argument(
        "--tcp", metavar="HOST:PORT", help="serve on TCP (then use --port socket://HOST:PORT)"
    )
    p.add_argument("--lesion", metavar="NAME|FILE", help="lesion from the library or a TOML file")
    p.add_argument("--seed", type=int_in(0, 2**32 - 1, "--seed"), help="random seed")
    p.add_argument("--stats", metavar="FILE", help="write the device's statistics here (JSON)")


def _codegen_c_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o", "--output", metavar="FILE.h", required=True, help="the header to write ('-': stdout)"
    )


PORTS = Command(
    "ports", "serial ports and USB devices that look like a rig", cmd_ports, _ports_arguments
)
DECODE = Command(
    "decode",
    "decode a raw byte capture, one message a line (JSON lines with --json)",
    cmd_decode,
    _decode_arguments,
)
SIM = Command(
    "sim",
    "the simulator: serve it, list its lesions",
    subcommand_dest="sim_command",
    subcommand_metavar="SIM_COMMAND",
    subcommands=(
        Command(
            "serve",
            "serve a simulated rig in real time on a pty or TCP (until Ctrl-C)",
            cmd_sim_serve,
            _sim_serve_arguments,
            description="Serve a simulated rig in real time on a pty or TCP until Ctrl-C. The"
            " first line printed is the port: a pty path to pass as --port, or HOST:PORT to"
            " pass as --port socket://HOST:PORT. State persists between needlectl commands.",
            epilog="The simulator's other options (--noise, --fault, --fault-at-s, --corrupt,"
            " --drop, --duplicate, --cut-at-s, --cut-for-s, --watchdog-ms, --serial, --defect)"
            " are passed through: see `python -m sim_device serve --help`.",
            passes_extras=True,
        ),
        Command(
            "lesions",
            "the lesion library",
            cmd_sim_lesions,
            description="The simulator's lesion library.",
        ),
        SIM_SWEEP,
    ),
)
CODEGEN = Command(
    "codegen",
    "generate code from the protocol schema",
    subcommand_dest="lang",
    subcommand_metavar="LANG",
    subcommands=(
        Command(
            "c",
            "the firmware's C header",
            cmd_codegen_c,
            _codegen_c_arguments,
            description="The firmware's C header.",
        ),
    ),
)
