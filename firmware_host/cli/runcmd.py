"""`run PROFILE`: the PIERCE procedure with live progress; `plot DIR`: its picture."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware_host import driver as ops
from firmware_host.cli.command import Command, add_number
from firmware_host.cli.device import (
    confirm_motion,
    connect,
    simulation,
    stop_rig,
    with_simulated,
)
from firmware_host.cli.exits import CLEAR_THEN_HOME, CliError, Exit
from firmware_host.cli.interrupt import stop_on_signals
from firmware_host.cli.output import Output, jsonable

if TYPE_CHECKING:
    from firmware_host.driver import Driver
    from firmware_host.procedure import Outcome, Profile
    from firmware_host.procedure import Progress as RunProgress

# A run that ended in a fault because the link failed is a link problem (exit 3),
# any other fault is a safety stop (exit 5).
_LINK_REASONS = ("link lost", "device not answering")


log = logging.getLogger("needlectl.run")


class _PhaseLog:
    """Logs each phase change, and each whole millimetre of depth gained (shown with -v;
    tests watch stderr for them)."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.depth_mm = 0

    def __call__(self, p: RunProgress) -> None:
        if int(p.depth_mm) > self.depth_mm:
            self.depth_mm = int(p.depth_mm)
            log.debug("depth %d mm", self.depth_mm)
        phase = str(getattr(p.phase, "value", p.phase))
        if phase != self.phase:
            self.phase = phase
            log.info(
                "phase %s at depth %.3f mm, force %.2f N, %.1f s",
                phase,
                p.depth_mm,
                p.force_n,
                p.elapsed_s,
            )


class _MotionClock:
    """The bar's time on the outcome's clock: homing as such, then the procedure's own
    time since the first motion (Progress.motion_s, the clock of the outcome's duration),
    so the bar ends where the outcome's "in X s" does — the same figure the rig server's
    page shows, whenever it was opened."""

    def shown(self, p: RunProgress) -> str:
        if p.motion_s is None:
            return f"homing {p.elapsed_s:5.1f} s"
        return f"t {p.motion_s:5.1f} s"


@contextlib.contextmanager
def _progress(
    out: Output, target_text: str, record_dir: Path | None
) -> Iterator[Callable[[RunProgress], None]]:
    """rich progress on a terminal: depth against target, force against ceiling, phase."""
    phase_log = _PhaseLog()
    if not out.interactive:
        yield phase_log
        return
    from rich.progress import BarColumn, Progress, TextColumn

    if record_dir is not None:
        out.console.print(f"recording → {record_dir}")
    bar = Progress(
        TextColumn("[bold]{task.fields[phase]:<8}"),
        BarColumn(bar_width=16),
        TextColumn("{task.fields[depth]}  {task.fields[force]}  {task.fields[extra]}"),
        console=out.console,
        transient=False,
    )
    task = bar.add_task("run", total=1.0, phase="setup", depth=target_text, force="", extra="")

    clock = _MotionClock()

    def update(p: RunProgress) -> None:
        phase_log(p)
        total = max(float(p.target_depth_mm), 1e-9)
        bar.update(
            task,
            completed=min(max(float(p.depth_mm) / total, 0.0), 1.0),
            phase=str(getattr(p.phase, "value", p.phase)),
            depth=f"{p.depth_mm:6.2f}/{p.target_depth_mm:.2f} mm",
            force=f"{p.force_n:5.2f}/{p.force_ceiling_n:.1f} N",
            extra=f"holds {p.holds} pecks {p.pecks}  {clock.shown(p)}",
        )

    with bar:
        yield update


def _check_run_name(record: str | None, nd: Any) -> str | None:
    """Through a rig server --record names the run: the server records it in its own runs
    directory and never writes where a client points it."""
    if record is None:
        return None
    from firmware_host.server.runs import RunNameError, check_name

    try:
        return check_name(record)
    except RunNameError:
        raise CliError(
            f"--record {record}: through the rig server a run is named, not placed —"
            f" give a plain name (it is recorded in {nd.server.get('runs_dir', 'its runs dir')})"
        ) from None


def _check_record_dir(record: str | None) -> Path | None:
    """A run folder is one run: refuse a folder that already holds files."""
    if record is None:
        return None
    path = Path(record)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise CliError(f"{path} already exists and is not empty — give a new folder to --record")
    return path


SIM_TARGET_MARGIN_MM = 2.0
AT_HOME_TOL_MM = 0.5


def refuse_unless_at_home(nd: Driver) -> None:
    """A run starts with the needle at home. A run that ended early (stopped, or killed
    and cleared) leaves it deep in the lesion: a run must not carry on from there
    (homing first is what retracts it)."""
    depth_mm = float(nd.status().depth_mm)
    going = getattr(nd, "run_going", None)  # a rig server says whose run holds the rig
    if going:
        raise CliError(
            f"another client's run is going ({going['owner']}: {going['profile']} to"
            f" {going['target_depth_mm']:g} mm) — wait for it, or stop it with"
            " `needlectl stop`; nothing moved",
            Exit.REFUSED,
        )
    if depth_mm > AT_HOME_TOL_MM:
        raise CliError(
            f"the needle is at {depth_mm:.2f} mm, not at home: run `needlectl home` first"
            " (homing retracts it), then run again — nothing moved",
            Exit.REFUSED,
        )


def sim_target_mm(port: str) -> float | None:
    """On the in-process simulator the lesion is known: aim past its far end.
    (A real rig, or a served simulator, needs --target-mm or a profile target.)"""
    if not port.startswith("sim://"):
        return None
    from firmware_host.simulation import sim_options
    from sim_device.lesions import load_lesion

    name = sim_options(port).lesion
    return round(float(load_lesion(name).end_mm) + SIM_TARGET_MARGIN_MM, 3)


def cmd_run(ns: argparse.Namespace, out: Output) -> int:
    from firmware_host.procedure import load_profile, run_procedure

    profile = load_profile(ns.profile)  # a bad profile fails here, before any connection
    target_mm = ns.target_mm if ns.target_mm is not None else profile.target.depth_mm
    if target_mm is None:
        target_mm = sim_target_mm(ns.port)
    if target_mm is None:
        raise CliError(
            f"profile {profile.name} has no target depth: give --target-mm X (the lesion's"
            " end plus a margin)"
        )
    with stop_on_signals() as stop, connect(ns) as nd:
        from firmware_host.server.remote import RemoteDriver

        if isinstance(nd, RemoteDriver):
            # A rig server owns the port: it runs the procedure and records it, in its own
            # runs directory (--record names the run); this process shows progress, and
            # its going away stops the rig.
            name = _check_run_name(ns.record, nd)
            refuse_unless_at_home(nd)  # reads the status (and, through a server, its run)
            confirm_motion(nd, ns, f"PIERCE procedure '{profile.name}' to {target_mm:g} mm")
            runs_dir = str(nd.server.get("runs_dir", "the server's runs directory"))
            with _progress(out, f"target {target_mm:g} mm", None) as show:
                stop.check_before_motion()
                remote_outcome = nd.run_procedure(
                    profile,
                    target_depth_mm=target_mm,
                    record=name,
                    command=_command_line(),
                    on_progress=show,
                    abort=stop.event,
                )
            folder = Path(nd.record_path) if nd.record_path else Path(runs_dir)
            return _report_run(ns, out, nd, profile, remote_outcome, stop.signum, folder)
        record_dir = _check_record_dir(ns.record)
        refuse_unless_at_home(nd)
        confirm_motion(nd, ns, f"PIERCE procedure '{profile.name}' to {target_mm:g} mm")
        recorder = None
        if record_dir is not None:
            from firmware_host.recorder import Recorder

            recorder = Recorder(
                record_dir,
                nd,
                profile=profile.to_dict(),
                port=ns.port,
                extra_meta={"target_depth_mm": target_mm, "command": _command_line()},
            )
        outcome: Outcome | None = None
        try:
            with _progress(out, f"target {target_mm:g} mm", record_dir) as show:
                # A signal only sets stop.event (an AbortEvent naming the signal): the
                # procedure watches it in every phase, homing included, and stops the rig.
                stop.check_before_motion()
                log.info("run: profile %s, target %.3f mm on %s", profile.name, target_mm, ns.port)
                outcome = run_procedure(
                    nd,
                    profile,
                    target_depth_mm=target_mm,
                    recorder=recorder,
                    on_progress=show,
                    abort=stop.event,
                )
        except BaseException:
            # The procedure stops the rig on every outcome; this is for errors it lets
            # through (before motion, or a bug): stop anyway; the record stays readable.
            stop_rig(nd, "run ended by an error")
            raise
        finally:
            if recorder is not None:
                if stop.signum is not None:
                    recorder.note("operator_signal", signal=stop.signal_name, action="rig stopped")
                summary = outcome.to_dict() if outcome is not None else {"outcome": "error"}
                recorder.close(**summary)
        return _report_run(ns, out, nd, profile, outcome, stop.signum, record_dir)


def _command_line() -> str:
    """The command as typed, for the record's meta.json."""
    import shlex
    import sys

    return " ".join(["needlectl", *(shlex.quote(a) for a in sys.argv[1:])])


def _report_run(
    ns: argparse.Namespace,
    out: Output,
    nd: Driver,
    profile: Profile,
    outcome: Outcome,
    signum: int | None,
    record_dir: Path | None,
) -> int:

    latched = _latched_after(nd) if _exit_code(outcome, signum) else []
    result = outcome.to_dict()
    result["profile"] = profile.name
    result["port"] = ns.port
    result["latched_faults"] = latched
    result["simulation"] = simulation(nd)
    if record_dir is not None:
        result["record_dir"] = str(record_dir)
    if signum is not None:
        result["signal"] = signal.Signals(signum).name
    code = _exit_code(outcome, signum)
    if out.json_mode:
        out.emit(jsonable(result))
    else:
        out.line(
            with_simulated(
                nd,
                f"{outcome.result.value.upper()}: {outcome.reason}; {_where(outcome)}"
                f" in {outcome.duration_s:.1f} s, peak force"
                f" {outcome.peak_force_n:.2f} N, {_counted(outcome.holds, 'hold')}"
                f" ({outcome.hold_time_s:.1f} s), {_counted(outcome.pecks, 'peck')},"
                f" {_counted(outcome.cracks, 'crack')},"
                f" {_counted(outcome.punctures, 'puncture')},"
                f" {_counted(outcome.stalls, 'stall')}",
            )
        )
        if record_dir is not None:
            out.extra(f"recorded in {record_dir}; picture: needlectl plot {record_dir}")
    if code != Exit.OK:
        raise CliError(_failure_line(outcome, signum, latched, record_dir), code)
    return Exit.OK


def _counted(n: int, noun: str) -> str:
    """``1 puncture``, ``0 punctures``, ``8 cracks``: the outcome line in plain English."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _where(outcome: Outcome) -> str:
    """Where the needle went and where it is: after a withdrawal the final depth alone
    (0 mm) would hide how deep it got."""
    final, target = outcome.final_depth_mm, outcome.target_depth_mm
    deepest = max(outcome.deepest_depth_mm, final)
    if outcome.withdrawn is not None:
        back = "withdrawn to" if outcome.withdrawn else "withdrawal stopped at"
        return f"deepest {deepest:.2f} of {target:.2f} mm, then {back} {final:.2f} mm"
    text = f"depth {final:.2f} of {target:.2f} mm"
    if deepest - final > 0.01:
        text += f" (deepest {deepest:.2f} mm)"
    return text


def _exit_code(outcome: Outcome, signum: int | None) -> Exit:
    from firmware_host.procedure import Result

    withdraw_failed = outcome.withdrawn is False
    if outcome.result is Result.CROSSED and not withdraw_failed:
        return Exit.OK
    if outcome.result is Result.ABORTED and signum is None:
        return Exit.SAFETY_STOP  # stopped by someone else: a STOP/ESTOP through the server
    if outcome.result is Result.ABORTED or (withdraw_failed and signum is not None):
        return Exit.SIGTERM if signum == signal.SIGTERM else Exit.SIGINT
    if outcome.result is Result.STALLED:
        return Exit.NOT_CROSSED
    # A fault, or a crossing whose withdrawal failed: the needle is not where the
    # profile says it ends.
    why = outcome.reason.split("the withdrawal failed: ", 1)[-1]
    if any(why.startswith(r) for r in _LINK_REASONS):
        return Exit.LINK
    return Exit.SAFETY_STOP


def _latched_after(nd: Driver) -> list[str]:
    """The device's latched faults once the run has ended (best effort: the link may
    be what ended it)."""
    from firmware_host.cli.device import fault_list
    from firmware_host.errors import NeedleDriverError

    try:
        return fault_list(nd.status().latched_faults)
    except (NeedleDriverError, OSError):
        return []


def _failure_line(
    outcome: Outcome, signum: int | None, latched: list[str], record_dir: Path | None = None
) -> str:
    what = outcome.result.value
    faults = f"; latched: {', '.join(latched)}" if latched else ""
    if outcome.withdrawn is False:
        return (
            f"crossed, but {outcome.reason.split('; ', 1)[-1]}: the rig is stopped at"
            f" {outcome.final_depth_mm:.2f} mm{faults} — see `needlectl status` and"
            f" `needlectl events`, fix the cause, then {CLEAR_THEN_HOME}"
        )
    if signum is not None:
        return (
            f"run {what} by {signal.Signals(signum).name}: the rig was stopped at"
            f" {outcome.final_depth_mm:.2f} mm{faults} — check `needlectl status` before"
            " the next run"
        )
    if what == "aborted":
        return (
            f"run stopped: {outcome.reason}, at {outcome.final_depth_mm:.2f} mm{faults} —"
            " check `needlectl status` before the next run"
        )
    if what == "stalled":
        return (
            f"not crossed: {outcome.reason} (depth {outcome.final_depth_mm:.2f} mm{faults})"
            f" — the rig is stopped; {_look(record_dir)}; {CLEAR_THEN_HOME}"
        )
    return (
        f"run ended in a fault: {outcome.reason}{faults} — see `needlectl events`, fix the"
        f" cause, then {CLEAR_THEN_HOME}"
    )


def _look(record_dir: Path | None) -> str:
    """Where to look after a stall: the plot of a recorded run; else, how to get one."""
    if record_dir is not None:
        return f"see the plot (needlectl plot {record_dir})"
    return "the run was not recorded: --record DIR keeps telemetry and a plot"


def cmd_plot(ns: argparse.Namespace, out: Output) -> int:
    from firmware_host.plot import RunFolderError, plot_run

    run_dir = Path(ns.run_dir)
    from firmware_host.recorder import TELEMETRY_FILE

    if not (run_dir / TELEMETRY_FILE).is_file():
        raise CliError(
            f"{run_dir} is not a run folder (no {TELEMETRY_FILE}) — give the DIR written by"
            " `needlectl run PROFILE --record DIR`"
        )
    png = Path(ns.output) if ns.output else run_dir / "plot.png"
    try:
        plot_run(run_dir, png)
    except RunFolderError as exc:
        raise CliError(f"cannot plot: {exc}") from None
    out.result({"plot": str(png), "run_dir": str(run_dir)}, f"wrote {png}")
    return Exit.OK


# ---------------------------------------------------------------- the commands


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "profile", metavar="PROFILE", help="built-in profile name (e.g. pierce) or TOML file"
    )
    p.add_argument(
        "--record",
        metavar="DIR",
        help="record the run into DIR (a new run folder); through a rig server, a run NAME"
        " (the server records every run in its runs directory)",
    )
    add_number(
        p,
        "--target-mm",
        0.1,
        500,
        None,
        "target depth in mm: the lesion's far end plus a margin (default: the"
        " profile's; on sim://?lesion=NAME|PATH the lesion's end + 2 mm)",
        metavar="MM",
    )


def _plot_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="DIR", help="a run folder written by `run --record`")
    p.add_argument(
        "-o", "--output", metavar="FILE.png", help="where to write the PNG (default: DIR/plot.png)"
    )


RUN = Command(
    "run",
    "the PIERCE procedure with live progress; outcome at the end. Starts with the needle"
    f" at home (within {AT_HOME_TOL_MM:g} mm of 0): an unhomed rig is homed first; a needle"
    " left deeper is refused (`needlectl home` retracts it)",
    cmd_run,
    _run_arguments,
    operations=(ops.RUN,),
)
PLOT = Command("plot", "picture of a recorded run (PNG)", cmd_plot, _plot_arguments)
