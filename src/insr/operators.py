"""Differential operators of a field with respect to its input.

Each takes a callable ``f: R^d → R^m`` acting on one point of shape (d,) and returns
a callable of the same point.  Spatial dimensions are small (1–3), so forward mode
is used throughout: ``jacfwd`` costs d JVPs, and the Laplacian is a sum of d
forward-over-forward second directional derivatives, cheaper than forming the full
Hessian with ``jax.hessian``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def jacobian(f):
    """x ↦ ∂f_i/∂x_j, shape (m, d)."""
    return jax.jacfwd(f)


def grad(f):
    """x ↦ ∇f for a field with one output channel (m = 1); shape (d,)."""
    jac = jax.jacfwd(f)

    def g(x):
        J = jac(x)
        if J.shape[0] != 1:
            raise ValueError(f"grad needs a scalar field (1 output channel), got {J.shape[0]}; use jacobian")
        return J[0]

    return g


def divergence(f):
    """x ↦ Σ_i ∂f_i/∂x_i for a vector field with m = d; returns shape ()."""
    jac = jax.jacfwd(f)
    return lambda x: jnp.trace(jac(x))


def curl2d(f):
    """x ↦ ∂f_1/∂x_0 − ∂f_0/∂x_1 (scalar vorticity of a 2D vector field)."""
    jac = jax.jacfwd(f)

    def c(x):
        J = jac(x)
        return J[1, 0] - J[0, 1]

    return c


def second_directional(f, v):
    """x ↦ d²/dε² f(x + ε v) at ε = 0, shape (m,): one forward-over-forward pass."""

    def df(x):
        return jax.jvp(f, (x,), (v,))[1]

    return lambda x: jax.jvp(df, (x,), (v,))[1]


def laplacian(f):
    """x ↦ Σ_i ∂²f/∂x_i², shape (m,), per output channel."""

    def lap(x):
        eye = jnp.eye(x.shape[0], dtype=x.dtype)
        return sum(second_directional(f, eye[i])(x) for i in range(x.shape[0]))

    return lap
