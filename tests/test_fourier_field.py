"""Fourier-feature fields: honest sizes, fixed (untrained) frequencies, the encodings, the config
edge, and a PDE solved with one against its exact solution."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insr.cli import build_stepper, check_problem_size, resolve_config
from insr.config import ConfigError
from insr.fields import FourierFeatures
from insr.simulate import simulate


def test_sizes_count_the_trained_weights_and_the_fixed_frequencies():
    f = FourierFeatures(1, 1, 20, 2, features=16, sigma=2.0, key=jax.random.PRNGKey(0))
    # first layer reads the 2·16 embedding: 32·20 + 20, two hidden 20·20 + 20, output 20 + 1
    assert f.num_params == 32 * 20 + 20 + 2 * 420 + 21
    assert f.state_bytes == 4 * (f.num_params + 16)
    params, _ = eqx.partition(f, eqx.is_array)
    # B is not a leaf: the solvers never move it
    assert sum(x.size for x in jax.tree.leaves(params)) == f.num_params
    cfg = resolve_config("heat1d", ["field.kind=fourier", "field.features=16", "field.width=20"])
    assert check_problem_size(cfg) == f.num_params


def test_encodings():
    g = FourierFeatures(2, 1, 8, 1, features=4000, sigma=3.0, key=jax.random.PRNGKey(1))
    b = np.asarray(g.frequencies)
    assert b.shape == (4000, 2) and abs(b.std() - 3.0) < 0.1 and abs(b.mean()) < 0.1
    a = FourierFeatures(2, 1, 8, 1, features=8, sigma=8.0, encoding="axis", key=jax.random.PRNGKey(1))
    assert np.allclose(np.asarray(a.frequencies), [[1, 0], [2, 0], [4, 0], [8, 0], [0, 1], [0, 2], [0, 4], [0, 8]])
    x = jnp.array([0.3, -0.7])
    phase = 2 * np.pi * np.asarray(a.frequencies) @ np.asarray(x, np.float64)
    assert np.allclose(np.asarray(a.embed(x)), np.concatenate([np.sin(phase), np.cos(phase)]), atol=1e-5)
    # the same seed gives the same frequencies whatever JAX's 64-bit mode
    with jax.enable_x64(True):
        g64 = FourierFeatures(2, 1, 8, 1, features=4000, sigma=3.0, key=jax.random.PRNGKey(1))
    assert g64.frequencies == g.frequencies
    # second derivatives are the network's own (tanh, not ReLU: the heat residual needs u_xx):
    # they match central differences of the gradient
    grad = jax.jit(jax.grad(lambda x: a(x)[0]))  # jitted: one compilation instead of one per operation
    uxx = np.asarray(jax.jit(jax.hessian(lambda x: a(x)[0]))(x))
    h = 1e-3  # the top frequency is 8 cycles: 2π·8·h must be small
    fd = np.stack([(np.asarray(grad(x + h * e)) - np.asarray(grad(x - h * e))) / (2 * h) for e in jnp.eye(2)])
    assert np.abs(uxx).max() > 1e-2 and np.allclose(uxx, fd, rtol=2e-2, atol=2e-2 * np.abs(uxx).max())


def test_behind_a_periodic_embedding_the_field_is_exactly_periodic():
    from insr.fields import Periodic

    f = Periodic(FourierFeatures(2, 1, 16, 1, features=8, sigma=2.0, key=jax.random.PRNGKey(2)),
                 periods=[2 * np.pi])
    x = jnp.linspace(0, 2 * np.pi, 7)[:, None]
    u, v = jax.vmap(f)(x), jax.vmap(f)(x + 2 * np.pi)
    assert float(jnp.abs(u).max()) > 1e-3 and np.allclose(u, v, atol=1e-5)


@pytest.mark.parametrize("bad, match", [
    (["field.kind=hash"], "field.kind"),
    (["field.kind=fourier", "field.encoding=axes"], "field.encoding"),
    (["field.kind=fourier", "field.sigma=0"], "field.sigma"),
])
def test_bad_field_settings_are_named(bad, match):
    with pytest.raises(ConfigError, match=match):
        build_stepper(resolve_config("heat1d", bad))


def test_axis_encoding_needs_whole_features_per_axis():
    with pytest.raises(ValueError, match="multiple of in_dim"):
        FourierFeatures(2, 1, 8, 1, features=5, encoding="axis", key=jax.random.PRNGKey(0))
    # from a config: the class's own check comes back as a ConfigError naming the table
    from insr.problems import Heat1D
    from insr.scenarios import _field

    cfg = resolve_config("heat1d", ["field.kind=fourier", "field.encoding=axis", "field.features=5"])
    with pytest.raises(ConfigError, match="config table 'field'.*multiple of in_dim = 2"):
        _field(Heat1D(), cfg, periodic=True)  # behind the periodic embedding the input is (cos, sin)


@pytest.mark.parametrize("seed", [0, pytest.param(3, marks=pytest.mark.slow)])
def test_heat_equation_with_a_fourier_field_decays_at_the_exact_rate(seed):
    """heat1d (u = e^{−νπ²t} sin πx) with a Fourier-feature field: the initial fit and 5 midpoint
    steps stay within 2e-3 relative L2 of the exact solution, on two seeds."""
    cfg = resolve_config("heat1d", ["field.kind=fourier", "field.sigma=1.0", "field.features=16", "steps=5",
                                    "samples=400", f"seed={seed}"])
    traj = simulate(build_stepper(cfg), dt=cfg["dt"], steps=cfg["steps"], key=jax.random.PRNGKey(seed))
    first, last = traj.metrics[0], traj.metrics[-1]
    assert first["fit_ok"] and first["rel_l2"] < 1e-3, first
    assert last["t"] == pytest.approx(0.05) and last["rel_l2"] < 2e-3, last
