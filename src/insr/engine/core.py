"""The engine: a scheme run on a field set, behind the :class:`insr.stepper.Stepper` protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from insr.engine.fields import FieldSet
from insr.engine.stage import step_info
from insr.observers import relative_l2  # noqa: F401  (re-exported: insr.engine.relative_l2)


class Scheme(Protocol):
    """What one time step and the initial fit solve, as traced functions of the state.

    A scheme is built on the :class:`FieldSet` it advances (its residuals evaluate those
    fields).  ``initial(template, key, solver)`` fits the state at t = 0 starting from
    ``template`` (the networks' initialisation) with ``solver`` (the engine passes the initial
    solver, or the sounder retry setting); ``step(state, t, dt, key)`` advances the state by Δt.
    Both return ``(state, {stage name: SolveStats})`` and are traced once under ``jax.jit``;
    an ``initial`` that solves nothing (a state known exactly, such as a body at rest) returns
    no stats.  A ``step`` may return a third item, traced values the scheme's
    ``annotate(info, extra) -> info`` adds to the step report on the host (held-out losses,
    flags).
    ``state_template()`` is the state's structure (the fields' weights, plus any history the
    scheme keeps, e.g. θⁿ⁻¹); ``main`` names the solve whose loss is the step's loss
    (``None``: the last); ``converged(solve_info)`` (optional) judges a sub-solve.
    """

    order: int
    main: str | None

    def state_template(self) -> dict: ...
    def initial(self, template: dict, key, solver) -> tuple[dict, dict]: ...
    def step(self, state: dict, t, dt, key) -> tuple[dict, dict]: ...


def judged_initial_fit(fit: Callable, retry: Callable, error_of: Callable[[Any], float], tolerance: float,
                       key) -> tuple[Any, dict]:
    """Fit, judge on held-out points, retry once if the fit missed ``tolerance``.

    ``fit(key)`` and ``retry(key)`` return ``(state, info)`` (``info`` a :func:`step_info`
    row); ``error_of(state)`` is the fit's error on points it was not fitted on.  A miss
    (error > tolerance, or not finite) is retried on fresh points (``fold_in(key, 1)``) and
    the better of the two attempts kept; ``iterations`` counts both.  The returned info adds
    ``fit_error``, ``fit_tolerance``, ``fit_attempts`` and ``fit_ok``
    (:func:`insr.simulate.simulate` stops the run when ``fit_ok`` is false).
    """
    state, info = fit(key)
    err, attempts = error_of(state), 1
    if not err <= tolerance:
        state2, info2 = retry(jax.random.fold_in(key, 1))
        err2, attempts = error_of(state2), 2
        info2["iterations"] += info["iterations"]
        if err2 < err or not np.isfinite(err):
            state, info, err = state2, info2, err2
        else:
            info["iterations"] = info2["iterations"]
    info.update(fit_error=err, fit_tolerance=tolerance, fit_attempts=attempts, fit_ok=bool(err <= tolerance))
    return state, info


def retry_solver(solver):
    """The sounder setting an initial fit that missed its tolerance is retried with: the
    solver's own ``sounder()`` when it has one (Levenberg–Marquardt, dense or matrix-free: a
    1,000× larger first damping, geodesic acceleration on, twice the iterations —
    :func:`~insr.solvers.levenberg_marquardt.sounder_lm`); other solvers are retried as they
    are (with fresh points)."""
    sounder = getattr(solver, "sounder", None)
    return sounder() if callable(sounder) else solver


def _check_tolerance(value) -> float:
    try:
        ok = bool(value > 0)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"init_tolerance must be > 0, got {value!r}")
    return float(value)


class Engine:
    """Run ``scheme`` on ``fields``: the one implementation of the stepper protocol.

    The engine owns what every neural simulation needs and no physics does: the compiled step
    and initial fit (traced once), the judged initial fit with its retry
    (:func:`judged_initial_fit`: ``init_error(state)`` measured on held-out points against
    ``init_tolerance``, retried with ``retry_solver(init_solver)``), the state template that
    checkpoints are loaded into, the step report (:func:`~insr.engine.stage.step_info`),
    evaluation of every field at points (``channels``: (field name, number of components) in
    output order) and the metrics of a state (each observer ``f(state, t) -> dict``, merged in
    order).  Times and step sizes reach the scheme as scalars of ``time_dtype``
    (default: JAX's default float type, so a float64 run does not round Δt to float32).
    ``init_error=None``: the initial state is not judged (the scheme's ``initial`` is exact).
    """

    def __init__(self, fields: FieldSet, scheme: Scheme, *, init_solver, init_error: Callable[[dict], float] | None,
                 init_tolerance: float, channels: Sequence[tuple[str, int]], channel_names: Sequence[str],
                 observers: Sequence[Callable] = (), time_dtype=None):
        self.fields, self.scheme = fields, scheme
        self.init_solver = init_solver
        self.init_tolerance = _check_tolerance(init_tolerance)
        self._init_error = init_error
        self.channels = tuple((str(n), int(k)) for n, k in channels)
        missing = [n for n, _ in self.channels if n not in fields]
        if missing:
            raise ValueError(f"channels name fields that do not exist: {missing}")
        self.channel_names = tuple(channel_names)
        if len(self.channel_names) != sum(k for _, k in self.channels):
            raise ValueError(f"{len(self.channel_names)} channel names for "
                             f"{sum(k for _, k in self.channels)} output components")
        self.observers = tuple(observers)
        self._time_dtype = time_dtype or jnp.result_type(float)
        self._template = scheme.state_template()
        self._step = jax.jit(scheme.step)
        self._fit = jax.jit(lambda template, key: scheme.initial(template, key, init_solver))
        retry = retry_solver(init_solver)
        self._refit = jax.jit(lambda template, key: scheme.initial(template, key, retry))

        fns = [(fields.fn(name), name, k) for name, k in self.channels]

        def evaluate(state, x, t):
            cols = [jax.vmap(f, in_axes=(None, 0, None))(state[name], x, t).reshape(x.shape[0], k)
                    for f, name, k in fns]
            return jnp.concatenate(cols, axis=1)

        self._eval = jax.jit(evaluate)

    # ---- the stepper protocol ---------------------------------------------------------

    def state_template(self) -> dict:
        return self._template

    def state_bytes(self) -> int:
        return self.fields.state_bytes()

    @property
    def num_params(self) -> int:
        """Trainable parameters of every network."""
        return self.fields.num_params()

    def time(self, t) -> jax.Array:
        """A time or step size as the scalar the scheme is traced with."""
        return jnp.asarray(t, dtype=self._time_dtype)

    def info(self, stats: dict) -> dict:
        """The report row of a step or fit from its solves' stats (:func:`step_info`)."""
        if not stats:  # nothing was solved (an exact initial state)
            return {"iterations": 0, "loss_initial": 0.0, "loss": 0.0, "converged": True}
        return step_info(stats, getattr(self.scheme, "main", None), getattr(self.scheme, "converged", None))

    def initial_state(self, key=None):
        """The state at t = 0 and its report (``key``: the fit's points; may be None only for a
        scheme whose initial state is exact, ``init_error=None``)."""
        if self._init_error is None:
            state, stats = self._fit(self._template, jax.random.PRNGKey(0) if key is None else key)
            return state, self.info(stats)
        if key is None:
            raise ValueError("initial_state: the initial fit draws points: give a PRNG key")

        def attempt(fit):
            def run(k):
                state, stats = fit(self._template, k)
                return state, self.info(stats)
            return run

        return judged_initial_fit(attempt(self._fit), attempt(self._refit), self._init_error,
                                  self.init_tolerance, key)

    def step(self, state, t, dt, key):
        new, stats, *extra = self._step(state, self.time(t), self.time(dt), key)
        info = self.info(stats)
        return new, (self.scheme.annotate(info, *extra) if extra else info)

    def evaluate(self, state, points, t=None) -> np.ndarray:
        """Every channel at ``points`` (n, d) (at time ``t``), columns in ``channel_names`` order."""
        return np.asarray(self._eval(state, jnp.asarray(points, self.fields.dtype), self.time(t or 0.0)))

    def metrics(self, state, t) -> dict:
        out: dict = {}
        for observe in self.observers:
            out.update(observe(state, t))
        return out
