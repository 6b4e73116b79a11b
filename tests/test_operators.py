import jax.numpy as jnp
import numpy as np

from insr.operators import curl2d, divergence, grad, jacobian, laplacian


def f_scalar(x):  # f = sin(x0)·x1² + x2³  (3D)
    return jnp.array([jnp.sin(x[0]) * x[1] ** 2 + x[2] ** 3])


def f_vec(x):  # 2D vector field (x0² x1, sin x1 + x0)
    return jnp.array([x[0] ** 2 * x[1], jnp.sin(x[1]) + x[0]])


def test_grad_and_laplacian_of_scalar_field():
    x = jnp.array([0.3, -1.2, 0.7])
    g = grad(f_scalar)(x)
    np.testing.assert_allclose(g, [np.cos(0.3) * 1.44, 2 * np.sin(0.3) * -1.2, 3 * 0.49], rtol=1e-5)
    lap = laplacian(f_scalar)(x)
    np.testing.assert_allclose(lap, [-np.sin(0.3) * 1.44 + 2 * np.sin(0.3) + 6 * 0.7], rtol=1e-5)


def test_jacobian_divergence_curl_laplacian_of_vector_field():
    x = jnp.array([0.5, 0.25])
    J = jacobian(f_vec)(x)
    np.testing.assert_allclose(J, [[2 * 0.5 * 0.25, 0.25], [1.0, np.cos(0.25)]], rtol=1e-6)
    np.testing.assert_allclose(divergence(f_vec)(x), 2 * 0.5 * 0.25 + np.cos(0.25), rtol=1e-6)
    np.testing.assert_allclose(curl2d(f_vec)(x), 1.0 - 0.25, rtol=1e-6)
    np.testing.assert_allclose(laplacian(f_vec)(x), [2 * 0.25, -np.sin(0.25)], rtol=1e-5)


def test_grad_rejects_vector_field():
    import pytest

    with pytest.raises(ValueError, match="scalar field"):
        grad(f_vec)(jnp.array([0.1, 0.2]))
