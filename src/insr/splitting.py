"""Operator splitting: one time step as a sequence of sub-steps, each by its own stepper.

For ∂u/∂t = A(u) + B(u) split into sub-problems ∂u/∂t = A(u) and ∂u/∂t = B(u), each advanced
by its own :class:`~insr.stepper.FieldStepper` (its own integrator, solver and points), on
*one* shared field:

    Lie–Trotter:  uⁿ⁺¹ = S_B(Δt) ∘ S_A(Δt) uⁿ                      order 1
    Strang:       uⁿ⁺¹ = S_A(Δt/2) ∘ S_B(Δt) ∘ S_A(Δt/2) uⁿ         order 2
                  (Strang, SIAM J. Numer. Anal. 5, 1968)

with S_X(h) one step of size h of X's stepper.  The splitting error vanishes when A and B
commute (e.g. constant-coefficient advection and diffusion); otherwise it is O(Δt) (Lie) or
O(Δt²) (Strang) on top of the sub-steppers' own errors.  Each sub-problem keeps its own clock:
a sub-step covering the fraction f of Δt runs from that operator's current time to its time
+ f·Δt, so non-autonomous sub-problems see the right times.

The ``full`` stepper (of the whole problem ∂u/∂t = A(u) + B(u)) is never stepped: it fits the
initial condition and measures errors against the full problem's exact solution or reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

__all__ = ["Splitting", "lie", "strang"]


def _same_structure(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return (jax.tree.structure(a) == jax.tree.structure(b)
            and all(x.shape == y.shape and x.dtype == y.dtype for x, y in zip(la, lb)))


class Splitting:
    """Step ``full``'s field by the sub-steps ``[(stepper, fraction), …]`` in order.

    Every stepper (``full`` and the sub-steppers) must hold the same field structure (the same
    network, possibly different problems, integrators and solvers); each operator's fractions
    must add up to 1 (e.g. Strang: A ½, B 1, A ½).  Schemes that keep uⁿ⁻¹ (BDF2) are refused:
    inside a splitting the previous sub-state is not uⁿ⁻¹ of that operator.  A step's info adds
    up the sub-solves' iterations and rejections, reports the last sub-solve's loss, and has
    converged when every sub-solve has.
    """

    def __init__(self, full, substeps: Sequence[tuple[object, float]]):
        substeps = [(s, float(f)) for s, f in substeps]
        if not substeps:
            raise ValueError("Splitting: give at least one (stepper, fraction) sub-step")
        totals: dict[int, float] = {}
        for s, f in substeps:
            if not f > 0:
                raise ValueError(f"Splitting: sub-step fractions must be > 0, got {f!r}")
            if not _same_structure(s.params0, full.params0):
                raise ValueError("Splitting: every sub-stepper must hold the same field (network structure, "
                                 "shapes and dtypes) as the full stepper")
            if getattr(s.integrator, "history", 1) == 2:
                raise ValueError(f"Splitting: {s.integrator.name!r} keeps uⁿ⁻¹, which a split step does not have")
            totals[id(s)] = totals.get(id(s), 0.0) + f
        bad = [t for t in totals.values() if abs(t - 1.0) > 1e-9]
        if bad:
            raise ValueError(f"Splitting: each operator's fractions must add up to 1 per step, got {bad}")
        self.full, self.substeps = full, substeps
        self.channel_names, self.dim = full.channel_names, full.dim
        self.problem = full.problem

    def state_template(self) -> dict:
        return self.full.state_template()

    def state_bytes(self) -> int:
        return self.full.state_bytes()

    @property
    def num_params(self) -> int:
        return self.full.num_params

    def initial_state(self, key):
        return self.full.initial_state(key)

    def step(self, state, t, dt, key):
        clock: dict[int, float] = {}
        infos, current = [], state
        for i, (stepper, frac) in enumerate(self.substeps):
            t_sub = clock.get(id(stepper), float(t))
            current, info = stepper.step(current, t_sub, frac * dt, jax.random.fold_in(key, i))
            clock[id(stepper)] = t_sub + frac * dt
            infos.append(info)
        out = {
            "iterations": sum(i["iterations"] for i in infos),
            "rejected": sum(i["rejected"] for i in infos),
            "loss_initial": infos[0]["loss_initial"],
            "loss": infos[-1]["loss"],
            "converged": all(i["converged"] for i in infos),
            "stop": next((i["stop"] for i in infos if not i["converged"]), infos[-1]["stop"]),
        }
        return {**current, "u_prev": state["u"]}, out

    def evaluate(self, state, points, t=None) -> np.ndarray:
        return self.full.evaluate(state, points, t)

    def metrics(self, state, t) -> dict:
        return self.full.metrics(state, t)

    def target(self, points, t):
        return self.full.target(points, t)

    def exact(self, points, t):
        return self.full.exact(points, t)


def lie(full, a, b) -> Splitting:
    """Lie–Trotter splitting (order 1): A for Δt, then B for Δt."""
    return Splitting(full, [(a, 1.0), (b, 1.0)])


def strang(full, a, b) -> Splitting:
    """Strang splitting (order 2): A for Δt/2, B for Δt, A for Δt/2."""
    return Splitting(full, [(a, 0.5), (b, 1.0), (a, 0.5)])
