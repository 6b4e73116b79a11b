import jax
import jax.numpy as jnp
import numpy as np

from insr.fastmath import fast_cos, fast_sin


def test_fast_sin_cos_accuracy_over_siren_range():
    x = np.linspace(-200, 200, 400_001).astype(np.float32)
    x64 = x.astype(np.float64)
    assert np.max(np.abs(np.asarray(fast_sin(jnp.asarray(x))) - np.sin(x64))) < 3e-7
    assert np.max(np.abs(np.asarray(fast_cos(jnp.asarray(x))) - np.cos(x64))) < 3e-7


def test_fast_sin_derivatives_are_cos_and_minus_sin():
    xs = jnp.asarray(np.random.default_rng(0).uniform(-50, 50, 200).astype(np.float32))
    d1 = jax.vmap(jax.grad(fast_sin))(xs)
    d2 = jax.vmap(jax.grad(jax.grad(fast_sin)))(xs)
    d3 = jax.vmap(jax.grad(jax.grad(jax.grad(fast_sin))))(xs)
    x64 = np.asarray(xs, np.float64)
    np.testing.assert_allclose(d1, np.cos(x64), atol=3e-7)
    np.testing.assert_allclose(d2, -np.sin(x64), atol=3e-7)
    np.testing.assert_allclose(d3, -np.cos(x64), atol=3e-7)


def test_float64_input_uses_exact_sine():
    with jax.enable_x64(True):
        x = jnp.asarray([1e-3, 1.0, 123.456], dtype=jnp.float64)
        np.testing.assert_allclose(np.asarray(fast_sin(x)), np.sin(np.asarray(x)), rtol=1e-15)
