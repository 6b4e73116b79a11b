"""Adaptive sampling against uniform points at the same point budget.

Two experiments, each run through the scenario configs exactly as ``insr run`` would:

* ``advection``: the paper's 1D advection with ``gauss4`` for 40 steps (t = 2), N points per
  solve, a ``share`` of them drawn where the solve's residual at its warm start is large
  (``adaptive.share``, :mod:`insr.geometry.residual_sampling`).  Prints the MAE at t = 2
  against the exact pulse, the steps that missed their tolerance and the wall time.
* ``drop``: ``elastic_drop_3d`` for 15 steps, uniform points or a ``contact_band`` of width 0.1
  (:mod:`insr.geometry.band_sampling`).  Prints the largest penetration into the plane and the
  final centre-of-mass z (compare with the FEM's, printed by ``insr reproduce``).

    python benchmarks/adaptive_sampling.py advection --samples 1500 3000 --shares 0 0.25 0.5
    python benchmarks/adaptive_sampling.py drop --seeds 0 1 2            # ≈ 9 min per run

Runs one after another in this process; wall times are comparable within one invocation only.
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import machine_line, peak_rss_mb, print_table


def _run(scenario: str, overrides: list[str]):
    import jax

    from insr.cli import build_stepper, resolve_config
    from insr.simulate import simulate

    cfg = resolve_config(scenario, overrides)
    t0 = time.perf_counter()
    traj = simulate(build_stepper(cfg), dt=cfg["dt"], steps=cfg["steps"], key=jax.random.PRNGKey(cfg["seed"]))
    wall = time.perf_counter() - t0
    missed = sum(not m["converged"] for m in traj.metrics[1:])
    return traj.metrics, missed, wall


def advection(args) -> None:
    rows = []
    for seed in args.seeds:
        for n in args.samples:
            for share in args.shares:
                metrics, missed, wall = _run("advection1d", [
                    "steps=40", 'integrator="gauss4"', f"samples={n}", f"adaptive.share={share}", f"seed={seed}"])
                rows.append([seed, n, share, f"{metrics[-1]['mae']:.3e}", f"{missed} of 40", f"{wall:.0f}"])
                print(f"  seed {seed}, N = {n}, share {share}: MAE {rows[-1][3]}", file=sys.stderr, flush=True)
    print_table(["seed", "points N", "adaptive share", "MAE at t = 2", "missed", "wall s"], rows)


def drop(args) -> None:
    rows = []
    for seed in args.seeds:
        for width in (0.0, 0.1):
            metrics, missed, wall = _run("elastic_drop_3d", ["steps=15", f"contact_band.width={width}",
                                                             f"seed={seed}"])
            pen = max(m["max_penetration"] for m in metrics)
            rows.append([seed, "uniform" if width == 0 else f"band {width}", f"{pen:.4f}",
                         f"{metrics[-1]['com_z']:.4f}", f"{missed} of 15", f"{wall:.0f}"])
            print(f"  seed {seed}, {rows[-1][1]}: penetration {rows[-1][2]}", file=sys.stderr, flush=True)
    print_table(["seed", "points", "largest penetration", "final com z", "missed", "wall s"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=["advection", "drop"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[1500, 3000], help="advection: points per solve")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.25, 0.5], help="advection: adaptive share")
    args = parser.parse_args()
    print(machine_line())
    {"advection": advection, "drop": drop}[args.experiment](args)
    print(f"peak memory {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
