"""Exit codes and the one error boundary: every failure becomes one line on stderr.

The mapping looks at the library's typed errors by class *name* along the MRO as
well as by built-in base, so it keeps working while the library grows and never
needs the library importable just to report an error.
"""

from __future__ import annotations

import enum
from typing import Any


class Exit(enum.IntEnum):
    """needlectl's exit codes (also listed in --help and docs/operator.md)."""

    OK = 0
    INTERNAL = 1  # a bug in needlectl: rerun with -v and report the traceback
    USAGE = 2  # bad arguments, numbers out of range, bad file/profile/lesion, not confirmed
    LINK = 3  # port missing/busy/not permitted, link lost, device not answering
    REFUSED = 4  # the device (NAK) or needlectl's limit check refused the command
    SAFETY_STOP = 5  # a latched fault, e-stop, stall or force limit stopped the motion
    NOT_CROSSED = 6  # the procedure ended without crossing (stalled)
    SIGINT = 130  # Ctrl-C: the rig was stopped first
    STDOUT_CLOSED = 141  # the reader of stdout left (`| head`), as a tool killed by SIGPIPE
    SIGTERM = 143  # SIGTERM: the rig was stopped first


EXIT_CODES_HELP = """exit codes:
  0    ok
  1    internal error in needlectl (rerun with -v, report the traceback)
  2    usage: bad arguments, out-of-range numbers, bad file, profile or lesion,
       motion not confirmed
  3    link: port missing, busy or not permitted; link lost; device silent
  4    refused: the device (NAK) or needlectl's limit check refused the command
  5    safety stop: fault, e-stop, stall or force limit stopped the motion
  6    procedure ended without crossing (stalled)
  130  interrupted by Ctrl-C (SIGINT): the rig was stopped first
  141  stdout closed early (e.g. `| head`): output cut short, quietly; any
       motion was stopped first
  143  terminated by SIGTERM: the rig was stopped first"""


# After a stall, an e-stop or a fault the device's position is not trusted (it forgets
# its homing) and it refuses MOVE until homed again: homing is also what retracts.
CLEAR_THEN_HOME = (
    "`needlectl clear`, then `needlectl home` (drives the needle back to the home switch)"
)


class CliError(Exception):
    """An error needlectl itself raises: already one line, with its exit code."""

    def __init__(self, message: str, code: Exit = Exit.USAGE) -> None:
        super().__init__(message)
        self.code = code


class Interrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM arrived during work; the rig has been stopped. A KeyboardInterrupt,
    so library code that stops the rig on Ctrl-C (the procedure) does so on SIGTERM too."""

    def __init__(self, signum: int, what: str = "") -> None:
        super().__init__(what)
        self.signum = signum


def _class_names(exc: BaseException) -> list[str]:
    return [c.__name__ for c in type(exc).__mro__]


# What to do next, per NAK reason name (protocol.NakReason).
_NAK_HINTS = {
    "NOT_HOMED": "run `needlectl home` first",
    "NOT_ARMED": "reconnect; the device has no open session",
    "BEYOND_LIMIT": "see `needlectl info` for the limits and choose a smaller move",
    "BUSY": "wait for the motion to end or run `needlectl stop`",
    "ESTOPPED": "release the cause, then run `needlectl clear`",
    "LATCHED_FAULT": "see `needlectl status` and `needlectl events`, then `needlectl clear`",
    "UNKNOWN_MESSAGE": "the firmware does not implement this command; update it",
    "BAD_ARGUMENT": "check the numbers against `needlectl info`",
    "SCHEMA_MISMATCH": "firmware and needlectl speak different schemas; update one of them",
}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())  # one line, whatever the message held


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _busy_hint() -> str:
    """A busy port is often owned by a `needlectl serve` announced in another runtime
    directory (a different $NEEDLECTL_RUNTIME_DIR or $XDG_RUNTIME_DIR, another user)."""
    import os

    where = os.environ.get("NEEDLECTL_RUNTIME_DIR")
    looked = f"$NEEDLECTL_RUNTIME_DIR={where}" if where else "this user's runtime directory"
    return (
        f"; a needlectl serve may own it — none is announced in {looked}: run with the"
        " server's NEEDLECTL_RUNTIME_DIR (and user), or stop it"
    )


def classify(
    exc: BaseException, port: str | None = None, command: str | None = None
) -> tuple[Exit, str]:
    """(exit code, one-line message naming what was wrong and what to do); ``command``
    (e.g. "sim sweep") names the help to read."""
    names = _class_names(exc)
    # A simulator URL naming a bad lesion reaches us as a PortError (or the simulator's
    # option error) caused by a LesionError (or the option error): bad input, not a link.
    # Only from those: another error that caught a lesion's (a sweep file naming a bad
    # lesion file) has said where it was found, and that is not to be lost.
    wraps_a_sim_url = "PortError" in names or "DeviceOptionError" in names
    for cause in _chain(exc)[1:] if wraps_a_sim_url else ():
        cause_names = _class_names(cause)
        if "LesionError" in cause_names or "DeviceOptionError" in cause_names:
            return classify(cause, port, command)
    msg = _first_line(exc)
    sim_hint = ""
    if port is not None and port.startswith("sim://"):
        sim_hint = (
            " (note: the default sim:// starts a fresh simulator for every command;"
            " use `needlectl sim serve --pty` for a device that keeps its state)"
        )
    if isinstance(exc, CliError):
        return exc.code, msg
    if isinstance(exc, Interrupted):
        code = Exit.SIGTERM if exc.signum == 15 else Exit.SIGINT
        return code, msg or "interrupted: the rig was stopped"
    if isinstance(exc, KeyboardInterrupt):
        return Exit.SIGINT, "interrupted"
    if "PortError" in names:
        if "port is busy" in msg:  # often a rig server this command did not find
            msg += _busy_hint()
        return Exit.LINK, msg
    if "SchemaMismatch" in names:
        return Exit.REFUSED, f"refused: {msg} — update the firmware or needlectl so they match"
    if "Nak" in names:
        reason: Any = getattr(exc, "reason", None)
        reason_name = getattr(reason, "name", str(reason) if reason is not None else "")
        hint = _NAK_HINTS.get(reason_name, "see `needlectl status`")
        if reason_name == "NOT_HOMED":
            hint += sim_hint
        return Exit.REFUSED, f"device refused the command: {msg} — {hint}"
    if "LimitError" in names:
        return Exit.REFUSED, f"refused before sending: {msg} — see `needlectl info` for the limits"
    if "DeviceFault" in names:
        return Exit.SAFETY_STOP, (
            f"safety stop: {msg} — see `needlectl events`, fix the cause, then {CLEAR_THEN_HOME}"
        )
    if "ServerGone" in names:  # the server, not the cable: say so
        return Exit.LINK, (
            f"{msg} — it was the server, not the cable or the rig: the device's watchdog"
            " stops the rig; see the server's terminal, start `needlectl serve` again,"
            " then `needlectl status`"
        )
    if "LinkLost" in names or isinstance(exc, ConnectionError):
        return Exit.LINK, (
            f"link lost on {port or 'the port'}: {msg} — check cable and power,"
            " then `needlectl status`"
        )
    if "Timeout" in names or isinstance(exc, TimeoutError):
        return Exit.LINK, (
            f"no answer from {port or 'the device'}: {msg} — is it the rig, powered,"
            " and is no other program using it?"
        )
    if "SerialException" in names:
        return Exit.LINK, f"port {port or ''}: {msg} — check `needlectl ports` and the cable"
    if "LesionError" in names:
        return Exit.USAGE, f"bad lesion: {msg} — see `needlectl sim lesions` for the library"
    if "DeviceOptionError" in names:
        return Exit.USAGE, (
            f"bad simulator option: {msg} — see docs/operator.md §2, 'Choosing the port'"
        )
    if "ProcedureError" in names:  # the run checked against the device's limits (§7)
        return Exit.REFUSED, (
            f"refused before moving: {msg} — check --target-mm and the profile against"
            " `needlectl info`"
        )
    if "ProfileError" in names:
        return Exit.USAGE, f"bad profile: {msg} — see docs/operator.md §8, 'Running a profile'"
    if isinstance(exc, FileNotFoundError):
        return Exit.USAGE, f"no such file: {exc.filename or msg} — check the path"
    if isinstance(exc, PermissionError):
        return Exit.USAGE, f"not permitted: {exc.filename or msg} — check the file's permissions"
    if isinstance(exc, IsADirectoryError | NotADirectoryError):
        return Exit.USAGE, f"{exc.strerror or msg}: {exc.filename} — check the path"
    if isinstance(exc, OSError):
        return Exit.USAGE, f"{msg} — check the path and free space"
    if isinstance(exc, ValueError):
        return Exit.USAGE, f"{msg} — see `needlectl {command or 'COMMAND'} --help`"
    return Exit.INTERNAL, (
        f"internal error: {type(exc).__name__}: {msg} — rerun with -v and report the traceback"
    )
