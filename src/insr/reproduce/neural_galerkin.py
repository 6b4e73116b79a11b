"""Beyond the paper: the Neural Galerkin benchmarks ``heat2d`` (after TENG, Chen et al., ICML
2024) and ``allen_cahn1d`` (after RSNG, Berman & Peherstorfer, NeurIPS 2023), ours (float64
periodic SIREN, 4th-order Gauss–Legendre) beside the published numbers, with curves over Δt
and network width.

Both run in 64-bit JAX (:func:`insr.reproduce.core.run_scenario` enables it per run for a
float64 config, so the examples around them keep the default 32-bit mode).  The Allen–Cahn
table also has the spectral reference's own row: its difference to a 2× finer reference
(grid and Δt), the floor under every error it judges.
"""

from __future__ import annotations

import math

from insr.reproduce.core import Context, Example, PaperRow, metrics_value, row, run_scenario, run_timing, run_wall

__all__ = ["HEAT2D", "ALLEN_CAHN"]

HEAT_METRIC = ("relative L2 error against the exact solution on the 256² periodic grid at the final time "
               "(t = 4 in the full profile)")
AC_METRIC = ("space–time relative L2 error √(Σ|u − u_ref|² / Σ|u_ref|²) over every step's time × 1,000 "
             "equispaced points, against the ETDRK4 spectral reference (1,024 points)")


def _spacetime(ctx: Context, run_id: str) -> tuple[float, dict]:
    """The space–time relative L2 of a run, from the ``sq_error``/``sq_ref`` sums of its metrics.csv."""
    from insr.simulate import read_metrics

    path = ctx.out / run_id / "metrics.csv"
    rows = read_metrics(path)
    value = math.sqrt(sum(r["sq_error"] for r in rows) / sum(r["sq_ref"] for r in rows))
    return value, {"file": ctx.rel(path), "column": "sq_error, sq_ref (summed over all rows)",
                   "step": int(rows[-1]["step"])}


def _run(ctx: Context, scenario: str, error_of) -> list[dict]:
    from insr.registry import get

    z = ctx.sizes
    base = {"steps": z["steps"], "samples": z["samples"], "field": {"width": z["width"]},
            "init": {"max_iters": z["init_iters"]}}

    def ours(run_id, updates, kind, label, outputs=False):
        def compute():
            st, traj, cfg = run_scenario(ctx, run_id, scenario, updates, outputs=outputs)
            err, src = error_of(ctx, run_id)
            wall, per_step = run_wall(traj)
            its = sum(r["iterations"] for r in traj.metrics[1:]) / max(1, len(traj.metrics) - 1)
            missed = traj.summary["missed_tolerance"]
            series = "ours, width sweep" if run_id.startswith("width") else "ours, Δt sweep"
            return row(label.format(params=st.num_params), kind, error=err, wall_s=wall,
                       state_bytes=st.state_bytes(), source=src, series=series,
                       note=(f"Δt = {cfg['dt']:g}, {per_step:.2f} s/step, {its:.0f} LM it/step, "
                             f"{missed} of {traj.summary['steps']} steps missed their solver tolerance"),
                       params=st.num_params, **run_timing(traj))
        return ctx.cached(run_id, compute)

    rows = [ours("ours", base, "ours", "ours, float64 SIREN ({params} params), gauss4, LM", outputs=True)]
    dt0 = get(scenario).defaults["dt"]
    for dt_factor in z["dt_factors"]:
        dt = dt0 * dt_factor
        steps = max(1, round(z["steps"] / dt_factor))
        rows.append(ours(f"dt{dt_factor:g}", {**base, "dt": dt, "steps": steps}, "sweep",
                         f"ours, Δt × {dt_factor:g} ({{params}} params)"))
    for w in z["widths"]:
        rows.append(ours(f"width{w}", {**base, "field": {"width": w}}, "sweep",
                         f"ours, width {w} ({{params}} params)"))
    if scenario == "allen_cahn1d":
        rows.append(ctx.cached("reference", lambda: _reference_row(z["steps"] * dt0, dt0)))
    return rows


def _reference_row(t1: float, save_dt: float) -> dict:
    """The spectral reference's own error: its space–time difference to a 2× finer one."""
    import jax
    import numpy as np

    from insr.problems import AllenCahn1D
    from insr.reference.spectral import semilinear_reference

    with jax.enable_x64(True):
        p = AllenCahn1D()
        ref = semilinear_reference(p, t1=t1, save_dt=save_dt, n=1024)
        fine = semilinear_reference(p, t1=t1, save_dt=save_dt, n=2048, max_dt=2.5e-3)
        x = p.error_points()
        num = sum(np.sum((ref.interpolate(t, x) - fine.interpolate(t, x)) ** 2) for t in ref.times)
        den = sum(np.sum(fine.interpolate(t, x) ** 2) for t in ref.times)
    return row("spectral reference, 1,024 points, ETDRK4 Δt = 5e-3", "reference", error=math.sqrt(num / den),
               wall_s=ref.wall_time, state_bytes=8 * 1024,
               note="error = its difference to 2,048 points and Δt = 2.5e-3 (the floor under every error it judges)")


def _heat_error(ctx, run_id):
    return metrics_value(ctx, run_id, "rel_l2")


def _sizes(full_steps: int, quick_steps: int, samples: int) -> dict:
    """Per profile: the run's steps and points (the scenario's own network, 2×16); the full
    profile adds a Δt × 2 run and a width-12 network for the curves."""
    ours = {"samples": samples, "width": 16, "init_iters": 400}
    return {"full": {"steps": full_steps, **ours, "dt_factors": [2.0], "widths": [12]},
            "quick": {"steps": quick_steps, **ours, "dt_factors": [], "widths": []},
            "tiny": {"steps": 2, "samples": 300, "width": 8, "init_iters": 50, "dt_factors": [], "widths": []}}


HEAT2D = Example(
    name="heat2d",
    title="Beyond the paper: 2D periodic heat (after TENG, ICML 2024)",
    metric=HEAT_METRIC,
    paper=(),  # no TENG number is quoted: none we can cite exactly
    sizes=_sizes(20, 5, 2000),
    estimate_s={"full": 600, "quick": 90, "tiny": 30},
    run=lambda ctx: _run(ctx, "heat2d", _heat_error),
    benchmark="python benchmarks/seeds.py heat2d --seeds 0-2",
    published_by="published (TENG)",
)

ALLEN_CAHN = Example(
    name="allen_cahn1d",
    title="Beyond the paper: 1D Allen–Cahn (after RSNG, NeurIPS 2023)",
    metric=AC_METRIC,
    paper=(PaperRow("RSNG, 10,000 points", 1.66e-5, "776 s", "3,393 params", hardware="one V100 GPU", kind="ours",
                    horizon=4.0),
           PaperRow("RSNG, 1,000 points", 5.34e-5, "63 s", "3,393 params", hardware="one V100 GPU", horizon=4.0),
           PaperRow("causal PINN", 3.84e-4, "3,060 s", "–", hardware="one V100 GPU", horizon=4.0),
           PaperRow("PINN", 6.85e-2, "–", "–", hardware="one V100 GPU", horizon=4.0)),
    sizes=_sizes(40, 10, 1000),
    estimate_s={"full": 1500, "quick": 150, "tiny": 30},
    run=lambda ctx: _run(ctx, "allen_cahn1d", _spacetime),
    benchmark="python benchmarks/seeds.py allen_cahn1d --seeds 0-2",
    published_by="published (Berman & Peherstorfer, NeurIPS 2023)",
)
