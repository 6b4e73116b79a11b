"""Time integrators written as residuals of one step, ``u^n → u^{n+1}``.

For ``∂u/∂t = L(u)`` the new field minimises the mean square of r(x) over sample
points.  All residuals are divided by Δt so that their scale does not depend on
the scheme or the step (the boundary block's weight then means the same thing).

| scheme          | r(x)                                              | order |
|-----------------|---------------------------------------------------|-------|
| ExplicitEuler   | (u − u^n)/Δt − L(u^n)(t_n)                        | 1     |
| ImplicitEuler   | (u − u^n)/Δt − L(u)(t_{n+1})                      | 1     |
| Midpoint        | (u − u^n)/Δt − ½(L(u)(t_{n+1}) + L(u^n)(t_n))     | 2     |

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
