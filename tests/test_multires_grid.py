"""The multiresolution grid field (insr.fields.MultiresGrid): parameter accounting, the
interpolation's exactness and smoothness, hashing, derivatives, a fit, and the config path."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insr.fields import MultiresGrid
from insr.fields.multires_grid import level_resolutions, multires_param_count


def _grid(**kw):
    args = dict(lo=[-2.0], hi=[2.0], levels=4, base=8, growth=1.5)
    args.update(kw)
    return MultiresGrid(args.pop("in_dim", 1), 1, 8, 1, key=jax.random.PRNGKey(0), **args)


def test_parameters_and_bytes_count_every_table_and_layer():
    f = _grid(in_dim=2, lo=[0.0, 0.0], hi=[1.0, 1.0], levels=5, base=4, growth=2.0, table_size=300)
    assert f.resolutions == level_resolutions(5, 4, 2.0) == (4, 8, 16, 32, 64)
    assert f.hashed == (False, False, False, True, True)  # 5², 9², 17² nodes ≤ 300: dense; 33², 65²: hashed
    leaves = sum(x.size for x in jax.tree.leaves(eqx.filter(f, eqx.is_array)))
    assert f.num_params == leaves == multires_param_count(2, 1, 8, 1, levels=5, features=2, base=4, growth=2.0,
                                                          table_size=300)
    assert f.state_bytes == 4 * f.num_params


def _set_level_values(f, level, values):
    tables = list(f.tables)
    tables[level] = jnp.asarray(values, f.tables[level].dtype).reshape(-1, 1)
    return eqx.tree_at(lambda g: g.tables, f, tuple(tables))


@pytest.mark.parametrize("interpolation", ["cubic", "linear"])
def test_interpolation_reproduces_a_linear_field_between_the_nodes(interpolation):
    # one level of one feature holding a linear function's node values: the encoding equals
    # the function at any point of the interior cells (Catmull–Rom and d-linear are exact on
    # linear data; the outer cells clamp the cubic stencil's missing node)
    f = MultiresGrid(2, 1, 4, 0, key=jax.random.PRNGKey(1), lo=[-1.0, 0.0], hi=[1.0, 2.0], levels=1, features=1,
                     base=10, interpolation=interpolation)
    n = f.resolutions[0]
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    x_nodes, y_nodes = -1.0 + 2.0 * i / n, 2.0 * j / n
    g = lambda x, y: 0.7 * x - 1.3 * y + 0.2
    f = _set_level_values(f, 0, g(x_nodes, y_nodes).T.reshape(-1))  # row index = i + (n+1)·j
    pts = jax.random.uniform(jax.random.PRNGKey(2), (200, 2), minval=jnp.array([-0.8, 0.2]),
                             maxval=jnp.array([0.8, 1.8]))
    enc = jax.jit(jax.vmap(f.encode))(pts)[:, 0]
    np.testing.assert_allclose(enc, g(pts[:, 0], pts[:, 1]), atol=2e-6)


def test_cubic_field_is_c1_across_cell_faces_and_its_gradient_is_right():
    f = _grid(levels=3, base=5)
    f = eqx.tree_at(lambda g: g.tables, f, tuple(t * 1e4 for t in f.tables))  # O(1) tables
    u = jax.jit(lambda x: f(jnp.array([x]))[0])  # jitted: one compilation instead of one per operation
    du = jax.jit(jax.grad(u))
    face = -2.0 + 4.0 * 2 / 5  # a face of the coarsest level
    for eps in (1e-3, 1e-4):
        assert abs(float(du(face - eps)) - float(du(face + eps))) < 50 * eps * (1 + abs(float(du(face))))
    for x in (-1.37, 0.11, 1.9):
        h = 1e-3
        fd = (u(x + h) - u(x - h)) / (2 * h)
        assert abs(float(du(x)) - float(fd)) < 1e-2 * (1 + abs(float(fd)))
    # and the linear interpolation's gradient jumps there (why cubic is the default)
    g = _grid(levels=1, base=5, interpolation="linear")
    g = eqx.tree_at(lambda m: m.tables, g, tuple(t * 1e4 for t in g.tables))
    dg = jax.jit(jax.grad(lambda x: g(jnp.array([x]))[0]))
    assert abs(float(dg(face - 1e-4)) - float(dg(face + 1e-4))) > 1e-3


def test_hashed_levels_index_inside_their_tables():
    f = _grid(in_dim=3, lo=[0.0] * 3, hi=[1.0] * 3, levels=3, base=8, growth=2.0, table_size=512)
    assert f.hashed == (True, True, True)
    idx = jnp.asarray(np.random.default_rng(0).integers(0, 33, size=(1000, 3)), jnp.int32)
    rows = np.asarray(f._index(2, idx))
    assert rows.min() >= 0 and rows.max() < 512 and len(np.unique(rows)) > 300  # spread over the table
    assert np.all(np.isfinite(np.asarray(jax.jit(jax.vmap(f))(jax.random.uniform(jax.random.PRNGKey(0), (50, 3))))))


def test_validation_names_the_setting():
    with pytest.raises(ValueError, match="interpolation"):
        _grid(interpolation="quadratic")
    with pytest.raises(ValueError, match="lo and hi"):
        _grid(lo=[1.0], hi=[0.0])
    with pytest.raises(ValueError, match="growth"):
        _grid(growth=0.5)


def test_the_config_builds_it_on_the_problems_box_and_it_fits_the_initial_condition():
    from insr.cli import build_stepper, resolve_config, table_params

    cfg = resolve_config("heat1d", ['field.kind="grid"', "field.grid_levels=4", "field.width=8", "field.depth=1",
                                    "steps=1"])
    st = build_stepper(cfg)
    net = st.field_of(st.state_template())
    assert isinstance(net, MultiresGrid) and (net.lo, net.hi) == (st.problem.domain.lo, st.problem.domain.hi)
    assert st.num_params == table_params(cfg["field"], 1, 1)
    state, info = st.initial_state(jax.random.PRNGKey(0))
    assert info["fit_ok"] and info["fit_error"] < 1e-3, info


def test_derivative_on_the_box_faces_is_its_limit_from_inside():
    # the encoding clamps x to the box; a clamp that split the tie (jnp.clip) halved ∂f/∂x there
    f = _grid()
    g = lambda s: float(jax.grad(lambda t: f(jnp.array([t]))[0])(jnp.float32(s)))
    for face, inside in ((-2.0, -2.0 + 1e-4), (2.0, 2.0 - 1e-4)):
        on, near = g(face), g(inside)
        assert abs(near) > 0 and abs(on - near) <= 1e-2 * abs(near), (face, on, near)
