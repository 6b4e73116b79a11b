"""The contact-band importance sampler: unbiased weights, and the band it fills."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insr.geometry.band_sampling import band_mixture


def _uniform(n):
    return lambda key: jax.random.uniform(key, (n, 2))


def _estimate(f, indicator, n_uniform, n_band, pool, draws=200):
    means = []
    for i in range(draws):
        x, w, frac = band_mixture(jax.random.PRNGKey(i), _uniform(n_uniform), _uniform(pool), indicator, n_band)
        means.append(float(jnp.mean(w * f(x))))
    return np.array(means), float(frac)


@pytest.mark.parametrize("width, spread", [(0.02, 0.4), (0.3, 0.8)])
def test_band_estimate_is_unbiased_and_lower_variance(width, spread):
    # f is large only in the thin strip x < 0.02: most uniform points miss it.  Exact mean over the
    # unit square: ∫ 1000·1[x<0.02] = 20.  The band [0, width) covers the strip (width 0.02: the
    # band is the strip itself; 0.3: a wider layer).
    f = lambda x: 1000.0 * (x[:, 0] < 0.02)
    indicator = lambda x: x[:, 0] < width
    band, frac = _estimate(f, indicator, 100, 100, 1600)
    uni, _ = _estimate(f, lambda x: jnp.zeros(x.shape[0], bool), 100, 100, 1600)
    assert abs(frac - width) < 4 * np.sqrt(width * (1 - width) / 1600)
    for est in (band, uni):
        assert abs(est.mean() - 20.0) < 4 * est.std() / np.sqrt(len(est)) + 0.2
    # the band puts half the points in it: the estimate's spread falls (3× when the
    # band is the strip itself — the pool's estimate of its size then sets the spread — less for
    # a band 15× wider than the strip)
    assert band.std() < spread * uni.std()


def test_empty_band_is_uniform_and_small_band_fills_with_outside_points():
    x, w, frac = band_mixture(jax.random.PRNGKey(0), _uniform(50), _uniform(400),
                              lambda x: jnp.zeros(x.shape[0], bool), 50)
    assert float(frac) == 0.0 and np.allclose(w, 1.0) and x.shape == (100, 2)
    # a band holding ~8 of the 400 candidates: those 8 and 42 outside points fill the band slots
    ind = lambda x: x[:, 0] < 0.02
    x, w, frac = band_mixture(jax.random.PRNGKey(1), _uniform(50), _uniform(400), ind, 50)
    slots = np.asarray(ind(x[50:]))
    assert slots.sum() == round(float(frac) * 400)
    assert len(np.unique(np.asarray(x[50:]), axis=0)) == 50  # distinct candidates
    # still unbiased for a constant: the weights average to 1 in expectation
    means = [float(jnp.mean(band_mixture(jax.random.PRNGKey(i), _uniform(50), _uniform(400), ind, 50)[1]))
             for i in range(100)]
    assert abs(np.mean(means) - 1.0) < 0.02


def test_pool_too_small_is_refused():
    with pytest.raises(ValueError, match="pool"):
        band_mixture(jax.random.PRNGKey(0), _uniform(10), _uniform(20), lambda x: x[:, 0] < 0.5, 30)


# --------------------------------------------------------------------------------------
# in the elastic step: the weighted objective estimates the same energy, with less noise
# --------------------------------------------------------------------------------------
def _square_in_plane(depth=0.05, k=1e5, gravity=None, at_rest=False):
    """A unit square whose network's output bias is moved ``depth`` down into the plane y = 0
    (stiffness ``k``): ``(rest, field, stepper(shape=rest, samples=200, **kw), draws(st, n))``,
    where ``draws`` gives the step objective at the pushed weights on the points of n keys.
    ``at_rest``: the previous step's Δt is set, so the inertial prediction is the position."""
    import equinox as eqx

    from insr.elasticity import ElasticStepper
    from insr.fields import Siren
    from insr.geometry.rest_shape import RestShape
    from insr.physics.elastic_energy import PlaneContact
    from insr.physics.materials import Material
    from insr.solvers import LevenbergMarquardt

    rest = RestShape.from_box((-0.5, 0.0), (0.5, 1.0))
    field = Siren(2, 2, 12, 1, key=jax.random.PRNGKey(0), omega0=5.0)

    def stepper(shape=rest, samples=200, **kw):
        return ElasticStepper(field, shape, Material("arap", 200.0, 150.0, 1.0), LevenbergMarquardt(max_iters=2),
                              samples=samples, gravity=gravity, contacts=[PlaneContact((0.0, 1.0), 0.0, k)], **kw)

    state, _ = stepper().initial_state(None)
    pushed = eqx.tree_at(lambda f: f.layers[-1].bias, state["phi"], jnp.array([0.0, -depth], jnp.float32))
    state = {**state, "phi": pushed, "phi_prev": pushed, **({"dt": jnp.float32(0.1)} if at_rest else {})}

    def draws(st, n):
        return np.array([float(st.loss_grad(pushed, state, 0.0, 0.1, jax.random.PRNGKey(i))[0]) for i in range(n)])

    return rest, field, stepper, draws


def test_elastic_step_objective_with_contact_band_is_unbiased():
    r"""A unit square pushed 0.05 into a plane (the network's output bias moved down): the
    contact energy k/2∫max(0, p)² lives in its bottom 5 %.  The step objective 2(E − C)/V
    estimated on 200 points — uniform, or half of them in a 0.05-wide contact band — averages
    (over 60 draws) to the value a 40,000-point uniform estimate gives, and the band's draws
    scatter less (measured: std 0.90 against 1.67)."""
    from insr.elasticity import ElasticStepper
    from insr.physics.materials import Material
    from insr.solvers import LevenbergMarquardt

    rest, field, stepper, draws = _square_in_plane(gravity=(0.0, -9.8))
    exact = float(np.mean(draws(stepper(samples=40000), 3)))
    uniform, band = draws(stepper(), 60), draws(stepper(contact_band=0.05), 60)
    assert exact > 1.0  # the contact term dominates the objective
    for est in (uniform, band):
        assert abs(est.mean() - exact) < 4 * est.std() / np.sqrt(len(est)) + 1e-3 * exact, (est.mean(), exact)
    # (the band also holds the layer the inertial prediction φ̂ = φ + Δt²b would push in: ~15 %)
    assert band.std() < 0.7 * uniform.std(), (band.std(), uniform.std())
    with pytest.raises(ValueError, match="contact_band > 0 needs an obstacle"):
        ElasticStepper(field, rest, Material("arap", 200.0, 150.0, 1.0), LevenbergMarquardt(), contact_band=0.1)


@pytest.mark.parametrize("bad, match", [
    (["contact_band.width=-0.1"], r"contact_band\.width.*≥ 0"),
    (["contact_band.share=1"], r"contact_band\.share.*\(0, 1\)"),
    (["contact_band.pool=1"], r"contact_band\.pool.*≥ 2"),
    (["contact_band.width=0.1", "samples=1"], r"'samples'.*≥ 2 with a contact band"),
    (["contact_band.width=0.1", "optimizer=\"adam\""], r"contact_band\.width.*adam"),
])
def test_bad_contact_band_settings_are_named(bad, match):
    from insr.cli import build_stepper, resolve_config
    from insr.config import ConfigError

    with pytest.raises(ConfigError, match=match):
        build_stepper(resolve_config("elastic_drop_3d", bad))


# --------------------------------------------------------------------------------------
# contact on its own fine point set (ElasticStepper(contact_pool=…))
# --------------------------------------------------------------------------------------
def test_contact_on_its_own_points_is_the_same_energy_with_far_less_noise():
    r"""The square of the test above pushed 0.05 into the plane, with no gravity and at rest,
    so the step objective is the contact term alone: k·(1/V)∫max(0, −gap)² = k·0.05³/3 = 4.1667
    (exact for the affine network φ = X − 0.05·e_y).  Measured over 30 draws (the test takes
    20): on 200 uniform volume points (about 10 fall in the 5 % layer) the draws scatter by 38 %
    of the integral;
    on a 64² jittered grid whose 400 points nearest the plane enter the solve (weight 1/4096
    each) by 2.6 %, every draw within 5 % (on 128², 1,600 kept: 0.55 %).  A kept set too
    small for the layer (100 of 4,096 points: the layer holds ~205) is still unbiased — the
    volume points charge the contact outside the kept region — with a scatter between the
    two (7 %).  In a mesh (no grid to jitter) the pool is uniform: 9.9 % on the same square
    given as triangles."""
    from insr.geometry.rest_shape import RestShape

    k, depth = 1e5, 0.05
    exact = k * depth**3 / 3
    rest, _, stepper, draws = _square_in_plane(depth, k, at_rest=True)
    n = 20
    uniform = draws(stepper(), n)
    own = draws(stepper(contact_pool=4096, contact_kept=400), n)
    starved = draws(stepper(contact_pool=4096, contact_kept=100), n)
    assert abs(uniform.mean() - exact) < 4 * uniform.std() / np.sqrt(len(uniform)), (uniform.mean(), exact)
    assert uniform.std() > 0.2 * exact
    assert abs(own.mean() - exact) < 4 * own.std() / np.sqrt(len(own)), (own.mean(), exact)
    assert np.all(np.abs(own - exact) < 0.1 * exact), own / exact
    assert own.std() < 0.1 * uniform.std(), (own.std(), uniform.std())
    assert abs(starved.mean() - exact) < 4 * starved.std() / np.sqrt(len(starved)), (starved.mean(), exact)
    assert own.std() < starved.std() < 0.5 * uniform.std(), (own.std(), starved.std(), uniform.std())
    meshed = draws(stepper(RestShape.from_mesh(rest.mesh), contact_pool=4096, contact_kept=400), n)
    assert abs(meshed.mean() - exact) < 4 * meshed.std() / np.sqrt(len(meshed)), (meshed.mean(), exact)
    assert own.std() < meshed.std() < 0.4 * uniform.std(), (own.std(), meshed.std(), uniform.std())


@pytest.mark.parametrize("bad, match", [
    (["contact_points.pool=-1"], r"contact_points\.pool.*≥ 0"),
    (["contact_points.pool=100", "contact_points.kept=100"], r"contact_points\.kept.*below contact_points\.pool"),
    (["contact_points.pool=4096", "contact_band.width=0.1"], r"contact_points\.pool.*contact band"),
    (["contact_points.pool=4096", "optimizer=\"adam\""], r"contact_points\.pool.*adam"),
    (["contact_points.pool=4096", "contact.plane=[]", "contact.sphere=[]"], r"contact_points\.pool.*obstacle"),
])
def test_bad_contact_points_settings_are_named(bad, match):
    from insr.cli import build_stepper, resolve_config
    from insr.config import ConfigError

    with pytest.raises(ConfigError, match=match):
        build_stepper(resolve_config("elastic_collide_2d", bad))
