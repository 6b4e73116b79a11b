# ruff: noqa  (a prototype kept to reproduce the numbers in the issue note; to become a scenario)
"""Prototype (not yet a scenario): allen_cahn1d after RSNG with a float64 periodic SIREN, scored
over space-time against the ETDRK4 reference.  Usage as heat2d_prototype.py; not yet measured."""
import sys
import time
import math
import jax; jax.config.update("jax_enable_x64", True)
import equinox as eqx
import jax.numpy as jnp
import numpy as np

import insr
from insr.fields import Periodic, Siren
from insr.geometry import Box, Interval
from insr.integrators import RK4, GaussLegendre4, Heun, Midpoint
from insr.operators import laplacian
from insr.problems import EvolutionProblem
from insr.reference.spectral import PeriodicGrid, etdrk4
from insr.solvers import LevenbergMarquardt

TP = 2*math.pi
class AC(EvolutionProblem):
    eps: float = 5e-3
    domain: Box = eqx.field(static=True, default=Interval(0.0, TP))
    out_dim: int = eqx.field(static=True, default=1)
    def initial_condition(self, x):
        x = x[0]
        return jnp.atleast_1d(jnp.tanh(2*jnp.sin(x))/3 - jnp.exp(-23.5*(x-jnp.pi/2)**2) + jnp.exp(-27*(x-4.2)**2) + jnp.exp(-38*(x-5.4)**2))
    def rhs(self, u, x, t):
        v = u(x)
        return self.eps * laplacian(u)(x) + v - v**3
    def error_points(self):
        return (np.arange(1000)*TP/1000)[:, None]
width, depth, om, dt, samples, rtol, integ = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
seed = int(sys.argv[8]) if len(sys.argv) > 8 else 0
t1 = float(sys.argv[9]) if len(sys.argv) > 9 else 4.0
net = Siren(2, 1, width, depth, omega0=om, fast_sine=False, key=jax.random.PRNGKey(seed))
net = jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_array(a) else a, net)
field = Periodic(net, periods=[TP])
print("params", field.num_params)
I = {"gauss4": GaussLegendre4, "heun": Heun, "rk4": RK4, "midpoint": Midpoint}[integ]()
solver = LevenbergMarquardt(max_iters=50, ftol=0.0, rtol=rtol, tau=1e-6, geodesic=0.75, linear_dtype="float64")
init = LevenbergMarquardt(max_iters=1000, ftol=1e-15, rtol=1e-10, tau=1e-6, geodesic=0.75, linear_dtype="float64")
grid = PeriodicGrid((1000,), (TP,))
ref = etdrk4(lambda p: np.asarray(jax.vmap(AC().initial_condition)(jnp.asarray(p)))[:, 0], grid, linear=lambda k: -5e-3*k**2, nonlinear=lambda u,t: u-u**3, dt=dt/10, t1=t1, save_dt=dt)
t0 = time.time()
traj = insr.solve(AC(), field, I, solver, dt=dt, t1=t1, key=jax.random.PRNGKey(seed+1), samples=samples, init_solver=init, init_tolerance=1e-2)
num=den=0
pts = grid.points()
for k,(t, st) in enumerate(zip(traj.ts, traj.states)):
    u = traj.stepper.evaluate(st, pts)[:, 0]; r = ref.at(t)
    num += np.sum((u-r)**2); den += np.sum(r**2)
    row = traj.metrics[k]
    if k % max(1, len(traj.ts)//8) == 0 or k == len(traj.ts)-1:
        print(k, f"{t:.2f} it {row['iterations']} loss {row['loss']:.2e} conv {row['converged']} rel {np.linalg.norm(u-r)/np.linalg.norm(r):.3e}", flush=True)
print("spacetime rel L2", math.sqrt(num/den), "wall", time.time()-t0)
