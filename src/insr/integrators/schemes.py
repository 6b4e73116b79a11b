"""Time integrators written as residuals of one step, ``u^n → u^{n+1}``.

For ``∂u/∂t = L(u)`` the new field minimises the mean square of r(x) over sample
points.  All residuals are divided by Δt so that their scale does not depend on
the scheme or the step (the boundary block's weight then means the same thing).

| scheme          | r(x)                                              | order |
|-----------------|---------------------------------------------------|-------|
| ExplicitEuler   | (u − u^n)/Δt − L(u^n)(t_n)                        | 1     |
| ImplicitEuler   | (u − u^n)/Δt − L(u)(t_{n+1})                      | 1     |
| Midpoint        | (u − u^n)/Δt − ½(L(u)(t_{n+1}) + L(u^n)(t_n))     | 2     |
| BDF2            | (3u − 4u^n + u^{n−1})/(2Δt) − L(u)(t_{n+1})       | 2     |

(Midpoint here is the trapezoidal / Crank–Nicolson form used by Chen et al.,
ICML 2023, Eq. 5; for linear L it equals the implicit midpoint rule.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExplicitEuler:
    order: int = 1
    name: str = "explicit_euler"

    def residual(self, problem, u_new, u_old, x, t, dt):
        return (u_new(x) - u_old(x)) / dt - problem.rhs(u_old, x, t)


@dataclass(frozen=True)
class ImplicitEuler:
    order: int = 1
    name: str = "implicit_euler"

    def residual(self, problem, u_new, u_old, x, t, dt):
        return (u_new(x) - u_old(x)) / dt - problem.rhs(u_new, x, t + dt)


@dataclass(frozen=True)
class Midpoint:
    order: int = 2
    name: str = "midpoint"

    def residual(self, problem, u_new, u_old, x, t, dt):
        return (u_new(x) - u_old(x)) / dt - 0.5 * (problem.rhs(u_new, x, t + dt) + problem.rhs(u_old, x, t))


@dataclass(frozen=True)
class BDF2:
    """Second-order backward differentiation: (3uⁿ⁺¹ − 4uⁿ + uⁿ⁻¹)/(2Δt) = L(uⁿ⁺¹)(t_{n+1}).

    A-stable, order 2, one implicit solve per step like implicit Euler, but it needs the
    field one step back (the stepper's state keeps it).  The first step, which has no
    uⁿ⁻¹, is an implicit Euler step (its O(Δt²) local error keeps the global order 2).
    Constant Δt is assumed.
    """

    order: int = 2
    name: str = "bdf2"
    history: int = 2

    def residual(self, problem, u_new, u_old, x, t, dt, u_older=None, first=True):
        import jax.numpy as jnp

        # (a0, a1, a2) = (3/2, −2, 1/2), or implicit Euler's (1, −1, 0) on the first step
        a0, a1, a2 = jnp.where(first, 1.0, 1.5), jnp.where(first, -1.0, -2.0), jnp.where(first, 0.0, 0.5)
        older = u_old(x) if u_older is None else u_older(x)
        return (a0 * u_new(x) + a1 * u_old(x) + a2 * older) / dt - problem.rhs(u_new, x, t + dt)
