# ruff: noqa  (a prototype kept to reproduce the numbers in the issue note; to become a scenario)
"""Prototype (not yet a scenario): heat2d after TENG with a float64 periodic SIREN and gauss4.
Usage: python benchmarks/heat2d_prototype.py WIDTH DEPTH OMEGA0 DT SAMPLES RTOL INTEGRATOR [SEED] [T1]
e.g. 16 2 2.0 0.2 2000 1e-6 gauss4 0 4.0  (measured: rel L2 6.2e-8 at t=4 in 245 s, seed 0)."""
import sys
import time
import math
import jax; jax.config.update("jax_enable_x64", True)
import equinox as eqx
import jax.numpy as jnp
import numpy as np

import insr
from insr.fields import Periodic, Siren
from insr.geometry import Box
from insr.integrators import RK4, GaussLegendre4, Heun
from insr.operators import laplacian
from insr.problems import EvolutionProblem
from insr.solvers import LevenbergMarquardt

TP = 2*math.pi
class Heat2D(EvolutionProblem):
    nu: float = 0.1
    domain: Box = eqx.field(static=True, default=Box((0.0, 0.0), (TP, TP)))
    out_dim: int = eqx.field(static=True, default=1)
    def initial_condition(self, x):
        return self.exact_solution(x, 0.0)
    def rhs(self, u, x, t):
        return self.nu * laplacian(u)(x)
    def exact_solution(self, x, t):
        X, Y = x[0], x[1]
        d = lambda k2: jnp.exp(-self.nu * k2 * t)
        return jnp.atleast_1d(0.2207*jnp.sin(Y)*d(1) - 0.2030*jnp.sin(Y)*jnp.cos(2*X)*d(5) + 0.0294*jnp.sin(Y)*jnp.cos(4*X)*d(17)
                - 0.0087*jnp.sin(3*Y)*d(9) + 0.0080*jnp.sin(3*Y)*jnp.cos(2*X)*d(13))
    def error_points(self):
        g = np.arange(64)*TP/64
        X, Y = np.meshgrid(g, g, indexing="ij")
        return np.stack([X.ravel(), Y.ravel()], -1)

width, depth, om, dt, samples, rtol, integ = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
seed = int(sys.argv[8]) if len(sys.argv) > 8 else 0
t1 = float(sys.argv[9]) if len(sys.argv) > 9 else 4.0
net = Siren(4, 1, width, depth, omega0=om, fast_sine=False, key=jax.random.PRNGKey(seed))
net = jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_array(a) else a, net)
field = Periodic(net, periods=[TP, TP])
print("params", field.num_params)
I = {"gauss4": GaussLegendre4, "heun": Heun, "rk4": RK4}[integ]()
solver = LevenbergMarquardt(max_iters=50, ftol=0.0, rtol=rtol, tau=1e-6, geodesic=0.75, linear_dtype="float64")
init = LevenbergMarquardt(max_iters=400, ftol=1e-14, rtol=1e-9, tau=1e-6, geodesic=0.75, linear_dtype="float64")
t0 = time.time()
traj = insr.solve(Heat2D(), field, I, solver, dt=dt, t1=t1, key=jax.random.PRNGKey(seed+1), samples=samples, init_solver=init, init_tolerance=1e-3)
for r in traj.metrics[:: max(1, len(traj.metrics)//8)] + [traj.metrics[-1]]:
    print(r["step"], f"{r['t']:.2f} it {r['iterations']} loss {r['loss']:.2e} conv {r['converged']} rel {r['rel_l2']:.3e}", flush=True)
print("wall", time.time()-t0, "dtype", jax.tree.leaves(traj.states[-1])[0].dtype)
