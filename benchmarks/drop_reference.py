"""A reference for ``elastic_drop_3d`` on the scenario's own shape, and how converged it is.

``bunny_like_mesh(r)`` is a different polyhedron for every resolution r, so FEM runs at
resolutions 12, 20, 28 mix mesh refinement with a change of shape.  This script refines the
scenario's own mesh (``geometry.resolution``, 12) uniformly — every tetrahedron into 8, the
shape unchanged (:func:`insr.geometry.mesh.refine_uniform`) — runs the P1 FEM (contact
integrated per element, as every reference) on each level, and prints

* the FEM's own convergence: RMS over the coarse mesh's nodes between successive levels at
  t = 0.3, 1.0 and 1.5, and each level's largest penetration;
* for each neural run directory given (``insr run elastic_drop_3d --out DIR``), the RMS of
  φ(X, t) at the same nodes and times against every level.

    python benchmarks/drop_reference.py --levels 0 1 2 --runs runs/drop-s0 runs/drop-s1
    python benchmarks/drop_reference.py --levels 0 1    # ≈ 1 min

The FEM runs with its conjugate-gradient Newton (``NewtonOptions(linear_solver="cg")``): level 2
(85,696 tetrahedra) took 751 s on 2 shared cores; with SuperLU it did not finish in 15 min.

FEM trajectories are cached in ``--out`` (default ``benchmarks/out/drop_reference``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _common import machine_line
from seeds import node_rms, reference_tag

TIMES = (0.3, 1.0, 1.5)


def fem_levels(levels, out: Path):
    from insr.cli import resolve_config
    from insr.reproduce.elastic import fem_mesh, fem_penetration, fem_run

    cfg = resolve_config("elastic_drop_3d", [])
    coarse = fem_mesh(cfg, 0)  # the scenario's mesh; level k: refined k times (the same shape)
    tag = reference_tag(cfg)  # a changed physics setting is another reference
    result = {}
    for k in levels:
        path = out / f"fem_r{cfg['geometry']['resolution']}_refine{k}_{tag}.npz"
        if not path.is_file():
            r = fem_run(cfg, k)  # CG Newton in 3D (SuperLU's fill-in made level 2 impractical)
            np.savez(path, x=r.trajectory, wall=r.wall_s, cells=r.mesh.n_cells, converged=r.converged)
        with np.load(path) as z:
            result[k] = {name: z[name] for name in z.files}
        r = result[k]
        print(f"FEM, resolution-12 mesh refined {k}×: {int(r['cells'])} tetrahedra, {float(r['wall']):.0f} s, "
              f"Newton converged: {bool(r['converged'])}; largest penetration (all nodes) "
              f"{fem_penetration(cfg, r['x']):.4f}", flush=True)
    return cfg, coarse, result


def _rms(a, b) -> float:
    return float(np.sqrt(np.mean(np.sum((np.asarray(a, np.float64) - b) ** 2, axis=-1))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--runs", type=Path, nargs="*", default=[])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "drop_reference")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    cfg, coarse, fem = fem_levels(sorted(args.levels), args.out)
    n0, dt = coarse.n_points, cfg["dt"]
    steps = [round(t / dt) for t in TIMES]
    levels = sorted(fem)
    for a, b in zip(levels, levels[1:]):
        d = [_rms(fem[a]["x"][s][:n0], fem[b]["x"][s][:n0]) for s in steps]
        print(f"FEM refine {a} vs {b}, RMS at t = {TIMES}: " + " / ".join(f"{v:.4f}" for v in d))
    if args.runs:
        from insr.cli import build_stepper, resolve_config
        from insr.io.checkpoint import load_state

        stepper = build_stepper(resolve_config("elastic_drop_3d", []))
        for run in args.runs:
            parts = []
            for t, s in zip(TIMES, steps):
                state, _ = load_state(run / "fields" / f"step_{s:06d}.npz", stepper.state_template())
                parts.append(f"t = {t}: " + ", ".join(
                    f"refine {k} {node_rms(stepper, state, t, coarse.points, fem[k]['x'][s][:n0]):.4f}"
                    for k in levels))
            print(f"{run}: RMS " + "; ".join(parts), flush=True)


if __name__ == "__main__":
    main()
