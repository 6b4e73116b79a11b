"""Time schemes: one-step residuals (``schemes``) and explicit Runge–Kutta projections (``runge_kutta``)."""

from insr.integrators.runge_kutta import (
    RK4,
    SSPRK3,
    ExplicitRungeKutta,
    GaussLegendre4,
    Heun,
    ImplicitRungeKutta,
)
from insr.integrators.schemes import BDF2, ExplicitEuler, ImplicitEuler, Midpoint

__all__ = ["ExplicitEuler", "ImplicitEuler", "Midpoint", "BDF2", "ExplicitRungeKutta", "Heun", "SSPRK3", "RK4",
           "ImplicitRungeKutta", "GaussLegendre4"]
