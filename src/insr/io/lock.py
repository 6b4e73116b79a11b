"""An exclusive, non-blocking lock on a run directory.

``insr run`` and ``insr resume`` hold :func:`run_dir_lock` for their whole duration, so
two processes never write into the same run directory at once.  The lock is a
``fcntl.flock`` on ``RUN_DIR/.lock``: the kernel drops it when the holder exits, however
it exits, so a ``.lock`` file left behind by a killed run never blocks a later one.  The
file is deliberately not deleted on release (deleting a lock file races with a process
that has just opened it); it holds the pid of the last holder, for the error message.

On platforms without ``fcntl`` (Windows) the lock is a no-op.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

LOCK_NAME = ".lock"

__all__ = ["LOCK_NAME", "RunDirLockedError", "run_dir_lock"]


class RunDirLockedError(RuntimeError):
    """Another process holds the lock of this run directory."""

    def __init__(self, run_dir: Path, holder: str = ""):
        self.run_dir, self.holder = Path(run_dir), holder
        who = f"another insr process (pid {holder})" if holder else "another insr process"
        super().__init__(f"run directory {self.run_dir} is in use by {who}; wait for it to finish "
                         "or choose another --out")


@contextlib.contextmanager
def run_dir_lock(run_dir):
    """Hold an exclusive lock on the existing directory ``run_dir`` for the ``with`` block.

    Raises :class:`RunDirLockedError` at once (no waiting) if another holder has it, and
    ``OSError`` if the lock file cannot be created (e.g. an unwritable directory).
    """
    run_dir = Path(run_dir)
    if fcntl is None:  # pragma: no cover
        yield run_dir
        return
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 64).decode(errors="replace").strip()
            except OSError:
                holder = ""
            raise RunDirLockedError(run_dir, holder if holder.isdigit() else "") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is only for the message; the lock itself is held
        try:
            yield run_dir
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
