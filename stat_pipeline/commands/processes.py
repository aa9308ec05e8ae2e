"""Nothing a command starts may outlive it, and nothing it writes to /tmp may stay behind.

Three tools, each for a way a command can end:

- ``ProcessGroup``: the Dagster processes of ``serve``/``demo`` (``dagster dev`` and what it
  starts: code server, webserver, daemon, and the run workers the code server spawns) run in
  a process group of their own. A stopped command stops the group (SIGTERM, then SIGKILL
  after a grace period). A *killed* command (SIGKILL: no Python code runs) is covered by a
  watchdog: a tiny process holding the read end of a pipe whose only write end is the
  command's; the kernel closes it when the command dies, the watchdog reads EOF and stops
  the group. ``PR_SET_PDEATHSIG`` alone would reach only the direct child, not the
  grandchildren Dagster starts (code server, run workers).
- ``owned_tempdir``: a temporary folder with a lock (``flock``) held for the owner's
  lifetime; the kernel releases it whatever the death. A later start removes the folders of
  the same prefix whose lock is free: their owner is dead (SIGKILL, power loss).
- ``terminate_as_interrupt``: SIGTERM raises ``KeyboardInterrupt`` in the main thread, so
  ``finally`` blocks and context managers (stopping PostgreSQL, removing the temp folder)
  run as on Ctrl-C; Python's default for SIGTERM is to die on the spot.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
LOCK_NAME = ".owner.lock"
# A folder younger than this without a lock file may be one being created right now.
_UNLOCKED_GRACE_S = 600


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """preexec_fn: the kernel sends ``sig`` to the child when its parent thread dies."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be."""


def _sigterm_as_interrupt(signum, frame) -> None:
    raise Terminated


def terminate_as_interrupt() -> None:
    """SIGTERM behaves like Ctrl-C (cleanup runs); main thread only."""
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombies still count for killpg; they are gone for our purpose
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            raw = (proc / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def stop_group(pgid: int, grace_s: float) -> None:
    """SIGTERM to every process of the group, SIGKILL to what is left after ``grace_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


class ProcessGroup:
    """A command run in a new process group that cannot outlive this process."""

    def __init__(self, cmd: list[str], *, env: dict[str, str], cwd: Path,
                 grace_s: float = 20.0, stdout=None, stderr=None) -> None:
        self.grace_s = grace_s
        # new session: a terminal's Ctrl-C reaches us only, and we stop the group in order
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, start_new_session=True,
                                     preexec_fn=die_with_parent, stdout=stdout, stderr=stderr)
        self.pgid = self.proc.pid
        read_end, self._write_end = os.pipe()  # both close-on-exec: children get neither
        try:
            self.watchdog = subprocess.Popen(
                [sys.executable, "-m", "stat_pipeline.commands.processes", str(self.pgid),
                 str(grace_s)], stdin=read_end, start_new_session=True,
                stdout=subprocess.DEVNULL)
        finally:
            os.close(read_end)

    def wait(self) -> int:
        return self.proc.wait()

    def stop(self) -> None:
        stop_group(self.pgid, self.grace_s)
        self.proc.wait()
        os.close(self._write_end)  # the watchdog finds the group gone and exits
        self.watchdog.wait(self.grace_s + 5)


def _watchdog(pgid: int, grace_s: float) -> None:
    # Stray signals meant for a terminal must not end the watchdog before its job is done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while os.read(0, 4096):  # returns b"" once the owner is gone (or closed its end)
        pass
    stop_group(pgid, grace_s)


@contextlib.contextmanager
def owned_tempdir(prefix: str) -> Iterator[Path]:
    """A temporary folder, removed on exit, and by the next caller if its owner was killed."""
    remove_orphaned_tempdirs(prefix)
    path = Path(tempfile.mkdtemp(prefix=prefix))
    lock = os.open(path / LOCK_NAME, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(lock)


def remove_orphaned_tempdirs(prefix: str, parent: Optional[Path] = None) -> list[Path]:
    """Remove ``<tmp>/<prefix>*`` folders whose owner is dead (their lock is free)."""
    removed = []
    for path in Path(parent or tempfile.gettempdir()).glob(prefix + "*"):
        if not path.is_dir() or path.is_symlink():
            continue
        try:
            fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            try:  # folders of versions without the lock, or half-created ones
                if time.time() - path.stat().st_mtime < _UNLOCKED_GRACE_S:
                    continue
            except FileNotFoundError:
                continue
        except OSError:
            continue
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    continue  # owner alive
                raise
            finally:
                os.close(fd)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


if __name__ == "__main__":
    _watchdog(int(sys.argv[1]), float(sys.argv[2]))
