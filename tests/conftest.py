import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see insr/__init__.py
