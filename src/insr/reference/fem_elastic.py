r"""Linear finite elements for hyperelasticity: the classical reference of the
elastodynamics examples (Chen et al., ICML 2023, Sec. 5.3 compare against it).

Discretisation
--------------
P1 elements (triangles in 2D, tetrahedra in 3D) on a :class:`~insr.geometry.mesh.SimplexMesh`
rest shape with nodes :math:`X_i`; the unknowns are the deformed node positions
:math:`x_i = \varphi(X_i)`. On element ``e`` the deformation gradient is constant,

.. math::  F_e = D_s D_m^{-1}, \quad D_s = [x_1 - x_0, \dots, x_d - x_0],\
           D_m = [X_1 - X_0, \dots, X_d - X_0],

and the elastic energy is :math:`\sum_e |e|\,\Psi(F_e)` for any energy density
:math:`\Psi(F, \lambda, \mu)` of :mod:`insr.physics.elastic_energy` (``arap_volume``,
``stable_neo_hookean``, or your own function with that signature).

Time stepping (variational implicit Euler)
------------------------------------------
With lumped masses :math:`m_i = \rho \sum_{e \ni i} |e| / (d+1)`, body acceleration
:math:`b` (gravity) and :math:`\hat x = 2 x^n - x^{n-1} = x^n + \Delta t\, v^n`,

.. math::  x^{n+1} = \arg\min_x \; E(x) = \sum_i \frac{m_i}{2\Delta t^2}|x_i - \hat x_i|^2
           + \sum_e |e|\,\Psi(F_e(x)) - \sum_i m_i\, b\cdot x_i + E_c(x),

first order in time (backward Euler: :math:`v^{n+1} = (x^{n+1} - x^n)/\Delta t`,
:math:`M(v^{n+1} - v^n)/\Delta t = f(x^{n+1})`). The quasi-static mode drops the inertia
term (:meth:`ElasticFEM.solve_static`). Contact is a penalty against planes ``n.x >= c``
and spheres ``|x - c| >= r``, integrated with the nodal volumes :math:`V_i`:
:math:`E_c = \sum_i V_i \tfrac{k}{2}\max(0, \mathrm{penetration}(x_i))^2` -- the lumped
version of the volume integral the neural solver samples, so ``k`` has the same meaning
(units of energy per volume per length squared) in both and the penetration at rest
scales like (load) / ``k``. Dirichlet conditions fix chosen nodes or components to
prescribed positions (eliminated from the unknowns).

Solver
------
Newton's method on the free degrees of freedom: the gradient comes from ``jax.grad`` of
the total energy, the Hessian from ``jax.hessian`` of each element's energy (a
``(d+1)d x (d+1)d`` block, vmapped over elements) and of each node's contact energy,
assembled into a ``scipy.sparse`` CSR matrix through a precomputed scatter map. The
exact Newton step is taken whenever this matrix is positive definite (SuperLU in
symmetric mode without off-diagonal pivoting gives ``P K P^T = L D L^T``-like pivots
whose signs are the inertia); otherwise every block is projected onto the positive
semi-definite cone by clamping its negative eigenvalues (projected Newton, Teran et al.
2005), which always gives a descent direction. A backtracking Armijo line search on
``E`` (halving, ``c = 1e-4``) makes every step decrease the energy. Stopping: the
accepted step satisfies ``max |dx| <= xtol * diam`` or the free gradient dropped below
``gtol`` times its initial value. Everything is evaluated
in float64 (``jax.enable_x64`` is switched on locally, the global JAX setting is left
alone). Everything but the sparse factorisation scales linearly with the mesh size.
Measured on 2 shared CPU cores: 2D, 8.3k nodes (16.6k DOFs): about 0.3 s per Newton
iteration, 33k nodes: about 2 s; 3D, 6.4k nodes / 31k tetrahedra (19k DOFs): about
5 s per iteration, dominated by the SuperLU factorisation (no sparse Cholesky ships
with scipy). A well-resolved implicit step usually takes 1-5 iterations.
``NewtonOptions(linear_solver="cg")`` replaces the factorisation by block-Jacobi
preconditioned conjugate gradients (inexact Newton, same stopping rules), linear in the mesh
per product: on the drop's mesh refined once (10.7k tetrahedra, 7.2k DOFs) 33 s against
LU's 47 s for 10 steps with the same trajectory to 3e-9, and it runs the 86k-tetrahedron
level that SuperLU did not finish in 15 min (``benchmarks/drop_reference.py``).

Benchmarks
----------
:func:`stretch_benchmark_2d` sets up the paper's 2D stretch (quasi-static tension of a
rectangle, left edge clamped, right edge pulled) at any resolution and returns the
deformed nodes with an evaluator of :math:`\varphi` at arbitrary rest points, so that
solutions of different resolutions -- or a neural field -- are compared on one point
set with :func:`deformation_error`.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from insr.geometry.mesh import (
    SimplexMesh,
    element_volumes,
    interpolate_p1,
    rectangle_mesh,
)
from insr.physics.elastic_energy import (
    PlaneContact,
    SphereContact,
    arap_volume,
)

__all__ = [
    "ElasticFEM",
    "NewtonInfo",
    "NewtonOptions",
    "StretchResult",
    "deformation_error",
    "stretch_benchmark_2d",
    "stretch_eval_points",
]


@dataclasses.dataclass(frozen=True)
class NewtonOptions:
    """Newton solver settings.

    ``xtol``: stop when an accepted step moves no node by more than ``xtol`` times the
    mesh diameter. ``gtol``: or when the infinity norm of the free gradient drops below
    ``gtol`` times its value at the first iterate. ``hessian``: ``"auto"`` (default) takes
    the exact Newton step whenever the assembled Hessian is positive definite (checked by
    the pivots of a symmetric LU factorisation) and otherwise clamps the negative
    eigenvalues of every element/node Hessian block (projected Newton, always a descent
    direction); ``"projected"`` always projects (robust, but only linear convergence when
    the exact Hessian has large negative-curvature parts, e.g. the volume term of a
    nearly incompressible material under tension); ``"exact"`` never projects.
    ``armijo``/``max_backtracks``: backtracking line search.
    ``linear_solver``: ``"lu"`` (default) factorises the sparse Hessian (SuperLU; its fill-in
    makes 3D meshes beyond ~10⁴ nodes slow), ``"cg"`` solves it by conjugate gradients
    preconditioned with the inverse of each node's d×d diagonal block (memory and work per
    product linear in the mesh), to a relative residual of ``min(cg_rtol_max, ‖g‖/‖g₀‖)``
    (an inexact Newton method: the tolerance tightens as the gradient falls, so the outer
    iteration stays superlinear; the stopping rules on the gradient are the same as LU's).
    With ``hessian = "auto"`` a direction of negative curvature met by CG plays the role
    of LU's failed positive-definiteness check: the step is recomputed on the projected
    Hessian.  ``cg_max_iterations`` caps the products per solve.  Where projected Newton
    crawls (the paper's full stretch, third of four load steps: 46 projected LU iterations)
    the inexact steps can need more iterations than LU (there: over 60); dynamics, whose
    mass term keeps the Hessian positive definite, take the same iterations as LU.
    """

    max_iterations: int = 60
    xtol: float = 1e-10
    gtol: float = 1e-10
    armijo: float = 1e-4
    max_backtracks: int = 40
    hessian: str = "auto"
    warn: bool = True
    linear_solver: str = "lu"
    cg_rtol_max: float = 1e-2
    cg_max_iterations: int = 20000

    def __post_init__(self):
        if self.hessian not in ("auto", "exact", "projected"):
            raise ValueError(
                f"hessian must be 'auto', 'exact' or 'projected', got {self.hessian!r}"
            )
        if self.linear_solver not in ("lu", "cg"):
            raise ValueError(f"linear_solver must be 'lu' or 'cg', got {self.linear_solver!r}")
        if not 0 < self.cg_rtol_max < 1:
            raise ValueError(f"cg_rtol_max must be in (0, 1), got {self.cg_rtol_max!r}")
        if self.cg_max_iterations < 1:
            raise ValueError(f"cg_max_iterations must be ≥ 1, got {self.cg_max_iterations!r}")


@dataclasses.dataclass
class NewtonInfo:
    """Outcome of one Newton solve: ``iterations`` (Hessian solves), of which
    ``projected`` used the projected Hessian, ``cg_products`` (conjugate-gradient Hessian
    products over all solves; 0 with LU), total line-search halvings
    ``backtracks``, final energy, infinity norm of the free gradient, last step
    (infinity norm), wall time and the stopping reason."""

    converged: bool
    iterations: int
    energy: float
    grad_norm: float
    step_norm: float
    backtracks: int
    projected: int
    seconds: float
    message: str = ""
    cg_products: int = 0


# --------------------------------------------------------------------------------------
# jitted kernels (module level so compilations are shared between instances)
# --------------------------------------------------------------------------------------
def _element_energy(xe, Dm_inv, vol, lam, mu, psi):
    Ds = (xe[1:] - xe[0]).T
    return vol * psi(Ds @ Dm_inv, lam, mu)


def simplex_rule(d: int, n: int):
    """Stroud's conical product rule on the d-simplex (d = 2, 3) with n points per axis:
    ``(barycentric coordinates (nᵈ, d+1), weights (nᵈ,))``, weights summing to 1, exact for
    polynomials of degree ≤ 2n − 1.  Collapsed coordinates x₁ = u, x₂ = v(1 − u),
    x₃ = w(1 − u)(1 − v) with Jacobian (1 − u)^{d−1}(1 − v)^{d−2}: Gauss–Jacobi points in u and v
    carry that Jacobian as their weight function, Gauss–Legendre in the last axis (Stroud 1971)."""
    from scipy.special import roots_jacobi

    if d not in (2, 3) or n < 1:
        raise ValueError(f"simplex_rule needs d in (2, 3) and n ≥ 1, got d={d}, n={n}")
    axes = []
    for alpha in range(d - 1, -1, -1):  # exponents of (1 − ·): d−1, …, 0
        x, w = roots_jacobi(n, alpha, 0)
        axes.append(((x + 1) / 2, w))
    grids = np.meshgrid(*[a for a, _ in axes], indexing="ij")
    wgrids = np.meshgrid(*[w for _, w in axes], indexing="ij")
    u = [a.ravel() for a in grids]
    wt = np.prod([a.ravel() for a in wgrids], axis=0)
    coords = [u[0], u[1] * (1 - u[0])]
    if d == 3:
        coords.append(u[2] * (1 - u[0]) * (1 - u[1]))
    lam = np.stack([1 - sum(coords)] + coords, axis=1)
    return lam, wt / wt.sum()


def _element_contact(xe, vol, rule, contacts):
    """|e|·Σ_q w_q Σ_c k/2·max(0, p_c(x_q))², x_q = Σ_a λ_qa x_a: the penalty integrated over the element."""
    lam, wts = (jnp.asarray(a, xe.dtype) for a in rule)
    xq = lam @ xe
    return vol * jnp.sum(wts * sum(c.energy_density(xq) for c in contacts))


def _potential(x, x_hat, w, cells, Dm_inv, vol, node_vol, mass, b, lam, mu, psi, contacts, rule=None):
    xe = x[cells]
    E = jnp.sum(jax.vmap(_element_energy, in_axes=(0, 0, 0, None, None, None))(
        xe, Dm_inv, vol, lam, mu, psi))
    E = E - jnp.sum(mass * (x @ b))
    E = E + 0.5 * w * jnp.sum(mass[:, None] * (x - x_hat) ** 2)
    if contacts and rule is not None:
        E = E + jnp.sum(jax.vmap(_element_contact, in_axes=(0, 0, None, None))(xe, vol, rule.arrays, contacts))
    else:
        for c in contacts:
            E = E + jnp.sum(node_vol * c.energy_density(x))
    return E



def _pcg(K, b, apply_m, rtol, max_iterations):
    """Preconditioned conjugate gradients for ``K x = b`` from ``x = 0`` (Hestenes–Stiefel;
    Saad, *Iterative Methods*, Alg. 9.1): ``(x, products, negative_curvature)``.  Stops at
    ``‖r‖ ≤ rtol ‖b‖``, after ``max_iterations`` products, or when a search direction has
    ``pᵀKp ≤ 0`` (then ``x`` is the last iterate before it)."""
    x = np.zeros_like(b)
    r = b.copy()
    bnorm = float(np.linalg.norm(b))
    if bnorm == 0.0:
        return x, 0, False
    z = apply_m(r)
    p = z.copy()
    rz = float(r @ z)
    for k in range(1, max_iterations + 1):
        kp = K @ p
        curvature = float(p @ kp)
        if not curvature > 0:
            return x, k, True
        alpha = rz / curvature
        x += alpha * p
        r -= alpha * kp
        if np.linalg.norm(r) <= rtol * bnorm:
            return x, k, False
        z = apply_m(r)
        rz, rz_old = float(r @ z), rz
        p = z + (rz / rz_old) * p
    return x, max_iterations, False


class _Rule:
    """A quadrature rule as a hashable static argument of the jitted kernels."""

    def __init__(self, d: int, n: int):
        self.key = (d, n)
        self.arrays = simplex_rule(d, n)

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        return isinstance(other, _Rule) and other.key == self.key


_potential_jit = jax.jit(_potential, static_argnames=("psi", "contacts", "rule"))
_grad_jit = jax.jit(jax.grad(_potential), static_argnames=("psi", "contacts", "rule"))


def _psd(H):
    w, Q = jnp.linalg.eigh(0.5 * (H + jnp.swapaxes(H, -1, -2)))
    return (Q * jnp.maximum(w, 0.0)[..., None, :]) @ jnp.swapaxes(Q, -1, -2)


@jax.jit
def _deformation_gradients(x, cells, Dm_inv):
    xe = x[cells]
    Ds = jnp.swapaxes(xe[:, 1:] - xe[:, :1], 1, 2)
    return Ds @ Dm_inv


def _hessian_blocks(x, cells, Dm_inv, vol, node_vol, lam, mu, psi, contacts, rule=None):
    m, k = cells.shape
    d = x.shape[1]
    xe = x[cells].reshape(m, k * d)
    consistent = bool(contacts) and rule is not None

    def elem(xf, Dinv, v):
        e = _element_energy(xf.reshape(k, d), Dinv, v, lam, mu, psi)
        if consistent:
            e = e + _element_contact(xf.reshape(k, d), v, rule.arrays, contacts)
        return e

    He = jax.vmap(jax.hessian(elem))(xe, Dm_inv, vol)
    if not contacts or consistent:
        return He, None

    def node(xi, vi):
        return vi * sum(c.energy_density(xi) for c in contacts)

    return He, jax.vmap(jax.hessian(node))(x, node_vol)


_hessian_jit = jax.jit(_hessian_blocks, static_argnames=("psi", "contacts", "rule"))
_psd_jit = jax.jit(_psd)


# --------------------------------------------------------------------------------------
# the solver
# --------------------------------------------------------------------------------------
class ElasticFEM:
    r"""P1 finite elements for hyperelastic statics and implicit-Euler dynamics.

    Parameters
    ----------
    mesh : rest shape (validated :class:`SimplexMesh`, positively oriented elements).
    lam, mu : the two weights of ``energy`` (for ``arap_volume`` / ``stable_neo_hookean``
        see :func:`~insr.physics.elastic_energy.arap_params_from_lame` /
        :func:`~insr.physics.elastic_energy.snh_params_from_lame` to match Lamé values).
    energy : ``psi(F, lam, mu) -> scalar`` energy density per rest volume (default
        :func:`~insr.physics.elastic_energy.arap_volume`; pass e.g.
        ``functools.partial(arap_volume, signed=True)`` for variants).
    density : mass density ``rho`` (lumped masses ``rho * V_i``).
    gravity : body acceleration ``b`` (length ``d``) or ``None``.
    fixed_nodes : indices of nodes whose every component is prescribed.
    fixed_mask : optional ``(n, d)`` bool array of prescribed components (combined with
        ``fixed_nodes`` by "or"), e.g. rollers.
    contacts : :class:`PlaneContact` / :class:`SphereContact` obstacles.
    options : :class:`NewtonOptions`.
    contact_quadrature : 0 (default): the contact penalty lumped at the nodes,
        Σ_i V_i k/2 max(0, p(x_i))²; n ≥ 1: integrated over each element with the n^d-point
        conical product rule (:func:`simplex_rule`).  Lumping charges a node's whole volume
        share with its penetration, so on coarse meshes it makes contact stiffer than the
        integral the neural solver samples; the element rule converges to that integral.
    """

    def __init__(
        self,
        mesh: SimplexMesh,
        lam: float,
        mu: float,
        *,
        energy: Callable = arap_volume,
        density: float = 1.0,
        gravity: Sequence[float] | None = None,
        fixed_nodes: Sequence[int] | None = None,
        fixed_mask: np.ndarray | None = None,
        contacts: Sequence[PlaneContact | SphereContact] = (),
        options: NewtonOptions | None = None,
        contact_quadrature: int = 0,
    ):
        if not isinstance(mesh, SimplexMesh):
            raise TypeError(f"mesh must be a SimplexMesh, got {type(mesh).__name__}")
        self.mesh = mesh
        d, n = mesh.dim, mesh.n_points
        self.dim = d
        self.lam = float(lam)
        self.mu = float(mu)
        self.energy = energy
        self.density = float(density)
        if not self.density > 0:
            raise ValueError(f"density must be > 0, got {density}")
        b = np.zeros(d) if gravity is None else np.asarray(gravity, dtype=np.float64)
        if b.shape != (d,):
            raise ValueError(f"gravity must have {d} components, got shape {b.shape}")
        self.gravity = b
        self.contacts = tuple(contacts)
        for c in self.contacts:
            if not isinstance(c, (PlaneContact, SphereContact)):
                raise TypeError(f"unsupported contact {c!r}")
            if c.dim != d:
                raise ValueError(f"contact {c!r} is {c.dim}D but the mesh is {d}D")
        self.options = options or NewtonOptions()
        if isinstance(contact_quadrature, bool) or int(contact_quadrature) != contact_quadrature \
                or contact_quadrature < 0:
            raise ValueError(f"contact_quadrature must be an integer ≥ 0, got {contact_quadrature!r}")
        self.contact_quadrature = int(contact_quadrature)
        self._rule = _Rule(d, self.contact_quadrature) if self.contact_quadrature else None

        X = mesh.points
        Dm = np.swapaxes(X[mesh.cells[:, 1:]] - X[mesh.cells[:, :1]], 1, 2)
        bad = np.flatnonzero(np.linalg.det(Dm) <= 0)
        if bad.size:
            raise ValueError(
                f"mesh has {bad.size} non-positively oriented element(s) (first: "
                f"{bad[:5].tolist()}); build it with validate_mesh()"
            )
        self._Dm_inv = np.linalg.inv(Dm)
        self.element_volumes = element_volumes(mesh)
        nv = np.zeros(n)
        np.add.at(nv, mesh.cells.ravel(), np.repeat(self.element_volumes / (d + 1), d + 1))
        self.nodal_volumes = nv
        self.nodal_masses = self.density * nv
        self.diameter = float(np.linalg.norm(X.max(0) - X.min(0)))

        mask = np.zeros((n, d), dtype=bool)
        if fixed_nodes is not None:
            idx = np.asarray(fixed_nodes, dtype=np.int64).ravel()
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise ValueError(f"fixed_nodes must be in [0, {n}), got {idx.min()}..{idx.max()}")
            mask[idx] = True
        if fixed_mask is not None:
            fm = np.asarray(fixed_mask, dtype=bool)
            if fm.shape != (n, d):
                raise ValueError(f"fixed_mask must have shape {(n, d)}, got {fm.shape}")
            mask |= fm
        self.fixed_mask = mask
        self._free = ~mask.ravel()
        self._build_pattern()

    # ----------------------------------------------------------------------------------
    @property
    def state_bytes(self) -> int:
        """Bytes of state as the paper counts them: nodes x d x 4 (float32 positions)."""
        return self.mesh.n_points * self.dim * 4

    @property
    def n_free_dofs(self) -> int:
        return int(self._free.sum())

    def _build_pattern(self):
        """Scatter map from element/node Hessian entries to the CSR data of the reduced
        (free-DOF) stiffness matrix, built once."""
        d, n = self.dim, self.mesh.n_points
        cells = self.mesh.cells
        k = (d + 1) * d
        edofs = (cells[:, :, None] * d + np.arange(d)).reshape(-1, k)
        ndofs = np.arange(n * d).reshape(n, d)
        red = -np.ones(n * d, dtype=np.int64)
        red[self._free] = np.arange(self.n_free_dofs)
        nf = self.n_free_dofs
        self._red = red

        def entries(dofs):
            r = np.broadcast_to(dofs[:, :, None], dofs.shape + (dofs.shape[1],)).ravel()
            c = np.broadcast_to(dofs[:, None, :], dofs.shape + (dofs.shape[1],)).ravel()
            return red[r], red[c]

        er, ec = entries(edofs)
        nr, nc = entries(ndofs)
        dr = red[np.arange(n * d)]
        rows = np.concatenate([er, nr, dr])
        cols = np.concatenate([ec, nc, dr])
        keep = (rows >= 0) & (cols >= 0)
        key = rows[keep] * max(nf, 1) + cols[keep]
        uniq, inv = np.unique(key, return_inverse=True)
        self._keep = keep
        self._scatter = inv
        self._csr_cols = (uniq % max(nf, 1)).astype(np.int32)
        counts = np.bincount((uniq // max(nf, 1)).astype(np.int64), minlength=nf)
        self._csr_indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        self._n_elem_entries = er.size
        self._n_node_entries = nr.size
        self._nnz = uniq.size

    def _assemble(self, He, Hn, mass_diag):
        vals = [np.asarray(He).ravel()]
        vals.append(
            np.zeros(self._n_node_entries) if Hn is None else np.asarray(Hn).ravel()
        )
        vals.append(mass_diag)
        v = np.concatenate(vals)[self._keep]
        data = np.bincount(self._scatter, weights=v, minlength=self._nnz)
        nf = self.n_free_dofs
        return sp.csr_matrix((data, self._csr_cols, self._csr_indptr), shape=(nf, nf))

    # ----------------------------------------------------------------------------------
    def _args(self):
        return (
            jnp.asarray(self.mesh.cells),
            jnp.asarray(self._Dm_inv),
            jnp.asarray(self.element_volumes),
            jnp.asarray(self.nodal_volumes),
            jnp.asarray(self.nodal_masses),
            jnp.asarray(self.gravity),
        )

    def _check_x(self, x, name="x"):
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.mesh.n_points, self.dim):
            raise ValueError(f"{name} must have shape {(self.mesh.n_points, self.dim)}, got {x.shape}")
        return x

    def deformation_gradients(self, x) -> np.ndarray:
        """Per-element ``F_e = D_s D_m^{-1}``, shape ``(m, d, d)``."""
        x = self._check_x(x)
        with jax.enable_x64(True):
            return np.asarray(
                _deformation_gradients(jnp.asarray(x), jnp.asarray(self.mesh.cells), jnp.asarray(self._Dm_inv))
            )

    def elastic_energy(self, x) -> float:
        r""":math:`\sum_e |e| \Psi(F_e(x))`."""
        x = self._check_x(x)
        with jax.enable_x64(True):
            cells, Dm_inv, vol, node_vol, mass, _ = self._args()
            zero = jnp.zeros(self.dim)
            return float(
                _potential_jit(
                    jnp.asarray(x), jnp.asarray(x), 0.0, cells, Dm_inv, vol, node_vol,
                    jnp.zeros_like(mass), zero, self.lam, self.mu, psi=self.energy, contacts=(),
                )
            )

    def potential(self, x, *, x_hat=None, dt: float | None = None) -> float:
        """Total incremental potential ``E(x)`` (without inertia when ``dt`` is None)."""
        x = self._check_x(x)
        w = 0.0 if dt is None else 1.0 / float(dt) ** 2
        xh = x if x_hat is None else self._check_x(x_hat, "x_hat")
        with jax.enable_x64(True):
            return float(self._energy_fn(w, xh)(x))

    def _energy_fn(self, w, x_hat):
        args = self._args()
        xh = jnp.asarray(x_hat)

        def f(x):
            return _potential_jit(
                jnp.asarray(x), xh, w, *args, self.lam, self.mu,
                psi=self.energy, contacts=self.contacts, rule=self._rule,
            )

        return f

    # ----------------------------------------------------------------------------------
    def _newton(self, x0, x_hat, w):
        opt = self.options
        t0 = time.perf_counter()
        free = self._free
        args = self._args()
        cells, Dm_inv, vol, node_vol, _, _ = args
        xh = jnp.asarray(x_hat)
        mass_diag = w * np.repeat(self.nodal_masses, self.dim)
        kw = dict(psi=self.energy, contacts=self.contacts, rule=self._rule)

        def energy(x):
            return float(_potential_jit(jnp.asarray(x), xh, w, *args, self.lam, self.mu, **kw))

        def gradient(x):
            g = _grad_jit(jnp.asarray(x), xh, w, *args, self.lam, self.mu, **kw)
            return np.asarray(g).ravel()[free]

        x = x0.copy()
        E = energy(x)
        g = gradient(x)
        g0 = float(np.max(np.abs(g))) if g.size else 0.0
        gnorm, step = g0, np.inf
        it = backtracks = n_projected = cg_products = 0
        converged = g.size == 0 or g0 == 0.0
        message = "zero gradient" if converged else ""
        while not converged and it < opt.max_iterations:
            it += 1
            He, Hn = _hessian_jit(
                jnp.asarray(x), cells, Dm_inv, vol, node_vol, self.lam, self.mu, **kw
            )
            K = self._assemble(He, Hn, mass_diag)
            if opt.linear_solver == "cg":
                rtol = min(opt.cg_rtol_max, gnorm / g0)
                if opt.hessian == "projected":
                    K = self._assemble(_psd_jit(He), None if Hn is None else _psd_jit(Hn), mass_diag)
                    n_projected += 1
                p, products, negative = self._cg_direction(K, -g, rtol, semidefinite=opt.hessian == "projected")
                cg_products += products
                if negative and opt.hessian == "auto":  # as LU's failed check: the projected step
                    K = self._assemble(_psd_jit(He), None if Hn is None else _psd_jit(Hn), mass_diag)
                    p, products, _ = self._cg_direction(K, -g, rtol, semidefinite=True)
                    cg_products += products
                    n_projected += 1
            else:
                p = None
                if opt.hessian in ("auto", "exact"):
                    # exact Newton step whenever the assembled Hessian is positive definite
                    p = self._solve_if_pd(K, -g)
                    if p is None and opt.hessian == "exact":
                        p = self._solve(K, -g)
                if p is None:
                    He = _psd_jit(He)
                    Hn = None if Hn is None else _psd_jit(Hn)
                    K = self._assemble(He, Hn, mass_diag)
                    p = self._solve(K, -g)
                    n_projected += 1
            slope = float(g @ p)
            if not np.isfinite(slope) or slope >= 0:  # safeguard: scaled gradient step
                p = -g / np.maximum(np.abs(K.diagonal()), 1e-300)
                slope = float(g @ p)
            alpha, accepted = 1.0, False
            for _ in range(opt.max_backtracks):
                xt = x.copy()
                xt.reshape(-1)[free] += alpha * p
                Et = energy(xt)
                if np.isfinite(Et) and Et <= E + opt.armijo * alpha * slope:
                    accepted = True
                    break
                alpha *= 0.5
                backtracks += 1
            if not accepted:
                # no decrease at round-off level: converged if the gradient is tiny
                converged = gnorm <= 1e-6 * g0
                message = "line search stalled at round-off" if converged else "line search failed"
                break
            x, E = xt, Et
            step = alpha * float(np.max(np.abs(p)))
            g = gradient(x)
            gnorm = float(np.max(np.abs(g)))
            if step <= opt.xtol * self.diameter:
                converged, message = True, "step below xtol"
            elif gnorm <= opt.gtol * g0:
                converged, message = True, "gradient below gtol"
        if not converged and not message:
            message = "maximum number of iterations reached"
        info = NewtonInfo(
            converged=bool(converged), iterations=it, energy=E, grad_norm=gnorm,
            step_norm=float(step), backtracks=backtracks, projected=int(n_projected),
            seconds=time.perf_counter() - t0, message=message, cg_products=cg_products,
        )
        if not converged and opt.warn:
            warnings.warn(f"Newton did not converge: {message} ({info})", RuntimeWarning, stacklevel=3)
        return x, info

    def _cg_direction(self, K, rhs, rtol, *, semidefinite: bool):
        """Newton direction by block-Jacobi preconditioned CG on ``K p = rhs``:
        ``(p, products, negative_curvature)``.  A ``semidefinite`` (projected) ``K`` whose
        null modes stop CG (statics: rigid motions) is shifted by 1e-10 × its mean diagonal
        and solved again.  Otherwise, at a direction of non-positive curvature the iterate
        reached so far is returned (a descent direction: Steihaug's rule), or the
        preconditioned right-hand side if CG stopped at its first product."""
        apply_m = self._block_jacobi(K)
        p, products, negative = _pcg(K, rhs, apply_m, rtol, self.options.cg_max_iterations)
        if negative and semidefinite:
            K = K + (1e-10 * float(np.abs(K.diagonal()).mean())) * sp.identity(K.shape[0], format="csr")
            apply_m = self._block_jacobi(K)
            p, more, negative = _pcg(K, rhs, apply_m, rtol, self.options.cg_max_iterations)
            products += more
        if negative and not np.any(p):
            p = apply_m(rhs)
        return p, products, negative

    def _block_jacobi(self, K):
        """``r ↦ B⁻¹ r`` with B the d×d diagonal blocks of ``K`` per node (free components
        only; a node's fixed components are left out of its block)."""
        d, nf = self.dim, K.shape[0]
        red = self._red.reshape(-1, d)  # reduced index of every (node, component), −1 if fixed
        rows = np.repeat(red, d, axis=1).reshape(-1, d, d)
        cols = np.tile(red, (1, d)).reshape(-1, d, d)
        ok = (rows >= 0) & (cols >= 0)
        blocks = np.zeros(rows.shape)
        blocks[ok] = np.asarray(K[rows[ok], cols[ok]]).ravel()
        eye = np.broadcast_to(np.eye(d), blocks.shape)
        fixed = np.broadcast_to((red < 0)[:, :, None] | (red < 0)[:, None, :], blocks.shape)
        blocks = np.where(fixed, eye, blocks)
        inv = np.linalg.inv(blocks)
        free = red >= 0

        def apply(r):
            z = np.zeros(red.shape)
            z[free] = r[red[free]]
            z = np.einsum("nij,nj->ni", inv, z)
            out = np.empty(nf)
            out[red[free]] = z[free]
            return out

        return apply

    @staticmethod
    def _solve_if_pd(K, rhs):
        """Solve ``K p = rhs`` if ``K`` is positive definite, else return None.

        SuperLU in symmetric mode with no off-diagonal pivoting computes
        ``P K P^T = L U`` with ``U = D L^T``; by Sylvester's law of inertia ``K`` is
        positive definite iff every pivot ``D_ii`` is positive."""
        if K.shape[0] == 0:
            return np.zeros(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", spla.MatrixRankWarning)
                lu = spla.splu(
                    K.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                    options=dict(SymmetricMode=True),
                )
        except RuntimeError:
            return None
        if not np.array_equal(lu.perm_r, lu.perm_c):
            return None
        piv = lu.U.diagonal()
        if not np.all(piv > 0):
            return None
        p = lu.solve(rhs)
        return p if np.all(np.isfinite(p)) else None

    @classmethod
    def _solve(cls, K, rhs):
        """Solve with a positive semi-definite ``K`` (projected Hessian): symmetric
        factorisation of ``K + reg * mean(diag K) * I`` for growing ``reg`` (a zero or
        tiny shift suffices unless ``K`` has null modes, e.g. rigid motions of an
        unconstrained static problem). An indefinite ``K`` (``hessian="exact"``) falls back
        to a general pivoting LU. Last resort: a diagonally scaled gradient step."""
        n = K.shape[0]
        diag = np.abs(K.diagonal())
        scale = float(diag.mean()) if n else 1.0
        eye = sp.identity(n, format="csr")
        for reg in (0.0, 1e-12, 1e-10, 1e-8, 1e-6, 1e-4):
            p = cls._solve_if_pd(K if reg == 0.0 else K + (reg * scale) * eye, rhs)
            if p is not None:
                return p
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", spla.MatrixRankWarning)
                p = spla.splu(K.tocsc(), permc_spec="MMD_AT_PLUS_A").solve(rhs)
            if np.all(np.isfinite(p)):
                return p
        except RuntimeError:  # exactly singular
            pass
        return rhs / np.maximum(diag, 1e-300)

    def _impose(self, x, fixed_positions):
        if fixed_positions is None:
            return x
        fp = self._check_x(fixed_positions, "fixed_positions")
        x = x.copy()
        x[self.fixed_mask] = fp[self.fixed_mask]
        return x

    # ----------------------------------------------------------------------------------
    def solve_static(self, *, x0=None, fixed_positions=None):
        """Quasi-static equilibrium: minimise elastic + gravity + contact energy.

        ``x0``: initial guess ``(n, d)`` (default: rest positions). ``fixed_positions``:
        ``(n, d)`` array whose entries at the prescribed components are imposed (default:
        those of ``x0``). Returns ``(x, NewtonInfo)``. Without Dirichlet conditions the
        problem has rigid-body null modes; the linear solver then adds a tiny
        regularisation.
        """
        x = self.mesh.points.copy() if x0 is None else self._check_x(x0, "x0").copy()
        x = self._impose(x, fixed_positions)
        with jax.enable_x64(True):
            return self._newton(x, x, 0.0)

    def step(self, x_n, x_prev, dt: float, *, fixed_positions=None):
        """One implicit-Euler step: minimise ``E(x)`` with ``x_hat = 2 x_n - x_prev``.

        ``fixed_positions``: prescribed positions at time ``n + 1`` (default: the fixed
        components keep their values in ``x_n``). Returns ``(x_{n+1}, NewtonInfo)``.
        """
        dt = float(dt)
        if not dt > 0:
            raise ValueError(f"dt must be > 0, got {dt}")
        x_n = self._check_x(x_n, "x_n")
        x_prev = self._check_x(x_prev, "x_prev")
        x_hat = 2.0 * x_n - x_prev
        guess = x_hat + dt**2 * self.gravity
        guess[self.fixed_mask] = x_n[self.fixed_mask]
        guess = self._impose(guess, fixed_positions)
        with jax.enable_x64(True):
            return self._newton(guess, x_hat, 1.0 / dt**2)

    def simulate(
        self,
        dt: float,
        n_steps: int,
        *,
        x0=None,
        v0=None,
        fixed_positions: Callable[[float], np.ndarray] | None = None,
        callback: Callable[[int, np.ndarray, NewtonInfo], None] | None = None,
    ):
        """Run ``n_steps`` implicit-Euler steps from positions ``x0`` (default: rest) and
        velocity ``v0`` (``(n, d)`` or ``(d,)``, default 0), i.e. ``x_{-1} = x0 - dt v0``.
        ``fixed_positions(t)`` returns the prescribed positions at time ``t``.
        Returns ``(trajectory (n_steps + 1, n, d), [NewtonInfo, ...])``.  The steps run in
        :func:`insr.simulate.simulate` (:class:`insr.reference.steppers.FEMStepper`; use that
        directly for progress, checkpoints and resume)."""

        from insr.reference.steppers import FEMStepper
        from insr.simulate import simulate

        x = self.mesh.points.copy() if x0 is None else self._check_x(x0, "x0").copy()
        stepper = FEMStepper(self, x0=x, v0=v0, fixed_positions=fixed_positions)

        def after_step(s, t, state, row):  # the caller's callback sees the steps, not the initial state
            if s > 0:
                callback(s, state["x"], FEMStepper.newton_info(row))

        cb = [] if callback is None else [after_step]
        # The one time loop (insr.simulate); every state is kept (the trajectory is returned).
        run = simulate(stepper, dt=dt, steps=int(n_steps), callbacks=cb)
        traj = [np.asarray(s["x"]) for s in run.states]
        infos = [FEMStepper.newton_info(row) for row in run.metrics[1:]]
        return np.stack(traj), infos


# --------------------------------------------------------------------------------------
# 2D stretch benchmark
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class StretchResult:
    """Solution of :func:`stretch_benchmark_2d`: the mesh, the deformed nodes ``x``,
    the Newton record of each load step, wall time and ``state_bytes``."""

    mesh: SimplexMesh
    x: np.ndarray
    infos: list
    seconds: float
    state_bytes: int

    def phi(self, points) -> np.ndarray:
        """Deformation ``phi(X)`` at rest points ``(N, 2)`` by P1 (barycentric)
        interpolation of the nodal positions."""
        return interpolate_p1(self.mesh, self.x, points)

    @property
    def converged(self) -> bool:
        return all(i.converged for i in self.infos)


def stretch_benchmark_2d(
    n: int = 16,
    *,
    lo=(-1.0, -1.0),
    hi=(1.0, 1.0),
    displacement: float = 2.0,
    lam: float = 1.0,
    mu: float = 1e3,
    energy: Callable = arap_volume,
    load_steps: int = 4,
    crossed: bool = True,
    options: NewtonOptions | None = None,
) -> StretchResult:
    r"""Quasi-static 2D stretch at mesh resolution ``n`` (squares per side).

    Setup (the paper's ``elasticity2Dstretch.sh``): rest domain ``[-1, 1]^2``, energy
    :func:`~insr.physics.elastic_energy.arap_volume` with ``lam = 1`` (``ratio_arap``)
    and ``mu = 1e3`` (``ratio_volume``), no gravity, no inertia; the left edge
    ``X_0 = lo_0`` is clamped (``phi = X``) and the right edge ``X_0 = hi_0`` is moved by
    ``(displacement, 0)`` with ``displacement = 2`` (``constraint_right_offset_x``); top
    and bottom are traction free. The paper imposes the edges by a penalty, we impose them
    exactly.

    Mesh: :func:`~insr.geometry.mesh.rectangle_mesh` with ``n x n`` squares. This
    material is nearly incompressible (small-strain Poisson ratio ``2000 / 4002 =
    0.49975``), for which P1 triangles on the usual one-diagonal mesh (``crossed=False``)
    lock. Measured here against a ``crossed`` ``n = 128`` solution (33k nodes), RMS error
    on ``stretch_eval_points(64)``:

    ============  ======  ======  ======  ======
    n             8       16      32      64
    ============  ======  ======  ======  ======
    crossed       0.104   0.035   0.0063  0.0011   (145 / 545 / 2113 / 8321 nodes)
    one diagonal  0.44    0.24    0.16    0.073    (81 / 289 / 1089 / 4225 nodes)
    ============  ======  ======  ======  ======

    so the default is ``crossed=True`` (four triangles per square around a centre node);
    ``crossed=False`` is the plain one-diagonal baseline (the paper reports error 0.199
    for "FEM of the same memory" without naming its mesh). Locked meshes also make Newton
    slow (up to hundreds of iterations at ``n <= 16``).

    Solved from the affine guess ``phi(X) = X + displacement (X_0 - lo_0) / (hi_0 - lo_0)
    e_0`` in ``load_steps`` increments of the displacement (each warm-started by the
    previous solution plus the affine increment); ``options`` defaults to
    ``NewtonOptions(max_iterations=200)``.
    """
    mesh = rectangle_mesh(lo, hi, n, crossed=crossed)
    X = mesh.points
    L = float(hi[0] - lo[0])
    tol = 1e-12 * L
    left = np.flatnonzero(np.abs(X[:, 0] - lo[0]) <= tol)
    right = np.flatnonzero(np.abs(X[:, 0] - hi[0]) <= tol)
    fem = ElasticFEM(
        mesh, lam, mu, energy=energy, fixed_nodes=np.concatenate([left, right]),
        options=options if options is not None else NewtonOptions(max_iterations=200),
    )

    from insr.reference.steppers import FEMStepper
    from insr.simulate import SaveAt, simulate

    t0 = time.perf_counter()
    ramp = (X[:, 0] - lo[0]) / L
    load_steps = max(1, int(load_steps))
    du = displacement / load_steps

    def affine_increment(x, t, dt):  # exact on both clamped edges
        x = x.copy()
        x[:, 0] += du * ramp
        return x

    # Load stepping in the one time loop: "time" is the load fraction, one static solve per step.
    stepper = FEMStepper(fem, quasi_static=True, predictor=affine_increment)
    run = simulate(stepper, dt=1.0 / load_steps, steps=load_steps,
                   saveat=SaveAt(every=load_steps))
    x = np.asarray(run.final_state["x"])
    infos = [FEMStepper.newton_info(row) for row in run.metrics[1:]]
    return StretchResult(
        mesh=mesh, x=x, infos=infos, seconds=time.perf_counter() - t0,
        state_bytes=fem.state_bytes,
    )


def stretch_eval_points(n: int = 64, lo=(-1.0, -1.0), hi=(1.0, 1.0)) -> np.ndarray:
    """Cell-centred ``n x n`` grid of rest points in the rectangle (interior, so every
    mesh of the rectangle contains them): the common evaluation set of the stretch
    benchmark."""
    t = (np.arange(n) + 0.5) / n
    xs = lo[0] + (hi[0] - lo[0]) * t
    ys = lo[1] + (hi[1] - lo[1]) * t
    return np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)


def deformation_error(phi, phi_ref, points) -> float:
    r"""Root-mean-square distance between two deformations on a point set:
    :math:`\sqrt{\tfrac{1}{N}\sum_j |\varphi(X_j) - \varphi_{ref}(X_j)|^2}`.
    ``phi``/``phi_ref`` are callables ``(N, d) -> (N, d)`` or arrays of their values."""
    a = np.asarray(phi(points) if callable(phi) else phi, dtype=np.float64)
    b = np.asarray(phi_ref(points) if callable(phi_ref) else phi_ref, dtype=np.float64)
    return float(np.sqrt(np.mean(np.sum((a - b) ** 2, axis=-1))))
