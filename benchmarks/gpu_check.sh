#!/bin/bash
# The whole GPU check in one command, for a machine with a CUDA build of JAX (written for this
# workplace's device machine: Python 3.12, JAX 0.11 with CUDA 13 plugins, no network; the
# packages it lacks, meshio and tomli_w, travel as wheels in .whl/). Run from the repo root:
#   bash benchmarks/gpu_check.sh          # results in $OUT (default ./gpu-check)
# 1. the demo whole: does the GPU give the CPU's answer (MAE 3.70e-3 at t = 12)?
# 2. benchmarks/device.py: s/step of every paper example
# 3. the paper's elasticity network (3x68, 1e4 points): matrix-free LM, then dense LM
OUT=${OUT:-gpu-check}; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
fi
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
{ date -u; nvidia-smi -L; nproc; python3 -c "import jax, jaxlib, equinox, optax, numpy, scipy; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, 'eqx', equinox.__version__, 'optax', optax.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__); print(jax.devices())"; } 2>&1 | tee $OUT/env.txt
# 1. the demo, whole (240 steps): does the GPU give the CPU's answer (MAE 3.70e-3 at t = 12)?
s=$(date +%s); timeout 110 python3 -m insr.cli run advection1d --out /tmp/demo --force 2>&1 | tail -25 | tee $OUT/demo.txt
echo "demo wall $(( $(date +%s) - s )) s" | tee -a $OUT/demo.txt; cp /tmp/demo/metrics.csv $OUT/demo_metrics.csv 2>/dev/null
# 2. seconds per step of every paper example, defaults
timeout 230 python3 benchmarks/device.py --steps 3 2>&1 | tee $OUT/table.txt
# 3. the paper's elasticity network (3x68, 1e4 points): matrix-free LM (quarter curvature) and dense Cholesky LM
timeout 130 python3 benchmarks/device.py elastic_collide_2d --steps 2 --set field.width=68 --set field.depth=3 --set samples=10000 --set 'lm.linear_solver="cg"' --set lm.cg_curvature_fraction=0.25 2>&1 | tee $OUT/paper_cg.txt
timeout 80 python3 benchmarks/device.py elastic_collide_2d --steps 1 --set field.width=68 --set field.depth=3 --set samples=10000 2>&1 | tee $OUT/paper_dense.txt
echo "done $(date -u)" | tee -a $OUT/env.txt
