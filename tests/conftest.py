import atexit
import os
import shutil
import tempfile

# One OpenBLAS thread for the whole test session, set before NumPy loads: tests call
# steppers and solvers directly, outside insr.simulate's own limit (see insr/blas.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Most tests spend their time compiling: many build the same scenario again (a run, then its
# resume; the CLI and the Python API on the same sizes), which JAX would compile again each
# time.  A compilation cache that lives for this session only (entries are keyed by the
# program, the JAX version and the compile options, so a hit is the same executable) took the
# checkpoint and CLI tests from 66 s to 49 s on 2 cores.  Set through the environment before
# JAX loads, so that the `insr` subprocesses some tests start share it; a fresh one per
# session, so that the suite's time on a fresh machine is what we measure here.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="insr-test-jax-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
