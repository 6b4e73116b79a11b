r"""Materials of an elastic body: the energy density Ψ(F) per rest volume and the mass
density ρ (:class:`Material`), with the names of the supported energies (:data:`ENERGIES`).

``"arap"`` is the ARAP-with-volume energy (a sum of squares, so its least-squares residual
:meth:`Material.square_residual` exists); ``"snh"`` the stable Neo-Hookean energy.  The
energy densities themselves live in :mod:`insr.physics.elastic_energy`.  (Moved here from
:mod:`insr.elasticity.stepper`, which re-exports it.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax.numpy as jnp

from insr.physics.elastic_energy import (
    arap_distance_sq,
    arap_params_from_lame,
    determinant,
    lame_from_young,
    polar_rotation,
    snh_params_from_lame,
    stable_neo_hookean,
)

__all__ = ["ENERGIES", "Material"]

ENERGIES = ("arap", "snh")


@dataclass(frozen=True)
class Material:
    r"""Energy density and mass density of the body.

    ``energy="arap"``: Ψ = lam·Σ(σ_i − 1)² + mu·(det F − 1)² (:func:`arap_volume`);
    ``energy="snh"``: stable Neo-Hookean with weights (lam, mu) (:func:`stable_neo_hookean`).
    ``lam``/``mu`` are the *energy's* weights, not Lamé parameters: build from Young's
    modulus and Poisson's ratio with :meth:`from_young` (small-strain match).
    ``density`` ρ is the mass per rest volume.
    """

    energy: str = "arap"
    lam: float = 1.0
    mu: float = 1.0
    density: float = 1.0

    def __post_init__(self):
        if self.energy not in ENERGIES:
            raise ValueError(f"energy must be one of {ENERGIES}, got {self.energy!r}")
        for name in ("lam", "mu", "density"):
            v = float(getattr(self, name))
            if not math.isfinite(v):
                raise ValueError(f"material {name} must be finite, got {v}")
            object.__setattr__(self, name, v)
        if not self.density > 0:
            raise ValueError(f"density must be > 0, got {self.density}")
        if self.energy == "arap" and not (self.lam >= 0 and self.mu >= 0):
            raise ValueError(f"arap weights must be ≥ 0, got lam={self.lam}, mu={self.mu}")

    @classmethod
    def from_young(cls, young, poisson, *, energy: str = "arap", density: float = 1.0, dim: int = 3):
        """Energy weights whose small-strain limit is linear elasticity with Young's modulus
        ``young`` and Poisson ratio ``poisson`` (3D / 2D plane-strain Lamé relations
        λ_L = Eν/((1+ν)(1−2ν)), μ_L = E/(2(1+ν)); then :func:`arap_params_from_lame`
        (λ = μ_L, μ = λ_L/2) or :func:`snh_params_from_lame`).  Raises ``ValueError``
        unless E > 0 and −1 < ν < 0.5."""
        lam_l, mu_l = lame_from_young(young, poisson)
        if energy == "arap":
            lam, mu = arap_params_from_lame(lam_l, mu_l)
        elif energy == "snh":
            lam, mu = snh_params_from_lame(lam_l, mu_l, dim)
        else:
            raise ValueError(f"energy must be one of {ENERGIES}, got {energy!r}")
        return cls(energy, lam, mu, density)

    @property
    def is_sum_of_squares(self) -> bool:
        return self.energy == "arap"

    def psi(self, F):
        """Energy density Ψ(F) per rest volume."""
        if self.energy == "arap":
            return self.lam * arap_distance_sq(F) + self.mu * (determinant(F) - 1.0) ** 2
        return stable_neo_hookean(F, self.lam, self.mu)

    def square_residual(self, F):
        """r with |r|² = 2Ψ(F) (ARAP only): [√(2λ)·vec(F − R), √(2μ)·(det F − 1)]."""
        R = polar_rotation(F)
        return jnp.concatenate([math.sqrt(2 * self.lam) * (F - R).reshape(-1),
                                math.sqrt(2 * self.mu) * (determinant(F) - 1.0)[None]])
