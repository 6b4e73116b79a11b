"""Seconds per time step of every paper example on whatever device JAX uses (CPU or GPU).

    python benchmarks/device.py                         # every paper example, 3 timed steps each
    python benchmarks/device.py advection1d taylor_green --steps 5
    python benchmarks/device.py heat2d --set lm.max_iters=20

Each scenario runs with its defaults (``--set`` overrides apply to every one): the initial
fit, one untimed step (it compiles the step), then ``--steps`` timed steps.  One row per
scenario: the device JAX ran on, the initial fit's wall time, seconds per step (median of
the timed steps), solver iterations per step, and the state's bytes.  On a GPU machine
(``pip install -c constraints.txt -e '.[cuda]'``, see the README) the same command prints
the GPU table; ``JAX_PLATFORMS=cpu python benchmarks/device.py`` forces the CPU there.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax

from insr.blas import single_threaded_blas
from insr.cli import build_stepper, resolve_config
from insr.config import ConfigError
from insr.simulate import SolveFailure

PAPER = ("advection1d", "taylor_green", "two_vortices", "elastic_stretch_2d", "elastic_collide_2d", "elastic_drop_3d")


def _block(state):
    jax.block_until_ready(jax.tree.leaves(state))
    return state


def time_scenario(name: str, overrides: list[str], steps: int) -> dict:
    cfg = resolve_config(name, overrides)
    stepper = build_stepper(cfg)
    key = jax.random.PRNGKey(cfg["seed"])
    t0 = time.perf_counter()
    state, _ = stepper.initial_state(jax.random.fold_in(key, 0))  # the keys insr.simulate uses
    _block(state)
    init_s = time.perf_counter() - t0
    t, dt = 0.0, cfg["dt"]
    state, _ = stepper.step(state, t, dt, jax.random.fold_in(key, 1))  # compiles the step
    _block(state)
    t += dt
    times, iters = [], []
    for n in range(steps):
        t0 = time.perf_counter()
        state, info = stepper.step(state, t, dt, jax.random.fold_in(key, n + 2))
        _block(state)
        times.append(time.perf_counter() - t0)
        iters.append(info.get("iterations", float("nan")))
        t += dt
    return {"scenario": name, "device": str(jax.devices()[0]), "init_s": init_s,
            "s_per_step": statistics.median(times), "iterations": statistics.mean(iters),
            "state_bytes": stepper.state_bytes()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenarios", nargs="*", default=list(PAPER))
    ap.add_argument("--steps", type=int, default=3, help="timed steps per scenario (after one untimed step)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error("--steps must be ≥ 1")
    print(f"JAX {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}", flush=True)
    print(f"{'scenario':<20} {'device':<14} {'init fit':>10} {'s/step':>9} {'it/step':>8} {'state':>10}", flush=True)
    failed = 0
    for name in args.scenarios:
        try:
            with single_threaded_blas():  # as `insr run` times its steps (see insr/blas.py)
                r = time_scenario(name, args.set, args.steps)
        except (ConfigError, SolveFailure) as exc:
            print(f"{name:<20} FAILED: {exc}", flush=True)
            failed += 1
            continue
        print(f"{r['scenario']:<20} {r['device']:<14} {r['init_s']:>9.1f}s {r['s_per_step']:>9.3f} "
              f"{r['iterations']:>8.1f} {r['state_bytes']:>9,}B", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
