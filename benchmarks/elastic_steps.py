"""Benchmark: seconds per time step of the elastodynamics scenarios at their defaults.

For ``elastic_collide_2d`` (unit square onto a disk and the floor; SIREN 2 hidden layers
of 24 after the first, 1,322 parameters; 1,000 points per step; Levenberg–Marquardt,
at most 20 iterations) and ``elastic_drop_3d`` (bunny-like mesh onto a plane; 1,371
parameters, 1,000 points) this runs ``--steps`` implicit-Euler steps (Δt = 0.1) and
reports the first step (it includes JIT compilation) and the mean of the others, with
the LM iterations per step and the physical sanity metrics at the end (centre of mass,
max penetration, total energy).

Paper (Chen et al., ICML 2023, one RTX 3090, Adam for up to 20,000 iterations per step):
138 s per step for the 2D collision (3×68 SIREN, 100² points) and about 1,700 s per
step (~30 min) for the 3D shapes (3×66 SIREN, 20³ points).  ``--paper-adam N`` also
times N iterations of the paper-faithful inner loop (Adam, the paper's network and
sample count) on this machine and projects 20,000 of them.

    python benchmarks/elastic_steps.py                 # ~3-4 minutes on 2 cores
    python benchmarks/elastic_steps.py --steps 20      # the full 2D run
    python benchmarks/elastic_steps.py --paper-adam 20
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import insr  # noqa: E402,F401
from _common import machine_line, peak_rss_mb, print_table  # noqa: E402
from insr.config import merge  # noqa: E402
from insr.registry import get as get_scenario  # noqa: E402

PAPER_SECONDS = {"elastic_collide_2d": 138.0, "elastic_drop_3d": 1700.0}


def time_scenario(name: str, steps: int, updates: dict | None = None):
    sc = get_scenario(name)
    cfg = merge(sc.defaults, updates or {})
    st = sc.build(cfg)
    state, _ = st.initial_state(None)
    key = jax.random.PRNGKey(cfg["seed"])
    dt, t = cfg["dt"], 0.0
    times, iters = [], []
    for n in range(steps):
        t0 = time.perf_counter()
        state, info = st.step(state, t, dt, jax.random.fold_in(key, n + 1))
        jax.block_until_ready(state["phi"])
        times.append(time.perf_counter() - t0)
        iters.append(info["iterations"])
        t = round((n + 1) * dt, 12)
    return st, cfg, times, iters, st.metrics(state, t)


def paper_adam(iters: int):
    """Per-iteration cost of the paper's loop: Adam on the 3×68 SIREN (ω0 = 30) with 100²
    fresh points per iteration, from the collide scenario's first contact step."""
    cfg = {"field": {"width": 68, "depth": 3, "omega0": 30.0}, "samples": 10000, "optimizer": "adam",
           "adam": {"max_iters": iters}}
    st, _, times, _, _ = time_scenario("elastic_collide_2d", 2, cfg)
    return st.num_params, times[-1] / iters, times[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="steps timed per scenario (default 6)")
    ap.add_argument("--paper-adam", type=int, default=0, metavar="N",
                    help="also time N Adam iterations at the paper's sizes (2D)")
    args = ap.parse_args()
    print(machine_line())
    rows = []
    for name in ("elastic_collide_2d", "elastic_drop_3d"):
        st, cfg, times, iters, m = time_scenario(name, args.steps)
        later = times[1:] or times
        com = ", ".join(f"{m[k]:.3f}" for k in ("com_x", "com_y", "com_z") if k in m)
        rows.append([name, st.num_params, cfg["samples"], f"{times[0]:.1f}", f"{np.mean(later):.2f}",
                     f"{np.mean(iters[1:] or iters):.1f}", f"{PAPER_SECONDS[name]:.0f}",
                     f"{PAPER_SECONDS[name] / np.mean(later):.0f}x", f"({com})",
                     f"{m.get('max_penetration', 0.0):.3f}", f"{m['total_energy']:.3f}"])
        print(f"{name}: step times {', '.join(f'{x:.2f}' for x in times)} s", flush=True)
    print()
    print_table(["scenario", "params", "points", "first step s (incl. JIT)", "s/step", "LM iters",
                 "paper s/step (RTX 3090)", "speed-up", f"com after {args.steps} steps", "max pen.",
                 "total energy"], rows)
    if args.paper_adam:
        p, per_it, first = paper_adam(args.paper_adam)
        print(f"\npaper-faithful Adam, 2D, {p} parameters, 10^4 points per iteration: {per_it * 1e3:.0f} ms per "
              f"iteration here -> {per_it * 20000 / 60:.0f} min for 20,000 iterations (one step)")
    print(f"\npeak RSS {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
