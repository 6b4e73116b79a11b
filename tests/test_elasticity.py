"""Tests of the neural elastodynamics stepper (insr.elasticity): rest state, ballistic
free fall against the exact implicit-Euler path, contact penetration bounds, exact
handles against the analytic energy of a uniform stretch, config validation, outputs.

Small networks and few points keep the whole file fast; each stepper compiles once.
"""

import math
import xml.etree.ElementTree as ET

import jax
import jax.numpy as jnp
import meshio
import numpy as np
import pytest

from insr.config import ConfigError, merge
from insr.elasticity import LBFGS, ElasticStepper
from insr.elasticity.scenarios import ELASTIC_SCENARIOS, build_elastic
from insr.fields import Siren
from insr.geometry.mesh import MeshError, box_mesh
from insr.geometry.rest_shape import RestShape
from insr.physics.elastic_energy import PlaneContact, SphereContact
from insr.physics.handles import PlaneHandle
from insr.physics.materials import Material
from insr.registry import get as get_scenario  # the registry (imports insr.elasticity.scenarios)
from insr.simulate import simulate, summary_line
from insr.solvers import LevenbergMarquardt

G = 9.8
MAT = Material("arap", 200.0, 150.0, 1.0)


def small_field(d, width=12, depth=1, seed=0):
    return Siren(d, d, width, depth, key=jax.random.PRNGKey(seed), omega0=5.0)


def lm(iters=10):
    return LevenbergMarquardt(max_iters=iters, ftol=1e-6, atol=1e-12)


def run(stepper, steps, dt, seed=1):
    state, _ = stepper.initial_state(None)
    out, t = [], 0.0
    for n in range(steps):
        state, info = stepper.step(state, t, dt, jax.random.fold_in(jax.random.PRNGKey(seed), n))
        t = (n + 1) * dt
        out.append((state, info, stepper.metrics(state, t)))
    return out


# --------------------------------------------------------------------------------------
# rest state
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [2, 3])
def test_rest_state_has_zero_loss_and_gradient(dim):
    """No forces, at rest: φ⁰ = X exactly, so every residual and the gradient vanish."""
    rest = RestShape.from_box((0.0,) * dim, (1.0,) * dim) if dim == 2 else RestShape.from_mesh(
        box_mesh((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 2))
    st = ElasticStepper(small_field(dim, 8), rest, MAT, lm(), samples=64)
    state, info = st.initial_state(None)
    pts = rest.quadrature(64)
    np.testing.assert_array_equal(st.evaluate(state, pts, 0.0), pts)
    loss, grad = st.loss_grad(state["phi"], state, 0.0, 0.1, jax.random.PRNGKey(3))
    assert float(loss) == pytest.approx(0.0, abs=1e-12)
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grad)) < 1e-9
    m = st.metrics(state, 0.0)
    assert m["elastic_energy"] == pytest.approx(0.0, abs=1e-12)
    assert m["kinetic_energy"] == 0.0
    assert st.channel_names == ("phi_x", "phi_y", "phi_z")[:dim]


# --------------------------------------------------------------------------------------
# free fall
# --------------------------------------------------------------------------------------
def test_free_fall_follows_the_discrete_ballistic_path():
    r"""Implicit Euler for ẍ = b from rest: x^{n+1} = 2xⁿ − xⁿ⁻¹ + Δt²b, x⁰ = x⁻¹ = X, so
    xⁿ = X + Δt²b·n(n+1)/2 (the continuous path is X + b(nΔt)²/2; the extra Δt²b·n/2
    is the scheme's O(Δt) error).  A rigid translation has F = I: every residual of the
    minimiser is zero and LM finds it (the output bias represents it exactly)."""
    rest = RestShape.from_box((-0.5, 0.0), (0.5, 1.0))
    st = ElasticStepper(small_field(2), rest, MAT, lm(), gravity=(0.0, -G), samples=200)
    dt = 0.1
    com0 = st.metrics(st.initial_state(None)[0], 0.0)["com_y"]
    for n, (_state, info, m) in enumerate(run(st, 3, dt), start=1):
        exact = com0 - G * dt**2 * n * (n + 1) / 2
        assert m["com_y"] == pytest.approx(exact, abs=2e-4), n
        assert m["com_x"] == pytest.approx(0.0, abs=2e-4)
        assert m["elastic_energy"] < 1e-6
        v = G * dt * n  # backward-difference velocity of the exact path
        assert m["kinetic_energy"] == pytest.approx(0.5 * rest.volume * v * v, rel=2e-3)
        assert info["loss"] < 1e-6 * max(info["loss_initial"], 1.0)
    assert not (abs(com0 - G * (3 * dt) ** 2 / 2 - m["com_y"]) < 1e-3)  # not the continuous path


@pytest.mark.parametrize("kind, extra", [
    # each family compiles programs of its own: one in the default suite, the other on request
    pytest.param("fourier", {"features": 8, "sigma": 0.5}, marks=pytest.mark.slow),
    ("grid", {"grid_levels": 2, "grid_base": 4, "grid_growth": 2.0}),
])
def test_every_field_family_starts_at_rest_and_falls_on_the_ballistic_path(kind, extra):
    """``field.kind`` builds that family for an elasticity scenario (a grid spanning the rest
    box), zeroed so that φ⁰ = X exactly, and its output bias carries the free fall: the same
    discrete path xⁿ = X + Δt²b·n(n+1)/2 as the SIREN's."""
    cfg = _cfg("elastic_collide_2d", field={"kind": kind, "width": 8, "depth": 1, **extra}, samples=200,
               contact={"sphere": [], "plane": []}, contact_points={"pool": 0},
               geometry={"lo": [-0.5, 0.0], "hi": [0.5, 1.0]})
    st = build_elastic(cfg)
    net = st.fields.template["phi"]
    assert type(net).__name__ == {"fourier": "FourierFeatures", "grid": "MultiresGrid"}[kind]
    if kind == "grid":
        assert (net.lo, net.hi) == ((-0.5, 0.0), (0.5, 1.0))
    state, _ = st.initial_state(None)
    pts = st.rest.quadrature(64)
    np.testing.assert_array_equal(st.evaluate(state, pts, 0.0), pts)
    com0, dt = st.metrics(state, 0.0)["com_y"], 0.1
    for n, (_state, info, m) in enumerate(run(st, 2, dt), start=1):
        assert m["com_y"] == pytest.approx(com0 - G * dt**2 * n * (n + 1) / 2, abs=2e-4), n
        assert m["com_x"] == pytest.approx(0.0, abs=2e-4)
        assert m["elastic_energy"] < 1e-6
        assert info["loss"] < 1e-6 * max(info["loss_initial"], 1.0)


def test_free_fall_lbfgs_with_stable_neo_hookean():
    """The scalar (L-BFGS) path on the non-least-squares energy reaches the same first step."""
    rest = RestShape.from_box((-0.5, 0.0), (0.5, 1.0))
    mat = Material.from_young(520.0, 0.3, energy="snh", dim=2)
    st = ElasticStepper(small_field(2), rest, mat, LBFGS(max_iters=60), gravity=(0.0, -G), samples=200)
    com0 = st.metrics(st.initial_state(None)[0], 0.0)["com_y"]
    (state, info, m), = run(st, 1, 0.1)
    assert m["com_y"] == pytest.approx(com0 - G * 0.01, abs=2e-4)
    assert m["elastic_energy"] < 1e-3 * m["kinetic_energy"]
    with pytest.raises(ValueError, match="not a sum of squares"):
        ElasticStepper(small_field(2), rest, mat, lm(), gravity=(0.0, -G))


# --------------------------------------------------------------------------------------
# contact
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("obstacle", [
    "plane",
    "sphere",
])
def test_contact_penetration_is_bounded_by_the_penalty(obstacle):
    r"""A unit square (mass m = ρV) dropped from a gap h.  Implicit Euler dissipates
    energy, so the penalty energy k/2∫max(0, p)² can at most absorb m g (h + δ).  For a
    flat bottom of width W on a plane, ∫p² dA = W·∫₀^δ(δ − y)² dy = Wδ³/3; pressed onto a
    disk of radius r by its flat bottom, the disk's cap above the bottom is
    δ(1 − x²/a²), a = √(2rδ), so ∫p² dA = ∫ cap³/3 dx = (32/105)·√(2r)·δ^{7/2}.  That bounds the largest
    penetration δ of every evaluated point; the body must also stop (no tunnelling)."""
    k, h, dt = 1e5, 0.05, 0.1
    if obstacle == "plane":
        rest = RestShape.from_box((-0.5, 0.0 + h), (0.5, 1.0 + h))
        contact = PlaneContact((0.0, 1.0), 0.0, k)
    else:
        r = 0.5
        rest = RestShape.from_box((-0.5, r + h), (0.5, r + 1.0 + h))
        contact = SphereContact((0.0, 0.0), r, k)
    st = ElasticStepper(small_field(2, 16, 2), rest, MAT, lm(12), gravity=(0.0, -G), contacts=[contact],
                        samples=500)
    m_body = MAT.density * rest.volume
    results = run(st, 6, dt)
    pens = [m["max_penetration"] for _, _, m in results]

    def bound(delta):
        work = m_body * G * (h + delta)
        if obstacle == "plane":
            return (6 * work / k) ** (1 / 3)
        return (105 * work / (16 * k * math.sqrt(2 * r))) ** (2 / 7)

    delta = 0.0
    for _ in range(20):  # fixed point of δ = bound(δ)
        delta = bound(delta)
    assert max(pens) > 0, "the body never reached the obstacle"
    assert max(pens) <= 1.5 * delta, (pens, delta)
    # it rests on the obstacle instead of passing through: the centre of mass stays above
    final = results[-1][2]
    assert final["com_y"] > rest.lo[1] + 0.5 - 2 * delta - h
    assert abs(final["com_y"] - results[-2][2]["com_y"]) < 0.05
    # a contact within the penalty's bound raises no alarm (limit: 10 % of the unit square)
    assert st.penetration_limit == pytest.approx(0.1) and 1.5 * delta < 0.1
    assert not any(st.flag_metrics(m) for _, _, m in results)


def test_a_body_resting_on_the_plane_is_held_by_its_weight_with_the_contacts_own_points():
    r"""A unit square (m g = 9.8) set on a plane with penalty k = 10⁴ settles (implicit Euler
    damps the contact's bounce) where the contact force k∫max(0, −gap) dA balances its weight
    — momentum balance, whatever the elastic state.  The force is measured on a 256² grid of
    the final fields.  With the contact on its own points (``contact_pool`` 4,096, 600 kept)
    the force is within 10 % of m g over steps 6–8 (measured on seeds 1–3: 0.97–1.03 m g).
    On the 500 volume points alone (the default) the same check fails: the solve balances a
    noisy estimate of the force (seeds 1–3, the same steps: 0.90–1.39 m g), and the resting
    depth scatters (after 10 steps 0.046–0.091, against 0.047 with the contact's points)."""
    k, dt = 1e4, 0.1
    rest = RestShape.from_box((-0.5, 0.0), (0.5, 1.0))
    st = ElasticStepper(small_field(2, 16, 2), rest, MAT, lm(12), gravity=(0.0, -G),
                        contacts=[PlaneContact((0.0, 1.0), 0.0, k)], samples=500, contact_pool=4096,
                        contact_kept=600)
    grid = rest.quadrature(256 * 256)
    results = run(st, 8, dt, seed=2)
    force = []
    for n, (state, _, _) in enumerate(results):
        p = np.asarray(st.evaluate(state, grid, (n + 1) * dt))
        force.append(k * rest.volume * np.mean(np.maximum(0.0, -p[:, 1])) / (MAT.density * rest.volume * G))
    assert all(abs(f - 1.0) < 0.1 for f in force[5:]), force
    # every penetrating pool point was among the kept ones
    assert all(info["contact_beyond_kept"] == 0.0 for _, info, _ in results), [i for _, i, _ in results]


def _set_moving(st, seed, dt=0.1):
    """``st``'s initial state with a previous network whose output layer is random: the body at
    rest shape, moving with a non-uniform velocity (a drift, a spin and a shear at once)."""
    import equinox as eqx

    state, _ = st.initial_state(None)
    kw, kb = jax.random.split(jax.random.PRNGKey(100 + seed))
    w = state["phi"].layers[-1].weight
    prev = eqx.tree_at(lambda f: (f.layers[-1].weight, f.layers[-1].bias), state["phi"],
                       (0.05 * jax.random.normal(kw, w.shape), 0.02 * jax.random.normal(kb, (2,))))
    return {**state, "phi_prev": prev, "dt": jnp.float32(dt)}


def _momentum_drift(seed, momentum_points, steps=2, dt=0.1):
    """A free unit square (no gravity, no obstacle) set moving with a non-uniform velocity (the
    previous network's output layer random: a drift, a spin and a shear at once), stepped with
    200 volume points and at most 10 LM iterations per solve: the largest change of its mean
    velocity over the steps, measured on a 200² grid (exact: 0, no force acts)."""
    rest = RestShape.from_box((-0.5, 0.0), (0.5, 1.0))
    st = ElasticStepper(small_field(2, seed=seed), rest, MAT, lm(10), samples=200, momentum_points=momentum_points)
    state = _set_moving(st, seed, dt)
    grid = rest.quadrature(200 * 200)
    mean = lambda params, t: np.mean(np.asarray(st.evaluate({"phi": params}, grid, t), np.float64), axis=0)
    means = [mean(state["phi_prev"], -dt), mean(state["phi"], 0.0)]
    t = 0.0
    for n in range(steps):
        state, _ = st.step(state, t, dt, jax.random.fold_in(jax.random.PRNGKey(seed), n))
        t += dt
        means.append(mean(state["phi"], t))
    v = np.diff(np.array(means), axis=0) / dt
    return float(np.max(np.abs(v[1:] - v[0])))


def test_the_split_inertia_term_is_the_same_energy_and_its_translation_gradient_is_exact():
    r"""The inertia term split into its mean on 4,096 points of its own and its deviation on
    pairs of the 200 volume points is an unbiased estimate of the same step objective: over 60
    draws its mean agrees with a 40,000-point estimate (measured 21.13 ± 0.09 against 21.04;
    the volume points alone 21.16 ± 0.12).  Its gradient in the output bias (a rigid
    translation: the momentum balance) scatters 200× less between draws (std 0.004 against
    0.82 on a gradient of (3.1, 42.8))."""
    import equinox as eqx

    rest = RestShape.from_box((-0.5, 0.0), (0.5, 1.0))
    field = small_field(2)

    def stepper(momentum_points=0, samples=200):
        return ElasticStepper(field, rest, MAT, lm(), gravity=(0.0, -G), samples=samples,
                              momentum_points=momentum_points)

    state = _set_moving(stepper(), 0)
    w = state["phi"].layers[-1].weight
    p = eqx.tree_at(lambda f: f.layers[-1].weight, state["phi"],
                    0.03 * jax.random.normal(jax.random.PRNGKey(7), w.shape))

    def draws(st, n):
        out = [st.loss_grad(p, state, 0.0, 0.1, jax.random.PRNGKey(i)) for i in range(n)]
        return np.array([float(v) for v, _ in out]), np.array([np.asarray(g.layers[-1].bias) for _, g in out])

    exact, exact_grad = (np.mean(a, axis=0) for a in draws(stepper(samples=40000), 3))
    split, split_grad = draws(stepper(4096), 60)
    _, volume_grad = draws(stepper(), 20)
    assert abs(np.mean(split) - exact) < 3 * np.std(split) / math.sqrt(60) + 1e-3 * exact, (np.mean(split), exact)
    assert np.all(np.abs(np.mean(split_grad, axis=0) - exact_grad) < 0.05), (np.mean(split_grad, axis=0), exact_grad)
    assert np.max(np.std(split_grad, axis=0)) * 50 < np.min(np.std(volume_grad, axis=0)), (split_grad, volume_grad)


def test_a_free_bodys_momentum_is_kept_with_the_inertia_mean_on_its_own_points():
    r"""No force acts on a free body, so its momentum ρ∫v dX must not change.  The step
    objective's gradient in a rigid translation (the output bias) is the momentum balance:
    ρV/Δt²·mean(d), d = φ − φ̂.  On 200 volume points that mean is the sample's, so a body with a
    non-uniform d (here drifting, spinning and shearing) gains a mean velocity of
    ~std(d)/(√N·Δt) that no force paid for: measured 0.0097–0.072 over seeds 0–3 (initial mean
    speeds 0.1–1.9).  With the mean on 4,096 points of its own (``momentum_points``), the
    deviation on pairs of the volume points and the Newton step in the translation after each
    solve, the change is 7.8e-5–1.5e-4 on the same seeds.  Without that last step, solves
    stopped by the 10-iteration cap left 1.5e-3–8e-3 (3 steps): the bound below needs it."""
    kept = [_momentum_drift(seed, 4096) for seed in (0, 1)]
    default = [_momentum_drift(seed, 0) for seed in (0, 1)]
    assert max(kept) < 1e-3, kept
    # the same bodies and keys with the inertia term on the volume points: 10× more at least
    assert min(default) > 10 * max(kept), (default, kept)


def test_a_body_sinking_into_an_obstacle_is_flagged_penetration():
    r"""A soft penalty (k = 10³) lets the unit square sink: at rest on the plane its weight m g
    balances k∫p dV = kWδ²/2, so δ = √(2mg/(kW)) = 0.14, above the alarm's 0.1 (10 % of the
    square).  Every step deeper than that is flagged in its row and counted in the summary; the
    stiff contact of the test above (k = 10⁵, δ ≤ 0.06) raises none."""
    k, h, dt = 1e3, 0.05, 0.1
    rest = RestShape.from_box((-0.5, h), (0.5, 1.0 + h))
    st = ElasticStepper(small_field(2, 16, 2), rest, MAT, lm(12), gravity=(0.0, -G),
                        contacts=[PlaneContact((0.0, 1.0), 0.0, k)], samples=500)
    traj = simulate(st, dt=dt, steps=6, key=jax.random.PRNGKey(1))
    rows = traj.metrics[1:]
    deep = [r["max_penetration"] > st.penetration_limit for r in rows]
    assert [("penetration" in r["flag"]) for r in rows] == deep, [(r["max_penetration"], r["flag"]) for r in rows]
    assert max(r["max_penetration"] for r in rows) > 0.12, [r["max_penetration"] for r in rows]
    assert traj.summary["penetration"] == sum(deep) > 0
    assert "flagged penetration" in summary_line(traj.summary)
    # 500 points per solve: the held-out objective agrees with the fitted one, no step reads as overfit
    assert traj.summary["overfit"] == 0 and not any("overfit" in r["flag"] for r in rows)
    # off: the same rows judged with penetration_alarm = 0 raise nothing
    off = ElasticStepper(small_field(2, 16, 2), rest, MAT, lm(12), gravity=(0.0, -G),
                         contacts=[PlaneContact((0.0, 1.0), 0.0, k)], samples=500, penetration_alarm=0.0)
    assert off.penetration_limit is None and not any(off.flag_metrics(r) for r in rows)
    with pytest.raises(ValueError, match="penetration_alarm"):
        ElasticStepper(small_field(2), rest, MAT, lm(), contacts=[PlaneContact((0.0, 1.0), 0.0, k)],
                       penetration_alarm=-1.0)


# --------------------------------------------------------------------------------------
# handles
# --------------------------------------------------------------------------------------
def test_exact_handles_give_the_analytic_uniform_stretch_energy():
    r"""Two exact plane handles X₀ = ∓1 with displacements 0 and (D(t), 0): with NN ≡ 0 the
    ansatz is the uniform stretch φ = (X₀ + D(X₀ + 1)/2, X₁), F = diag(s, 1), s = 1 + D/2,
    so Ψ = λ(s − 1)² + μ(s − 1)² (σ = s, 1; det F = s) and E = V(λ + μ)(D/2)²; the
    quasi-static objective is 2E/V.  After a solve the handles still hold exactly."""
    lam, mu, D, ramp = 1.0, 1000.0, 2.0, 4.0
    mat = Material("arap", lam, mu, 1.0)
    rest = RestShape.from_box((-1.0, -1.0), (1.0, 1.0))
    handles = [PlaneHandle(0, -1.0), PlaneHandle(0, 1.0, (D, 0.0), ramp_time=ramp)]
    st = ElasticStepper(small_field(2, 12, 1), rest, mat, lm(5), handles=handles, dirichlet="exact",
                        quasi_static=True, samples=300)
    state, _ = st.initial_state(None)
    for t in (1.0, 2.0, 4.0, 6.0):
        d = D * min(1.0, t / ramp)
        analytic = rest.volume * (lam + mu) * (d / 2) ** 2
        assert st.metrics(state, t)["elastic_energy"] == pytest.approx(analytic, rel=1e-4)
    loss, _ = st.loss_grad(state["phi"], state, 0.0, 1.0, jax.random.PRNGKey(0))  # the step to t = 1
    assert float(loss) == pytest.approx(2 * (lam + mu) * (0.5 / 2) ** 2, rel=1e-4)

    new, info = st.step(state, 0.0, 1.0, jax.random.PRNGKey(1))
    assert info["loss"] < info["loss_initial"]  # necking lowers the energy below the uniform stretch
    y = np.linspace(-1, 1, 11, dtype=np.float32)
    left = np.stack([-np.ones_like(y), y], 1)
    right = np.stack([np.ones_like(y), y], 1)
    np.testing.assert_allclose(st.evaluate(new, left, 1.0), left, atol=1e-6)
    np.testing.assert_allclose(st.evaluate(new, right, 1.0), right + [0.5, 0.0], atol=1e-6)


def test_penalty_handles_hold_within_the_penalty():
    """Penalty handles (the paper's way): the handle error falls as the stiffness grows."""
    rest = RestShape.from_box((-1.0, -1.0), (1.0, 1.0))
    handles = [PlaneHandle(0, -1.0), PlaneHandle(0, 1.0, (0.4, 0.0))]
    y = np.linspace(-0.9, 0.9, 7, dtype=np.float32)
    right = np.stack([np.ones_like(y), y], 1)
    st = ElasticStepper(small_field(2, 12, 1), rest, MAT, lm(15), handles=handles, dirichlet="penalty",
                        handle_stiffness=1e6, quasi_static=True, samples=300, handle_samples=64)
    state, _ = st.initial_state(None)
    new, info = st.step(state, 0.0, 1.0, jax.random.PRNGKey(1))
    err = np.abs(st.evaluate(new, right, 1.0) - (right + [0.4, 0.0])).max()
    assert err < 0.02, err


# --------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------
def _cfg(name, **updates):
    return merge(get_scenario(name).defaults, updates)


@pytest.mark.parametrize("scenario", [s.name for s in ELASTIC_SCENARIOS])
def test_default_configs_build(scenario):
    st = get_scenario(scenario).build(_cfg(scenario))
    assert st.state_bytes() == 4 * st.num_params
    assert st.dim == (3 if scenario.endswith("3d") else 2)


@pytest.mark.parametrize("updates, key", [
    ({"material": {"poisson": 0.5}}, "material.poisson"),
    ({"material": {"poisson": 0.7}}, "material.poisson"),
    ({"material": {"young": -1.0}}, "material.young"),
    ({"material": {"density": 0.0}}, "material.density"),
    ({"material": {"energy": "hooke"}}, "material.energy"),
    ({"material": {"energy": "snh"}}, "optimizer"),
    ({"optimizer": "newton"}, "optimizer"),
    ({"contact": {"stiffness": -5.0}}, "contact.stiffness"),
    ({"contact": {"sphere": [0.0, 0.0, -1.0]}}, "contact.sphere"),
    ({"contact": {"plane": [0.0, 1.0]}}, "contact.plane"),
    ({"gravity": [0.0, 0.0, -9.8]}, "gravity"),
    ({"geometry": {"hi": [0.8, 0.0]}}, "geometry.hi"),
    ({"geometry": {"shape": "torus"}}, "geometry.shape"),
    ({"handles": {"positions": [0.0, 0.5, 1.0]}}, "handles.positions"),
    ({"handles": {"positions": [0.0], "displacements": [[1.0]]}}, "handles.displacements[0]"),
    ({"penetration_alarm": -0.1}, "penetration_alarm"),
    ({"field": {"kind": "rbf"}}, "field.kind"),
    ({"field": {"kind": "fourier", "encoding": "axis", "features": 3}}, "field"),
    ({"momentum": {"points": -1}}, "momentum.points"),
    ({"momentum": {"points": 4096}, "contact_band": {"width": 0.1}, "contact_points": {"pool": 0}},
     "momentum.points"),
    ({"momentum": {"points": 4096}, "optimizer": "adam", "contact_points": {"pool": 0}}, "momentum.points"),
    ({"momentum": {"points": 4096}, "quasi_static": True, "gravity": [0.0, 0.0]}, "momentum.points"),
    ({"momentum": {"points": 4096}, "samples": 1}, "samples"),
])
def test_bad_config_values_name_the_key(updates, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        build_elastic(_cfg("elastic_collide_2d", **updates))


def test_missing_mesh_file_is_a_config_and_mesh_error(tmp_path):
    missing = tmp_path / "nope.msh"
    cfg = _cfg("elastic_drop_3d", geometry={"shape": "mesh", "mesh": str(missing)})
    with pytest.raises(ConfigError, match="geometry.mesh.*not found") as exc:
        build_elastic(cfg)
    assert isinstance(exc.value, MeshError)


def test_user_mesh_file_is_used(tmp_path):
    path = tmp_path / "cube.vtu"
    m = box_mesh((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 2)
    meshio.write(path, meshio.Mesh(m.points, [("tetra", m.cells)]))
    st = build_elastic(_cfg("elastic_drop_3d", geometry={"shape": "mesh", "mesh": str(path)}))
    assert st.rest.volume == pytest.approx(1.0)


# --------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------
def test_outputs_paraview_series_images_and_animation(tmp_path):
    rest = RestShape.from_box((-0.5, 0.0), (0.5, 1.0), resolution=4)
    st = ElasticStepper(small_field(2, 8), rest, MAT, lm(3), gravity=(0.0, -G),
                        contacts=[PlaneContact((0.0, 1.0), -1.0, 1e4)], samples=64)
    traj = simulate(st, dt=0.1, steps=2, key=jax.random.PRNGKey(0), run_dir=tmp_path)
    paths = st.write_outputs(traj, tmp_path, {"output": {"ply": False}})
    pvd = tmp_path / "paraview" / "elastic.pvd"
    assert pvd in paths
    sets = ET.parse(pvd).getroot().find("Collection").findall("DataSet")
    assert [float(d.get("timestep")) for d in sets] == pytest.approx([0.0, 0.1, 0.2])
    last = meshio.read(tmp_path / "paraview" / sets[-1].get("file"))
    disp = last.point_data["displacement"]
    # rest points + displacement (Warp By Vector moves them once, onto the deformed body)
    np.testing.assert_allclose(last.points[:, :2], rest.mesh.points, atol=1e-6)
    np.testing.assert_allclose(last.points + disp, last.point_data["deformed_position"], atol=1e-6)
    assert disp[:, 1].mean() == pytest.approx(-3 * 0.01 * G, abs=1e-3)  # x² = X + 3Δt²b
    assert len(list((tmp_path / "frames").glob("step_*.png"))) == 3
    assert any(p.name.startswith("animation") for p in paths)


_ROUNDS = ["rounds=2", "samples=100", "lm.max_iters=3", "lm.ftol=0"]  # two rounds of 3 iterations, fresh points each


def test_solve_rounds_report_totals_and_judge_convergence_on_held_out_points():
    # A step of several rounds (fresh points each, as elastic_drop_3d uses) reports the
    # iterations and rejected steps summed over its rounds, the objective on held-out
    # points, and whether the last round still made progress there.
    from insr.cli import build_stepper, resolve_config

    cfg = resolve_config("elastic_collide_2d", [*_ROUNDS, "geometry.lo=[-0.2, 0.45]", "geometry.hi=[0.8, 1.45]"])
    st = build_stepper(cfg)
    state, _ = st.initial_state(jax.random.PRNGKey(0))
    state, info = st.step(state, 0.0, cfg["dt"], jax.random.PRNGKey(1))  # deep in the disk at once
    assert info["iterations"] == 6 and 0 <= info["rejected"] <= 6
    assert info["heldout_loss"] > 0 and np.isfinite(info["heldout_change"])
    # 3 iterations per round against the first contact: LM's damping grows through
    # rejected steps (measured: 5 of 6 rejected, the last round none accepted) — no
    # progress, which must not read as convergence.
    assert info["stop"] == "stalled" and info["converged"] is False, info


@pytest.mark.slow  # its own programs (another geometry, ~14 s); the stalled side above stays in the default suite
def test_solve_rounds_of_a_free_fall_converge_on_held_out_points():
    from insr.cli import build_stepper, resolve_config

    # Free fall far above every obstacle: the ballistic predictor is the exact step.
    cfg = resolve_config("elastic_collide_2d", [*_ROUNDS, "geometry.lo=[-0.2, 3.0]", "geometry.hi=[0.8, 4.0]"])
    st = build_stepper(cfg)
    state, _ = st.initial_state(jax.random.PRNGKey(0))
    state, info = st.step(state, 0.0, cfg["dt"], jax.random.PRNGKey(1))
    assert info["converged"] is True and info["heldout_loss"] < 1e-10, info


# The control (1,000 points, not flagged) runs with the slow checks: its programs are its own
# (~18 s); in the default suite the 500-point run of
# test_a_body_sinking_into_an_obstacle_is_flagged_penetration is the unflagged side.
@pytest.mark.parametrize("samples, flagged", [(16, True), pytest.param(1000, False, marks=pytest.mark.slow)])
def test_a_step_that_fits_its_sample_but_not_the_body_is_flagged_overfit(samples, flagged):
    # Into the disk with 16 points per solve: LM fits them (loss 0.06) while the objective on
    # held-out points is 44 (measured) — flagged in metrics.csv and counted in the summary.
    # With 1,000 points the same step has 1.01 fitted and 0.90 held out: not flagged.
    from insr.cli import build_stepper, resolve_config

    base = ["lm.max_iters=20", "lm.ftol=0", "geometry.lo=[-0.2, 0.45]", "geometry.hi=[0.8, 1.45]"]
    st = build_stepper(resolve_config("elastic_collide_2d", [f"samples={samples}", *base]))
    traj = simulate(st, dt=0.1, steps=1, key=jax.random.PRNGKey(1))
    row = traj.metrics[-1]
    assert ("overfit" in row["flag"]) is flagged, row
    assert traj.summary["overfit"] == int(flagged)
    if flagged:
        assert row["heldout_loss"] > st.overfit_factor * row["loss"]
        assert "flagged overfit" in summary_line(traj.summary)


def test_moved_classes_are_still_importable_from_their_old_homes():
    import insr.elasticity as pkg
    import insr.elasticity.stepper as old
    from insr.physics.materials import ENERGIES
    from insr.viz.elastic import write_elastic_outputs

    for mod in (pkg, old):
        assert (mod.Material, mod.RestShape, mod.PlaneHandle, mod.ENERGIES) == (Material, RestShape, PlaneHandle,
                                                                                ENERGIES)
    assert old.write_elastic_outputs is write_elastic_outputs
