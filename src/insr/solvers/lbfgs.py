"""L-BFGS for scalar objectives that are not sums of squares (optax's L-BFGS with its
zoom line search, run inside one ``lax.while_loop``).

Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 7.5 (two-loop recursion) with a
strong-Wolfe line search.  Used by the elastic stepper for the stable Neo-Hookean energy
and for quasi-static problems with gravity, where Levenberg–Marquardt has no
least-squares form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import optax
import optax.tree_utils as otu

from insr.solvers.levenberg_marquardt import SolveStats

__all__ = ["LBFGS"]


@dataclass(frozen=True)
class LBFGS:
    """Minimise a scalar objective with optax's L-BFGS (zoom line search), inside one
    ``lax.while_loop``.  Stops after ``max_iters`` iterations, when the gradient norm is
    ≤ ``gtol``, or when 3 consecutive iterations each decrease the objective by less than
    ``ftol``·max(|f|, |f₀|).  Slower than Levenberg–Marquardt on least-squares objectives:
    use it for stable Neo-Hookean and for quasi-static problems with gravity."""

    # What it minimises (read by the schemes instead of checking the solver's class): a scalar
    # objective ``minimize(f, params0)``, not residual blocks.
    objective: ClassVar[str] = "scalar"
    fresh_points: ClassVar[bool] = False

    max_iters: int = 400
    ftol: float = 1e-7
    gtol: float = 0.0
    memory: int = 10
    name: str = "lbfgs"

    def __post_init__(self):
        if int(self.max_iters) < 1:
            raise ValueError(f"lbfgs.max_iters must be ≥ 1, got {self.max_iters!r}")
        if int(self.memory) < 1:
            raise ValueError(f"lbfgs.memory must be ≥ 1, got {self.memory!r}")
        if not (self.ftol >= 0 and self.gtol >= 0):
            raise ValueError("lbfgs.ftol and lbfgs.gtol must be ≥ 0")

    def minimize(self, fun, params0):
        opt = optax.lbfgs(memory_size=int(self.memory))
        vg = optax.value_and_grad_from_state(fun)
        f0 = fun(params0)
        scale = jnp.maximum(jnp.abs(f0), 1e-30)

        def cond(c):
            return (~c[4]) & (c[2] < self.max_iters)

        def body(c):
            p, s, it, f, _, calm = c
            value, grad = vg(p, state=s)
            updates, s = opt.update(grad, s, p, value=value, grad=grad, value_fn=fun)
            p = optax.apply_updates(p, updates)
            f_new = otu.tree_get(s, "value")
            small = (f - f_new) <= self.ftol * jnp.maximum(jnp.abs(f_new), scale)
            calm = jnp.where(small, calm + 1, 0)
            done = (calm >= 3) | (otu.tree_norm(grad) <= self.gtol) | ~jnp.isfinite(f_new)
            return p, s, it + 1, f_new, done, calm

        init = (params0, opt.init(params0), jnp.asarray(0), f0, jnp.asarray(False), jnp.asarray(0))
        p, s, it, f, done, _ = jax.lax.while_loop(cond, body, init)
        return p, SolveStats(it, f0, f, done & jnp.isfinite(f))
