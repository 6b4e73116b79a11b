"""Benchmark: the paper's 1D advection (Chen et al., ICML 2023, Sec. 5.1) — ours vs finite differences.

Setup: u_t + 0.25·u_x = 0 on [−2, 2], Gaussian at −1.5 with σ = 0.1, u = 0 at the ends,
midpoint rule, Δt = 0.05, 240 steps (t = 12), 5,000 samples per step, SIREN with
2 hidden layers of 20 (901 parameters, ω0 = 30).

Error metric (every row): mean absolute error against the exact solution u0(x − 0.25·t)
at t = 12 on 1,000 uniform points of [−2, 2] (grid solutions are interpolated linearly).

Rows: ours (Levenberg–Marquardt); the midpoint finite-difference grid of the same memory
(901 nodes); the smallest grid (from a doubling-then-bisection search) whose error
matches ours; an 80,001-node grid, whose error is the midpoint rule's own time-
discretization error at Δt = 0.05; and the paper-faithful Adam mode for a few steps
(seconds per step, and the projected time for 240 steps).

    python benchmarks/advection1d.py               # full run (a few minutes on 2 cores)
    python benchmarks/advection1d.py --steps 40    # shorter horizon
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import insr  # noqa: E402
from _common import machine_line, peak_rss_mb, print_table  # noqa: E402
from insr.config import merge  # noqa: E402
from insr.fields import Siren  # noqa: E402
from insr.integrators import Midpoint  # noqa: E402
from insr.problems import Advection1D  # noqa: E402
from insr.reference.advection_fd import advection_exact  # noqa: E402
from insr.registry import get as get_scenario  # noqa: E402
from insr.reproduce.advection import fd_error  # noqa: E402  (memoised: the search and the rows share runs)
from insr.reproduce.core import smallest_matching  # noqa: E402
from insr.solvers import AdamPlateau, LevenbergMarquardt  # noqa: E402

A, C, S, LO, HI = 0.25, -1.5, 0.1, -2.0, 2.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=240)
    ap.add_argument("--dt", type=float, default=0.05)
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--adam-steps", type=int, default=2, help="steps of the paper-faithful Adam mode to time")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    T = args.steps * args.dt
    problem = Advection1D(velocity=A, center=C, width=S)
    pts = np.linspace(LO, HI, 1000)
    exact = advection_exact(pts, T, velocity=A, center=C, width=S)
    print(f"# 1D advection, t = {T:g} ({args.steps} steps of {args.dt}), {args.samples} samples/step")
    print(f"# machine: {machine_line()}")

    # Ours: exactly what `insr run advection1d` runs (the scenario's defaults), timed end to end.
    cfg = merge(get_scenario("advection1d").defaults,
                {"steps": args.steps, "dt": args.dt, "samples": args.samples, "seed": args.seed})
    stepper = get_scenario("advection1d").build(cfg)
    print(f"# ours: LM {cfg['lm']}, extrapolate={cfg['extrapolate']}, init fit {cfg['init']}")
    t0 = time.perf_counter()
    traj = insr.simulate(stepper, dt=args.dt, steps=args.steps, key=jax.random.PRNGKey(args.seed),
                         saveat=insr.SaveAt(every=args.steps))
    ours_wall = time.perf_counter() - t0
    u = traj.evaluate(pts[:, None].astype(np.float32), T)[:, 0]
    ours_err = float(np.mean(np.abs(u - exact)))
    iters = sum(r["iterations"] for r in traj.metrics[1:])
    ours_bytes = stepper.state_bytes()

    same_mem_err, same_mem_wall = fd_error(ours_bytes // 4, args.dt, args.steps)
    n_match = smallest_matching(lambda n: fd_error(n, args.dt, args.steps)[0], ours_err, 901,
                                lambda n: 2 * n - 1, 80_001, 0.02)
    floor_err, floor_wall = fd_error(80_001, args.dt, args.steps)

    rows = [["ours: SIREN 901 params, LM", f"{ours_err:.5f}", f"{ours_wall:.1f} s", f"{ours_bytes} B",
             f"{iters / args.steps:.1f} LM it/step"],
            ["FD midpoint, same memory (901 nodes)", f"{same_mem_err:.5f}", f"{same_mem_wall:.2f} s",
             f"{901 * 4} B", ""]]
    if n_match:
        e, w = fd_error(n_match, args.dt, args.steps)
        rows.append([f"FD midpoint, same error ({n_match} nodes)", f"{e:.5f}", f"{w:.2f} s", f"{4 * n_match} B", ""])
    else:
        rows.append(["FD midpoint, same error", "none ≤ 80,001 nodes", "", "", ""])
    rows.append(["FD midpoint, 80,001 nodes (Δt floor)", f"{floor_err:.5f}", f"{floor_wall:.2f} s",
                 f"{4 * 80_001} B", "time-discretization error alone"])

    lm_step = float(np.mean([r["step_time"] for r in traj.metrics[2:]])) if args.steps > 1 else float("nan")
    if args.adam_steps > 0:
        tr = insr.solve(problem, Siren(1, 1, 20, 2, key=jax.random.PRNGKey(args.seed)), Midpoint(), AdamPlateau(),
                        init_solver=LevenbergMarquardt.initial_fit(), dt=args.dt,
                        t1=args.adam_steps * args.dt, key=jax.random.PRNGKey(args.seed + 1), samples=args.samples,
                        saveat=insr.SaveAt(every=10_000))
        # Step 1 includes compilation; time the later steps when there are any.
        timed = tr.metrics[2:] if args.adam_steps > 1 else tr.metrics[1:]
        adam_step = float(np.mean([r["step_time"] for r in timed]))
        adam_its = float(np.mean([r["iterations"] for r in timed]))
        rows.append([f"ours, paper-faithful Adam ({args.adam_steps} steps timed)", "-",
                     f"{adam_step:.1f} s/step", f"{ours_bytes} B",
                     f"{adam_its:.0f} Adam it/step; 240 steps ≈ {240 * adam_step / 3600:.2f} h; "
                     f"LM/Adam speed-up per step {adam_step / lm_step:.0f}x"])
    print()
    print_table(["method", f"MAE at t={T:g}", "wall time", "state", "note"], rows)
    print(f"\npeak RSS of this process: {peak_rss_mb():.0f} MiB")
    print("paper (RTX 3090): ours 0.0030 in 5.33 h; grid of same memory 0.0146; grid of same error ~7,000 nodes")


if __name__ == "__main__":
    main()
