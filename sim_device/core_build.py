"""The firmware's C core (firmware/core) built as a Python extension for the simulator.

cffi in API mode, as Klipper's chelper: the core and its simulator port
(firmware/ports/sim) are compiled into one extension module; the simulator fills the
port's sensor inputs and reads its outputs once per tick (sim_device/core.py).

Each build is keyed by the hash of the C sources and its flags, so a changed source is
never run stale; variants (a planted defect ``-DND_DEFECT_…``, a mutant) are builds of the
same sources with other flags, made on first use and cached under firmware/build/sim/.
``make venv`` (so ``make test`` and ``make demo``) builds the clean core ahead of time.

Only the simulator needs this. ``import firmware_host`` never does, and driving a real
rig needs no C compiler: using the simulator without one fails with one line saying what
to install (CoreBuildError).

    python -m sim_device.core_build [DEFECT ...]    build (or find) the clean core and any
                                                    planted-defect variants named
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware"
# ND_CORE_DIR: the core's sources from elsewhere (a mutant's copy: tests/hil/mutation.py)
CORE_DIR = Path(os.environ.get("ND_CORE_DIR") or FIRMWARE_DIR / "core")
PORT_DIR = FIRMWARE_DIR / "ports" / "sim"
# the single-fault campaign's hooks between the core and the port's HAL (never a mutant's)
FAULTS_DIR = FIRMWARE_DIR / "faults"


def _cache_dir() -> Path:
    """Where builds are cached: ND_CORE_BUILD_DIR if set (a test, a shared cache), else
    beside the sources (a clone), else the user's cache (an installed package whose
    directory is not writable)."""
    env = os.environ.get("ND_CORE_BUILD_DIR")
    if env:
        return Path(env)
    if os.access(FIRMWARE_DIR, os.W_OK):
        return FIRMWARE_DIR / "build" / "sim"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "needle-driver" / "core"


CACHE_DIR = _cache_dir()

# Planted defects: a build flag each (-DND_DEFECT_<NAME>), for the HIL suite to catch.
DEFECTS: dict[str, str] = {
    "no_repeat_detection": "a repeated command is executed again instead of replayed",
    "watchdog_disabled": "host silence never stops motion",
    "limit_off_by_one_step": "the soft depth limit lets the advance go one microstep beyond it",
    "stall_cutoff_disabled": "a stalled advance is never cut off",
    "telemetry_counter_stuck": "TELEMETRY.first_sample_number never advances",
    "nak_reason_swapped": "NOT_HOMED and BEYOND_LIMIT are reported as each other",
}

# Mutants: more one-behaviour breaks of the same core, each caught by a conformance test
# written for it (tests/hil/test_hil_mutants.py). Selected like a planted defect (defect=).
MUTANTS: dict[str, str] = {
    "estop_decelerates": "e-stop ramps the axes down like STOP instead of halting them",
    "force_limit_ignored": "SET_LIMITS is ACKed but its force limit never takes effect",
    "event_log_empty": "GET_EVENTS answers with no records",
    "home_offset": "homing zeroes the depth 50 µm away from the switch",
    "fault_leaves_rotation": "a latched fault stops the advance only: the needle turns on",
    # issue 17: the defects an independent read planted that the suite once passed
    "reply_cache_one_entry": "the reply cache keeps one entry: an older resend runs again",
    "cache_only_on_retransmit": "the reply cache is consulted only when RETRANSMIT is set",
    "force_limit_push_only": "the force limit is checked in the push direction only",
    "stall_force_off_rotating": "the force-held stall is off while the needle turns",
    "hello_clears_estop": "HELLO clears a latched e-stop",
    "stop_ignored_homing": "STOP is ACKed during HOME but the homing goes on",
    "relative_limit_on_increment": "a relative move's limit is checked on the increment",
    "crc_skipped_for_move": "a MOVE with a bad CRC is executed",
    "by_angle_32bit": "a BY_ANGLE target computed in 32 bits (over ~2147° is wrong)",
    "event_oldest_off_by_one": "the event ring's oldest kept event is off by one",
    # issue 18: the load cell's tare, filters, watchdog, saturation and fresh bit
    "tare_ignored": "TARE is ACKed but its offset is never subtracted",
    "no_tare_at_home": "homing leaves the load cell's offset as it was",
    "drift_filter_off": "the drift high-pass tracks its baseline but never subtracts it",
    "drift_filter_blinds_limit": "the force limit sees the force after the drift high-pass",
    "sensor_watchdog_disabled": "a load cell that stops converting goes unnoticed",
    "saturation_ignored": "a reading at the load cell's rail passes as a force",
    "fresh_bit_always": "every telemetry sample claims a fresh force",
}
VARIANTS: dict[str, str] = DEFECTS | MUTANTS


def _declared(header: str, struct: str) -> str:
    """``struct NAME { ... };`` as the firmware's header declares it: the structs Python
    reads whole come from the headers, not from a copy kept here."""
    text = (CORE_DIR / header).read_text(encoding="utf-8")
    start = text.index(f"struct {struct} {{\n")
    return text[start : text.index("\n};", start) + 3]


# What Python sees of the core and its port. Structs the simulator only reads part of are
# declared partially ("...;"): cffi takes their layout from the C headers; those it reads
# whole are the headers' own declarations.
CDEF = "\n".join(
    [
        """\
struct nd_axis { int64_t pos; int64_t target; int32_t vel; int32_t vmax; bool active; ...; };
struct nd_event_slot { uint64_t time_us; int32_t value; uint8_t code; ...; };
struct nd_events { struct nd_event_slot slots[256]; uint32_t last_number; ...; };""",
        _declared("hal.h", "nd_board"),
        """\
struct nd_device {
    struct nd_axis adv;
    struct nd_axis rot;
    bool session_open;
    bool schema_ok;
    bool homed;
    bool homing;
    bool at_limit;
    uint16_t latched;
    uint8_t state;
    int32_t soft_depth_limit_um;
    int32_t force_limit_mn;
    int32_t stall_force_mn;
    uint16_t stall_time_ms;
    uint16_t telemetry_rate_hz;
    int32_t depth_um;
    int32_t force_mn;
    uint64_t ticks;
    uint64_t now_us;
    uint32_t commands_executed;
    uint32_t commands_naked;
    uint32_t replies_replayed;
    uint32_t watchdog_trips;
    uint32_t samples_sent;
    struct nd_events events;
    ...;
};""",
        _declared("nd_core.h", "nd_core_stats"),
        """\
struct nd_sim {
    struct nd_device dev;
    struct nd_board board;
    double angle_origin_deg;
    bool load_cell_cut;
    double motor_mm;
    double angle_deg;
    size_t tx_len;
    uint8_t tx[65536];
    ...;
};
void nd_sim_init(struct nd_sim *s, double motor_origin_mm, double encoder_mm,
                 double load_cell_n, bool home_switch);
void nd_sim_feed(struct nd_sim *s, const uint8_t *data, size_t n);
double nd_sim_move(struct nd_sim *s);
uint32_t nd_sim_sense(struct nd_sim *s, double encoder_mm, double load_cell_n, bool home_switch,
                      bool load_cell_fresh);
uint64_t nd_sim_idle_until_us(struct nd_sim *s);
void nd_sim_skip(struct nd_sim *s, uint32_t ticks);
size_t nd_sim_take(struct nd_sim *s, uint8_t *out, size_t max);
void nd_sim_stats(struct nd_sim *s, struct nd_core_stats *out);
void nd_sim_fault_arm(struct nd_sim *s, uint8_t kind, uint64_t at_us, int64_t param);
""",
    ]
)

_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
# The table-driven CRC (1 KiB, ~8x the bitwise one's speed): a board may choose either, and
# the simulator, which pays for every byte of 1 kHz telemetry, takes the fast one. Both
# give zlib's CRC-32: every HIL run checks every frame's.
_PORT_DEFINES = ("ND_CRC32_TABLE",)
_loaded: dict[tuple[tuple[str, ...], Path], ModuleType] = {}


class CoreBuildError(RuntimeError):
    """The core could not be built (no C compiler, a compile error): one line."""


def sources(core_dir: Path = CORE_DIR) -> list[Path]:
    return [*sorted(core_dir.glob("*.c")), FAULTS_DIR / "fault_hooks.c", PORT_DIR / "sim_port.c"]


def _headers(core_dir: Path = CORE_DIR) -> list[Path]:
    return [*sorted(core_dir.glob("*.h")), FAULTS_DIR / "fault_hooks.h", PORT_DIR / "sim_port.h"]


def defines_for(defect: str | None) -> tuple[str, ...]:
    """The build flags of a planted defect or mutant (none for the clean core)."""
    if defect is None:
        return ()
    if defect not in VARIANTS:
        raise ValueError(f"unknown defect {defect!r}; known: {', '.join(sorted(VARIANTS))}")
    return (f"ND_DEFECT_{defect.upper()}",)


def build_key(defines: Sequence[str], core_dir: Path = CORE_DIR) -> str:
    """Hash of everything that goes into a build: sources, headers, cdef, flags."""
    h = hashlib.sha256()
    for path in sources(core_dir) + _headers(core_dir):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(CDEF.encode())
    h.update(" ".join([*_CFLAGS, *_PORT_DEFINES, *sorted(defines)]).encode())
    return h.hexdigest()[:16]


def _module_name(defines: Sequence[str], key: str) -> str:
    tag = "_".join(d.lower().removeprefix("nd_defect_") for d in sorted(defines)) or "clean"
    tag = "".join(c if c.isalnum() else "_" for c in tag)[:60]
    return f"_nd_core_{tag}_{key}"


def load(defines: Sequence[str] = (), core_dir: Path | None = None) -> ModuleType:
    """The compiled core with these -D flags (an extension module with .ffi and .lib),
    built on first use and cached; from the sources in ``core_dir`` if given (a mutant)."""
    wanted = (tuple(sorted(defines)), Path(core_dir or CORE_DIR))
    mod = _loaded.get(wanted)
    if mod is None:
        mod = _load_or_build(*wanted)
        _loaded[wanted] = mod
    return mod


def _find_built(directory: Path, name: str) -> Path | None:
    found = sorted(directory.glob(f"{name}.*.so")) + sorted(directory.glob(f"{name}.so"))
    return found[0] if found else None


def _load_or_build(defines: tuple[str, ...], core_dir: Path) -> ModuleType:
    key = build_key(defines, core_dir)
    name = _module_name(defines, key)
    directory = CACHE_DIR / name
    path = _find_built(directory, name)
    if path is None:
        with _build_lock():
            path = _find_built(directory, name)  # another process may have built it
            if path is None:
                path = _build(name, defines, directory, core_dir)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CoreBuildError(f"cannot load the simulator's core from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(name: str, defines: tuple[str, ...], directory: Path, core_dir: Path) -> Path:
    try:
        import cffi
    except ImportError:
        raise CoreBuildError(
            "the simulator runs the firmware's C core, built with cffi: pip install cffi"
        ) from None
    if shutil.which(os.environ.get("CC") or "cc") is None:
        raise CoreBuildError(
            "the simulator runs the firmware's C core and needs a C compiler to build it:"
            " install one (e.g. apt-get install gcc) — a real rig needs none"
        )
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source(
        name,
        '#include "sim_port.h"\n',
        sources=[str(p) for p in sources(core_dir)],
        include_dirs=[str(PORT_DIR), str(core_dir)],
        define_macros=[(d, None) for d in (*_PORT_DEFINES, *defines)],
        extra_compile_args=_CFLAGS,
        libraries=["m"],
    )
    with tempfile.TemporaryDirectory(prefix="build-", dir=CACHE_DIR) as tmp:
        try:
            built = Path(ffi.compile(tmpdir=tmp, verbose=False))
        except Exception as exc:  # distutils' CompileError, LinkError, ...
            raise CoreBuildError(f"building the simulator's C core failed: {exc}") from None
        staged = Path(tmp) / "out"
        staged.mkdir()
        shutil.copy2(built, staged / built.name)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staged, directory)  # whole or not at all: a reader never sees half
    path = _find_built(directory, name)
    assert path is not None
    return path


def core(defect: str | None = None) -> Any:
    """The compiled core (module with .ffi, .lib): clean, a planted defect or a mutant."""
    return load(defines_for(defect))


def main(argv: list[str]) -> int:
    try:
        for defect in [None, *argv]:
            mod = core(defect)
            print(f"core {defect or 'clean'}: {mod.__file__}")
    except (CoreBuildError, ValueError) as exc:
        print(f"sim_device.core_build: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
