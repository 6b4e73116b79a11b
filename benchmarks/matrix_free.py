"""Dense against matrix-free Levenberg–Marquardt on one contact step of elastic_collide_2d.

The step that costs most in the elasticity examples is the first one in contact (t = 0.1 →
0.2: the square lands on the disk; free-flight steps take one iteration).  For networks
of about 1k, 5k and 15k parameters (SIREN 2×24, 2×48, and the paper's 3×68) this solves
that step with

* ``dense``  — :class:`~insr.solvers.LevenbergMarquardt` (J formed, JᵀJ + λI by Cholesky),
* ``cg``     — :class:`~insr.solvers.MatrixFreeLM` (Jacobi-preconditioned CG on J v, Jᵀu),
* ``cg/4``   — the same with the curvature products on a quarter of the points,

each in its own process (so the peak memory is its own), from the same state and points,
with the scenario's LM settings (≤ 20 iterations, ftol 1e-3), and prints: wall time of the
compiled step (a second call), LM iterations and the time per iteration, CG products, the
loss reached and the step objective on held-out points, and the process's peak resident
memory.

    python benchmarks/matrix_free.py                         # 2,000 points, every size and solver
    python benchmarks/matrix_free.py --points 10000 --sizes 68x3 --solvers cg cg/4
    python benchmarks/matrix_free.py --max-iters 3           # per-iteration cost only (dense at 15k is slow)

Dense LM on the paper's network needs the N·m×P Jacobian (m = 9 residual rows per point
here) and three P×P matrices: at 10⁴ points that is 5 GB + 2.5 GB and about 10¹³ flops per
iteration; the script says so instead of running it when it would not fit in memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

SIZES = {"24x2": (24, 2), "48x2": (48, 2), "68x3": (68, 3)}
SOLVERS = {"dense": ['lm.linear_solver="cholesky"'],
           "cg": ['lm.linear_solver="cg"'],
           "cg/4": ['lm.linear_solver="cg"', "lm.cg_curvature_fraction=0.25"]}
ROWS_PER_POINT = 9  # inertia 2 + ARAP |F − R|² 4 + volume 1 + two obstacles


def _one(size: str, solver: str, points: int, max_iters: int) -> dict:
    import jax

    from insr.blas import single_threaded_blas
    from insr.cli import build_stepper, resolve_config

    width, depth = SIZES[size]
    cfg = resolve_config("elastic_collide_2d", [f"field.width={width}", f"field.depth={depth}", f"samples={points}",
                                                f"lm.max_iters={max_iters}", *SOLVERS[solver]])
    stepper = build_stepper(cfg)
    dt = cfg["dt"]
    key = jax.random.PRNGKey(0)
    with single_threaded_blas():
        state, _ = stepper.initial_state(None)
        state, _ = stepper.step(state, 0.0, dt, jax.random.fold_in(key, 1))  # free fall: one iteration
        stepper.step(state, dt, dt, jax.random.fold_in(key, 2))  # compile the contact step
        t0 = time.perf_counter()
        _, info = stepper.step(state, dt, dt, jax.random.fold_in(key, 2))
        wall = time.perf_counter() - t0
    its = max(int(info["iterations"]), 1)
    return {"size": size, "params": stepper.num_params, "solver": solver, "points": points, "wall_s": wall,
            "iterations": int(info["iterations"]), "rejected": int(info["rejected"]), "s_per_iteration": wall / its,
            "cg_products": info.get("cg_iterations"), "loss": info["loss"], "heldout_loss": info["heldout_loss"],
            "stop": info["stop"], "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _dense_bytes(params: int, points: int) -> int:
    return 4 * (ROWS_PER_POINT * points * params + 3 * params * params)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--solvers", nargs="*", default=list(SOLVERS), choices=list(SOLVERS))
    ap.add_argument("--max-iters", type=int, default=20)
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: one size and solver, JSON out
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(_one(args.one[0], args.one[1], args.points, args.max_iters)))
        return 0

    import os

    from insr.cli import siren_params

    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    print(f"elastic_collide_2d, first contact step, {args.points} points, ≤ {args.max_iters} LM iterations")
    print(f"{'net':>5} {'P':>6} {'solver':>6} {'wall s':>7} {'it':>3} {'rej':>3} {'s/it':>6} {'CG':>5} "
          f"{'loss':>9} {'held-out':>9} {'stop':>9} {'peak MiB':>8}")
    for size in args.sizes:
        for solver in args.solvers:
            P = siren_params(2, 2, *SIZES[size])
            if solver == "dense" and _dense_bytes(P, args.points) > 0.6 * memory:
                print(f"{size:>5} {P:>6} {solver:>6}  not run: needs ≈{_dense_bytes(P, args.points) / 2**30:.1f} GiB "
                      f"(Jacobian + 3 P×P matrices) of {memory / 2**30:.1f}")
                continue
            out = subprocess.run([sys.executable, __file__, "--one", size, solver, "--points", str(args.points),
                                  "--max-iters", str(args.max_iters)], capture_output=True, text=True)
            if out.returncode:
                print(f"{size:>5} {P:>6} {solver:>6}  failed: {out.stderr.strip().splitlines()[-1]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            cg = "–" if r["cg_products"] is None else str(r["cg_products"])
            print(f"{size:>5} {r['params']:>6} {solver:>6} {r['wall_s']:>7.2f} {r['iterations']:>3} {r['rejected']:>3} "
                  f"{r['s_per_iteration']:>6.2f} {cg:>5} {r['loss']:>9.4g} {r['heldout_loss']:>9.4g} {r['stop']:>9} "
                  f"{r['peak_rss_mib']:>8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
