"""One BLAS thread while a simulation runs, set where runs start (not at import).

JAX's CPU linear algebra (Cholesky, eigh) calls the OpenBLAS that SciPy ships.  OpenBLAS's
own worker threads spin while XLA's thread pool holds the cores: a 901×901 Cholesky inside
``jax.jit`` took 0.79 s with OpenBLAS's default threads and 0.011 s with one, on this
project's 2-core machine (measured 2026-12-02 with other jobs on the cores).
:func:`single_threaded_blas` limits every loaded BLAS to one thread for the duration of a
``with`` block (or a decorated call) through threadpoolctl and restores it afterwards.
:func:`insr.simulate` and the ``insr`` command use it; a user who sets
``OPENBLAS_NUM_THREADS`` (or ``OMP_NUM_THREADS``) in the environment keeps that setting.
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["single_threaded_blas"]

_USER_KNOBS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def single_threaded_blas():
    """Context manager (and decorator): one BLAS thread inside, the previous count after."""
    if any(k in os.environ for k in _USER_KNOBS):
        yield  # the user's explicit choice wins
        return
    import scipy.linalg  # noqa: F401  loads the OpenBLAS that JAX's LAPACK calls, so the limit reaches it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
