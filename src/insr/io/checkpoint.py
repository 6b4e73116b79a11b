"""Atomic checkpoints of a simulation state.

A state is a pytree of arrays; it is stored as its flattened leaves
(``leaf_0 … leaf_k``) in an ``.npz`` file plus scalar metadata.  Files are written
to a temporary name in the same directory, flushed and fsync'ed, then renamed
over the target (``os.replace`` is atomic on POSIX), so a run killed at any
moment leaves either the old or the new checkpoint, never a torn one.  The
final file gets the permissions an ordinary ``open(path, "w")`` would give it
(``0o666`` less the umask), not the ``0o600`` of ``tempfile.mkstemp``.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import jax
import numpy as np


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not match the run."""


def _read_umask_at_import() -> int:
    # os.umask can only be read by setting it; done once, at import, and restored at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_IMPORT_UMASK = _read_umask_at_import()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ≥ 4.7:
    ``/proc/self/status``); otherwise the umask at import time of this module."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _IMPORT_UMASK


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):  # mkstemp makes 0o600; give what open() would
                os.fchmod(fh.fileno(), 0o666 & ~current_umask())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_state(path: Path, state, **meta) -> None:
    """Write ``state`` (a pytree of arrays) and scalar/array ``meta`` atomically."""
    leaves = jax.tree.leaves(state)
    arrays = {f"leaf_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    arrays.update({f"meta_{k}": np.asarray(v) for k, v in meta.items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_state(path: Path, template):
    """Read a state written by :func:`save_state` into the structure of ``template``.

    Returns ``(state, meta)``.  Raises :class:`CheckpointError` with the file name
    when the file is missing, corrupt, or holds leaves of other shapes.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path) as data:
            files = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {exc})") from None
    leaves_t, treedef = jax.tree.flatten(template)
    leaves = []
    for i, leaf_t in enumerate(leaves_t):
        arr = files.get(f"leaf_{i}")
        if arr is None or arr.shape != np.shape(leaf_t):
            got = None if arr is None else arr.shape
            raise CheckpointError(
                f"checkpoint {path} does not match this run: leaf {i} has shape {got}, expected {np.shape(leaf_t)} "
                "(was it written with another network size?)")
        if isinstance(leaf_t, np.ndarray):  # a NumPy state (the reference solvers) stays NumPy, float64 kept
            leaves.append(np.asarray(arr, dtype=leaf_t.dtype))
        else:
            leaves.append(jax.numpy.asarray(arr, dtype=np.asarray(leaf_t).dtype))
    if f"leaf_{len(leaves_t)}" in files:
        raise CheckpointError(f"checkpoint {path} does not match this run: it holds more arrays than the state")
    meta = {k[len("meta_"):]: v for k, v in files.items() if k.startswith("meta_")}
    return jax.tree.unflatten(treedef, leaves), meta
