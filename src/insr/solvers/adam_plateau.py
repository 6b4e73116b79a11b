"""The paper-faithful inner loop (Chen et al., ICML 2023, Appendix): Adam with
ReduceLROnPlateau.

Adam (lr 1e-4); every iteration draws fresh sample points; the learning rate is
multiplied by ``factor`` (0.1) when the loss has not improved on its best value by
a relative ``threshold`` (1e-4, PyTorch's default 'rel' mode) for more than
``patience`` (500) iterations; stop when lr ≤ ``min_lr`` (1.1e-8) or after
``max_iters`` (20,000) iterations.  This is slow by design; it exists so the
speed-up of the default Levenberg–Marquardt solver can be measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import optax

from insr.solvers.levenberg_marquardt import SolveStats
from insr.solvers.objective import loss_value, sample_blocks


@dataclass(frozen=True)
class AdamPlateau:
    # residual blocks, drawing fresh points every iteration (the paper's loop): a scheme whose
    # residual needs per-point data computed once per draw must compute it inside the residual
    objective: ClassVar[str] = "least_squares"
    fresh_points: ClassVar[bool] = True

    lr: float = 1e-4
    factor: float = 0.1
    patience: int = 500
    threshold: float = 1e-4
    min_lr: float = 1.1e-8
    max_iters: int = 20_000
    name: str = "adam"

    def __post_init__(self):
        if not self.lr > 0:
            raise ValueError(f"adam.lr must be > 0, got {self.lr!r}")
        if not 0 < self.factor < 1:
            raise ValueError(f"adam.factor must be in (0, 1), got {self.factor!r}")
        if int(self.max_iters) < 1 or int(self.patience) < 0:
            raise ValueError("adam.max_iters must be ≥ 1 and adam.patience ≥ 0")

    def solve(self, blocks, params0, args, key):
        opt = optax.inject_hyperparams(optax.adam)(learning_rate=self.lr)
        value_and_grad = jax.value_and_grad(lambda p, pts: loss_value(blocks, pts, p, args))
        first_loss = loss_value(blocks, sample_blocks(blocks, key), params0, args)

        def cond(c):
            params, state, best, bad, it, loss = c
            return (it < self.max_iters) & (state.hyperparams["learning_rate"] > self.min_lr)

        def body(c):
            params, state, best, bad, it, _ = c
            pts = sample_blocks(blocks, jax.random.fold_in(key, it))
            loss, grads = value_and_grad(params, pts)
            updates, state = opt.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            improved = loss < best * (1.0 - self.threshold)
            best = jnp.where(improved, loss, best)
            bad = jnp.where(improved, 0, bad + 1)
            lr = state.hyperparams["learning_rate"]
            reduce = bad > self.patience
            state.hyperparams["learning_rate"] = jnp.where(reduce, lr * self.factor, lr)
            bad = jnp.where(reduce, 0, bad)
            return params, state, best, bad, it + 1, loss

        init = (params0, opt.init(params0), jnp.asarray(jnp.inf), jnp.asarray(0), jnp.asarray(0), first_loss)
        params, state, best, bad, it, loss = jax.lax.while_loop(cond, body, init)
        final = loss_value(blocks, sample_blocks(blocks, key), params, args)
        return params, SolveStats(it, first_loss, final, state.hyperparams["learning_rate"] <= self.min_lr)
