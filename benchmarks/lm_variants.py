"""A/B of the per-step solver's numerical options on the advection initial fit.

The fit of the paper's advection initial condition (SIREN 2×20, ω0 = 30, 5,000 points,
200 LM iterations) from the random initialisation of each seed is the hardest solve
of that scenario: plain Levenberg–Marquardt stalled on some seeds (which ones depends
on the CPU's rounding).  For each variant this prints how many seeds reach the fit
tolerance (relative L2 ≤ 1e-3 on 1,000 held-out points) on the first attempt, the
median and worst held-out error, and the cost of one iteration (a second, compiled
call of the same fit, wall time / iterations).  Variants in float64 run in their own
process (they need 64-bit JAX).

    python benchmarks/lm_variants.py                 # seeds 0-19, every variant
    python benchmarks/lm_variants.py --seeds 0-4 --variants geodesic plain
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

VARIANTS = {
    "plain": ["init.geodesic=0", "lm.tau=1e-6"],                  # the solver before geodesic acceleration
    "plain-tau1e-3": ["init.geodesic=0", "lm.tau=1e-3"],
    "plain-f64-tau1e-3": ["init.geodesic=0", "lm.tau=1e-3", "lm.linear_dtype=\"float64\""],
    "geodesic": ["init.geodesic=0.75", "lm.tau=1e-6"],             # the default
    "geodesic-f64-tau1e-3": ["init.geodesic=0.75", "lm.tau=1e-3", "lm.linear_dtype=\"float64\""],
}


def _one(variant: str, seeds: list[int]) -> dict:
    import jax

    from insr.cli import build_stepper, resolve_config

    errors, per_iter = [], []
    for seed in seeds:
        cfg = resolve_config("advection1d", [f"seed={seed}", *VARIANTS[variant]])
        stepper = build_stepper(cfg)
        key = jax.random.fold_in(jax.random.PRNGKey(seed), 0)
        state, stats = stepper._fit(stepper.state_template(), key)  # first attempt only: no retry
        params, stats = state["u"], stats["initial"]
        jax.block_until_ready(params)
        errors.append(stepper.initial_fit_error(params))
        if seed == seeds[0]:  # time a second, compiled call
            t0 = time.perf_counter()
            p2, s2 = stepper._fit(stepper.state_template(), key)
            jax.block_until_ready(p2)
            s2 = s2["initial"]
            per_iter.append((time.perf_counter() - t0) / int(s2.iterations))
        print(f"  {variant} seed {seed}: held-out rel L2 {errors[-1]:.3g} (loss {float(stats.loss):.3g}, "
              f"{int(stats.iterations)} it, {int(stats.rejected)} rejected)", file=sys.stderr, flush=True)
    return {"variant": variant, "errors": errors, "s_per_iteration": per_iter[0]}


def _trace(variant: str, seed: int) -> None:
    import dataclasses

    import jax

    from insr.cli import build_stepper, resolve_config

    if any("float64" in o for o in VARIANTS[variant]):
        jax.config.update("jax_enable_x64", True)
    stepper = build_stepper(resolve_config("advection1d", [f"seed={seed}", *VARIANTS[variant]]))
    # The same solve as the stepper's first fit attempt (jitted as a whole like it: outside
    # one jit the rounding differs, and so may the path), with the per-iteration trace on.
    solver = dataclasses.replace(stepper.init_solver, trace=True)
    fit = jax.jit(lambda p, key: solver.solve(stepper.ic_blocks, p, None, key))
    params, stats = fit(stepper.params0, jax.random.fold_in(jax.random.PRNGKey(seed), 0))
    print(f"{variant} seed {seed}: loss {float(stats.loss):.3g} after {int(stats.iterations)} iterations "
          f"({int(stats.rejected)} rejected); held-out rel L2 {stepper.initial_fit_error(params):.3g}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0-19")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--trace", type=int, metavar="SEED",
                    help="print every LM iteration (loss, λ, accepted, gain ratio) of the first variant on SEED")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi) + 1)) if hi else [int(s) for s in args.seeds.split(",")]
    if args.trace is not None:
        _trace(args.variants[0], args.trace)
        return 0
    if args.worker:
        print(json.dumps(_one(args.worker, seeds)))
        return 0
    print(f"advection initial fit, seeds {args.seeds}; success = held-out relative L2 ≤ 1e-3 on the first attempt")
    print(f"{'variant':<22} {'fits':>6} {'median err':>11} {'worst err':>10} {'ms/iter':>8}")
    for v in args.variants:
        # One process per variant: float64 needs 64-bit JAX, and it must not leak into the others.
        # The worker's per-seed lines go to stderr as they come; its result is the last stdout line.
        out = subprocess.run([sys.executable, __file__, "--worker", v, "--seeds", args.seeds],
                             stdout=subprocess.PIPE, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        e = r["errors"]
        ok = sum(x <= 1e-3 for x in e)
        missed = [s for s, x in zip(seeds, e) if x > 1e-3]
        print(f"{v:<22} {ok:>3}/{len(e):<2} {statistics.median(e):>11.3g} {max(e):>10.3g} "
              f"{1e3 * r['s_per_iteration']:>8.1f}  {'missed: seeds ' + str(missed) if missed else ''}", flush=True)
    return 0


if __name__ == "__main__":
    from insr.blas import single_threaded_blas

    with single_threaded_blas():  # one OpenBLAS thread beside XLA's pool (insr/blas.py), as in `insr run`
        code = main()
    sys.exit(code)
