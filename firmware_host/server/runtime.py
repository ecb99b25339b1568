"""Where a rig server announces itself: a runtime directory keyed by the port.

``$NEEDLECTL_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/needlectl``, else
``/tmp/needlectl-UID``; created mode 0700 and refused when another user owns it. Per
served port (its key: a hash of the port URL, a device path resolved through symlinks):

* ``KEY.lock`` — held (``flock``) by the server for its whole life: a second server for
  the same port cannot take it, and a server that died leaves it free (nothing stale
  needs cleaning by hand).
* ``KEY.sock`` — the Unix socket of its API (mode 0600).
* ``KEY.json`` — the port, the server's pid, its web address, its runs directory and its
  token (mode 0600: the clients of this user read it; no one else can).
* ``KEY.token`` — the token, kept (0600) for the next server on the same port: a page left
  open finds the restarted server with the cookie it has.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNTIME_ENV = "NEEDLECTL_RUNTIME_DIR"


class RuntimeDirError(OSError):
    """The runtime directory is not ours (or cannot be made)."""


def runtime_dir() -> Path:
    explicit = os.environ.get(RUNTIME_ENV)
    if explicit:
        path = Path(explicit)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "needlectl"
    else:
        path = Path("/tmp") / f"needlectl-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.getuid():
        raise RuntimeDirError(f"{path} belongs to another user: refusing to use it")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def canonical_port(port: str) -> str:
    """The same port however it is spelled: a device path through its symlinks."""
    if "://" in port:
        return port
    return os.path.realpath(port)


def port_key(port: str) -> str:
    return hashlib.sha256(canonical_port(port).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Paths:
    lock: Path
    sock: Path
    info: Path
    token: Path

    @classmethod
    def for_port(cls, port: str) -> Paths:
        base = runtime_dir() / port_key(port)
        return cls(
            base.with_suffix(".lock"),
            base.with_suffix(".sock"),
            base.with_suffix(".json"),
            base.with_suffix(".token"),
        )


def kept_token(paths: Paths) -> str | None:
    """The token the last server on this port used, if any."""
    try:
        return paths.token.read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def keep_token(paths: Paths, token: str) -> None:
    fd = os.open(paths.token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")


class PortLock:
    """The server's claim on a port; ``acquire`` returns False if another server holds it."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        for p in (self.paths.info, self.paths.sock):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def _held(paths: Paths) -> bool:
    """True while a live process holds the port's lock."""
    try:
        fd = os.open(paths.lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def write_info(paths: Paths, info: dict[str, Any]) -> None:
    tmp = paths.info.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(info, f)
    os.replace(tmp, paths.info)


def find_server(port: str) -> dict[str, Any] | None:
    """The announcement of the live server that owns ``port``, or None (no server, or
    one that died: its lock is free)."""
    if port.startswith("sim://"):
        return None  # an in-process simulator is never served (refused by `serve`)
    try:
        paths = Paths.for_port(port)
    except OSError:
        return None
    if not _held(paths) or not paths.sock.exists():
        return None
    try:
        info: dict[str, Any] = json.loads(paths.info.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    info["socket"] = str(paths.sock)
    return info
