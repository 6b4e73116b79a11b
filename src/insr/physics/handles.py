"""Dirichlet handles of an elastic body: :class:`PlaneHandle` prescribes the deformation
φ(X, t) = X + u(t) on a planar section of the rest shape, u(t) ramped linearly in time.
How a handle is enforced (penalty block or exact distance-function ansatz) is the
stepper's business (:class:`~insr.elasticity.stepper.ElasticStepper`).  (Moved here from
:mod:`insr.elasticity.stepper`, which re-exports it.)
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp

__all__ = ["PlaneHandle"]


@dataclass(frozen=True)
class PlaneHandle:
    """Dirichlet handle: φ(X, t) = X + u(t) on the rest-shape section {X : X_axis = position},
    u(t) = displacement·min(1, t/ramp_time) (``ramp_time = 0``: the full displacement at
    every t).  ``displacement`` defaults to zero (a clamped handle)."""

    axis: int
    position: float
    displacement: tuple | None = None
    ramp_time: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "axis", int(self.axis))
        object.__setattr__(self, "position", float(self.position))
        if self.displacement is not None:
            object.__setattr__(self, "displacement", tuple(float(v) for v in self.displacement))
        if not self.ramp_time >= 0:
            raise ValueError(f"handle ramp_time must be ≥ 0, got {self.ramp_time}")

    def offset(self, t, dim: int):
        """u(t), shape (dim,)."""
        disp = jnp.zeros(dim, jnp.float32) if self.displacement is None else jnp.asarray(self.displacement,
                                                                                           jnp.float32)
        if disp.shape != (dim,):
            raise ValueError(f"handle displacement must have {dim} components, got {self.displacement}")
        if self.ramp_time <= 0:
            return disp
        return jnp.clip(t / self.ramp_time, 0.0, 1.0) * disp
