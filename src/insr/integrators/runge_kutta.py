r"""Explicit Runge–Kutta schemes as sequences of projections (one least-squares fit per stage).

For ∂u/∂t = L(u, t) and a Butcher tableau (A strictly lower triangular, b, c), stage i
(i = 2…s) fits a network v_i to

    v_i = uⁿ + Δt Σ_{j<i} a_ij L(v_j, tₙ + c_j Δt),     v_1 = uⁿ,

and the last fit is the new field, uⁿ⁺¹ = uⁿ + Δt Σ_j b_j L(v_j, tₙ + c_j Δt).  Each fit
minimises the mean square of r(x) = (w(x) − uⁿ(x))/Δt − Σ_j a_ij L(v_j)(x) (divided by Δt
like the one-stage residuals of :mod:`insr.integrators.schemes`), plus the problem's
boundary residual at the stage time.  Each projection is a linear target for the network,
so a warm-started Levenberg–Marquardt solve needs only a few iterations; s stages cost s
such solves per step.  This is the "sequence of projections" form of explicit schemes
used for neural fields evolving in time (e.g. TENG, Chen et al., ICML 2024).

| scheme  | stages | order | stability on the imaginary axis (advection)     |
|---------|--------|-------|-------------------------------------------------|
| Heun    | 2      | 2     | none (slowly unstable: |g| = √(1 + z⁴/4))        |
| SSPRK3  | 3      | 3     | |aΔt k| ≤ √3                                    |
| RK4     | 4      | 4     | |aΔt k| ≤ 2√2 ≈ 2.83                            |

:class:`ImplicitRungeKutta` (e.g. ``GaussLegendre4``: 2 stages, order 4, A-stable — no
step-size limit from stability) fits its stage fields jointly instead, then projects.

Tableaux: Heun's method and RK4 from Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.1;
SSPRK3 from Shu & Osher, J. Comput. Phys. 77 (1988), and Gottlieb & Shu, Math. Comp. 67
(1998).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ExplicitRungeKutta", "Heun", "SSPRK3", "RK4", "ImplicitRungeKutta", "GaussLegendre4"]


@dataclass(frozen=True)
class _Tableau:
    """A Butcher tableau (A, b, c) with its order and name; subclasses check A's shape."""

    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]
    order: int
    name: str

    def __post_init__(self):
        if len(self.c) != len(self.b):
            raise ValueError(f"{self.name}: b and c need one entry per stage, got {len(self.b)} and {len(self.c)}")
        self._check_a(len(self.b))
        if abs(sum(self.b) - 1.0) > 1e-12:
            raise ValueError(f"{self.name}: the weights b must sum to 1, got {sum(self.b)}")

    def _check_a(self, s: int) -> None:
        raise NotImplementedError

    @property
    def stages(self) -> int:
        return len(self.b)


@dataclass(frozen=True)
class ExplicitRungeKutta(_Tableau):
    """An explicit Butcher tableau: ``a`` rows 2…s (row i holds a_i1 … a_i,i−1), ``b``, ``c``."""

    def _check_a(self, s: int) -> None:
        if len(self.a) != s - 1 or any(len(row) != i + 1 for i, row in enumerate(self.a)):
            raise ValueError(f"{self.name}: an explicit tableau needs {s - 1} rows of A of lengths 1…{s - 1}")

    def rows(self):
        """``(coefficients on v_1…v_k, stage time fraction)`` of every fit: the stages 2…s,
        then the final combination (time fraction 1)."""
        return [(tuple(row), self.c[i + 1]) for i, row in enumerate(self.a)] + [(tuple(self.b), 1.0)]


def Heun() -> ExplicitRungeKutta:
    """Heun's method (explicit trapezoidal rule), order 2."""
    return ExplicitRungeKutta(a=((1.0,),), b=(0.5, 0.5), c=(0.0, 1.0), order=2, name="heun")


def SSPRK3() -> ExplicitRungeKutta:
    """The three-stage strong-stability-preserving scheme of Shu & Osher, order 3."""
    return ExplicitRungeKutta(a=((1.0,), (0.25, 0.25)), b=(1 / 6, 1 / 6, 2 / 3), c=(0.0, 1.0, 0.5),
                              order=3, name="ssprk3")


def RK4() -> ExplicitRungeKutta:
    """The classical four-stage Runge–Kutta scheme, order 4."""
    return ExplicitRungeKutta(a=((0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
                              c=(0.0, 0.5, 0.5, 1.0), order=4, name="rk4")


@dataclass(frozen=True)
class ImplicitRungeKutta(_Tableau):
    r"""A fully implicit Butcher tableau (``a``: s rows of s entries, ``b``, ``c``).

    One step fits the s stage fields U_1…U_s *jointly* (one network per stage, one
    least-squares solve over all their weights):

        U_i = uⁿ + Δt Σ_j a_ij L(U_j, tₙ + c_j Δt),   i = 1…s,

    then projects uⁿ⁺¹ = uⁿ + Δt Σ_j b_j L(U_j, tₙ + c_j Δt) onto the field's network.
    """

    def _check_a(self, s: int) -> None:
        if len(self.a) != s or any(len(row) != s for row in self.a):
            raise ValueError(f"{self.name}: an implicit tableau needs an {s}×{s} A")


def GaussLegendre4() -> ImplicitRungeKutta:
    """The two-stage Gauss–Legendre collocation method: order 4, A-stable, symplectic
    (Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.7, Table 7.3)."""
    r = 3**0.5 / 6
    return ImplicitRungeKutta(a=((0.25, 0.25 - r), (0.25 + r, 0.25)), b=(0.5, 0.5), c=(0.5 - r, 0.5 + r),
                              order=4, name="gauss4")
