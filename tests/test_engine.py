"""The engine's own machinery: the step report, the judged initial fit, field sets, and a
scheme written against it (the pieces every neural simulation now runs through)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import insr
import insr.engine
from insr.engine import Engine, FieldSet, Stage, StageLog, judged_initial_fit, relative_l2, step_info
from insr.fields import Siren
from insr.geometry import Interval, Sampler
from insr.solvers import Block, LevenbergMarquardt, SolveStats


def _stats(it, l0, l, conv, rejected=0, reason=0, inner=-1):
    return SolveStats(jnp.asarray(it), jnp.asarray(l0), jnp.asarray(l), jnp.asarray(conv), rejected, reason, inner)


def test_step_info_of_one_solve_has_no_per_stage_columns():
    info = step_info({"step": _stats(7, 1.0, 1e-9, True, rejected=2, reason=3)})
    assert info == {"iterations": 7, "rejected": 2, "loss_initial": 1.0, "loss": pytest.approx(1e-9),
                    "converged": True, "stop": info["stop"]}
    assert isinstance(info["stop"], str)


def test_step_info_adds_up_solves_and_reports_the_main_one_and_the_first_miss():
    stats = {"p": _stats(3, 1e-2, 1e-2, False, rejected=3, reason=2, inner=10),
             "u": _stats(4, 3e-8, 7e-10, True, rejected=1, reason=0, inner=5)}
    info = step_info(stats, main="u")
    assert info["iterations"] == 7 and info["rejected"] == 4 and info["cg_iterations"] == 15
    assert info["loss"] == pytest.approx(7e-10) and info["loss_initial"] == pytest.approx(3e-8)
    assert not info["converged"] and info["stop"] == step_info({"x": stats["p"]})["stop"]
    assert info["p_iterations"] == 3 and info["u_loss"] == pytest.approx(7e-10)
    # a judge can accept a sub-solve its solver did not call converged
    judged = step_info(stats, main="u", converged=lambda i: i["converged"] or i["loss"] < i["loss_initial"])
    assert not judged["converged"]  # p made no progress at all
    stats["p"] = _stats(3, 1e-2, 1e-4, False)
    assert step_info(stats, main="u", converged=lambda i: i["converged"] or i["loss"] < i["loss_initial"])["converged"]
    with pytest.raises(ValueError):
        step_info({})


def test_judged_initial_fit_retries_a_miss_and_keeps_the_better_attempt():
    calls = []

    def attempt(err):
        def run(key):
            calls.append(err)
            return {"err": err}, {"iterations": 10}
        return run

    state, info = judged_initial_fit(attempt(0.5), attempt(1e-4), lambda s: s["err"], 1e-3, jax.random.PRNGKey(0))
    assert state["err"] == 1e-4 and info["fit_ok"] and info["fit_attempts"] == 2 and info["iterations"] == 20
    calls.clear()
    state, info = judged_initial_fit(attempt(1e-5), attempt(1e-4), lambda s: s["err"], 1e-3, jax.random.PRNGKey(0))
    assert calls == [1e-5] and info["fit_attempts"] == 1 and info["fit_ok"]
    state, info = judged_initial_fit(attempt(0.5), attempt(0.9), lambda s: s["err"], 1e-3, jax.random.PRNGKey(0))
    assert state["err"] == 0.5 and not info["fit_ok"] and info["fit_error"] == 0.5  # the better miss, reported


def test_field_set_applies_transforms_and_counts_every_network():
    ka, kb = jax.random.split(jax.random.PRNGKey(0))
    a, b = Siren(1, 2, 8, 1, key=ka), Siren(1, 1, 4, 1, key=kb)
    fs = FieldSet({"a": a, "b": b, "none": None}, transforms={"a": lambda out, x: out * x[0]})
    x = jnp.array([0.5])
    assert fs.names == ("a", "b")
    np.testing.assert_allclose(fs.fn("a")(fs.template["a"], x), 0.5 * a(x), rtol=1e-6)
    np.testing.assert_allclose(fs.fn("b")(fs.template["b"], x), b(x))
    assert fs.num_params() == a.num_params + b.num_params and fs.state_bytes() == 4 * fs.num_params()
    with pytest.raises(ValueError, match="transforms"):
        FieldSet({"a": a}, transforms={"q": lambda out, x: out})


class _Decay:
    """u_t = −u by implicit Euler on a constant-in-space field, one stage: uⁿ⁺¹ = uⁿ/(1 + Δt)."""

    order, main = 1, None

    def __init__(self, fields, solver):
        self.fields, self.solver = fields, solver
        self.u = fields.fn("u")
        self.points = Sampler(Interval(0.0, 1.0), 32, "stratified")

    def state_template(self):
        return self.fields.template

    def _stage(self, target, solver):
        return Stage("u", (Block(lambda w, x, a: self.u(w, x) - target(x, a), self.points),), solver)

    def initial(self, template, key, solver):
        log = StageLog()
        w = log.run(self._stage(lambda x, a: jnp.ones(1), solver), template["u"], None, key)
        return {"u": w}, log.stats

    def step(self, state, t, dt, key):
        log, un = StageLog(), state["u"]
        w = log.run(self._stage(lambda x, a: self.u(un, x) / (1 + dt), self.solver), un, None, key)
        return {"u": w}, log.stats


def test_a_scheme_written_against_the_engine_runs_in_the_one_time_loop(tmp_path):
    field = Siren(1, 1, 8, 1, omega0=1.0, key=jax.random.PRNGKey(0))
    fields = FieldSet({"u": field})
    lm = LevenbergMarquardt(max_iters=30, rtol=1e-3)  # (the scenarios judge a step by rtol too)
    x = np.linspace(0, 1, 11)[:, None]
    engine = Engine(fields, _Decay(fields, lm), init_solver=lm, init_tolerance=1e-3,
                    init_error=lambda s: relative_l2(engine.evaluate(s, x), np.ones((11, 1))),
                    channels=[("u", 1)], channel_names=("u",),
                    observers=[lambda s, t: {"u_mean": float(np.mean(engine.evaluate(s, x)))}])
    traj = insr.simulate(engine, dt=0.1, steps=5, key=jax.random.PRNGKey(1), run_dir=tmp_path / "run")
    rows = traj.metrics
    assert rows[0]["fit_ok"] and rows[0]["fit_attempts"] == 1
    # implicit Euler's 1/(1 + Δt) per step (explicit Euler's 0.9 would be 5 % off by step 5); each
    # solve stops at rtol 1e-3 of its increment, so the steps agree to a few 1e-4
    u0 = rows[0]["u_mean"]
    np.testing.assert_allclose([r["u_mean"] for r in rows], [u0 * (1 / 1.1) ** n for n in range(6)], rtol=5e-4)
    assert all(r["converged"] for r in rows[1:]), [(r["stop"], r["loss"], r["loss_initial"]) for r in rows]
    # checkpoints hold the engine's state and a resumed run continues it
    more = insr.simulate(engine, dt=0.1, steps=7, key=jax.random.PRNGKey(1), run_dir=tmp_path / "run", resume=True)
    assert more.metrics[-1]["step"] == 7
    np.testing.assert_allclose(more.metrics[-1]["u_mean"], u0 * (1 / 1.1) ** 7, rtol=5e-4)


def test_engine_rejects_channels_of_fields_it_does_not_have():
    fields = FieldSet({"u": Siren(1, 1, 4, 1, key=jax.random.PRNGKey(0))})
    lm = LevenbergMarquardt()
    with pytest.raises(ValueError, match="channels"):
        Engine(fields, _Decay(fields, lm), init_solver=lm, init_error=None, init_tolerance=1.0,
               channels=[("p", 1)], channel_names=("p",))
    with pytest.raises(ValueError, match="init_tolerance"):
        Engine(fields, _Decay(fields, lm), init_solver=lm, init_error=None, init_tolerance=0.0,
               channels=[("u", 1)], channel_names=("u",))


def test_every_neural_stepper_is_an_engine():
    from insr.elasticity import ElasticStepper
    from insr.fluids import FluidStepper
    from insr.stepper import FieldStepper

    assert all(issubclass(cls, Engine) for cls in (FieldStepper, FluidStepper, ElasticStepper))
    assert eqx.is_array(jnp.zeros(1))  # (equinox imported for the modules above)


def test_the_old_import_paths_and_attributes_still_work():
    from insr.fluids import stepper as fluid_stepper
    from insr.viz import fluids as viz_fluids

    assert fluid_stepper.write_fluid_outputs is viz_fluids.write_fluid_outputs
    assert fluid_stepper.field_images is viz_fluids.field_images
    from insr.stepper import relative_l2 as r1
    from insr.stepper import retry_solver as s1

    assert r1 is relative_l2 and s1 is insr.engine.retry_solver


def test_solvers_declare_their_objective_form_and_their_retry_setting():
    from insr.engine import retry_solver
    from insr.solvers import LBFGS, AdamPlateau, MatrixFreeLM

    assert LBFGS.objective == "scalar"
    assert LevenbergMarquardt.objective == MatrixFreeLM.objective == AdamPlateau.objective == "least_squares"
    assert AdamPlateau.fresh_points and not LevenbergMarquardt.fresh_points and not MatrixFreeLM.fresh_points
    for cls in (LevenbergMarquardt, MatrixFreeLM):
        s = retry_solver(cls(tau=1e-6, max_iters=10))
        assert (s.tau, s.max_iters, s.geodesic) == (1e-3, 20, 0.75), cls
    lbfgs = LBFGS()
    assert retry_solver(lbfgs) is lbfgs  # no sounder setting: retried as it is, on fresh points


def _poly_stage(n_points, solver):
    """Fit a degree-7 polynomial (8 weights) to sin(3x) on n uniform points of [−1, 1]."""
    powers = jnp.arange(8.0)
    block = Block(lambda c, x, a: (jnp.sum(c * x[0] ** powers) - jnp.sin(3 * x[0]))[None],
                  lambda k: jax.random.uniform(k, (n_points, 1), minval=-1.0, maxval=1.0))
    return Stage("fit", (block,), solver)


def test_held_out_loss_exposes_a_fit_that_only_interpolates_its_sample():
    """8 weights through 8 points: the sampled loss is round-off, the objective on fresh points
    is not; with 400 points both agree.  Measuring it leaves the solve as it was."""
    lm = LevenbergMarquardt(max_iters=50, tau=1e-8)
    key, c0 = jax.random.PRNGKey(3), jnp.zeros(8)
    for n, interpolates in ((8, True), (400, False)):
        plain, measured = StageLog(), StageLog(heldout=True)
        c_plain = plain.run(_poly_stage(n, lm), c0, None, key)
        c = measured.run(_poly_stage(n, lm), c0, None, key)
        np.testing.assert_array_equal(c, c_plain)
        assert np.isnan(float(plain.stats["fit"].heldout))
        loss, held = float(measured.stats["fit"].loss), float(measured.stats["fit"].heldout)
        if interpolates:
            assert loss < 1e-8 and held > 1e3 * loss
        else:
            assert 0.5 * loss < held < 2 * loss
    info = step_info({"p": _stats(3, 1e-2, 1e-4, True)._replace(heldout=jnp.asarray(2e-4)),
                      "u": _stats(4, 3e-8, 7e-10, True)._replace(heldout=jnp.asarray(9e-10))}, main="u")
    assert info["heldout_loss"] == pytest.approx(9e-10) and info["p_heldout"] == pytest.approx(2e-4)
    assert "heldout_loss" not in step_info({"u": _stats(4, 3e-8, 7e-10, True)})
