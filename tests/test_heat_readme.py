"""The README's worked example: a new PDE (the heat equation) in a few lines, checked against its exact solution."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import insr
from insr.fields import Siren
from insr.geometry import Box, Interval
from insr.integrators import Midpoint
from insr.operators import laplacian
from insr.problems import EvolutionProblem
from insr.solvers import LevenbergMarquardt


class Heat(EvolutionProblem):  # u_t = ν u_xx on [0, 1], u = 0 at the ends
    nu: float = 0.1
    domain: Box = eqx.field(static=True, default=Interval(0.0, 1.0))
    out_dim: int = eqx.field(static=True, default=1)

    def initial_condition(self, x):
        return jnp.sin(jnp.pi * x)

    def rhs(self, u, x, t):
        return self.nu * laplacian(u)(x)

    def boundary_residual(self, u, x, t):
        return u(x)

    def exact_solution(self, x, t):
        return jnp.exp(-self.nu * jnp.pi**2 * t) * jnp.sin(jnp.pi * x)


def test_user_defined_heat_equation_decays_at_the_exact_rate(tmp_path):
    step_solver = LevenbergMarquardt.per_step(rtol=3e-3)  # heat1d's per-step setting
    traj = insr.solve(Heat(nu=0.1), Siren(1, 1, 16, 2, key=jax.random.PRNGKey(0)), Midpoint(), step_solver,
                      dt=0.01, t1=0.2, key=jax.random.PRNGKey(1), samples=1000, checkpoint_dir=tmp_path / "run")
    assert traj.summary["missed_tolerance"] == 0, [r["stop"] for r in traj.metrics[1:]]
    x = np.linspace(0, 1, 201, dtype=np.float32)[:, None]
    u = traj.evaluate(x, 0.2)[:, 0]
    exact = np.exp(-0.1 * np.pi**2 * 0.2) * np.sin(np.pi * x[:, 0])
    assert np.max(np.abs(u - exact)) < 5e-3
    # The amplitude decayed by exp(-ν π² t) = 0.82, not left at 1 or at 0.
    amp = u[100]
    assert abs(amp - 0.8209) < 5e-3
    assert traj.metrics[-1]["rel_l2"] < 5e-3
    assert (tmp_path / "run" / "checkpoint.npz").is_file()
