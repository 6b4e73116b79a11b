r"""Classical grid solver for 2D incompressible Euler / Navier–Stokes on [-1, 1]².

This is the reference solver of the paper's 2D fluid examples (Taylor–Green vortex, two
vortices): the same Chorin splitting the neural solver uses, on a grid.

Equations
---------
With ρ = 1 and an optional kinematic viscosity ν ≥ 0,

.. math::

    \partial_t u + (u\cdot\nabla) u = -\nabla p + \nu \nabla^2 u, \qquad
    \nabla\cdot u = 0, \qquad
    \partial_t \rho + u\cdot\nabla\rho = 0 \ \text{(passive density)},

on :math:`\Omega = [-1, 1]^2` with no-penetration walls :math:`u\cdot n = 0`. The
tangential velocity is free to slip; when ν > 0 the diffusion step uses free-slip walls
(:math:`\partial_n (u\cdot t) = 0`), the condition under which the viscous Taylor–Green
flow is exact (:func:`insr.reference.flows.taylor_green_viscous`).

Grid (MAC, staggered)
---------------------
``n`` × ``n`` square cells of side :math:`h = 2/n`; arrays are indexed ``[ix, iy]``
(x first).

* ``ux``, shape ``(n+1, n)``: :math:`u_x` at the vertical faces
  :math:`(-1 + i h,\; -1 + (j+\tfrac12) h)`; the wall faces ``i = 0, n`` hold 0.
* ``uy``, shape ``(n, n+1)``: :math:`u_y` at the horizontal faces
  :math:`(-1 + (i+\tfrac12) h,\; -1 + j h)`; the wall faces ``j = 0, n`` hold 0.
* pressure and density, shape ``(n, n)``: at the cell centres
  :math:`(-1 + (i+\tfrac12) h,\; -1 + (j+\tfrac12) h)`.

The staggered grid makes the discrete divergence (faces → cells) and gradient
(cells → faces) adjoint, so their composition is the compact 5-point Laplacian with
homogeneous Neumann walls, which the DCT-II diagonalises exactly: the projection leaves
a discrete divergence at round-off level, without the checkerboard modes of a collocated
grid.

One step of Δt (Chorin splitting, first order in time)
------------------------------------------------------
1. **Semi-Lagrangian advection.** For every unknown at grid point :math:`x_g`, the
   departure point is traced back through :math:`u^n` — forward Euler
   :math:`x_d = x_g - \Delta t\, u^n(x_g)` or (default) the explicit midpoint rule
   :math:`x_m = x_g - \tfrac{\Delta t}{2} u^n(x_g)`,
   :math:`x_d = x_g - \Delta t\, u^n(x_m)` — each stage clamped to the box; the
   velocity used for the trace is interpolated bilinearly. Then
   :math:`u^*(x_g) = u^n(x_d)` (and :math:`\rho^{n+1}(x_g) = \rho^n(x_d)`), interpolated
   bilinearly (``interpolation="linear"``) or with the bicubic Catmull–Rom (Keys,
   a = −1/2) kernel (``"cubic"``, default; interpolation error :math:`O(h^3)`). Near the
   walls the interpolation stencils read ghost values from the mirror images that the
   wall conditions imply: the normal component is odd about the wall, the tangential
   component, pressure and density are even.
2. **Viscosity** (ν > 0 only), implicit Euler:
   :math:`(I - \nu\Delta t\, \nabla_h^2)\, u^{**} = u^*` per component, solved exactly
   by fast sine/cosine transforms (DST-I across the walls where the component is
   normal — Dirichlet 0 —, DCT-II along the walls where it is tangential — Neumann).
3. **Pressure Poisson.** :math:`\nabla_h^2 \phi = \nabla_h\cdot u^{**}` with homogeneous
   Neumann walls, solved by a 2D DCT-II: with
   :math:`\lambda_m = -\tfrac{4}{h^2}\sin^2\!\frac{\pi m}{2n}`,
   :math:`\hat\phi_{kl} = \widehat{(\nabla_h\cdot u)}_{kl} / (\lambda_k + \lambda_l)`
   and :math:`\hat\phi_{00} = 0` (zero-mean pressure).
4. **Projection.** :math:`u^{n+1} = u^{**} - \nabla_h\phi` on the interior faces. The
   physical pressure is :math:`p = \phi/\Delta t`.

Advection–reflection (``scheme="reflection"``, ν = 0; Zehnder, Narain & Thomaszewski,
SIGGRAPH 2018; second order: Narain, Panuelos & Batty, Comput. Graph. Forum 2019)
------------------------------------------------------------------------------------
Half a step of the above to :math:`u^{n+1/2} = P\,A(u^n; \tfrac{\Delta t}{2})\,u^n`
(A(v; h) w: w advected along v for a time h, P the projection), the reflection
:math:`\hat u = 2u^{n+1/2} - A(u^n; \tfrac{\Delta t}{2})u^n`, then
:math:`u^{n+1} = P\,A(u^{n+1/2}; \tfrac{\Delta t}{2})\,\hat u`; the density moves along
:math:`u^{n+1/2}` for the whole Δt.  Two projections per step instead of one; the
splitting error becomes :math:`O(\Delta t^2)`.  Measured on Taylor–Green (t = 2, 256²,
bicubic): velocity MSE 5.9e-5 / 1.6e-5 / 4.1e-6 at Δt = 0.1 / 0.05 / 0.025 with Chorin
(first order), 2.5e-11 / 5.1e-12 / 2.0e-12 with reflection (at the grid's own floor).

Accuracy: the splitting error of steps 1–4 is :math:`O(\Delta t)` globally, the
advection's interpolation error accumulates to :math:`O(h^{q}/\Delta t)` (q = 2 linear,
q = 3 cubic) and the MAC projection is second order, so with Δt ∝ h the velocity error is
first order in h (measured: see the tests).

Memory
------
:attr:`GridEuler2D.state_bytes` counts the grid as the paper does: ``n² nodes × 3
channels (u_x, u_y, p) × 4 bytes`` (float32), e.g. 48² → 27,648 B. The solver itself
computes in float64; the staggered arrays hold ``2 n (n+1)`` velocity values.

Measured accuracy
-----------------
Taylor–Green, Δt = 0.05, 100 steps (t = 5), :func:`velocity_mse` on the 256² cell
centres: 9.6e-5 at n = 48 and 8.8e-5 at n = 256 with the defaults (cubic, midpoint
back-trace); 1.2e-3 and 1.1e-4 with bilinear interpolation. At this Δt the splitting
error dominates: with cubic interpolation the scheme loses ~11 % of the kinetic energy
by t = 5 whatever n (bilinear at n = 48: 39 %).
Refining n with Δt = h/2 to t = 1 (n = 16 → 128) the RMS velocity error falls at order
1.03 (cubic) and 0.93 (bilinear).

Performance
-----------
Vectorised NumPy/SciPy in float64, single-threaded except the FFTs' ``workers``.
Measured on 2 CPU cores (this project's reference machine, shared): the two-vortices
example at 1024² with the passive density, Δt = 0.05, 50 steps, cubic interpolation and
midpoint back-trace, takes 56–72 s of stepping (1.1–1.4 s per step, about 0.6 GB
resident); Taylor–Green, 100 steps, takes 0.15 s at 48² and 3–5 s at 256².
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.fft as sfft

__all__ = [
    "GridState",
    "GridEulerResult",
    "GridEuler2D",
    "grid_state_bytes",
    "evaluation_points",
    "sample_velocity",
    "sample_density",
    "cell_velocity",
    "divergence",
    "max_divergence",
    "rms_divergence",
    "kinetic_energy",
    "vorticity",
    "enstrophy",
    "velocity_mse",
    "poisson_neumann_dct",
    "neumann_eigenvalues",
]

VelocityFn = Callable[[np.ndarray], np.ndarray]
ScalarFn = Callable[[np.ndarray], np.ndarray]

_GHOST = 2  # ghost layers: enough for the 4-point cubic stencil at the wall
_INTERPOLATIONS = ("linear", "cubic")
_BACKTRACES = ("euler", "rk2")
SCHEMES = ("chorin", "reflection")


# --------------------------------------------------------------------------------------
# Parameter validation
# --------------------------------------------------------------------------------------


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 4:
        raise ValueError(f"n must be an integer >= 4 (cells per side), got {n!r}")
    return int(n)


def _check_nu(nu) -> float:
    if isinstance(nu, bool) or not isinstance(nu, numbers.Real) or not math.isfinite(nu) or nu < 0:
        raise ValueError(f"nu (viscosity) must be a finite real number >= 0, got {nu!r}")
    return float(nu)


def _check_dt(dt) -> float:
    if isinstance(dt, bool) or not isinstance(dt, numbers.Real) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a finite real number > 0, got {dt!r}")
    return float(dt)


def _check_choice(name: str, value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------
# State and result
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridState:
    """Fields on the MAC grid at time ``t`` (see the module docstring for the layout).

    ``pressure`` is the physical pressure p = φ/Δt of the last projection (zeros for an
    initial state); ``density`` is ``None`` when no passive scalar is carried.
    """

    ux: np.ndarray
    uy: np.ndarray
    pressure: np.ndarray
    density: np.ndarray | None = None
    t: float = 0.0

    @property
    def n(self) -> int:
        """Cells per side."""
        return self.ux.shape[1]

    @property
    def h(self) -> float:
        """Cell size 2/n."""
        return 2.0 / self.n


@dataclass(frozen=True)
class GridEulerResult:
    """Output of :meth:`GridEuler2D.run`.

    ``states[k]`` is the saved state at time ``times[k]``; ``wall_time`` is the wall-clock
    time of the time stepping in seconds (sampling the initial condition excluded).
    """

    times: np.ndarray
    states: list[GridState]
    wall_time: float
    dt: float
    steps: int
    solver: GridEuler2D = field(repr=False)

    @property
    def final(self) -> GridState:
        """The state after the last step."""
        return self.states[-1]

    def cell_velocities(self) -> np.ndarray:
        """Saved velocities averaged to the cell centres, shape ``(len(times), n, n, 2)``."""
        return np.stack([cell_velocity(s) for s in self.states])

    def densities(self) -> np.ndarray:
        """Saved densities, shape ``(len(times), n, n)``; raises if none was carried."""
        if self.states[0].density is None:
            raise ValueError("this run carried no density (density0_fn was None)")
        return np.stack([s.density for s in self.states])


def grid_state_bytes(n: int, channels: int = 3) -> int:
    """Memory of an ``n × n`` grid as the paper counts it: ``n² × channels × 4`` bytes."""
    return _check_n(n) ** 2 * _check_count("channels", channels, 1) * 4


# --------------------------------------------------------------------------------------
# Staggered-grid geometry and interpolation
# --------------------------------------------------------------------------------------


def _axis_coords(n: int, staggered_node: bool) -> np.ndarray:
    """Coordinates along one axis: nodes ``-1 + i h`` (i = 0..n) or centres."""
    h = 2.0 / n
    if staggered_node:
        return -1.0 + h * np.arange(n + 1)
    return -1.0 + h * (np.arange(n) + 0.5)


# Each kind of array: (is the x axis a node axis?, is the y axis a node axis?).
# A node axis is one along which the component is normal to the walls (odd mirror);
# a centre axis has even mirror images.
_KINDS = {"ux": (True, False), "uy": (False, True), "c": (False, False)}


def _pad(a: np.ndarray, kind: str) -> np.ndarray:
    """Add ``_GHOST`` mirror layers per side: odd about wall nodes, even about walls
    between cell centres (half-sample symmetric)."""
    for axis, node in enumerate(_KINDS[kind]):
        width = [(0, 0), (0, 0)]
        width[axis] = (_GHOST, _GHOST)
        if node:  # value 0 on the wall node: ghost[-k] = -a[k]
            a = np.pad(a, width, mode="reflect", reflect_type="odd")
        else:  # ghost[-1] = a[0], ghost[-2] = a[1]
            a = np.pad(a, width, mode="symmetric")
    return a


def _fractional_index(p: np.ndarray, n: int, node: bool) -> np.ndarray:
    """Position of coordinates ``p`` (clamped to [-1, 1]) in padded-array index units."""
    h = 2.0 / n
    origin = -1.0 if node else -1.0 + 0.5 * h
    return (np.clip(p, -1.0, 1.0) - origin) / h + _GHOST


def _catmull_rom_weights(t: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keys (a = -1/2) cubic convolution weights for offsets -1, 0, 1, 2."""
    t2 = t * t
    t3 = t2 * t
    return (
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    )


def _interpolate(padded: np.ndarray, kind: str, n: int, px, py, order: int) -> np.ndarray:
    """Interpolate a padded staggered array at points ``(px, py)`` (any common shape)."""
    node_x, node_y = _KINDS[kind]
    sx = _fractional_index(px, n, node_x)
    sy = _fractional_index(py, n, node_y)
    mx, my = padded.shape
    flat = padded.ravel()
    if order == 1:
        ix = np.clip(np.floor(sx).astype(np.intp), 0, mx - 2)
        iy = np.clip(np.floor(sy).astype(np.intp), 0, my - 2)
        tx, ty = sx - ix, sy - iy
        base = ix * my + iy
        f00, f01 = flat[base], flat[base + 1]
        f10, f11 = flat[base + my], flat[base + my + 1]
        return (1.0 - tx) * ((1.0 - ty) * f00 + ty * f01) + tx * ((1.0 - ty) * f10 + ty * f11)
    ix = np.clip(np.floor(sx).astype(np.intp), 1, mx - 3)
    iy = np.clip(np.floor(sy).astype(np.intp), 1, my - 3)
    wx = _catmull_rom_weights(sx - ix)
    wy = _catmull_rom_weights(sy - iy)
    base = (ix - 1) * my + (iy - 1)
    out = np.zeros(np.shape(sx))
    for a in range(4):
        row = wy[0] * flat[base + a * my]
        for b in range(1, 4):
            row += wy[b] * flat[base + (a * my + b)]
        out += wx[a] * row
    return out


def evaluation_points(resolution: int = 256) -> np.ndarray:
    """Cell centres of a ``resolution × resolution`` grid on [-1, 1]², shape ``(r, r, 2)``,
    ``[i, j] = (-1 + (i + 1/2) 2/r, -1 + (j + 1/2) 2/r)``: where errors are measured."""
    r = _check_count("resolution", resolution, 1)
    c = -1.0 + (np.arange(r) + 0.5) * (2.0 / r)
    return np.stack(np.meshgrid(c, c, indexing="ij"), axis=-1)


def sample_velocity(state: GridState, points, order: int = 1) -> np.ndarray:
    """Velocity of ``state`` at ``points`` (..., 2), shape (..., 2).

    Each component is interpolated from its own staggered lattice — bilinearly
    (``order=1``) or with the bicubic Catmull–Rom kernel (``order=3``) — using the
    wall mirror images; points outside the box are clamped onto it.
    """
    if order not in (1, 3):
        raise ValueError(f"order must be 1 (bilinear) or 3 (bicubic), got {order!r}")
    p = np.asarray(points, dtype=np.float64)
    n = state.n
    ux = _interpolate(_pad(state.ux, "ux"), "ux", n, p[..., 0], p[..., 1], order)
    uy = _interpolate(_pad(state.uy, "uy"), "uy", n, p[..., 0], p[..., 1], order)
    return np.stack((ux, uy), axis=-1)


def sample_density(state: GridState, points, order: int = 1) -> np.ndarray:
    """Density of ``state`` at ``points`` (..., 2), shape (...); see :func:`sample_velocity`."""
    if state.density is None:
        raise ValueError("state carries no density")
    if order not in (1, 3):
        raise ValueError(f"order must be 1 (bilinear) or 3 (bicubic), got {order!r}")
    p = np.asarray(points, dtype=np.float64)
    return _interpolate(_pad(state.density, "c"), "c", state.n, p[..., 0], p[..., 1], order)


# --------------------------------------------------------------------------------------
# Discrete operators and diagnostics
# --------------------------------------------------------------------------------------


def neumann_eigenvalues(n: int, h: float) -> np.ndarray:
    r"""Eigenvalues :math:`-\tfrac{4}{h^2}\sin^2(\pi m / 2n)`, m = 0..n-1, of the 1D
    3-point Laplacian on n cell centres with homogeneous Neumann ends (DCT-II modes).
    The same formula with m = 1..n-1 gives the Dirichlet Laplacian on the n-1 interior
    nodes (DST-I modes)."""
    m = np.arange(n)
    return -4.0 / h**2 * np.sin(np.pi * m / (2 * n)) ** 2


def poisson_neumann_dct(rhs: np.ndarray, h: float, workers: int | None = None) -> np.ndarray:
    r"""Solve the 5-point :math:`\nabla_h^2 \phi = f` on cell centres, Neumann walls.

    ``rhs`` has shape ``(nx, ny)`` on a cell-centred grid of spacing ``h``. The mean of
    ``rhs`` (the part incompatible with the Neumann condition) is ignored and the
    returned solution has zero mean. Cost :math:`O(n^2 \log n)` (2D DCT-II).
    """
    f = np.asarray(rhs, dtype=np.float64)
    nx, ny = f.shape
    lam = neumann_eigenvalues(nx, h)[:, None] + neumann_eigenvalues(ny, h)[None, :]
    lam[0, 0] = 1.0
    fh = sfft.dctn(f, type=2, norm="ortho", workers=workers)
    fh /= lam
    fh[0, 0] = 0.0
    return sfft.idctn(fh, type=2, norm="ortho", workers=workers)


def _divergence(ux: np.ndarray, uy: np.ndarray, h: float) -> np.ndarray:
    return (ux[1:, :] - ux[:-1, :] + uy[:, 1:] - uy[:, :-1]) / h


def divergence(state: GridState) -> np.ndarray:
    r"""Discrete divergence at the cell centres, shape (n, n):
    :math:`(u_{x,i+1,j} - u_{x,i,j} + u_{y,i,j+1} - u_{y,i,j})/h`."""
    return _divergence(state.ux, state.uy, state.h)


def max_divergence(state: GridState) -> float:
    """Max over cells of the absolute discrete divergence."""
    return float(np.max(np.abs(divergence(state))))


def rms_divergence(state: GridState) -> float:
    """Root mean square over cells of the discrete divergence."""
    return float(np.sqrt(np.mean(divergence(state) ** 2)))


def cell_velocity(state: GridState) -> np.ndarray:
    """Velocity averaged from the faces to the cell centres, shape (n, n, 2)."""
    return np.stack(
        (0.5 * (state.ux[1:, :] + state.ux[:-1, :]), 0.5 * (state.uy[:, 1:] + state.uy[:, :-1])),
        axis=-1,
    )


def kinetic_energy(state: GridState) -> float:
    r""":math:`\tfrac12\int_\Omega |u|^2 \approx \tfrac12 h^2 (\sum u_x^2 + \sum u_y^2)` over
    the faces (midpoint rule along the faces, trapezoid across; wall faces are 0)."""
    return 0.5 * state.h**2 * float(np.sum(state.ux**2) + np.sum(state.uy**2))


def vorticity(state: GridState) -> np.ndarray:
    r"""Vorticity :math:`\omega = \partial_x u_y - \partial_y u_x` at the grid nodes
    :math:`(-1 + i h, -1 + j h)`, i, j = 0..n, shape (n+1, n+1).

    Central differences across each node; at the walls the tangential velocity's even
    mirror image (free slip) makes its normal derivative, and hence the wall vorticity
    contribution, zero.
    """
    h = state.h
    uy = np.pad(state.uy, ((1, 1), (0, 0)), mode="symmetric")
    ux = np.pad(state.ux, ((0, 0), (1, 1)), mode="symmetric")
    return (uy[1:, :] - uy[:-1, :]) / h - (ux[:, 1:] - ux[:, :-1]) / h


def enstrophy(state: GridState) -> float:
    r""":math:`\tfrac12\int_\Omega \omega^2`, trapezoid rule over the nodes."""
    w = vorticity(state) ** 2
    w[0, :] *= 0.5
    w[-1, :] *= 0.5
    w[:, 0] *= 0.5
    w[:, -1] *= 0.5
    return 0.5 * state.h**2 * float(np.sum(w))


def velocity_mse(
    state: GridState,
    exact: VelocityFn | np.ndarray,
    resolution: int = 256,
    order: int = 1,
) -> float:
    r"""Velocity error as the paper measures it (``torch.nn.functional.mse_loss``):

    .. math:: \mathrm{MSE} = \frac{1}{2 r^2}\sum_{i,j=0}^{r-1}\sum_{c=1}^{2}
              \bigl(u_c^{h}(x_{ij}) - u_c(x_{ij})\bigr)^2,

    the mean over the ``r × r`` cell centres :math:`x_{ij}` of [-1, 1]²
    (:func:`evaluation_points`, r = ``resolution``) *and* over both components, with the
    grid velocity :math:`u^h` interpolated bilinearly (``order=1``). ``exact`` is a
    function of points (e.g. :func:`insr.reference.flows.taylor_green_velocity`) or the
    exact values at :func:`evaluation_points` already, shape (r, r, 2).
    """
    pts = evaluation_points(resolution)
    ref = exact if isinstance(exact, np.ndarray) else np.asarray(exact(pts), dtype=np.float64)
    return float(np.mean((sample_velocity(state, pts, order) - ref) ** 2))


# --------------------------------------------------------------------------------------
# The solver
# --------------------------------------------------------------------------------------


class GridEuler2D:
    r"""Chorin-splitting MAC solver for 2D incompressible Euler (ν = 0) or Navier–Stokes.

    Parameters
    ----------
    n:
        Cells per side (integer ≥ 4); cell size h = 2/n.
    nu:
        Kinematic viscosity ν ≥ 0 (0: Euler, no diffusion step).
    interpolation:
        ``"cubic"`` (bicubic Catmull–Rom, default) or ``"linear"`` (bilinear) for the
        semi-Lagrangian advection of velocity and density.
    backtrace:
        ``"rk2"`` (explicit midpoint, default) or ``"euler"`` for the departure points.
    workers:
        Threads for the FFTs (``scipy.fft`` ``workers``), ``None`` for one.
    scheme:
        ``"chorin"`` (one advection and projection per step, first order; default) or
        ``"reflection"`` (advection–reflection, second order; ν = 0 only).

    The solver holds only configuration and precomputed grids; :meth:`step` maps a
    :class:`GridState` to a new one without mutating it. See the module docstring for the
    equations of each sub-step.
    """

    def __init__(
        self,
        n: int,
        nu: float = 0.0,
        *,
        interpolation: str = "cubic",
        backtrace: str = "rk2",
        workers: int | None = None,
        scheme: str = "chorin",
    ):
        self.n = _check_n(n)
        self.nu = _check_nu(nu)
        self.scheme = _check_choice("scheme", scheme, SCHEMES)
        if self.scheme == "reflection" and self.nu > 0:
            raise ValueError("scheme 'reflection' is for inviscid flow (nu = 0); use scheme 'chorin' with nu > 0")
        self.interpolation = _check_choice("interpolation", interpolation, _INTERPOLATIONS)
        self.backtrace = _check_choice("backtrace", backtrace, _BACKTRACES)
        self.workers = workers
        self.h = 2.0 / self.n
        # the advection kernel's order; read the grid at other points with it (sample_velocity's
        # order=) so that a bicubic grid is not charged a bilinear read's error
        self.order = 1 if self.interpolation == "linear" else 3

        nodes, centres = _axis_coords(self.n, True), _axis_coords(self.n, False)
        # Advected unknowns: interior faces only (wall faces stay 0) and all cells.
        self._ux_pts = np.meshgrid(nodes[1:-1], centres, indexing="ij")
        self._uy_pts = np.meshgrid(centres, nodes[1:-1], indexing="ij")
        self._c_pts = np.meshgrid(centres, centres, indexing="ij")
        lam = neumann_eigenvalues(self.n, self.h)
        self._lam_neumann = lam  # m = 0..n-1, cell-centred Neumann
        self._lam_dirichlet = lam[1:]  # m = 1..n-1, interior nodes, Dirichlet

    # ---- bookkeeping ------------------------------------------------------------------

    @property
    def state_bytes(self) -> int:
        """Paper's memory count: ``n² × 3 channels (u_x, u_y, p) × 4`` bytes."""
        return grid_state_bytes(self.n, 3)

    @property
    def face_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Locations of all ``ux`` faces (n+1, n, 2) and all ``uy`` faces (n, n+1, 2)."""
        nodes, centres = _axis_coords(self.n, True), _axis_coords(self.n, False)
        return (
            np.stack(np.meshgrid(nodes, centres, indexing="ij"), axis=-1),
            np.stack(np.meshgrid(centres, nodes, indexing="ij"), axis=-1),
        )

    @property
    def cell_centres(self) -> np.ndarray:
        """Cell-centre locations, shape (n, n, 2)."""
        return evaluation_points(self.n)

    def initial_state(
        self,
        u0_fn: VelocityFn,
        density0_fn: ScalarFn | None = None,
        *,
        project: bool = True,
        t0: float = 0.0,
    ) -> GridState:
        """Sample ``u0_fn`` (points (..., 2) → velocities (..., 2)) on the faces.

        The wall faces are set to 0. With ``project=True`` (default) the sampled field is
        projected onto discretely divergence-free fields (a no-op, up to round-off, for
        fields such as Taylor–Green whose face samples are already discretely
        divergence-free). ``density0_fn`` (points → scalars) is sampled at the cell centres.
        """
        fx, fy = self.face_points
        ux = np.array(np.asarray(u0_fn(fx), dtype=np.float64)[..., 0])
        uy = np.array(np.asarray(u0_fn(fy), dtype=np.float64)[..., 1])
        ux[0, :] = ux[-1, :] = 0.0
        uy[:, 0] = uy[:, -1] = 0.0
        if project:
            ux, uy, _ = self.project(ux, uy)
        density = None
        if density0_fn is not None:
            density = np.array(np.asarray(density0_fn(self.cell_centres), dtype=np.float64))
        return GridState(ux, uy, np.zeros((self.n, self.n)), density, float(t0))

    # ---- sub-steps --------------------------------------------------------------------

    def project(self, ux: np.ndarray, uy: np.ndarray):
        r"""Discrete Helmholtz projection: returns ``(ux - ∂_x φ, uy - ∂_y φ, φ)`` with
        :math:`\nabla_h^2\phi = \nabla_h\cdot u` (Neumann walls, zero mean). The
        result's discrete divergence is zero up to round-off."""
        h = self.h
        phi = poisson_neumann_dct(_divergence(ux, uy, h), h, self.workers)
        ux = ux.copy()
        uy = uy.copy()
        ux[1:-1, :] -= (phi[1:, :] - phi[:-1, :]) / h
        uy[:, 1:-1] -= (phi[:, 1:] - phi[:, :-1]) / h
        return ux, uy, phi

    def diffuse(self, ux: np.ndarray, uy: np.ndarray, dt: float):
        r"""Implicit-Euler viscosity step :math:`(I - \nu\Delta t\nabla_h^2) u^{new} = u`.

        For ``ux``: DST-I along x over the interior faces (Dirichlet 0 on the walls
        x = ±1), DCT-II along y (free slip on y = ±1); symmetrically for ``uy``. Exact
        for the discrete 5-point Laplacian with those wall conditions.
        """
        if self.nu == 0.0:
            return ux, uy
        c = self.nu * dt
        w = self.workers

        def solve(inner, lam_normal, lam_tangent, normal_axis):
            hat = sfft.dst(inner, type=1, axis=normal_axis, norm="ortho", workers=w)
            hat = sfft.dct(hat, type=2, axis=1 - normal_axis, norm="ortho", workers=w)
            if normal_axis == 0:
                hat /= 1.0 - c * (lam_normal[:, None] + lam_tangent[None, :])
            else:
                hat /= 1.0 - c * (lam_tangent[:, None] + lam_normal[None, :])
            hat = sfft.idct(hat, type=2, axis=1 - normal_axis, norm="ortho", workers=w)
            return sfft.idst(hat, type=1, axis=normal_axis, norm="ortho", workers=w)

        ux = ux.copy()
        uy = uy.copy()
        ux[1:-1, :] = solve(ux[1:-1, :], self._lam_dirichlet, self._lam_neumann, 0)
        uy[:, 1:-1] = solve(uy[:, 1:-1], self._lam_dirichlet, self._lam_neumann, 1)
        return ux, uy

    def _departure(self, pts, v0, ux_pad, uy_pad, dt: float):
        """Back-traced departure points of the grid points ``pts`` (clamped to the box).

        ``v0`` is the velocity at ``pts`` themselves (bilinear interpolation there reduces
        to the component's own value and a 2- or 4-point average of the other one).
        """
        px, py = pts
        vx, vy = v0
        if self.backtrace == "rk2":
            mx = np.clip(px - 0.5 * dt * vx, -1.0, 1.0)
            my = np.clip(py - 0.5 * dt * vy, -1.0, 1.0)
            vx = _interpolate(ux_pad, "ux", self.n, mx, my, 1)
            vy = _interpolate(uy_pad, "uy", self.n, mx, my, 1)
        return np.clip(px - dt * vx, -1.0, 1.0), np.clip(py - dt * vy, -1.0, 1.0)

    def advect(self, state: GridState, dt: float, by: GridState | None = None):
        """Semi-Lagrangian step: returns ``(ux*, uy*, density*)``, ``state``'s velocity (and
        density) advected over ``dt`` along the velocity of ``by`` (default: ``state`` itself);
        density* is ``None`` if the state has none."""
        n, order = self.n, self.order
        by = state if by is None else by
        sux, suy = by.ux, by.uy
        ux_pad, uy_pad = _pad(sux, "ux"), _pad(suy, "uy")
        vx_pad, vy_pad = (ux_pad, uy_pad) if by is state else (_pad(state.ux, "ux"), _pad(state.uy, "uy"))
        ux = np.zeros_like(sux)
        uy = np.zeros_like(suy)
        # Velocity at the interior ux faces, the interior uy faces and the cell centres.
        at_ux = (sux[1:-1, :], 0.25 * (suy[:-1, :-1] + suy[1:, :-1] + suy[:-1, 1:] + suy[1:, 1:]))
        at_uy = (0.25 * (sux[:-1, :-1] + sux[1:, :-1] + sux[:-1, 1:] + sux[1:, 1:]), suy[:, 1:-1])
        dx, dy = self._departure(self._ux_pts, at_ux, ux_pad, uy_pad, dt)
        ux[1:-1, :] = _interpolate(vx_pad, "ux", n, dx, dy, order)
        dx, dy = self._departure(self._uy_pts, at_uy, ux_pad, uy_pad, dt)
        uy[:, 1:-1] = _interpolate(vy_pad, "uy", n, dx, dy, order)
        density = None
        if state.density is not None:
            at_c = (0.5 * (sux[1:, :] + sux[:-1, :]), 0.5 * (suy[:, 1:] + suy[:, :-1]))
            dx, dy = self._departure(self._c_pts, at_c, ux_pad, uy_pad, dt)
            density = _interpolate(_pad(state.density, "c"), "c", n, dx, dy, order)
        return ux, uy, density

    def step(self, state: GridState, dt: float) -> GridState:
        """One step of the solver's ``scheme``: Chorin (advect, (diffuse), solve the pressure
        Poisson, project) or advection–reflection (module docstring)."""
        dt = _check_dt(dt)
        if state.n != self.n:
            raise ValueError(f"state has n = {state.n}, solver has n = {self.n}")
        if self.scheme == "reflection":
            return self._reflection_step(state, dt)
        ux, uy, density = self.advect(state, dt)
        ux, uy = self.diffuse(ux, uy, dt)
        ux, uy, phi = self.project(ux, uy)
        return GridState(ux, uy, phi / dt, density, state.t + dt)

    def _reflection_step(self, state: GridState, dt: float) -> GridState:
        ax, ay, _ = self.advect(GridState(state.ux, state.uy, state.pressure, None, state.t), dt / 2)
        hx, hy, _ = self.project(ax, ay)
        half = GridState(hx, hy, state.pressure, None, state.t)
        reflected = GridState(2 * hx - ax, 2 * hy - ay, state.pressure, None, state.t)
        ux, uy, _ = self.advect(reflected, dt / 2, by=half)
        ux, uy, phi = self.project(ux, uy)
        density = None
        if state.density is not None:  # along u^{n+1/2} for the whole step (second order)
            _, _, density = self.advect(GridState(half.ux, half.uy, state.pressure, state.density, state.t), dt)
        # p = φ/(Δt/2): the second projection acts over half a step.
        return GridState(ux, uy, phi / (dt / 2), density, state.t + dt)

    # ---- driver -----------------------------------------------------------------------

    def run(
        self,
        u0_fn: VelocityFn | GridState,
        dt: float,
        steps: int,
        density0_fn: ScalarFn | None = None,
        save_every: int | None = None,
    ) -> GridEulerResult:
        """Advance ``steps`` steps of ``dt`` from ``u0_fn`` (a velocity function, or an
        initial :class:`GridState`).

        Saves the initial state, every ``save_every``-th state (``None``: none in
        between) and always the final one. ``wall_time`` covers the stepping only.
        """

        from insr.reference.steppers import GridFluidStepper
        from insr.simulate import SaveAt, simulate

        dt = _check_dt(dt)
        steps = _check_count("steps", steps, 0)
        if save_every is not None:
            save_every = _check_count("save_every", save_every, 1)
        stepper = GridFluidStepper(self, u0_fn, density0_fn)
        # The one time loop (insr.simulate): no run directory, no progress, no metrics.
        traj = simulate(stepper, dt=dt, steps=steps,
                        saveat=SaveAt(every=save_every or max(steps, 1)))
        states = [stepper.grid_state(s, t) for s, t in zip(traj.states, traj.ts)]
        wall = traj.metrics[-1]["wall_time"] - traj.metrics[0]["wall_time"]
        return GridEulerResult(
            times=np.array([s.t for s in states]),
            states=states,
            wall_time=wall,
            dt=dt,
            steps=steps,
            solver=self,
        )

    def sample_velocity(self, state: GridState, points, order: int = 1) -> np.ndarray:
        """Same as the module-level :func:`sample_velocity`."""
        return sample_velocity(state, points, order)
