r"""Neural elastodynamics: a deformation map φ_θ(X) = X + NN_θ(X) advanced by
variational implicit Euler (Chen et al., ICML 2023, Sec. 5.3).

This module holds the stepping machinery, :class:`ElasticStepper`.  The pieces it is built
from live elsewhere (and are re-exported here): the materials in
:mod:`insr.physics.materials` (:class:`~insr.physics.materials.Material`, ``ENERGIES``),
the rest shape in :mod:`insr.geometry.rest_shape`, the Dirichlet handles in
:mod:`insr.physics.handles`, and the images / ParaView / PLY outputs in
:mod:`insr.viz.elastic` (:func:`~insr.viz.elastic.write_elastic_outputs`).

Kinematics
----------
The body's rest shape Ω₀ ⊂ R^d (d = 2, 3: a box or a triangle/tetrahedron mesh,
:class:`~insr.geometry.rest_shape.RestShape`) is mapped to its deformed configuration by

    φ_θ(X, t) = X + NN_θ(X)                             (free / penalty handles)
    φ_θ(X, t) = X + g(X, t) + s(X)·NN_θ(X)              (exact handles, see below)

with NN a SIREN R^d → R^d.  F = ∇_X φ is computed by forward-mode automatic
differentiation at each sample point.  The state of a step is two networks,
θⁿ and θⁿ⁻¹, plus the previous step size.

Time step (variational implicit Euler)
--------------------------------------
With φ̂ = φⁿ + Δt·vⁿ, vⁿ = (φⁿ − φⁿ⁻¹)/Δt_prev (= 2φⁿ − φⁿ⁻¹ for a constant step),
each network evaluated at the *same* rest points X, the step minimises the
incremental potential

    E(θ) = ∫_Ω₀ [ ρ/(2Δt²)|φ − φ̂|² + Ψ(F) − ρ b·φ + Σ_c k/2·max(0, p_c(φ))² ] dX
           + Σ_h k_h/2 ∫_{Γ_h} |φ − X − u_h(t)|² dA

(ρ density, b body acceleration (gravity), Ψ the energy density per rest volume,
p_c the penetration depth of obstacle c (:class:`~insr.physics.elastic_energy.PlaneContact`,
:class:`~insr.physics.elastic_energy.SphereContact`), Γ_h the penalty handles).
Its stationarity condition is ρ(φ − φ̂)/Δt² = ∇·P + ρb + contact forces: the
backward-Euler discretisation of ρφ̈ = ∇·P + ρb, first order in Δt.
``quasi_static=True`` drops the inertia term (load stepping: the "time" is a load
parameter that ramps handle displacements).

Least-squares form (why Levenberg–Marquardt applies)
----------------------------------------------------
For the ARAP-with-volume energy Ψ = λ·Σ(σ_i − 1)² + μ(det F − 1)² of
:func:`~insr.physics.elastic_energy.arap_volume`, every term is a square:

* Σ(σ_i − 1)² = |F − R(F)|²_F, R the polar rotation of F;
* ρ/(2Δt²)|φ − φ̂|² − ρ b·φ = ρ/(2Δt²)|φ − φ̂ − Δt² b|² − ρ b·φ̂ − ρΔt²|b|²/2
  (the last two terms do not depend on θ);
* the contact and handle penalties are squares.

So with the per-point residual

    r(X) = [ √ρ/Δt·(φ − φ̂ − Δt² b),  √(2λ)·vec(F − R),  √(2μ)·(det F − 1),  √k_c·max(0, p_c(φ)) ]

sampled uniformly by volume at N points X_j (equal quadrature weights V/N, V = |Ω₀|),
and the handle residuals r_h = φ − X − u_h(t) at N_h points of Γ_h with block weight
k_h·|Γ_h|/V, the solver's loss Σ_k w_k·mean|r_k|² equals

    loss(θ) = 2·(E(θ) − C)/V,     C = ∫ (ρ b·φ̂ + ρΔt²|b|²/2) dX   (0 when quasi-static or b = 0)

up to the Monte-Carlo quadrature error.  This is minimised by
:class:`~insr.solvers.LevenbergMarquardt` (default, Gauss–Newton with damping) or by
the paper's Adam loop (:class:`~insr.solvers.AdamPlateau`) on the same blocks.

Energies that are not sums of squares (stable Neo-Hookean,
:func:`~insr.physics.elastic_energy.stable_neo_hookean`) and quasi-static problems
with gravity (the linear term −ρb·φ has no square form without inertia) are
minimised as scalars by :class:`LBFGS` (optax's L-BFGS with a zoom line search),
objective 2E/V + const as above with 2Ψ and −2ρb·φ added per point.  This first-order
path is markedly slower than LM on the ARAP energy (more iterations, each one a full
gradient) and is documented as such.

Dirichlet handles
-----------------
:class:`~insr.physics.handles.PlaneHandle` prescribes φ(X, t) = X + u_h(t) on the rest-shape section
{X : X_a = p}; u_h(t) = u_h·min(1, t/T_ramp) (T_ramp = 0: immediately).

* ``dirichlet="penalty"``: the handle residual block above (the paper's way).
* ``dirichlet="exact"``: the distance-function ansatz.  One plane X_a = p:
  g = u(t), s(X) = (X_a − p)/L_a.  Two parallel planes X_a = p₀ < p₁:
  g(X, t) = u₀(t) + (u₁(t) − u₀(t))·(X_a − p₀)/(p₁ − p₀),
  s(X) = (X_a − p₀)(p₁ − X_a)/((p₁ − p₀)/2)².  s vanishes on the planes, so the
  handles hold exactly for every θ (L_a is the extent of the rest shape along axis a).

Initial state
-------------
θ⁰ is the SIREN's random initialisation with its output layer set to zero, so
NN_θ⁰ ≡ 0 and φ⁰ = X (+ g(X, 0)) exactly: rest, zero velocity (θ⁻¹ = θ⁰).

Metrics (every step, on a fixed quadrature of Ω₀: the cell centres of a grid for a
box, 4,096 uniform points with the seed 0 for a mesh; all with weights V/n)
------------------------------------------------------------------------------------
``com_x``, ``com_y`` [, ``com_z``]: centre of mass ∫φ/V (uniform density);
``kinetic_energy``: ½ρ∫|φⁿ − φⁿ⁻¹|²/Δt² (backward-difference velocity; 0 at t = 0);
``elastic_energy``: ∫Ψ(F); ``gravity_energy``: −ρ∫b·φ; ``contact_energy``;
``total_energy`` (their sum); with obstacles: ``min_gap`` = min over the quadrature
points and the boundary vertices of the output mesh of −p_c(φ) (signed distance to the
obstacle, negative inside) and ``max_penetration`` = max(0, −min_gap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

# Material (and ENERGIES), RestShape, PlaneHandle and the plotting/ParaView outputs moved to
# insr.physics.materials, insr.geometry.rest_shape, insr.physics.handles and
# insr.viz.elastic; they are imported here (and listed in __all__) so that
# ``from insr.elasticity.stepper import Material, RestShape, PlaneHandle,
# write_elastic_outputs`` keeps working.
from insr.engine import Engine, FieldSet
from insr.geometry.band_sampling import band_mixture, split_budget
from insr.geometry.rest_shape import RestShape
from insr.observers import body_metrics
from insr.physics.elastic_energy import PlaneContact, SphereContact
from insr.physics.handles import PlaneHandle
from insr.physics.materials import ENERGIES, Material
from insr.solvers.lbfgs import LBFGS
from insr.solvers.levenberg_marquardt import sequence_stats
from insr.solvers.objective import Block, loss_value, sample_blocks
from insr.viz.elastic import write_elastic_outputs

__all__ = ["ENERGIES", "DIRICHLET_MODES", "Material", "RestShape", "PlaneHandle", "LBFGS", "ElasticStepper",
           "VariationalEulerScheme"]

DIRICHLET_MODES = ("exact", "penalty")


# --------------------------------------------------------------------------------------
# the stepper
# --------------------------------------------------------------------------------------
def _zero_output_layer(field):
    """The same network with its output layer's weight and bias set to zero (NN ≡ 0)."""
    last = field.layers[-1]
    return eqx.tree_at(lambda f: (f.layers[-1].weight, f.layers[-1].bias), field,
                       (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))


class VariationalEulerScheme:
    r"""One step of variational implicit Euler for the deformation network ``phi`` (module docstring).

    One stage per step (``rounds`` > 1: that many solves on fresh points, reported as one):
    minimise the incremental potential in its least-squares form with
    :class:`~insr.solvers.LevenbergMarquardt` / :class:`~insr.solvers.AdamPlateau`, or as a
    scalar energy with :class:`LBFGS` — the solver object decides which form is built.  The
    state is ``{"phi": θⁿ, "phi_prev": θⁿ⁻¹, "dt": Δt of the last step}``; the initial state is
    exact (the body at rest), so :meth:`initial` solves nothing.  Each step also returns the
    objective on held-out points before the last round and after it, and whether the last round
    accepted a step (:meth:`annotate` turns them into the report).
    """

    main = None
    order = 1

    def __init__(self, fields, rest: RestShape, material: Material, solver, *, gravity, contacts,
                 penalty_handles, has_handles: bool, handle_stiffness: float, handle_samples: int,
                 quasi_static: bool, samples: int, sampling: str, extrapolate: bool, rounds: int,
                 rounds_rtol: float, overfit_factor: float, predictor: bool, contact_band: float = 0.0,
                 band_share: float = 0.5, band_pool: int = 8, contact_pool: int = 0, contact_kept: int = 1000,
                 momentum_points: int = 0):
        self.fields = fields
        self.rounds, self.rounds_rtol, self.overfit_factor = int(rounds), float(rounds_rtol), float(overfit_factor)
        # the solver says which form of the step's objective it minimises (no isinstance here)
        self.scalar_path = getattr(solver, "objective", "least_squares") == "scalar"
        d = rest.dim
        has_gravity = bool(np.any(np.asarray(gravity) != 0))
        rounds = self.rounds
        rho, bj = material.density, jnp.asarray(gravity, jnp.float32)
        sq_rho = math.sqrt(rho)
        contacts_ = tuple(contacts)
        dynamic = not quasi_static
        mat = material
        scalar = self.scalar_path
        phi = fields.fn("phi")
        # contact on its own fine point set in the region K nearest the obstacles (see
        # ElasticStepper: contact_pool); the volume points carry it only outside K
        contact_block = self.contact_block = bool(contact_pool) and bool(contacts_)
        # the inertia term split into its mean (on its own fine points) and the deviation from
        # it (on pairs of volume points): see ElasticStepper, momentum_points
        split_inertia = bool(momentum_points) and dynamic

        def contact_rows(p):
            """√k·max(0, −gap) of the deformed position p for each obstacle: the contact's rows."""
            return jnp.stack([math.sqrt(c.stiffness) * jnp.maximum(c.penetration(p), 0.0) for c in contacts_])

        def point_terms(params, xt, args):
            """(square residual r, extra scalar e) at one point: loss density |r|² + e."""
            t1, dt = args
            # xt = [X, φ̂ + Δt²b, √w (, 1 outside K)]: w the point's quadrature weight (1 for
            # uniform points, see insr.geometry.band_sampling for the contact band's); with the
            # contact's own points, whether X lies outside their region K (contact_points)
            x, tgt, sw = xt[:d], xt[d:2 * d], xt[2 * d]
            f = lambda y: phi(params, y, t1)
            F, p = jax.jacfwd(lambda y: (f(y), f(y)), has_aux=True)(x)
            parts, extra = [], jnp.float32(0.0)
            if dynamic and not split_inertia:
                parts.append(sq_rho / dt * (p - tgt))
            elif scalar and has_gravity:
                extra = extra - 2.0 * rho * (bj @ p)
            if mat.is_sum_of_squares:
                parts.append(mat.square_residual(F))
            else:
                extra = extra + 2.0 * mat.psi(F)
            if contacts_:
                rows = contact_rows(p)
                parts.append(rows * xt[2 * d + 1] if contact_block else rows)
            r = jnp.concatenate(parts) if parts else jnp.zeros((0,), jnp.float32)
            return sw * r, sw * sw * extra

        def energy_residual(params, xt, args):
            return point_terms(params, xt, args)[0]

        def fine_sampler(n):
            """n points for an integral on its own point set (the contact's, the inertia mean's): a
            jittered grid over a box, one point per cell (the estimate then has the variance of a
            fine midpoint rule), uniform points in a mesh."""
            return rest.sampler(int(n), "jittered" if rest.box is not None else "uniform")

        if split_inertia:
            mean_sampler = fine_sampler(momentum_points)

            def pair_residual(params, pair, args):
                """√(ρ/2)/Δt·√(w_a w_b)·(d_a − d_b), d = φ − φ̂ − Δt²b at the two points of a
                pair: E|r|² = ρ/Δt²·(the mean square deviation of d from its mean)."""
                t1, dt = args
                xa, ta, sa = pair[:d], pair[d:2 * d], pair[2 * d]
                xb, tb, sb = pair[2 * d + 1:3 * d + 1], pair[3 * d + 1:4 * d + 1], pair[4 * d + 1]
                diff = (phi(params, xa, t1) - ta) - (phi(params, xb, t1) - tb)
                return (sq_rho / (math.sqrt(2.0) * dt)) * sa * sb * diff

            def mean_block(pool, pool_tgt):
                """A block of one row set: √ρ/Δt·mean over the pool of d (its one point is the
                pool's mean target, so the residual is mean φ − that)."""
                def residual(params, mean_tgt, args):
                    t1, dt = args
                    cur = jnp.mean(jax.vmap(lambda y: phi(params, y, t1))(pool), axis=0)
                    return sq_rho / dt * (cur - mean_tgt)

                mean_tgt = jnp.mean(pool_tgt, axis=0)[None]
                return Block(residual, lambda k: mean_tgt, 1.0, "inertia_mean")

        self._volume_sampler = rest.sampler(samples, sampling)
        self.contact_band = float(contact_band)
        use_band = self.contact_band > 0 and bool(contacts_)
        if use_band:
            n_uniform, n_band = split_budget(samples, band_share)
            band_uniform = rest.sampler(n_uniform, sampling)
            band_candidates = rest.sampler(int(band_pool) * samples, "uniform")
        handle_blocks = []
        if penalty_handles:
            for i, h in enumerate(penalty_handles):
                smp, area = rest.section_sampler(h.axis, h.position, handle_samples)

                def hres(params, x, args, h=h):
                    return phi(params, x, args[0]) - x - h.offset(args[0], d)

                handle_blocks.append(Block(hres, smp, handle_stiffness * area / rest.volume, f"handle{i}"))
        self._handle_blocks = tuple(handle_blocks)

        def motion(params, prev, dt_prev, t, dt, x):
            """(φⁿ, φ̂ + Δt²b) at the rest points x: the current positions and the inertial
            prediction (zeros when quasi-static)."""
            cur = jax.vmap(lambda y: phi(params, y, t))(x)
            if not dynamic:
                return cur, jnp.zeros_like(x)
            old = jax.vmap(lambda y: phi(prev, y, t - dt_prev))(x)
            vel = jnp.where(dt_prev > 0, (cur - old) / jnp.where(dt_prev > 0, dt_prev, 1.0), 0.0)
            return cur, cur + dt * vel + dt * dt * bj

        def targets(params, prev, dt_prev, t, dt, x):
            """φ̂ + Δt²b at the rest points x (zeros when quasi-static)."""
            return motion(params, prev, dt_prev, t, dt, x)[1]

        # Adam (the paper's loop) draws fresh points every iteration: its residual computes
        # the target itself from the previous networks carried in args.
        self._resample = bool(getattr(solver, "fresh_points", False))

        def inline_residual(params, x, args):
            t1, dt, cur_p, prev_p, dt_prev, t = args
            tgt = targets(cur_p, prev_p, dt_prev, t, dt, x[None])[0]
            return point_terms(params, jnp.concatenate([x, tgt, jnp.ones((1,), x.dtype)]), (t1, dt))[0]

        def nearest_gap(cur, pred):
            """The smaller gap to any obstacle of the current positions and of the inertial
            prediction (the current positions again when quasi-static)."""
            pred = pred if dynamic else cur
            gap = jnp.full(cur.shape[:1], jnp.inf)
            for c in contacts_:
                gap = jnp.minimum(gap, jnp.minimum(-c.penetration(cur), -c.penetration(pred)))
            return gap

        def contact_score(params, prev, dt_prev, t, dt, x):
            """:func:`nearest_gap` at the rest points x."""
            return nearest_gap(*motion(params, prev, dt_prev, t, dt, x))

        def in_contact_band(params, prev, dt_prev, t, dt):
            """X ↦ whether φⁿ(X) or the inertial prediction φ̂(X) + Δt²b lies within
            ``contact_band`` of an obstacle (or inside it)."""
            return lambda x: contact_score(params, prev, dt_prev, t, dt, x) < self.contact_band

        if contact_block:
            pool_sampler = fine_sampler(contact_pool)
            kept = int(contact_kept)

            def contact_residual(params, x, args):
                return contact_rows(phi(params, x, args[0]))

        def contact_selection(params, prev, dt_prev, t, dt, key):
            """The pool, the indices of its ``kept`` points nearest an obstacle (score below),
            and the largest score kept: the fine region K is {X : score(X) ≤ it}."""
            pool = pool_sampler(key)
            neg, idx = jax.lax.top_k(-contact_score(params, prev, dt_prev, t, dt, pool), kept)
            return pool, idx, -neg[-1]

        def beyond_kept_depth(p, selection, t, dt):
            """The deepest penetration, under the new weights ``p``, of a point of the solve's
            pool (``selection`` = (pool, kept indices), from :func:`prepare`) outside the fine
            region K (0 when every penetrating pool point was kept): > 0 means part of the
            contact was charged only at the volume points' density (``kept`` too small for the
            layer in contact)."""
            if selection is None:
                return jnp.float32(0.0)
            pool, idx = selection
            x = jax.vmap(lambda y: phi(p, y, t + dt))(pool)
            depth = jnp.zeros(pool.shape[:1])
            for c in contacts_:
                depth = jnp.maximum(depth, c.penetration(x))
            return jnp.max(depth.at[idx].set(0.0))

        def draw_points(params, prev, dt_prev, t, dt, key):
            """Volume points and √(quadrature weight): uniform, or with the contact band."""
            if not use_band:
                x = self._volume_sampler(key)
                return x, jnp.ones((x.shape[0], 1), x.dtype)
            x, w, _ = band_mixture(key, band_uniform, band_candidates,
                                   in_contact_band(params, prev, dt_prev, t, dt), n_band)
            return x, jnp.sqrt(w)[:, None].astype(x.dtype)

        def prepare(params, prev, dt_prev, t, dt, key):
            """Points X with their targets φ̂ + Δt²b and √weights appended, the blocks, args, a key
            and the contact's pool with its kept indices (None without contact_points)."""
            kx, ks = jax.random.split(key)
            x, sw = draw_points(params, prev, dt_prev, t, dt, kx)
            cur, tgt = motion(params, prev, dt_prev, t, dt, x)
            columns = [x, tgt, sw]
            extra_blocks, selection = (), None
            if split_inertia:
                # ρ/(2Δt²)∫|d|² = ρ/(2Δt²)·(V|d̄|² + ∫|d − d̄|²): the mean d̄ on its own fine points
                # (its gradient in a rigid translation is then the exact momentum balance), the
                # deviation on disjoint pairs of the volume points (E|d_a − d_b|²/2 = the mean
                # square deviation; unchanged by any translation, so it adds no momentum)
                pool = mean_sampler(jax.random.fold_in(key, 0x1E))
                pool_tgt = motion(params, prev, dt_prev, t, dt, pool)[1]
                half = x.shape[0] // 2
                one = jnp.concatenate([x, tgt, sw], axis=1)
                pairs = jnp.concatenate([one[:half], one[half:2 * half]], axis=1)
                extra_blocks = (Block(pair_residual, lambda k: pairs, 1.0, "inertia_pairs"),
                                mean_block(pool, pool_tgt))
            if contact_block:
                # The contact integral split at the region K of the kept pool points: over K the
                # pool's fine estimate (1/M)·Σ_kept k·max(0, −gap)² (its own block, weight
                # kept/M), outside K the volume points' (contact term × 1[X ∉ K]) — so a body
                # that sinks beyond K is still charged, at the volume points' density.
                pool, idx, score_kept = contact_selection(params, prev, dt_prev, t, dt, jax.random.fold_in(key, 0xC0))
                xc, selection = pool[idx], (pool, idx)
                outside = nearest_gap(cur, tgt) > score_kept
                columns.append(outside.astype(x.dtype)[:, None])
                extra_blocks += (Block(contact_residual, lambda k: xc, kept / int(contact_pool), "contact"),)
            xt = jnp.concatenate(columns, axis=1)
            blocks = (Block(energy_residual, lambda k: xt, 1.0, "energy"),) + self._handle_blocks + extra_blocks
            return xt, blocks, (t + dt, dt), ks, selection

        # Predictor: shift the output bias by the mean inertial displacement
        # mean_X(φ̂ + Δt²b − φⁿ), i.e. start from the ballistic translation (exact for free
        # fall).  Without it Gauss–Newton cannot see an obstacle before the body touches it
        # (max(0, p) has zero slope outside), so the first steps into contact were rejected
        # until λ had grown ~10⁶-fold.  Only without handles (a translation would move them).
        use_predictor = dynamic and not has_handles and bool(predictor)
        pred_x = jnp.asarray(rest.quadrature(256))

        def predict(guess, params, prev, dt_prev, t, dt):
            if not use_predictor:
                return guess
            cur, pred = motion(params, prev, dt_prev, t, dt, pred_x)
            shift = jnp.mean(pred - cur, axis=0)
            return eqx.tree_at(lambda q: q.layers[-1].bias, guess, guess.layers[-1].bias + shift)

        def scalar_objective(xt, blocks, pts, args):
            def objective(p):
                r, e = jax.vmap(point_terms, in_axes=(None, 0, None))(p, xt, args)
                val = jnp.mean(jnp.sum(r * r, axis=1)) + jnp.mean(e)
                if len(blocks) > 1:
                    val = val + loss_value(blocks[1:], pts[1:], p, args)
                return val

            return objective

        # With the inertia mean on its own points and no handles, a Newton step in the output
        # bias (a rigid translation: d unknowns) after each solve, along the directions in which
        # no obstacle pushes.  There the step objective is exactly quadratic in a translation —
        # the mean block is linear in it with curvature 2ρ/Δt², the elastic and pair terms do not
        # see it — so the step makes that momentum balance exact even when the solve stopped
        # early: on the 2D collision an impact solve at its iteration cap had raised the slide
        # speed by 4 % (seed 1: 1.784 → 1.853).  Along a direction an obstacle pushes (the
        # objective's curvature above 2ρ/Δt²) the solve's answer is kept: a Newton step on the
        # piecewise-quadratic contact made the floor impacts worse (seeds 0, 1 ended 2× and 7×
        # farther from the FEM).
        polish_translation = split_inertia and not has_handles

        def polish(p, st, objective, dt):
            """(p with the Newton step in its output bias if it lowers the objective, stats)."""
            def shifted(s):
                return eqx.tree_at(lambda q: q.layers[-1].bias, p, p.layers[-1].bias + s)

            f = lambda s: objective(shifted(s))

            def gradient(s):  # (∇f, (f, ∇f)): forward over it gives the Hessian, value and gradient in one pass
                v, g = jax.value_and_grad(f)(s)
                return g, (v, g)

            zero = jnp.zeros((d,), jnp.float32)
            H, (f0, g) = jax.jacfwd(gradient, has_aux=True)(zero)
            inertia = 2.0 * rho / (dt * dt)
            mu, vecs = jnp.linalg.eigh(H - inertia * jnp.eye(d))
            free = (jnp.abs(mu) <= 1e-3 * inertia).astype(jnp.float32)  # no obstacle's curvature
            s_new = -(vecs * free) @ (vecs.T @ g) / inertia
            f1 = f(s_new)
            ok = jnp.isfinite(f1) & (f1 < f0)
            return shifted(jnp.where(ok, s_new, 0.0)), st._replace(loss=jnp.where(ok, f1, st.loss))

        def solve_once(guess, params, prev, dt_prev, t, dt, key):
            """(new weights, solver stats, the contact selection of :func:`prepare`)."""
            xt, blocks, args, ks, selection = prepare(params, prev, dt_prev, t, dt, key)
            if self._resample:
                blocks = (Block(inline_residual, self._volume_sampler, 1.0, "energy"),) + self._handle_blocks
                return (*solver.solve(blocks, guess, (t + dt, dt, params, prev, dt_prev, t), ks), selection)
            pts = sample_blocks(blocks, ks)
            if not scalar:
                p, st = solver.solve(blocks, guess, args, ks)
                objective = lambda q: loss_value(blocks, pts, q, args)
            else:
                objective = scalar_objective(xt, blocks, pts, args)
                p, st = solver.minimize(objective, guess)
            if polish_translation:
                p, st = polish(p, st, objective, dt)
            return p, st, selection


        def step(params, prev, dt_prev, t, dt, key):
            guess = jax.tree.map(lambda a, c: 2 * a - c, params, prev) if extrapolate else params
            guess = predict(guess, params, prev, dt_prev, t, dt)
            # The step's objective on held-out points (drawn from a key no round uses): a
            # loss far above the fitted one means the solve fitted its sample, not the body.
            held_objective = objective_on(params, prev, dt_prev, t, dt, jax.random.fold_in(key, 0x5EED))
            if rounds == 1:
                p, st, selection = solve_once(guess, params, prev, dt_prev, t, dt, key)
                held = held_objective(p)
                return p, st, (held, held, st.iterations > st.rejected,
                               beyond_kept_depth(p, selection, t, dt))

            # The rounds before the last in one lax.scan (one compiled solve, not rounds − 1
            # copies). They were unrolled while the 3D polar rotation used LAPACK's batched SVD,
            # which deadlocked XLA:CPU inside loops (see insr.physics.svd3).
            keys = jax.random.split(key, rounds)

            def one_round(p, k):
                return solve_once(p, params, prev, dt_prev, t, dt, k)[:2]

            p, early = jax.lax.scan(one_round, guess, keys[:-1])
            held_before = held_objective(p)
            p, st, selection = solve_once(p, params, prev, dt_prev, t, dt, keys[-1])
            # scan made arrays of the fields a solver fills with Python constants (inner = −1
            # for a direct solve): keep the constants, as the unrolled rounds did
            const = {f: v for f, v in st._asdict().items() if isinstance(v, (int, float))}
            rounds_stats = [jax.tree.map(lambda a, i=i: a[i], early)._replace(**const) for i in range(rounds - 1)]
            rounds_stats.append(st)
            # Totals over the rounds; the last round's loss, convergence and stop reason, and
            # whether the last round accepted a step (one whose every iteration was rejected
            # made no progress: that is not stationarity).
            held = held_objective(p)
            moved = st.iterations > st.rejected
            total = sequence_stats(rounds_stats)._replace(converged=st.converged, reason=st.reason)
            return p, total, (held_before, held, moved, beyond_kept_depth(p, selection, t, dt))

        def objective_on(params, prev, dt_prev, t, dt, key):
            """The step's objective (what the solver minimises) as a function of the new
            weights, on the points ``key`` draws: drawn, with their targets, once."""
            xt, blocks, args, ks, _ = prepare(params, prev, dt_prev, t, dt, key)
            pts = sample_blocks(blocks, ks)
            if scalar:
                return scalar_objective(xt, blocks, pts, args)
            return lambda p: loss_value(blocks, pts, p, args)

        def loss_grad(p, params, prev, dt_prev, t, dt, key):
            xt, blocks, args, ks, _ = prepare(params, prev, dt_prev, t, dt, key)
            return jax.value_and_grad(scalar_objective(xt, blocks, sample_blocks(blocks, ks), args))(p)
        self.loss_grad = loss_grad
        self._advance = step

    def state_template(self) -> dict:
        u = self.fields.template["phi"]
        return {"phi": u, "phi_prev": u, "dt": jnp.zeros((), jnp.float32)}

    def initial(self, template, key, solver):
        """θ⁰ = the initialisation with a zero output layer: φ⁰ = X (+ g(X, 0)), at rest."""
        return dict(template), {}

    def step(self, state, t, dt, key):
        new, stats, extra = self._advance(state["phi"], state["phi_prev"], state["dt"], t, dt, key)
        return {"phi": new, "phi_prev": state["phi"], "dt": jnp.asarray(dt, jnp.float32)}, {"step": stats}, extra

    def annotate(self, info: dict, extra) -> dict:
        """Add ``heldout_loss`` (and with ``rounds`` > 1 ``heldout_change``) to a step's report;
        judge convergence by the held-out objective when there are rounds; flag overfitting
        (see :meth:`ElasticStepper.step`)."""
        held_before, held, moved, beyond = extra
        info["heldout_loss"] = float(held)
        if self.contact_block:
            info["contact_beyond_kept"] = float(beyond)
        # A solution that fits its sample but not the points between (measured on the 3D
        # drop: held-out 50 against a fitted 1.3, the elastic energy jumping 20-fold) is
        # flagged, on the progress line and in metrics.csv; losses near round-off
        # (free fall, ~1e-14) are not judged.
        # (Least-squares objectives only: the L-BFGS path's energy has a linear gravity term
        # and can be negative, so a ratio means nothing there.)
        if not self.scalar_path and float(held) > self.overfit_factor * max(info["loss"], 1e-8):
            info["flag"] = "overfit"
        if self.rounds > 1:
            change = (float(held_before) - float(held)) / max(abs(float(held_before)), 1e-30)
            info["heldout_change"] = change
            if not np.isfinite(float(held)):
                info["converged"], info["stop"] = False, "nonfinite"
            elif not info["converged"]:  # the last round's own solve did not converge
                if not bool(moved):
                    info["stop"] = "stalled"
                elif abs(change) <= self.rounds_rtol:
                    info["converged"], info["stop"] = True, "heldout"
                else:  # still falling, or risen (the last round fitted its own points worse elsewhere)
                    info["stop"] = "rounds"
        return info


class ElasticStepper(Engine):
    r"""Advance a neural deformation map by variational implicit Euler (see the module docstring).

    Parameters
    ----------
    field : a network R^d → R^d evaluating one point (e.g. :class:`~insr.fields.Siren`) with a
        ``layers`` tuple whose last entry is the linear output layer (zeroed at t = 0).
    rest : :class:`~insr.geometry.rest_shape.RestShape`.
    material : :class:`~insr.physics.materials.Material`.
    solver : :class:`~insr.solvers.LevenbergMarquardt` (default) or
        :class:`~insr.solvers.AdamPlateau` (least-squares form, ARAP energy only), or
        :class:`LBFGS` (any energy; needed for ``snh`` and for quasi-static gravity).
    gravity : body acceleration b (length d) or None.
    contacts : obstacles (:class:`PlaneContact`, :class:`SphereContact`), penalty stiffness k
        in energy per volume per length².
    handles : :class:`~insr.physics.handles.PlaneHandle` s; ``dirichlet`` = ``"exact"`` (one plane or two parallel
        planes) or ``"penalty"`` (stiffness ``handle_stiffness`` per area, ``handle_samples``
        points per handle and solve).
    quasi_static : drop inertia.
    samples, sampling : volume points per step (fresh each step) and how they are drawn.
    extrapolate : warm-start each solve from 2θⁿ − θⁿ⁻¹ instead of θⁿ.
    contact_band, band_share, band_pool : with ``contact_band`` > 0 (a length) and obstacles,
        a share ``band_share`` of the ``samples`` points is drawn uniformly in the band of the body
        whose current or predicted position φⁿ, φ̂ + Δt²b lies within ``contact_band`` of an
        obstacle (found among ``band_pool``·samples uniform candidates), the rest uniformly, and
        every point is weighted so the objective stays an unbiased estimate of the energy
        (:mod:`insr.geometry.band_sampling`).  0 (default): uniform points.
    contact_pool, contact_kept : with ``contact_pool`` = M > 0 and obstacles, the contact energy
        gets its own points: each solve draws M points over the rest shape (a jittered grid,
        one per cell, in a box; uniform in a mesh), keeps the ``contact_kept`` = K whose current
        or predicted position lies nearest an obstacle (the region 𝒦 they fill), and charges
        (1/M)·Σ_K k·max(0, −gap)² there; the volume points charge the contact only outside 𝒦.
        Penetration lives in a thin layer: with 1,000 uniform volume points, a few dozen of
        them carry the whole contact force of a step, and its estimate is the noisiest term of
        the objective (on a 5 %-deep layer 38 % scatter against 2.6 % on a 64² grid,
        ``tests/test_band_sampling.py``).  The step report adds ``contact_beyond_kept``: the
        deepest penetration of a pool point outside 𝒦 after the solve (> 0: K did not cover the
        layer in contact; that part was charged at the volume points' density).  0 (default):
        the contact on the volume points.
    momentum_points : with M > 0 (dynamic runs), the inertia term ρ/(2Δt²)∫|d|², d = φ − φ̂ − Δt²b,
        is split as ρ/(2Δt²)·(V·|d̄|² + ∫|d − d̄|²): the mean d̄ on M points of its own (a jittered
        grid over a box, uniform in a mesh; fresh each solve) and the deviation on disjoint pairs
        of the volume points, E|d_a − d_b|²/2 (an unbiased estimate that no translation changes).
        Why: the objective's gradient in a rigid translation (the output bias) is the step's
        momentum balance.  On N uniform points it holds for their sample mean of d, not for the
        body, so each step with a non-uniform d (an impact, a vibration, a spin) changes the
        momentum by ~std(d)/√N·ρV/Δt, which no force paid for: on the 2D collision the
        frictionless floor raised the slide speed by up to 3 % (seed 7: 1.800 → 1.861).  With M
        points the balance holds to the pool's quadrature error; and (without handles) a Newton
        step in the output bias after each solve (d unknowns, on the solve's own points) makes it
        hold along every direction no obstacle pushes even when the solve stopped at its
        iteration cap (``tests/test_elasticity.py``: a free spinning body's mean velocity kept
        to ~1e-4 against ~1e-2).  0 (default): the inertia term on the volume points.
    penetration_alarm : a step whose ``max_penetration`` exceeds this fraction of the rest shape's
        smallest bounding-box extent is flagged ``penetration`` (metrics.csv, the progress line and
        the run's summary; :meth:`flag_metrics`); 0 turns the check off.  Penalty contact always
        lets the body in a little (the integrated FEM on the same problems: 0.034 for the 2D
        collision, body size 1; 0.055–0.065 for the 3D drop, smallest extent 0.84); a solve that
        lost the contact sinks further (2D collision with Sobol points, seeds 3 and 4: 0.105 and
        0.209, against 0.034–0.063 in every other run measured).
    """

    def __init__(self, field: eqx.Module, rest: RestShape, material: Material, solver, *,
                 gravity: Sequence[float] | None = None, contacts: Sequence = (),
                 handles: Sequence[PlaneHandle] = (), dirichlet: str = "penalty",
                 handle_stiffness: float = 1e4, handle_samples: int = 256, quasi_static: bool = False,
                 samples: int = 2000, sampling: str = "uniform", extrapolate: bool = False,
                 rounds: int = 1, rounds_rtol: float = 1e-2, overfit_factor: float = 10.0,
                 predictor: bool = True, metric_points: int = 4096, contact_band: float = 0.0,
                 band_share: float = 0.5, band_pool: int = 8, penetration_alarm: float = 0.1,
                 contact_pool: int = 0, contact_kept: int = 1000, momentum_points: int = 0):
        d = rest.dim
        if getattr(field, "in_dim", d) != d or getattr(field, "out_dim", d) != d:
            raise ValueError(f"the deformation network must map R^{d} → R^{d}, got "
                             f"R^{field.in_dim} → R^{field.out_dim}")
        if dirichlet not in DIRICHLET_MODES:
            raise ValueError(f"dirichlet must be one of {DIRICHLET_MODES}, got {dirichlet!r}")
        self.rest, self.material, self.solver = rest, material, solver
        self.dim = d
        self.channel_names = ("phi_x", "phi_y", "phi_z")[:d]
        self.quasi_static = bool(quasi_static)
        self.extrapolate = bool(extrapolate)
        if int(rounds) < 1:
            raise ValueError(f"rounds must be ≥ 1, got {rounds!r}")
        if not rounds_rtol > 0:
            raise ValueError(f"rounds_rtol must be > 0, got {rounds_rtol!r}")
        if not overfit_factor > 1:
            raise ValueError(f"overfit_factor must be > 1, got {overfit_factor!r}")
        if not (math.isfinite(contact_band) and contact_band >= 0):
            raise ValueError(f"contact_band must be a length ≥ 0, got {contact_band!r}")
        if not 0 < band_share < 1:
            raise ValueError(f"band_share must be in (0, 1), got {band_share!r}")
        if int(band_pool) != band_pool or band_pool < 2:
            raise ValueError(f"band_pool must be an integer ≥ 2, got {band_pool!r}")
        if contact_band > 0 and not contacts:
            raise ValueError("contact_band > 0 needs an obstacle (contacts)")
        if int(contact_pool) != contact_pool or contact_pool < 0:
            raise ValueError(f"contact_pool must be an integer ≥ 0 (0: off), got {contact_pool!r}")
        if contact_pool and not (int(contact_kept) == contact_kept and 1 <= contact_kept < contact_pool):
            raise ValueError(f"contact_kept must be an integer in [1, contact_pool = {contact_pool}), "
                             f"got {contact_kept!r}")
        if contact_pool and not contacts:
            raise ValueError("contact_pool > 0 needs an obstacle (contacts)")
        if contact_pool and contact_band > 0:
            raise ValueError("contact_pool and contact_band are two ways to sample the contact: choose one")
        if contact_pool and getattr(solver, "fresh_points", False):
            raise ValueError("contact_pool is not supported with a solver that draws fresh points every "
                             "iteration (Adam): use Levenberg–Marquardt or L-BFGS")
        if int(momentum_points) != momentum_points or momentum_points < 0:
            raise ValueError(f"momentum_points must be an integer ≥ 0 (0: off), got {momentum_points!r}")
        if momentum_points:
            if quasi_static:
                raise ValueError("momentum_points splits the inertia term, which a quasi-static run does not have")
            if contact_band > 0:
                raise ValueError("momentum_points needs independent volume points (its pairs), not the "
                                 "weighted mixture of contact_band: use contact_pool for the contact")
            if getattr(solver, "fresh_points", False):
                raise ValueError("momentum_points is not supported with a solver that draws fresh points "
                                 "every iteration (Adam): use Levenberg–Marquardt or L-BFGS")
            if samples < 2:
                raise ValueError(f"momentum_points needs at least 2 volume points (one pair), got {samples!r}")
        if not (math.isfinite(penetration_alarm) and penetration_alarm >= 0):
            raise ValueError(f"penetration_alarm must be a fraction ≥ 0 of the body's smallest extent "
                             f"(0: off), got {penetration_alarm!r}")
        if contact_band > 0 and getattr(solver, "fresh_points", False):
            raise ValueError("contact_band is not supported with a solver that draws fresh points every "
                             "iteration (Adam): use Levenberg–Marquardt or L-BFGS")
        b = np.zeros(d) if gravity is None else np.asarray(gravity, np.float64)
        if b.shape != (d,) or not np.all(np.isfinite(b)):
            raise ValueError(f"gravity must be {d} finite numbers, got {gravity!r}")
        self.gravity = b
        self.contacts = tuple(contacts)
        for c in self.contacts:
            if not isinstance(c, (PlaneContact, SphereContact)):
                raise TypeError(f"unsupported obstacle {c!r}")
            if c.dim != d:
                raise ValueError(f"obstacle {c!r} is {c.dim}D but the rest shape is {d}D")
        self.handles = tuple(handles)
        self.dirichlet = dirichlet
        # the depth beyond which a step is flagged (None: no obstacle, or the check is off)
        self.penetration_limit = (float(penetration_alarm) * float(np.min(rest.hi - rest.lo))
                                  if self.contacts and penetration_alarm > 0 else None)
        if not handle_stiffness > 0:
            raise ValueError(f"handle_stiffness must be > 0, got {handle_stiffness}")
        self.handle_stiffness = float(handle_stiffness)
        self.scalar_path = getattr(solver, "objective", "least_squares") == "scalar"
        has_gravity = bool(np.any(b != 0))
        if not self.scalar_path:
            if not material.is_sum_of_squares:
                raise ValueError(f"the {material.energy!r} energy is not a sum of squares: use the LBFGS "
                                 "solver (Levenberg–Marquardt/Adam need the least-squares form)")
            if self.quasi_static and has_gravity:
                raise ValueError("quasi-static problems with gravity have no least-squares form (−ρb·φ is "
                                 "linear): use the LBFGS solver, or a dynamic run")

        field = _zero_output_layer(field)

        # ---- exact-handle ansatz φ = X + g(X, t) + s(X)·NN(X) -------------------------
        self._exact = bool(self.handles) and dirichlet == "exact"
        if self._exact:
            self._g, self._s = self._exact_ansatz()
        for h in self.handles:
            h.offset(0.0, d)  # checks the displacement's length
            if not 0 <= h.axis < d:
                raise ValueError(f"handle axis must be in [0, {d}), got {h.axis}")

        if self._exact:
            g, s = self._g, self._s
            deformation = lambda nn, x, t: x + g(x, t) + s(x) * nn
        else:
            deformation = lambda nn, x, t: x + nn
        fields = FieldSet({"phi": field}, transforms={"phi": deformation}, time_dependent=True)
        scheme = VariationalEulerScheme(
            fields, rest, material, solver, gravity=b, contacts=self.contacts,
            penalty_handles=() if self._exact else self.handles, has_handles=bool(self.handles),
            handle_stiffness=self.handle_stiffness, handle_samples=handle_samples, quasi_static=self.quasi_static,
            samples=samples, sampling=sampling, extrapolate=self.extrapolate, rounds=rounds,
            rounds_rtol=rounds_rtol, overfit_factor=overfit_factor, predictor=predictor,
            contact_band=contact_band, band_share=band_share, band_pool=int(band_pool),
            contact_pool=int(contact_pool), contact_kept=int(contact_kept), momentum_points=int(momentum_points))
        super().__init__(fields, scheme, init_solver=solver, init_error=None, init_tolerance=1.0,
                         channels=[("phi", d)], channel_names=self.channel_names,
                         observers=(self.energy_metrics,), time_dtype=jnp.float32)
        self.params0, self.static = fields.template["phi"], fields.static["phi"]
        self._phi = phi = fields.fn("phi")
        self._lg = jax.jit(scheme.loss_grad)
        contacts_ = self.contacts
        mat = material

        # ---- metrics ------------------------------------------------------------------
        self._quad = jnp.asarray(rest.quadrature(metric_points))
        self._bnodes = jnp.asarray(rest.mesh.points[rest.boundary_nodes], jnp.float32)

        def diagnostics(params, prev, dt_prev, t):
            xq = self._quad

            def one(y):
                f = lambda z: phi(params, z, t)
                F, p = jax.jacfwd(lambda z: (f(z), f(z)), has_aux=True)(y)
                return p, mat.psi(F)

            p, psi = jax.vmap(one)(xq)
            old = jax.vmap(lambda y: phi(prev, y, t - dt_prev))(xq)
            v2 = jnp.where(dt_prev > 0, jnp.sum((p - old) ** 2, axis=1) / jnp.where(dt_prev > 0, dt_prev, 1.0) ** 2,
                           0.0)
            pb = jax.vmap(lambda y: phi(params, y, t))(self._bnodes) if contacts_ else None
            return p, psi, v2, pb

        self._diagnostics = jax.jit(diagnostics)

    # ---- deformation ------------------------------------------------------------------
    def _exact_ansatz(self):
        d, hs = self.dim, self.handles
        ext = self.rest.hi - self.rest.lo
        if len(hs) == 1:
            h = hs[0]
            L = float(ext[h.axis])
            g = lambda x, t: h.offset(t, d)
            s = lambda x: (x[h.axis] - h.position) / L
            return g, s
        if len(hs) == 2 and hs[0].axis == hs[1].axis and hs[0].position != hs[1].position:
            h0, h1 = sorted(hs, key=lambda h: h.position)
            a, p0, p1 = h0.axis, h0.position, h1.position
            half = 0.5 * (p1 - p0)

            def g(x, t):
                u0, u1 = h0.offset(t, d), h1.offset(t, d)
                return u0 + (u1 - u0) * (x[a] - p0) / (p1 - p0)

            return g, lambda x: (x[a] - p0) * (p1 - x[a]) / (half * half)
        raise ValueError("exact Dirichlet handles support one plane or two parallel planes "
                         "(same axis, different positions); use dirichlet='penalty' for others")

    # ---- settings the scheme holds (read-only here: the scheme uses them) ----------------
    @property
    def rounds(self) -> int:
        return self.scheme.rounds

    @property
    def rounds_rtol(self) -> float:
        return self.scheme.rounds_rtol

    @property
    def overfit_factor(self) -> float:
        return self.scheme.overfit_factor

    # ---- protocol (the rest is the engine's) -------------------------------------------
    def state_bytes(self) -> int:
        """Parameters × 4 bytes (float32) of one deformation network, as the paper counts."""
        return 4 * self.num_params

    def step(self, state, t, dt, key):
        """One implicit-Euler step.  The info adds ``heldout_loss``, the step's objective on
        points no solve saw.  With ``rounds`` > 1 (a fixed budget of solves on fresh points,
        none of which runs to a stationary point) ``converged`` means the last round
        changed the held-out objective by at most ``rounds_rtol`` of its value, either way,
        after accepting at least one step (``stop`` = "heldout"), or its own solve
        converged; a last round whose every iteration was rejected made no progress
        (``stop`` = "stalled"), and one that still moved the held-out objective by more
        stops at "rounds"."""
        return super().step(state, t, dt, key)

    def flag_metrics(self, metrics: dict) -> str:
        """'penetration' when a step's ``max_penetration`` exceeds :attr:`penetration_limit`
        (see ``penetration_alarm``), else ''.  :func:`insr.simulate.simulate` adds it to the
        step's ``flag``."""
        limit, depth = self.penetration_limit, metrics.get("max_penetration")
        return "penetration" if limit is not None and depth is not None and depth > limit else ""

    def energy_metrics(self, state, t) -> dict:
        """See the module docstring for definitions (:func:`insr.observers.body_metrics` on the
        equal-weight quadrature of the rest shape, as the FEM reference's observer uses it on its
        lumped nodal volumes)."""
        p, psi, v2, pb = (None if a is None else np.asarray(a, np.float64) for a in
                          self._diagnostics(state["phi"], state["phi_prev"], state["dt"], jnp.float32(t)))
        volume = self.rest.volume
        weights = np.full(p.shape[0], volume / p.shape[0])
        return body_metrics(p, weights, volume * float(np.mean(psi)), density=self.material.density,
                            gravity=self.gravity, contacts=self.contacts, speed2=v2, gap_points=pb)
    def loss_grad(self, params, state, t, dt, key):
        """(step objective, its gradient pytree) at ``params`` for the step from ``state`` at
        time ``t`` with step ``dt``, on the points that ``key`` draws (the same points
        :meth:`step` uses with that key).  The objective is 2(E − C)/V (module docstring)."""
        return self._lg(params, state["phi"], state["phi_prev"], state["dt"], jnp.float32(t), jnp.float32(dt), key)

    # ---- outputs ------------------------------------------------------------------------
    def deformed_nodes(self, state, t) -> np.ndarray:
        """φ at the nodes of the rest shape's (output) mesh, (n_nodes, d)."""
        return self.evaluate(state, self.rest.mesh.points.astype(np.float32), t)

    def write_outputs(self, traj, run_dir, cfg=None) -> list[Path]:
        """Per saved step: a PNG of the deformed shape (``frames/step_NNNNNN.png``) and a
        ParaView ``.vtu`` of the mesh (``paraview/step_NNNNNN.vtu``: points at rest X, point
        arrays ``displacement`` φ − X — Warp By Vector shows the deformed body — and
        ``deformed_position`` φ(X)), the collection
        ``paraview/elastic.pvd`` listing them with their times (open it in ParaView for
        the time series), in 3D a PLY of the deformed boundary surface per saved step
        (``ply/``), and an animation of the frames.  ``cfg["output"]`` may switch parts
        off (keys ``images``, ``paraview``, ``ply``)."""
        return write_elastic_outputs(self, traj, Path(run_dir), (cfg or {}).get("output", {}))
