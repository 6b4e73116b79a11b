"""Metrics of a state, defined once and shared by the neural and the classical solvers.

Each function takes values already sampled at evaluation points (NumPy arrays), so a neural
field (evaluated, differentiated by autodiff) and a grid (its own discrete operators) are
judged by the same formulas and report the same column names in ``metrics.csv``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["body_metrics", "error_metrics", "flow_metrics", "relative_l2"]


def relative_l2(values, target) -> float:
    """‖values − target‖ / ‖target‖ over all points and channels (‖target‖ floored at 1e-30)."""
    values, target = np.asarray(values, np.float64), np.asarray(target, np.float64)
    return float(np.sqrt(np.sum((values - target) ** 2) / max(np.sum(target**2), 1e-30)))


def error_metrics(values, target) -> dict:
    """Errors of ``values`` against ``target`` (same shape; all points and channels):
    ``mae``, ``max_error``, ``rel_l2`` = ‖v − v_ref‖₂/‖v_ref‖₂ (‖v_ref‖ floored at 1e-30), and the
    sums ``sq_error`` = Σ|v − v_ref|², ``sq_ref`` = Σ|v_ref|² (from which
    :func:`insr.simulate.summarize` forms a space–time relative L2 error)."""
    values, target = np.asarray(values, np.float64), np.asarray(target, np.float64)
    err = np.abs(values - target)
    sq_error, sq_ref = float(np.sum(err**2)), float(np.sum(target**2))
    return {"mae": float(np.mean(err)), "max_error": float(np.max(err)),
            "rel_l2": math.sqrt(sq_error / max(sq_ref, 1e-30)), "sq_error": sq_error, "sq_ref": sq_ref}


def flow_metrics(velocity, divergence, vorticity, area: float, ref_velocity=None) -> dict:
    """Diagnostics of a 2D velocity sampled at equal-weight points of a domain of ``area``:

    ``kinetic_energy`` ½∫|u|² ≈ ½·area·mean|u|², ``enstrophy`` ½∫ω² ≈ ½·area·mean ω²,
    ``div_max`` max|∇·u|, ``div_rms`` (∇·u)_rms; with ``ref_velocity`` (same points, (n, 2)) also
    ``velocity_mse`` = mean over points and both components of (u − u_ref)² (the paper's
    ``mse_loss``) and ``rel_l2`` = ‖u − u_ref‖₂/‖u_ref‖₂.
    """
    u = np.asarray(velocity, np.float64).reshape(-1, 2)
    d = np.asarray(divergence, np.float64).reshape(-1)
    w = np.asarray(vorticity, np.float64).reshape(-1)
    out = {"kinetic_energy": 0.5 * area * float(np.mean(np.sum(u * u, axis=1))),
           "enstrophy": 0.5 * area * float(np.mean(w * w)),
           "div_max": float(np.max(np.abs(d))),
           "div_rms": float(np.sqrt(np.mean(d * d)))}
    if ref_velocity is not None:
        ref = np.asarray(ref_velocity, np.float64).reshape(-1, 2)
        err = u - ref
        out["velocity_mse"] = float(np.mean(err * err))
        out["rel_l2"] = float(np.sqrt(np.sum(err * err) / max(np.sum(ref * ref), 1e-300)))
    return out


def body_metrics(positions, weights, elastic_energy: float, *, density: float, gravity, contacts=(),
                 speed2=None, gap_points=None) -> dict:
    """Diagnostics of a deformed elastic body from a quadrature of its rest shape: deformed
    positions φ_q (n, d) with weights w_q (rest volumes, Σ w_q = V), the squared speeds |v_q|²
    (None: at rest), and the elastic energy ∫Ψ(F) the solver integrates itself:

    ``com_x``, ``com_y`` [, ``com_z``] = Σ w φ / V; ``kinetic_energy`` ½ρ Σ w |v|²;
    ``elastic_energy``; ``gravity_energy`` −ρ Σ w b·φ; with obstacles ``contact_energy``
    Σ w Σ_c e_c(φ), ``min_gap`` = the smallest signed distance −p_c over the positions and
    ``gap_points`` (e.g. the boundary vertices of the output mesh), ``max_penetration`` =
    max(0, −min_gap); ``total_energy`` the sum of the energies.  The neural stepper passes its
    equal-weight volume quadrature, the FEM its lumped nodal volumes.
    """
    p = np.asarray(positions, np.float64)
    w = np.asarray(weights, np.float64).reshape(-1)
    volume = float(np.sum(w))
    b = np.asarray(gravity, np.float64)
    out = {name: float(v) for name, v in zip(("com_x", "com_y", "com_z"), (w @ p) / volume)}
    out["kinetic_energy"] = 0.0 if speed2 is None else 0.5 * density * float(w @ np.asarray(speed2, np.float64))
    out["elastic_energy"] = float(elastic_energy)
    out["gravity_energy"] = -density * float(w @ (p @ b))
    total = out["kinetic_energy"] + out["elastic_energy"] + out["gravity_energy"]
    if contacts:
        out["contact_energy"] = float(w @ sum(np.asarray(c.energy_density(p), np.float64) for c in contacts))
        total += out["contact_energy"]
        allp = p if gap_points is None else np.concatenate([p, np.asarray(gap_points, np.float64)])
        out["min_gap"] = -max(float(np.max(np.asarray(c.penetration(allp)))) for c in contacts)
        out["max_penetration"] = max(0.0, -out["min_gap"])
    out["total_energy"] = total
    return out
