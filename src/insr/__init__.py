"""insr: time-dependent PDEs with implicit neural spatial representations.

Each field is a small neural network of space; time advances with classical
integrators by re-solving for the weights each step (Chen et al., ICML 2023).
"""

import os as _os

# JAX's CPU linear algebra (Cholesky, eigh) calls SciPy's OpenBLAS.  OpenBLAS's
# own worker threads spin while XLA's thread pool holds the cores, and a 901×901
# Cholesky then took 1.1 s instead of 0.02 s on a 2-core machine (measured).
# One OpenBLAS thread avoids the oversubscription; it only takes effect when
# insr is imported before NumPy, and a user's explicit setting wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from insr.simulate import SaveAt, SolveFailure, Trajectory, simulate, solve  # noqa: E402

__all__ = ["simulate", "solve", "SaveAt", "Trajectory"]
__version__ = "0.1.0"
