import os

# One OpenBLAS thread for the whole test session, set before NumPy loads: tests call
# steppers and solvers directly, outside insr.simulate's own limit (see insr/blas.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
