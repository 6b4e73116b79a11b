"""Reproduced examples: the paper's elastodynamics (Sec. 5.3) — ours against P1 finite
elements with the same energy, implicit Euler and contact penalty
(:mod:`insr.reference.fem_elastic`).

* ``elastic_stretch``: quasi-static tension; error against a fine crossed-mesh FEM.
* ``elastic_collide_2d`` / ``elastic_drop_3d``: dynamics with contact; seconds per step
  (the paper's headline cost) and the deformation error at the final time against a fine
  FEM run of the same scenario.  FEM memory: nodes × d × 4 B; ours: parameters × 4 B.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from insr.reproduce.core import Context, Example, PaperRow, adam_row, row, run_scenario, run_timing, run_wall, timed

DYN_METRIC = ("RMS over the rest nodes X of the fine FEM reference mesh of |φ(X) − φ_ref(X)| at the judged time "
              "(the final time; the 3D drop: t = 0.3, where its reference is converged) "
              "(coarse FEM interpolated P1; outside its mesh, from the nearest element)")
STRETCH_METRIC = ("RMS of |φ(X) − φ_ref(X)| over the 64 × 64 cell centres of [−1, 1]² at full load; reference: "
                  "crossed-mesh P1 FEM (n in the sizes)")


# --------------------------------------------------------------------------------------
# stretch
# --------------------------------------------------------------------------------------
def run_stretch(ctx: Context) -> list[dict]:
    from insr.reference.fem_elastic import deformation_error, stretch_benchmark_2d, stretch_eval_points

    z = ctx.sizes
    pts = stretch_eval_points(64)
    ref_path = ctx.out / f"reference_n{z['reference']}.npy"
    if not ref_path.is_file():
        ctx.log(f"{ctx.out.name}: FEM reference, crossed n={z['reference']}")
        np.save(ref_path, stretch_benchmark_2d(z["reference"]).phi(pts))
    ref = np.load(ref_path)

    def fem_row(n, crossed, kind, label, reference=None):
        r = stretch_benchmark_2d(n, crossed=crossed)
        target = ref if reference is None else reference
        return row(label, kind, error=deformation_error(r.phi(pts), target, pts), wall_s=r.seconds,
                   state_bytes=r.state_bytes, series=f"FEM ({'crossed' if crossed else 'one diagonal'})",
                   note=f"{r.mesh.n_points} nodes, Newton {'converged' if r.converged else 'NOT converged'}")

    def ours(width, run_id, kind, label=None, update=None, reference=None):
        def compute():
            upd = update or {"samples": z["samples"], "field": {"width": width}}
            st, traj, cfg = run_scenario(ctx, run_id, "elastic_stretch_2d", upd, outputs=kind == "ours")
            target = ref if reference is None else reference
            err = deformation_error(st.evaluate(traj.final_state, pts.astype(np.float32), traj.ts[-1]), target, pts)
            wall, _ = run_wall(traj)
            its = sum(r["iterations"] for r in traj.metrics[1:])
            name = (label or f"ours, SIREN width {width}, LM").format(params=st.num_params)
            return row(name, kind, error=err, wall_s=wall, state_bytes=st.state_bytes(),
                       series="ours (LM)", note=f"{its} LM iterations over {cfg['steps']} load steps; error "
                       f"evaluated from {ctx.rel(ctx.out / run_id / 'fields')}", **run_timing(traj))
        return ctx.cached(run_id, compute)

    rows = [ours(24, "ours", "ours")]
    rows.append(ctx.cached("fem_same_memory_crossed", lambda: fem_row(17, True, "same-memory",
                                                                      "FEM P1, crossed n=17, same memory")))
    rows.append(ctx.cached("fem_same_memory_diagonal", lambda: fem_row(25, False, "same-memory",
                                                                       "FEM P1, one diagonal n=25, same memory")))
    for w in z["widths"]:
        if w != 24:
            rows.append(ours(w, f"ours_width{w}", "sweep"))
    for n in z["fem_sweep"]:
        rows.append(ctx.cached(f"fem_crossed{n}", lambda n=n: fem_row(n, True, "sweep", f"FEM P1, crossed n={n}")))
    if "paper_net" in z:
        # The paper's network and point count (matrix-free LM: dense LM's P×P matrices are
        # gigabytes at this size), and the crossed FEM mesh with the same bytes beside it (n ≈ 60),
        # both judged against a reference twice as fine as that mesh (crossed n = paper_reference):
        # the main reference (32 in the quick profile) is coarser than the same-memory mesh.
        from insr.cli import siren_params

        w, d, npts = z["paper_net"]
        nref = z["paper_reference"]
        fine_path = ctx.out / f"reference_n{nref}.npy"
        if not fine_path.is_file():
            ctx.log(f"{ctx.out.name}: FEM reference, crossed n={nref}")
            np.save(fine_path, stretch_benchmark_2d(nref).phi(pts))
        fine = np.load(fine_path)
        upd = {"samples": npts, "field": {"width": w, "depth": d},
               "lm": {"linear_solver": "cg", "cg_curvature_fraction": 0.25}}
        rows.append(ours(w, f"ours_paper_net_vs_n{nref}", "sweep", f"ours, the paper's network size ({d}×{w} "
                         f"SIREN, {{params}} params, {npts:,} points), matrix-free LM; vs FEM n={nref}", upd,
                         reference=fine))
        target = 4 * siren_params(2, 2, w, d)
        res = min(range(1, 400), key=lambda k: abs(8 * ((k + 1) ** 2 + k * k) - target))
        rows.append(ctx.cached(f"fem_paper_net_memory{res}_vs_n{nref}", lambda: fem_row(
            res, True, "sweep", f"FEM P1, crossed n={res}, same memory as the paper's network; vs FEM n={nref}",
            reference=fine)))
    return rows


# --------------------------------------------------------------------------------------
# dynamics with contact
# --------------------------------------------------------------------------------------
# The reference FEM integrates the contact penalty over each element (4 points per axis of
# the conical rule), the integral the neural solver samples.  Lumped at the nodes it charged a
# coarse mesh's bottom nodes with their whole volume share: on the 3D drop (scenario mesh,
# resolution 12) the largest penetration at t = 0.3 was 0.036 lumped against 0.054 integrated,
# and the lumped value was not converged (0.036/0.032/0.031/0.038/0.039 at resolutions
# 12/20/28/36/44; integrated: 0.054/0.044/0.045 at 12/20/28).
CONTACT_QUADRATURE = 4


def fem_for(cfg: dict, mesh, contact_quadrature: int = CONTACT_QUADRATURE):
    """An :class:`~insr.reference.fem_elastic.ElasticFEM` solving the scenario ``cfg`` (same
    material, gravity, contacts) on ``mesh``, the contact penalty integrated per element with
    ``contact_quadrature`` points per axis (0: lumped at the nodes)."""
    from insr.elasticity.scenarios import physics_from_config
    from insr.physics.elastic_energy import arap_volume, stable_neo_hookean
    from insr.reference.fem_elastic import ElasticFEM

    mat, gravity, contacts = physics_from_config(cfg, mesh.dim)
    energy = arap_volume if mat.energy == "arap" else stable_neo_hookean
    return ElasticFEM(mesh, mat.lam, mat.mu, energy=energy, density=mat.density, gravity=gravity,
                      contacts=contacts, contact_quadrature=contact_quadrature)


def fem_mesh(cfg: dict, level: int):
    """The FEM mesh of a mesh *level* of the scenario ``cfg``.  2D box: the crossed P1 mesh of
    resolution ``level``.  3D bunny: the scenario's own mesh (``geometry.resolution``) refined
    uniformly ``level`` times — the same polyhedron at every level, so the levels converge to the
    solution on the shape our network samples (``bunny_like_mesh(r)`` is another polyhedron for
    every r: rest centre-of-mass z 0.052 / 0.057 / 0.060 at r = 12 / 20 / 28)."""
    from insr.geometry.mesh import bunny_like_mesh, rectangle_mesh, refine_uniform

    g = cfg["geometry"]
    if g["shape"] == "bunny":
        return refine_uniform(bunny_like_mesh(g["resolution"]), level)
    if g["shape"] == "box" and len(g["lo"]) == 2:
        return rectangle_mesh(g["lo"], g["hi"], level, crossed=True)
    raise ValueError(f"no FEM mesh family for geometry {g}")


def mesh_level_name(cfg: dict, level: int) -> str:
    """How a report names the mesh of :func:`fem_mesh` (``level``)."""
    if cfg["geometry"]["shape"] == "bunny":
        base = f"the scenario's resolution-{cfg['geometry']['resolution']} mesh"
        return base if level == 0 else f"{base} refined {level}×"
    return f"resolution {level}"


def mesh_level_tag(cfg: dict, level: int) -> str:
    """A file-name part for the mesh of ``level`` (cached references and row ids carry it, so a
    resumed report never mixes a refined-mesh reference with a resolution one)."""
    return f"refine{level}" if cfg["geometry"]["shape"] == "bunny" else f"r{level}"


@dataclasses.dataclass(frozen=True)
class FEMRun:
    """One P1 FEM run of a dynamic scenario (:func:`fem_run`)."""

    trajectory: np.ndarray  # (steps + 1, nodes, d): every step's positions, the rest state first
    mesh: object
    wall_s: float
    per_step_s: float
    state_bytes: int
    converged: bool  # every Newton solve met its tolerance
    max_penetration: float  # largest depth of any node inside an obstacle, over all steps


def fem_penetration(cfg: dict, trajectory) -> float:
    """Largest depth of any node inside the scenario's obstacles over all states of an FEM
    ``trajectory`` (steps + 1, nodes, d); 0 without contact."""
    from insr.elasticity.scenarios import physics_from_config

    trajectory = np.asarray(trajectory)
    _, _, contacts = physics_from_config(cfg, trajectory.shape[-1])
    return max([0.0] + [float(np.max(np.asarray(c.penetration(x)))) for c in contacts for x in trajectory])


def run_penetration(traj) -> float:
    """Largest ``max_penetration`` of a neural run's metrics over its steps (each row holds that
    step's)."""
    return max(float(m["max_penetration"]) for m in traj.metrics if "max_penetration" in m)


def fem_run(cfg: dict, level: int) -> FEMRun:
    """The P1 FEM of the scenario ``cfg`` on the mesh of ``level`` (:func:`fem_mesh`) over
    ``cfg["steps"]`` steps."""
    mesh = fem_mesh(cfg, level)
    fem = fem_for(cfg, mesh)
    if mesh.dim == 3:
        # CG Newton (block-Jacobi PCG): SuperLU's fill-in makes the refined 3D meshes impractical
        # (the drop refined twice did not finish in 15 min; CG 751 s); the trajectories agree to
        # 3e-9 where both run (tests/test_fem_elastic.py)
        fem.options = dataclasses.replace(fem.options, linear_solver="cg")
    (traj, infos), wall = timed(fem.simulate, cfg["dt"], cfg["steps"])
    traj = np.asarray(traj)
    return FEMRun(trajectory=traj, mesh=mesh, wall_s=wall, per_step_s=wall / max(1, cfg["steps"]),
                  state_bytes=fem.state_bytes, converged=all(i.converged for i in infos),
                  max_penetration=fem_penetration(cfg, traj))


def run_dynamic(ctx: Context, scenario: str, paper_step_s: float, paper_adam: dict) -> list[dict]:
    from insr import config as cfgmod
    from insr.geometry.mesh import interpolate_p1
    from insr.registry import get

    z = ctx.sizes
    upd = {"steps": z["steps"]}
    cfg = cfgmod.merge(get(scenario).defaults, upd)
    # The error is judged at step `judge_step` (default: the last) — where the reference is
    # converged; the runs go on to the full horizon, whose penetration and time they report.
    judge = z.get("judge_step", z["steps"])
    t_judge = judge * cfg["dt"]
    ref_tag = f"{mesh_level_tag(cfg, z['reference'])}q{CONTACT_QUADRATURE}" + (
        f"_at{judge}" if judge != z["steps"] else "")
    ref_path = ctx.out / f"reference_{ref_tag}_{z['steps']}.npz"
    if not ref_path.is_file():
        ctx.log(f"{ctx.out.name}: FEM reference, {mesh_level_name(cfg, z['reference'])}")
        r = fem_run(cfg, z["reference"])
        np.savez(ref_path, X=r.mesh.points, x=r.trajectory[judge], wall=r.wall_s, per=r.per_step_s,
                 nbytes=r.state_bytes, conv=r.converged, depth=r.max_penetration)
    ref = np.load(ref_path)
    X, x_ref = ref["X"], ref["x"]
    at = "" if judge == z["steps"] else f"; error at t = {t_judge:g}, step {judge} of {z['steps']}"
    rms = lambda a: float(np.sqrt(np.mean(np.sum((np.asarray(a, np.float64) - x_ref) ** 2, axis=1))))

    def ours(run_id="ours", extra=None, kind="ours", label="ours, SIREN {params} params, LM", outputs=True):
        st, traj, _ = run_scenario(ctx, run_id, scenario, {**upd, **(extra or {})}, outputs=outputs)
        wall, _ = run_wall(traj)
        i = traj.steps.index(judge)  # every step is saved (the scenarios' save_every = 1)
        err = rms(st.evaluate(traj.states[i], X.astype(np.float32), traj.ts[i]))
        depth = run_penetration(traj)
        tm = run_timing(traj)
        per_step, first = tm["per_step_s"], tm["per_step_from"]
        over = f"step {tm['steps']}" if first >= tm["steps"] else f"steps {first}–{tm['steps']}"
        # per step against per step (the paper's seconds per step on its GPU), never a total
        return row(label.format(params=st.num_params), kind, error=err, wall_s=wall,
                   state_bytes=st.state_bytes(), series="ours (LM)" if kind == "ours" else None, **tm,
                   note=(f"{per_step:.2f} s/step (mean over {over}, initial fit excluded), per step "
                         f"{paper_step_s / per_step:.0f}× less than the paper's {paper_step_s:.0f} s/step on an "
                         f"RTX 3090 (other hardware); max penetration over the steps {depth:.3g}{at}"))

    def fem(resolution, kind, label):
        def compute():
            r = fem_run(cfg, resolution)
            xi = interpolate_p1(r.mesh, r.trajectory[judge], X, allow_outside=True)
            return row(label, kind, error=rms(xi), wall_s=r.wall_s, state_bytes=r.state_bytes, series="FEM P1",
                       note=f"{r.mesh.n_points} nodes, {r.per_step_s:.2f} s/step, "
                            f"Newton {'converged' if r.converged else 'NOT converged'}; max penetration over "
                            f"the steps {r.max_penetration:.3g}{at}")
        return compute

    # Row ids name the reference they were judged against (a resumed report must not mix references).
    vs = f"_vs_{ref_tag}"
    rows = [ctx.cached("ours" + vs, ours)]
    if "paper_net" in z:
        # The paper's network and point count, solved by the matrix-free LM (dense LM would
        # need the N·m×P Jacobian and P×P matrices: gigabytes at this size).
        w, d, n = z["paper_net"]
        net = {"field": {"width": w, "depth": d}, "samples": n,
               "lm": {"linear_solver": "cg", "cg_curvature_fraction": 0.25}}
        from insr.cli import siren_params

        d_space = X.shape[1]
        target = 4 * siren_params(d_space, d_space, w, d)
        nearest = ""
        if d_space == 3:
            # the refinement levels are 8× apart: name the nearest in bytes (a row of its own when
            # it is in fem_sweep, as level 1 is in the full profile)
            level = min(range(z["reference"]), key=lambda k: abs(12 * fem_mesh(cfg, k).n_points - target))
            nearest = f"; nearest FEM in memory: {mesh_level_name(cfg, level)}"
        rows.append(ctx.cached("ours_paper_net" + vs, lambda: ours(
            "ours_paper_net", net, "sweep", f"ours, the paper's network size ({d}×{w} SIREN, {{params}} params, "
            f"{n:,} points), matrix-free LM{nearest}", outputs=False)))
        if d_space == 2:
            # Its same-memory FEM: the crossed P1 mesh (nodes × 2 × 4 B) closest to the network's bytes.
            res = min(range(1, 400), key=lambda k: abs(8 * ((k + 1) ** 2 + k * k) - target))
            rows.append(ctx.cached(f"fem_paper_net_memory{vs}", fem(
                res, "sweep", f"FEM P1, resolution {res}, same memory as the paper's network")))

    # projected per step and over the steps ours ran (equal horizons)
    adam_upd = {**upd, **paper_adam, "optimizer": "adam", "adam": {"max_iters": z["adam_iters"]}}
    rows.append(adam_row(ctx, scenario, adam_upd, z["adam_iters"], cfg["steps"],
                         loop="the paper's Adam loop and network"))
    rows.append(ctx.cached("fem_same_memory" + vs, fem(z["same_memory"], "same-memory",
                                                  f"FEM P1, {mesh_level_name(cfg, z['same_memory'])}, same memory")))
    rows.append(row(f"FEM P1, {mesh_level_name(cfg, z['reference'])} (the reference)", "reference", error=0.0,
                    wall_s=float(ref["wall"]), state_bytes=int(ref["nbytes"]), series=None,
                    note=f"{len(X)} nodes, {float(ref['per']):.2f} s/step; max penetration over the steps "
                         f"{float(ref['depth']):.3g}{at}"))
    for r in z["fem_sweep"]:
        rows.append(ctx.cached(f"fem{r}" + vs, fem(r, "sweep", f"FEM P1, {mesh_level_name(cfg, r)}")))
    return rows


# The paper's network and points for its Adam loop (the "ours-adam" row), over the scenario's
# defaults.  The drop's loop samples uniformly: the contact band (its default since 2026-12-04)
# needs a point pool that Adam's fresh points per iteration do not have, and is refused with it.
PAPER_ADAM = {
    # Adam draws fresh points every iteration: the contact's and the momentum's own points are
    # solve-time point sets it cannot use (the paper's loop had neither)
    "elastic_collide_2d": {"field": {"width": 68, "depth": 3, "omega0": 30.0}, "samples": 10000,
                           "contact_points": {"pool": 0}, "momentum": {"points": 0}},
    "elastic_drop_3d": {"field": {"width": 66, "depth": 3, "omega0": 30.0}, "samples": 8000, "rounds": 1,
                        "contact_band": {"width": 0.0}},
}


def run_collide(ctx):
    return run_dynamic(ctx, "elastic_collide_2d", 138.0, PAPER_ADAM["elastic_collide_2d"])


def run_drop(ctx):
    return run_dynamic(ctx, "elastic_drop_3d", 1700.0, PAPER_ADAM["elastic_drop_3d"])


STRETCH = Example(
    name="elastic_stretch",
    title="2D quasi-static stretch, ARAP-with-volume λ = 1, μ = 1000 (paper Sec. 5.3)",
    metric=STRETCH_METRIC,
    # horizon: full load (the scenario ramps the handles over t ∈ [0, 4])
    paper=(PaperRow("ours (Adam)", 8.82e-2, "-", "same as FEM", kind="ours", horizon=4.0),
           PaperRow("FEM, same memory", 1.99e-1, "-", "same as ours", kind="same-memory", horizon=4.0)),
    # paper_net: (width, depth, points) of the paper's network row (measured 2026-12-03: 220 s for
    # the 4 load steps with 2 other jobs on the cores; tiny: a stand-in size on the same path),
    # judged against crossed n = paper_reference (128: 153 s; FEM 59/60/64 vs 128: 1.08e-3/1.05e-3/
    # 1.08e-3, 32 vs 128 6.3e-3 — the FEM error levels off near 1e-3 from n ≈ 60 on).
    sizes={"full": {"reference": 64, "samples": 5000, "widths": [16, 24, 32], "fem_sweep": [8, 12, 24, 32],
                    "paper_net": (68, 3, 10000), "paper_reference": 128},
           "quick": {"reference": 32, "samples": 5000, "widths": [24], "fem_sweep": [8, 12, 24],
                     "paper_net": (68, 3, 10000), "paper_reference": 128},
           "tiny": {"reference": 8, "samples": 200, "widths": [24], "fem_sweep": [4], "paper_net": (8, 1, 64),
                    "paper_reference": 12}},
    estimate_s={"full": 800, "quick": 600, "tiny": 50},  # ~twice the 2,500-point times
    run=run_stretch,
    benchmark="cd benchmarks && python elastic_stretch.py",
)

COLLIDE = Example(
    name="elastic_collide_2d",
    title="2D elastic square falling onto a disk (paper Sec. 5.3)",
    metric=DYN_METRIC,
    paper=(PaperRow("ours (Adam), per step", None, "138 s/step", "3×68 SIREN", kind="ours", horizon=2.0),),
    # paper_net: (width, depth, points) of the paper's network row (tiny: a stand-in that runs
    # the same matrix-free path in seconds).
    # The reference: P1 FEM at resolution 96 (full; 48 quick), the contact penalty integrated
    # per element (CONTACT_QUADRATURE).  Measured 2026-12-03 at t = 2 (RMS over the resolution-48
    # rest nodes): integrated contact, 17 vs 96 1.91e-3, 48 vs 96 2.25e-4; lumped contact (the
    # earlier reference), 17 vs 96 9.10e-3, 48 vs 96 5.04e-3, and lumped 96 vs integrated 96
    # 1.53e-3 (the lumped 192 that judged the runs before was itself ≈ 1e-3 off).  The sweep rows
    # print the reference's own convergence beside it.
    sizes={"full": {"steps": 20, "reference": 96, "same_memory": 17, "adam_iters": 200,
                    "fem_sweep": [8, 12, 24, 48], "paper_net": (68, 3, 10000)},
           "quick": {"steps": 8, "reference": 48, "same_memory": 17, "adam_iters": 30, "fem_sweep": [24],
                     "paper_net": (68, 3, 10000)},
           "tiny": {"steps": 1, "reference": 6, "same_memory": 4, "adam_iters": 2, "fem_sweep": [],
                    "paper_net": (8, 1, 64)}},
    estimate_s={"full": 1000, "quick": 360, "tiny": 45},
    run=run_collide,
    benchmark="cd benchmarks && python elastic_steps.py",
)

DROP = Example(
    name="elastic_drop_3d",
    title="3D bunny-like mesh falling onto a plane (paper Sec. 5.3)",
    metric=DYN_METRIC,
    paper=(PaperRow("ours (Adam), per step", None, "~1,700 s/step (~30 min)", "3×66 SIREN", kind="ours", horizon=1.5),
           PaperRow("FEM", None, "< 1 min/step", "-", kind="reference", horizon=1.5)),
    # Mesh levels: the scenario's own mesh (resolution 12) refined uniformly `level` times, the
    # same polyhedron at every level.  FEM of the same memory: level 0 (392 nodes × 3 × 4 B ≈ our
    # 5.5 KB).  The reference, level 2 (85,696 tetrahedra, CG Newton, ≈ 12 min), converges at
    # t = 0.3 (RMS over the level-0 nodes: level 1 vs 2 0.0018) but not later, when the bounce
    # and turn amplify every difference (t = 1.0 / 1.5: 0.033 / 0.085 — as large as the errors it
    # would judge): so the error is judged at step 3, and penetration over all steps.
    # paper_net: the paper's 3×66 SIREN and 8,000 points, matrix-free LM with ¼ of the points in
    # the curvature (2026-12-07: ≈ 130–140 s per step on 2 shared cores; it deadlocked before the
    # 3D SVD became plain JAX, insr.physics.svd3); full profile, and a stand-in size in tiny so the
    # slow tiny test runs the 3D path.
    sizes={"full": {"steps": 15, "judge_step": 3, "reference": 2, "same_memory": 0, "adam_iters": 50,
                    "fem_sweep": [1], "paper_net": (66, 3, 8000)},
           "quick": {"steps": 5, "judge_step": 3, "reference": 1, "same_memory": 0, "adam_iters": 10,
                     "fem_sweep": []},
           "tiny": {"steps": 1, "reference": 1, "same_memory": 0, "adam_iters": 2, "fem_sweep": [],
                    "paper_net": (8, 1, 64)}},
    estimate_s={"full": 3600, "quick": 240, "tiny": 60},
    run=run_drop,
    benchmark="cd benchmarks && python elastic_steps.py",
)
