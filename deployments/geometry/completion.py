"""Part completion on CPU: faired hole filling, and mirror completion where it applies.

Every boundary loop is closed by a faired patch (holes.py). When the shape has a good
mirror plane (symmetry.py, score >= MIN_SYMMETRY_SCORE) and the mirror image of some of
its surface lands where it has none, next to one of its holes, the missing piece is
grown from the mirror image and the surface is rebuilt around it (mirror.py). The report
says which of the two happened and what was added.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import trimesh

from deployments.geometry.decimate import clean_mesh, simplify_arrays
from deployments.geometry.holes import boundary_half_edges, fill_holes, remove_fins
from deployments.geometry.mirror import (
    RESOLUTION,
    mirrored_soup,
    plan_mirror,
    winding_reconstruction,
)
from deployments.geometry.symmetry import TOLERANCE, Plane, find_symmetry_plane

MIN_SYMMETRY_SCORE = 0.6
MIN_RECONSTRUCTED_FACES = 5000


def _closed(vertices: np.ndarray, faces: np.ndarray) -> bool:
    return bool(trimesh.Trimesh(vertices, faces, process=False).is_watertight)


def _decimated(surface: trimesh.Trimesh, target: int) -> trimesh.Trimesh:
    """Quadric-decimate the reconstruction to about `target` faces, keeping it closed.

    Edge collapses can fold a pair of faces onto each other (same corners, opposite
    winding): such pairs are removed, which leaves the surface closed around them. If the
    result is still open, a gentler target is tried; failing that, the full surface stays.
    """
    for factor in (1, 2, 4):
        if len(surface.faces) <= target * factor:
            break
        points, tris = simplify_arrays(surface.vertices, surface.faces, target * factor)
        _, inverse, counts = np.unique(
            np.sort(tris, axis=1), axis=0, return_inverse=True, return_counts=True
        )
        smaller = trimesh.Trimesh(points, tris[counts[inverse.reshape(-1)] == 1], process=False)
        smaller.remove_unreferenced_vertices()
        if smaller.is_watertight:
            return smaller
    return surface


def _mirror_complete(
    welded: trimesh.Trimesh,
    filled: tuple[np.ndarray, np.ndarray],
    loops: list[np.ndarray],
    patches: list[np.ndarray],
    plane: Plane,
) -> tuple[trimesh.Trimesh, dict[str, Any]] | None:
    plan = plan_mirror(welded.vertices, welded.faces, plane, loops, TOLERANCE)
    if plan is None:
        return None
    kept = [p for h, p in enumerate(patches) if h not in plan.covered_holes]
    extra = filled[1][np.concatenate(kept)] if kept else np.empty((0, 3), dtype=np.int64)
    soup = mirrored_soup(filled[0], welded.faces, plane, plan, extra)
    surface = winding_reconstruction(*soup)
    target = max(len(filled[1]), MIN_RECONSTRUCTED_FACES)
    surface = _decimated(surface, target)
    details = {
        "mirrored_faces": int(len(plan.faces)),
        "mirrored_clusters": plan.clusters,
        "mirrored_area_share": round(plan.added_area_share, 4),
        "holes_covered_by_mirror": plan.covered_holes,
        "reconstruction": f"winding-number level set on a {RESOLUTION}-cell grid",
    }
    return surface, details


def complete_mesh(
    mesh: trimesh.Trimesh, symmetry: bool = True, seed: int = 0
) -> tuple[trimesh.Trimesh, dict[str, Any]]:
    """The completed mesh and a report of what was found, filled and mirrored."""
    welded = clean_mesh(mesh)
    kept, fins = remove_fins(welded.faces)
    if fins:
        welded = trimesh.Trimesh(welded.vertices, kept, process=False)
        welded.remove_unreferenced_vertices()
    if len(welded.faces) == 0:
        raise ValueError("the mesh has no non-degenerate faces")
    vertices, faces, fill = fill_holes(welded.vertices, welded.faces)
    report: dict[str, Any] = {
        "input_faces": int(len(mesh.faces)),
        "holes_found": fill.loops_found,
        "holes_filled": fill.holes_filled,
        "unclosable_boundary_chains": fill.open_chains,
        "removed_fin_faces": fins,
        "boundary_edges_before": fill.boundary_edges_before,
        "added_vertices": fill.added_vertices,
        "added_faces": fill.added_faces,
        "mode": "hole_filling" if fill.holes_filled else "unchanged",
        "symmetry": None,
    }
    result = trimesh.Trimesh(vertices, faces, process=False)
    if symmetry and fill.loops:
        plane = find_symmetry_plane(welded, seed=seed)
        report["symmetry"] = {**plane.as_dict(), "used": False}
        if plane.score >= MIN_SYMMETRY_SCORE:
            mirrored = _mirror_complete(welded, (vertices, faces), fill.loops, fill.patches, plane)
            if mirrored is not None:
                result, details = mirrored
                report["symmetry"].update(used=True, **details)
                report["mode"] = "symmetry_reconstruction"
                report["added_faces"] = int(len(result.faces) - len(welded.faces))
                report["added_vertices"] = int(len(result.vertices) - len(welded.vertices))
    report["boundary_edges_after"] = int(len(boundary_half_edges(result.faces)))
    report["watertight_after"] = _closed(result.vertices, result.faces)
    report["output_faces"] = int(len(result.faces))
    return result, report
