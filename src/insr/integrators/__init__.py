"""Time schemes as residuals (see ``schemes``)."""

from insr.integrators.schemes import ExplicitEuler, ImplicitEuler, Midpoint

__all__ = ["ExplicitEuler", "ImplicitEuler", "Midpoint"]
