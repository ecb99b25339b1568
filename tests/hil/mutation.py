"""Mutation testing of the firmware's C core against the unchanged HIL suite.

    python tests/hil/mutation.py [--files F.c ...] [--sample N] [--seed S] [--fixed]
                                 [--safety-only] [--timeout S] [--json OUT] [--rerun JSON]
                                 [--port sim|posix]

Mutants of firmware/core/*.c come from universalmutator (``pip install universalmutator``;
its ``mutate`` generates C mutants by regular-expression rules: operators, constants,
conditions, deleted statements). ``--fixed`` uses the few hand-written mutants of FIXED
instead (no tool needed: the quick sample in ``make test``). ``--rerun JSON`` runs only
the survivors of an earlier run's results again: after tests were added for them.

Each mutant is first compiled alone with the core's flags (-Werror): one that does not
compile is discarded, one whose object code is byte-identical to the original's is
equivalent (trivial compiler equivalence) and not run. The others are built into the
simulator's core (sim_device/core_build.py, ND_CORE_DIR) and the whole HIL suite runs on
``sim://`` against it in virtual time, stopping at its first failure: a failure (or a
crash, or a hang past --timeout) kills the mutant; a green suite lets it survive.

``--port posix`` runs each mutant on the posix port instead (the mutated core built into
it from a copy of firmware/, the whole suite against its rig file in real time, a few
minutes each): the spot check of survivors that the simulator's virtual time, its ideal
sensor or its in-process link could have let through — ``--port posix --rerun JSON``.

The score is killed / (killed + survived), over the whole core and over the safety paths
(SAFETY_FUNCTIONS: limits, stall, watchdog, e-stop and stop, exactly once, frame checks).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "firmware" / "core"
CACHE = REPO / "firmware" / "build" / "mutants"
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]

# Functions whose every mutant the suite must kill (issue 17: 100 % in the safety paths).
SAFETY_FUNCTIONS = frozenset(
    {
        # limits
        "nd_dev_set_limit_pos",
        "hit_limit",
        "move",
        "set_limits",
        "step_axes",
        # force, sensors, stall
        "sensor_safety",
        "stall_check",
        "stall",
        "nd_dev_stop_advance",
        "nd_dev_latch",
        "homing_check",
        "nd_core_tick_sense",
        # the load cell: its watchdog, saturation, stuck check, tare (issue 18)
        "load_cell_fault",
        "load_cell_conversion",
        "read_load_cell",
        "load_cell_may_change",
        # watchdog
        "watchdog_trip",
        # e-stop, stop
        "estop",
        "estop_now",
        "stop",
        "advance_to_rest",
        "rotation_to_rest",
        "rotate_stop",
        "move_stop",
        "state_allows",
        "is_stop",
        # exactly once
        "nd_commands_on_frame",
        "store_reply",
        "replay",
        "find",
        "nd_reply_cache_lookup",
        "nd_reply_cache_store",
        "nd_reply_cache_clear",
        # frame checks
        "chunk_done",
        "length_ok",
        "nd_link_feed",
    }
)

# A few fixed mutants (file, original text, mutated text): the quick sample of make test,
# each a one-token change in a safety path that some conformance test must catch.
FIXED: list[tuple[str, str, str]] = [
    ("reply_cache.c", "c->entries[i].seq == seq", "c->entries[i].seq != seq"),
    ("device.c", "(f > D.force_limit_mn || -f > D.force_limit_mn)", "f > D.force_limit_mn"),
    ("link.c", "if (l->len == 0) return;", "if (l->len == 1) return;"),
    ("commands.c", "if (D.latched & ND_FAULT_FLAGS_ESTOP) {", "if (0) {"),
    # two survivors of the issue-17 samples on the safety paths, killed by the tests written
    # for them (the stall time, a seq-0 MOVE STOP); the others: docs/hil.md §5, --rerun
    ("device.c", "++D.stall_ticks >= D.stall_time_ms", "++D.stall_ticks > D.stall_time_ms"),
    (
        "commands.c",
        "(id == ND_MOVE_ID && p[ND_MOVE_MODE_OFFSET] == ND_MOVE_MODE_STOP) ||",
        "(0==1) ||",
    ),
]

# a definition's first line at column 0: "type name(" not ending in ";" (or a one-liner)
_FUNC_RE = re.compile(r"^[A-Za-z_][\w \*]*?\b([A-Za-z_]\w*)\s*\((?:[^;]*$|.*\{.*\}\s*$)")


@dataclass
class Mutant:
    file: str
    line: int
    original: str
    mutated: str
    function: str
    source: str  # the mutant's whole text (not in the report)
    outcome: str = ""  # killed, survived, equivalent, uncompilable
    detail: str = ""

    @property
    def safety(self) -> bool:
        return self.function in SAFETY_FUNCTIONS


def enclosing_function(lines: list[str], index: int) -> str:
    """The C function a line belongs to: the last definition opened at column 0 above it."""
    for i in range(index, -1, -1):
        line = lines[i]
        if line.startswith("}") and i != index:
            return "(file scope)"
        m = _FUNC_RE.match(line)
        if m and not line.startswith(("#", "/*", " ")):
            one_liner = line.rstrip().endswith("}")
            return "(file scope)" if one_liner and i != index else m.group(1)
    return "(file scope)"


def _describe(file: str, original: str, text: str) -> Mutant | None:
    a, b = original.splitlines(), text.splitlines()
    if len(a) != len(b):  # a deleted line: universalmutator comments lines out instead
        return None
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if len(diff) != 1:
        return None
    i = diff[0]
    return Mutant(file, i + 1, a[i].strip(), b[i].strip(), enclosing_function(a, i), text)


def generate(files: list[str]) -> list[Mutant]:
    """universalmutator's mutants of each file (cached by the file's hash)."""
    mutate = shutil.which("mutate") or str(Path(sys.executable).with_name("mutate"))
    if not Path(mutate).exists():
        sys.exit("mutation.py: needs universalmutator (pip install universalmutator), or --fixed")
    out: list[Mutant] = []
    for name in files:
        src = (CORE / name).read_text()
        digest = hashlib.sha256(src.encode()).hexdigest()[:12]
        directory = CACHE / f"{name}-{digest}"
        if not directory.is_dir():
            tmp = Path(tempfile.mkdtemp(prefix="gen-", dir=_mkdir(CACHE)))
            subprocess.run(
                [mutate, str(CORE / name), "c", "--mutantDir", str(tmp), "--noCheck"],
                cwd=tmp,
                check=True,
                capture_output=True,
            )
            os.replace(tmp, directory)
        stem = Path(name).stem
        paths = sorted(
            directory.glob(f"{stem}.mutant.*.c"), key=lambda p: int(p.name.split(".")[-2])
        )
        for path in paths:
            m = _describe(name, src, path.read_text())
            if m is not None:
                out.append(m)
    return out


def fixed() -> list[Mutant]:
    out = []
    for name, old, new in FIXED:
        src = (CORE / name).read_text()
        assert src.count(old) == 1, f"FIXED mutant of {name}: {old!r} is not there once"
        m = _describe(name, src, src.replace(old, new))
        assert m is not None
        out.append(m)
    return out


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _object(directory: Path, name: str) -> bytes | None:
    """The file compiled alone (-c, the core's flags); None if it does not compile."""
    obj = directory / (name + ".o")
    proc = subprocess.run(
        [os.environ.get("CC") or "cc", *CFLAGS, "-c", str(directory / name), "-o", str(obj)],
        capture_output=True,
    )
    return obj.read_bytes() if proc.returncode == 0 else None


def _simulator_suite(core: Path, work: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """The whole suite on ``sim://``, the simulator's core built from ``core``: virtual time."""
    env = dict(os.environ, ND_CORE_DIR=str(core), ND_CORE_BUILD_DIR=str(work / "build"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "hil_tests"]
    try:
        return subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s
        )
    finally:
        shutil.rmtree(work / "build", ignore_errors=True)


def _posix_suite(core: Path, work: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """The whole suite on the posix port built with ``core`` (firmware/Makefile, in a copy of
    the firmware tree), against its rig file: real time, as make test runs the clean port.
    The spot check of survivors the simulator's virtual time could have let through."""
    sys.path.insert(0, str(REPO))
    from firmware.launch import real_time_process, stop

    firmware = work / "firmware"
    shutil.rmtree(firmware, ignore_errors=True)
    firmware.mkdir()
    shutil.copy(REPO / "firmware" / "Makefile", firmware)
    shutil.copytree(core, firmware / "core")
    for part in ("bench", "faults", "ports/posix"):
        shutil.copytree(REPO / "firmware" / part, firmware / part)
    build = subprocess.run(["make", "-C", str(firmware), "posix"], capture_output=True, text=True)
    if build.returncode != 0:
        return subprocess.CompletedProcess(build.args, 2, "", "building the posix port failed")
    port = subprocess.Popen(
        [str(firmware / "build" / "posix" / "nd-firmware")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=real_time_process,
    )
    try:
        assert port.stdout is not None
        pty = port.stdout.readline().strip()
        rig = REPO / "firmware" / "ports" / "posix" / "rig.toml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "hil_tests"]
        cmd += ["--port", pty, "--rig-config", str(rig)]
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    finally:
        stop(port)
        shutil.rmtree(firmware, ignore_errors=True)


SUITES = {"sim": _simulator_suite, "posix": _posix_suite}


def run_one(
    m: Mutant, baseline: dict[str, bytes], timeout_s: float, work: Path, port: str = "sim"
) -> None:
    core = work / "core"
    if core.exists():
        shutil.rmtree(core)
    shutil.copytree(CORE, core)
    (core / m.file).write_text(m.source)
    obj = _object(core, m.file)
    if obj is None:
        m.outcome, m.detail = "uncompilable", "does not compile (-Werror)"
        return
    if obj == baseline[m.file]:
        m.outcome, m.detail = "equivalent", "object code identical to the original's"
        return
    try:
        proc = SUITES[port](core, work, timeout_s)
    except subprocess.TimeoutExpired:
        m.outcome, m.detail = "killed", f"the suite hung (> {timeout_s:.0f} s)"
        return
    if proc.returncode == 0:
        m.outcome = "survived"
    elif "building the simulator's C core failed" in proc.stdout + proc.stderr:
        m.outcome, m.detail = "uncompilable", "the simulator's build failed"
    elif "building the posix port failed" in proc.stderr:
        m.outcome, m.detail = "uncompilable", "the posix port's build failed"
    else:
        failed = re.findall(r"^FAILED (\S+)", proc.stdout, re.M)
        m.outcome = "killed"
        m.detail = failed[0] if failed else f"suite exit {proc.returncode}"


def survivors_of(results: Path, mutants: list[Mutant]) -> list[Mutant]:
    """The mutants that survived in an earlier run's JSON, found again by file, text and
    function — at the nearest line, so that a survivor is still found after the core
    gained or lost lines above it (universalmutator repeats some texts: one is run)."""
    try:
        rows = json.loads(results.read_text())
    except (OSError, ValueError) as exc:
        sys.exit(f"mutation.py: cannot read {results}: {exc}")
    out: dict[tuple[str, int, str], Mutant] = {}
    missing = []
    for r in rows:
        if r["outcome"] != "survived":
            continue
        same = [
            m
            for m in mutants
            if (m.file, m.function, m.original, m.mutated)
            == (r["file"], r["function"], r["original"], r["mutated"])
        ]
        if not same:
            missing.append(f"{r['file']}:{r['line']} {r['mutated'].strip()}")
            continue
        m = min(same, key=lambda m: abs(m.line - r["line"]))
        out[(m.file, m.line, m.mutated)] = m
    if missing:
        sys.exit(f"mutation.py: survivors of {results} not found: {'; '.join(missing)}")
    return list(out.values())


def score(ms: list[Mutant]) -> tuple[int, int, float]:
    k = sum(m.outcome == "killed" for m in ms)
    s = sum(m.outcome == "survived" for m in ms)
    return k, s, (100.0 * k / (k + s) if k + s else 100.0)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", nargs="*", default=None, help="core files (default: all *.c)")
    ap.add_argument("--sample", type=int, default=0, help="run N mutants drawn at random")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--safety-only", action="store_true", help="only the safety paths")
    ap.add_argument("--fixed", action="store_true", help="the fixed quick sample (FIXED)")
    ap.add_argument("--timeout", type=float, default=None, help="per mutant's suite run")
    ap.add_argument(
        "--port",
        choices=sorted(SUITES),
        default="sim",
        help="sim (virtual time, default) or posix (real time: a spot check of survivors)",
    )
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument(
        "--rerun",
        type=Path,
        default=None,
        help="only the survivors of an earlier run's --json (after tests were added)",
    )
    args = ap.parse_args(argv)
    files = args.files or sorted(p.name for p in CORE.glob("*.c"))
    mutants = fixed() if args.fixed else generate(files)
    if args.rerun:
        mutants = survivors_of(args.rerun, mutants)
    if args.safety_only:
        mutants = [m for m in mutants if m.safety]
    if args.sample and args.sample < len(mutants):
        mutants = random.Random(args.seed).sample(mutants, args.sample)
        mutants.sort(key=lambda m: (m.file, m.line))
    print(f"mutation: {len(mutants)} mutants of {', '.join(files)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="nd-mutation-") as tmp:
        work = Path(tmp)
        base = work / "base"
        shutil.copytree(CORE, base)
        baseline = {}
        for name in files:
            obj = _object(base, name)
            assert obj is not None, f"{name} does not compile as it is"
            baseline[name] = obj
        for n, m in enumerate(mutants, 1):
            timeout_s = args.timeout or (600.0 if args.port == "posix" else 120.0)
            run_one(m, baseline, timeout_s, work, args.port)
            where = f"{m.file}:{m.line} {m.function}"
            print(f"[{n}/{len(mutants)}] {m.outcome:12s} {where}: {m.mutated}", flush=True)
    k, s, pct = score(mutants)
    ks, ss, pcts = score([m for m in mutants if m.safety])
    eq = sum(m.outcome == "equivalent" for m in mutants)
    bad = sum(m.outcome == "uncompilable" for m in mutants)
    print(
        f"\nmutation score: {pct:.1f} % ({k} killed, {s} survived; {eq} equivalent by "
        f"object code, {bad} not compiling)\nsafety paths:   {pcts:.1f} % ({ks} killed, "
        f"{ss} survived)"
    )
    for m in mutants:
        if m.outcome == "survived":
            print(f"SURVIVED {m.file}:{m.line} [{m.function}] {m.original!r} -> {m.mutated!r}")
    if args.json:
        rows = []
        for m in mutants:
            row = asdict(m)
            del row["source"]
            row["safety"] = m.safety
            rows.append(row)
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if s == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
