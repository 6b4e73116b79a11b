"""The classical reference solvers behind the stepper protocol (:class:`insr.stepper.Stepper`).

:func:`insr.simulate.simulate` is the one time loop of the package: wrapped here, the MAC-grid
fluid solver, the P1 FEM elasticity solver (dynamic and load-stepped), the finite-difference
advection scheme and the ETDRK4 spectral solver run through it too, so they get the same
progress bar, atomic checkpoints, resume, ``metrics.csv`` and saved states as the neural runs
(``GridEuler2D.run``, ``ElasticFEM.simulate``, ``stretch_benchmark_2d``,
``advection_fd_midpoint`` and ``etdrk4`` are thin calls of it).  Their states are dicts of
NumPy arrays (float64; complex128 Fourier coefficients for the spectral solver); they are
deterministic (``needs_key = False``: simulate derives no keys for them); their steps report
no solver iterations (direct steps) or the Newton solve's (FEM, without a ``loss``: the loop's
loss-jump judge does not apply).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from insr.observers import body_metrics, flow_metrics
from insr.reference.advection_fd import midpoint_matrix, midpoint_step
from insr.reference.fem_elastic import ElasticFEM, NewtonInfo
from insr.reference.fluid_grid import GridEuler2D, GridState, sample_density, sample_velocity
from insr.reference.spectral import PeriodicGrid, etdrk4_coefficients, etdrk4_step

__all__ = ["AdvectionFDStepper", "FEMStepper", "GridFluidStepper", "SpectralStepper", "fem_body_observer",
           "grid_flow_observer"]

_DIRECT = {"iterations": 0, "loss_initial": 0.0, "loss": 0.0, "converged": True}


class GridFluidStepper:
    """:class:`~insr.reference.fluid_grid.GridEuler2D` from ``velocity0`` (and ``density0``), or from
    a given :class:`~insr.reference.fluid_grid.GridState` passed as ``velocity0``.

    The state is ``{"ux", "uy", "p"[, "rho"]}`` (the MAC grid's faces, the pressure of the last
    projection, the cell densities); :meth:`grid_state` turns it back into a
    :class:`~insr.reference.fluid_grid.GridState`.  ``observers`` are ``f(grid_state, t) -> dict``
    merged into each step's metrics (none by default: a fine reference run pays for no
    diagnostics it does not need).  :meth:`evaluate` samples u, v (bicubic for a cubic solver,
    else bilinear), p and ρ at points of [−1, 1]².
    """

    dim = 2
    needs_key = False

    def __init__(self, solver: GridEuler2D, velocity0: Callable, density0: Callable | None = None, *,
                 observers: Sequence[Callable] = ()):
        self.solver, self.velocity0, self.density0 = solver, velocity0, density0
        self.observers = tuple(observers)
        given = velocity0 if isinstance(velocity0, GridState) else None
        self.t0 = given.t if given is not None else 0.0  # simulate's clock starts at 0: t = t0 + its t
        self.has_density = density0 is not None or (given is not None and given.density is not None)
        self.channel_names = ("u", "v", "p", "rho") if self.has_density else ("u", "v", "p")
        n = solver.n
        self._template = {"ux": np.zeros((n + 1, n)), "uy": np.zeros((n, n + 1)), "p": np.zeros((n, n))}
        if self.has_density:
            self._template["rho"] = np.zeros((n, n))

    def state_template(self) -> dict:
        return self._template

    def state_bytes(self) -> int:
        return self.solver.state_bytes

    @property
    def num_params(self) -> int:
        """Unknowns of the grid (faces, pressures, densities)."""
        return int(sum(a.size for a in self._template.values()))

    @staticmethod
    def _state(g: GridState) -> dict:
        out = {"ux": g.ux, "uy": g.uy, "p": g.pressure}
        if g.density is not None:
            out["rho"] = g.density
        return out

    def grid_state(self, state: dict, t: float) -> GridState:
        """The :class:`GridState` of ``state`` at simulate's time ``t`` (its own time t0 + t)."""
        return GridState(np.asarray(state["ux"]), np.asarray(state["uy"]), np.asarray(state["p"]),
                         None if "rho" not in state else np.asarray(state["rho"]), self.t0 + float(t))

    def initial_state(self, key=None):
        if isinstance(self.velocity0, GridState):
            return self._state(self.velocity0), dict(_DIRECT)
        return self._state(self.solver.initial_state(self.velocity0, self.density0)), dict(_DIRECT)

    def step(self, state, t, dt, key=None):
        return self._state(self.solver.step(self.grid_state(state, t), float(dt))), dict(_DIRECT)

    def evaluate(self, state, points, t=0.0) -> np.ndarray:
        g = self.grid_state(state, t or 0.0)
        pts = np.asarray(points, np.float64)
        order = self.solver.order
        cols = [sample_velocity(g, pts, order), self._sample_cells(g, g.pressure, pts, order)[:, None]]
        if self.has_density:
            cols.append(sample_density(g, pts, order)[:, None])
        return np.concatenate(cols, axis=1)

    @staticmethod
    def _sample_cells(g: GridState, values, pts, order):
        # the pressure lives where the density does (cell centres): sample it the same way
        return sample_density(dataclasses.replace(g, density=values), pts, order)

    def metrics(self, state, t) -> dict:
        out: dict = {}
        if self.observers:
            g = self.grid_state(state, t)
            for observe in self.observers:
                out.update(observe(g, t))
        return out


def grid_flow_observer(exact_velocity: Callable | None = None, reference: Callable | None = None) -> Callable:
    """The fluid metrics of :func:`insr.observers.flow_metrics` for a grid state, on its own n×n
    cell centres: the face velocities averaged to the cells, the discrete divergence, the node
    vorticity averaged to the cells; errors against ``exact_velocity(points, t)`` or
    ``reference(t)`` (a dict with ``"u"`` at the same cell centres, or None) — the same columns a
    :class:`insr.fluids.FluidStepper` run reports."""
    from insr.reference.fluid_grid import cell_velocity, divergence, evaluation_points, vorticity

    def observe(g: GridState, t) -> dict:
        w = vorticity(g)
        w_cells = 0.25 * (w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1])
        ref = None
        if exact_velocity is not None:
            ref = exact_velocity(evaluation_points(g.n).reshape(-1, 2), float(t))
        elif reference is not None:
            r = reference(float(t))
            ref = None if r is None else r["u"]
        return flow_metrics(cell_velocity(g), divergence(g), w_cells, 4.0, ref)

    return observe


class FEMStepper:
    """:class:`~insr.reference.fem_elastic.ElasticFEM` by implicit Euler, from rest positions ``x0``
    (default: the mesh's) and velocity ``v0`` (x₋₁ = x₀ − Δt·v₀ on the first step).

    The state is ``{"x": xⁿ, "x_prev": xⁿ⁻¹, "dt": the last step}`` (node positions);
    ``fixed_positions(t)`` gives the
    prescribed positions at time t.  ``quasi_static=True``: load stepping, each step the static
    equilibrium (:meth:`~insr.reference.fem_elastic.ElasticFEM.solve_static`; "time" is the load
    parameter) from the guess ``predictor(x, t, dt)`` (default: xⁿ).  A step reports the Newton
    solve: every field of its :class:`~insr.reference.fem_elastic.NewtonInfo` (``energy`` its final energy, ``stop`` its
    message, ``newton_seconds`` its wall time; :meth:`newton_info` reads one back from a row).
    ``observers`` are ``f(state, t) -> dict`` (:func:`fem_body_observer`: the elastic stepper's
    metrics by the same formulas).
    """

    needs_key = False

    def __init__(self, fem: ElasticFEM, *, x0=None, v0=None, fixed_positions: Callable | None = None,
                 quasi_static: bool = False, predictor: Callable | None = None, observers: Sequence[Callable] = ()):
        self.fem, self.quasi_static, self.predictor = fem, bool(quasi_static), predictor
        self.dim = fem.mesh.points.shape[1]
        self.channel_names = ("phi_x", "phi_y", "phi_z")[: self.dim]
        self.x0 = fem.mesh.points.copy() if x0 is None else np.array(x0, np.float64)
        self.v0 = np.zeros_like(self.x0) if v0 is None else np.broadcast_to(np.asarray(v0, np.float64), self.x0.shape)
        self.fixed_positions = fixed_positions
        self.observers = tuple(observers)
        self._template = {"x": np.zeros_like(self.x0), "x_prev": np.zeros_like(self.x0), "dt": np.zeros(())}

    def state_template(self) -> dict:
        return self._template

    def state_bytes(self) -> int:
        return self.fem.state_bytes

    @property
    def num_params(self) -> int:
        return int(self.x0.size)

    def initial_state(self, key=None):
        # x_prev is filled in by the first step (it needs Δt): NaN marks "not yet"
        return {"x": self.x0.copy(), "x_prev": np.full_like(self.x0, np.nan), "dt": np.zeros(())}, dict(_DIRECT)

    def step(self, state, t, dt, key=None):
        x, x_prev = np.asarray(state["x"], np.float64), np.asarray(state["x_prev"], np.float64)
        if np.isnan(x_prev).any():
            x_prev = x - dt * self.v0
        # the prescribed positions at (n + 1)·Δt, computed as the step loop always did (t is
        # simulate's rounded n·Δt; t + Δt can differ from (n + 1)·Δt in the last bit)
        n = round(float(t) / float(dt))
        fp = None if self.fixed_positions is None else self.fixed_positions((n + 1) * float(dt))
        if self.quasi_static:
            guess = x if self.predictor is None else np.asarray(self.predictor(x, float(t), float(dt)), np.float64)
            x_new, info = self.fem.solve_static(x0=guess, fixed_positions=fp)
        else:
            x_new, info = self.fem.step(x, x_prev, dt, fixed_positions=fp)
        report = {"iterations": int(info.iterations), "energy": float(info.energy),
                  "converged": bool(info.converged), "stop": info.message, "grad_norm": float(info.grad_norm),
                  "step_norm": float(info.step_norm), "backtracks": int(info.backtracks),
                  "projected": int(info.projected), "newton_seconds": float(info.seconds),
                  "cg_products": int(info.cg_products)}
        return {"x": x_new, "x_prev": x, "dt": np.asarray(float(dt))}, report

    @staticmethod
    def newton_info(row: dict) -> NewtonInfo:
        """The :class:`~insr.reference.fem_elastic.NewtonInfo` of a step's metrics row."""
        return NewtonInfo(converged=bool(row["converged"]), iterations=int(row["iterations"]),
                          energy=float(row["energy"]), grad_norm=float(row["grad_norm"]),
                          step_norm=float(row["step_norm"]), backtracks=int(row["backtracks"]),
                          projected=int(row["projected"]), seconds=float(row["newton_seconds"]),
                          message=str(row["stop"]), cg_products=int(row.get("cg_products", 0)))

    def evaluate(self, state, points=None, t=0.0) -> np.ndarray:
        """The node positions (the FEM's field lives at its nodes; ``points`` are not used)."""
        return np.asarray(state["x"])

    def metrics(self, state, t) -> dict:
        out: dict = {}
        for observe in self.observers:
            out.update(observe(state, t))
        return out


def fem_body_observer(fem: ElasticFEM) -> Callable:
    """The metrics of :class:`insr.elasticity.ElasticStepper` (:func:`insr.observers.body_metrics`:
    centre of mass, kinetic, elastic, gravity and contact energies, gap) for a
    :class:`FEMStepper` state: lumped nodal volumes as the quadrature, the backward-difference
    nodal velocity (xⁿ − xⁿ⁻¹)/Δt (0 at t = 0), the elements' ∫Ψ(F)."""

    def observe(state, t) -> dict:
        x = np.asarray(state["x"], np.float64)
        dt = float(state["dt"])
        v2 = None if dt <= 0 else np.sum((x - np.asarray(state["x_prev"])) ** 2, axis=1) / dt**2
        return body_metrics(x, fem.nodal_volumes, fem.elastic_energy(x), density=fem.density, gravity=fem.gravity,
                            contacts=fem.contacts, speed2=v2)

    return observe


class AdvectionFDStepper:
    """:func:`~insr.reference.advection_fd.advection_fd_midpoint`'s scheme (central differences,
    Crank–Nicolson, u = 0 at both ends) on ``n_nodes`` nodes of [lo, hi], for the step size ``dt``
    it was built for.  The state is ``{"u": nodal values}``; :meth:`evaluate` interpolates linearly."""

    dim = 1
    channel_names = ("u",)
    needs_key = False

    def __init__(self, u0: Callable, *, velocity: float, lo: float, hi: float, n_nodes: int, dt: float,
                 observers: Sequence[Callable] = ()):
        if int(n_nodes) < 3:
            raise ValueError(f"n_nodes must be ≥ 3, got {n_nodes!r}")
        if not dt > 0:
            raise ValueError(f"dt must be > 0, got {dt!r}")
        self.u0, self.dt, self.observers = u0, float(dt), tuple(observers)
        self.x = np.linspace(lo, hi, int(n_nodes))
        self.c, self.banded = midpoint_matrix(velocity, self.x[1] - self.x[0], self.dt, int(n_nodes))

    def state_template(self) -> dict:
        return {"u": np.zeros_like(self.x)}

    def state_bytes(self) -> int:
        return 4 * self.x.size

    @property
    def num_params(self) -> int:
        return int(self.x.size)

    def initial_state(self, key=None):
        u = np.array(np.asarray(self.u0(self.x), dtype=np.float64))
        u[0] = u[-1] = 0.0
        return {"u": u}, dict(_DIRECT)

    def step(self, state, t, dt, key=None):
        if not np.isclose(float(dt), self.dt, rtol=1e-12, atol=0.0):
            raise ValueError(f"this stepper was built for dt = {self.dt}, got {dt}")
        return {"u": midpoint_step(np.asarray(state["u"], np.float64), self.c, self.banded)}, dict(_DIRECT)

    def evaluate(self, state, points, t=0.0) -> np.ndarray:
        return np.interp(np.asarray(points, np.float64).reshape(-1), self.x, np.asarray(state["u"]))[:, None]

    def metrics(self, state, t) -> dict:
        out: dict = {}
        for observe in self.observers:
            out.update(observe(self.x, np.asarray(state["u"]), t))
        return out


class SpectralStepper:
    """ETDRK4 (Cox & Matthews 2002) for u_t = 𝓛u + N(u, t) on a periodic grid
    (:func:`~insr.reference.spectral.etdrk4`'s step) for the step size ``dt`` it was built for.
    The state is ``{"v": the real-FFT coefficients}``; :meth:`values` gives the grid values."""

    needs_key = False

    def __init__(self, grid: PeriodicGrid, u0, *, linear: Callable, nonlinear: Callable | None, dt: float):
        if not dt > 0:
            raise ValueError(f"dt must be > 0, got {dt!r}")
        self.grid, self.u0, self.dt = grid, u0, float(dt)
        self.dim = len(grid.n)
        self.channel_names = ("u",)
        self.coefficients = etdrk4_coefficients(grid, linear, self.dt)
        self.nonlinear = nonlinear
        self._shape = np.fft.rfftn(np.zeros(grid.n)).shape

    def state_template(self) -> dict:
        return {"v": np.zeros(self._shape, np.complex128)}

    def state_bytes(self) -> int:
        return 4 * int(np.prod(self.grid.n))

    @property
    def num_params(self) -> int:
        return int(np.prod(self.grid.n))

    def values(self, state) -> np.ndarray:
        return np.fft.irfftn(np.asarray(state["v"]), s=self.grid.n, axes=tuple(range(self.dim)))

    def initial_state(self, key=None):
        if callable(self.u0):
            u = np.asarray(self.u0(self.grid.points()), np.float64).reshape(self.grid.n)
        else:
            u = np.asarray(self.u0, np.float64)
            if u.shape != self.grid.n:
                raise ValueError(f"etdrk4: u0 has shape {u.shape}, the grid {self.grid.n}")
        return {"v": np.fft.rfftn(u)}, dict(_DIRECT)

    def step(self, state, t, dt, key=None):
        if not np.isclose(float(dt), self.dt, rtol=1e-12, atol=0.0):
            raise ValueError(f"this stepper was built for dt = {self.dt}, got {dt}")
        v = etdrk4_step(np.asarray(state["v"]), float(t), self.dt, self.coefficients, self.grid, self.nonlinear)
        return {"v": v}, dict(_DIRECT)

    def evaluate(self, state, points=None, t=0.0) -> np.ndarray:
        """The grid values (the field lives on its grid; ``points`` are not used)."""
        return self.values(state).reshape(-1, 1)

    def metrics(self, state, t) -> dict:
        return {}
