"""Clean quad-dominant retopology with Instant Meshes (pynanoinstantmeshes, BSD), CPU.

Instant Meshes (Jakob et al. 2015) aligns a 4-RoSy orientation field and a 4-PoSy position
field to the surface and extracts a mesh of nearly square quads at a uniform edge length,
following the shape's principal directions. What this wrapper adds around the library:

* The library extracts a quad-dominant mesh for `vertex_count` and then splits every face
  into quads once (pure quads, about 4x the vertices asked for), so it is asked for a
  quarter of the target, and run once more with a corrected request when the result is
  off by more than 10%.
* Large inputs are first decimated (quadric, fast-simplification) to a few times the
  target: the field solve scales with the input, not the output, while the surface error
  does not grow (stanford-bunny to 1000 vertices: 6.7 s -> 0.6 s, error no worse).
* The library prints its progress with printf to fd 1, which would end up in a replica's
  stdout; fd 1 is pointed at /dev/null around the call (see `_quiet_remesh`).
* Its output can hold "doublets" (two quads sharing two edges at a vertex, which fold
  onto each other once triangulated) and stacked quads; they are merged or dropped.
* It can leave holes on closed surfaces at coarse targets (cow, 1000 vertices: two 20-edge
  holes). Boundary loops of the output with no vertex near a border of the input are
  closed: 3- and 4-edge loops with one face, larger ones with the lofted, faired patches
  of `deployments.geometry.holes` (triangles). Openings the input had are kept.
* The library has no seed. Its "deterministic" mode is used, but the multi-threaded solver
  still gives a different (equally valid) mesh on some reruns: suzanne at 1000 vertices
  gave one of two meshes, 30 runs in 200 the other. Only a process restricted to one CPU
  repeats exactly, so this model does not claim to be reproducible.
* Features thinner than about one output edge are lost (uniform edge length): at 1000
  vertices the cow's tail tip and the teapot's spout tip go (max error 6-9% of the
  diagonal); quadric_retopology keeps them.
* The library's binding hands back its arrays after freeing them (it returns views of
  local Eigen matrices), so the output is checked (indices in range, finite coordinates
  near the input) and the call repeated once if the check fails.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deployments.base import JobContext, Model, ModelInputError, ModelOutput, ModelSpec, OutputFile
from deployments.quadric_retopology import retopology_result

DEFAULT_TARGET = 1000
MIN_TARGET = 64  # asked for 3 vertices (a target of 12) the library returns nothing
MAX_TARGET = 200_000  # 100k took 6.8 s on 2 cores; the solve grows with the target
ASK_RATIO = 4.0  # output vertices per requested vertex_count
PRE_DECIMATE_MIN = 10_000  # never decimate the input below this many vertices ...
PRE_DECIMATE_FACTOR = 4  # ... or below this multiple of the target
TOLERANCE = 0.10  # rerun with a corrected request when further than this from the target
MAX_RUNS = 2
BORDER_DISTANCE = 3.0  # output edge lengths: loops this close to an input border are kept

# fd 1 is process-wide: one remesh at a time, so that saving and restoring it never interleave.
_REMESH_LOCK = threading.Lock()


def _flush_c_stdio() -> None:
    """Flush C stdio buffers (printf output still in the process's FILE buffers)."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no libc symbols to reach: nothing to flush
        pass


@contextmanager
def _fd1_to_devnull() -> Iterator[None]:
    """Point file descriptor 1 at /dev/null; restore it afterwards. Hold _REMESH_LOCK.

    Python's own buffer is flushed first (so earlier prints still reach the real stdout),
    and C stdio is flushed before restoring (so what the library printed but its FILE
    buffer still holds goes to /dev/null, not to the restored stdout later). Other threads
    writing to fd 1 during the call are silenced too: the call is short.
    """
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):  # closed or broken stdout: nothing to preserve
        pass
    _flush_c_stdio()
    try:
        saved = os.dup(1)
    except OSError:  # fd 1 is closed: there is no stdout to protect
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
        finally:
            os.close(devnull)
        try:
            yield
        finally:
            _flush_c_stdio()
            os.dup2(saved, 1)
    finally:
        os.close(saved)


def _quiet_remesh(
    vertices: np.ndarray, faces: np.ndarray, ask: int
) -> tuple[np.ndarray, np.ndarray]:
    """One Instant Meshes run (quads, "deterministic" mode), its prints sent to /dev/null.

    The result is copied while the lock is held, then checked: the binding returns arrays
    over memory it has already freed, so an index out of range, a non-finite coordinate or
    a vertex far outside the input's box means it was overwritten; the call is then made
    once more before giving up.
    """
    import pynanoinstantmeshes

    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    margin = 0.1 * float(np.linalg.norm(hi - lo)) + 1e-9
    for _ in range(2):
        with _REMESH_LOCK, _fd1_to_devnull():
            raw_v, raw_f = pynanoinstantmeshes.remesh(
                np.ascontiguousarray(vertices, dtype=np.float32),
                np.ascontiguousarray(faces, dtype=np.uint32),
                int(ask),
                rosy=4,
                posy=4,
                deterministic=True,
            )
            out_v = np.array(raw_v, dtype=np.float64).reshape(-1, 3)
            out_f = np.array(raw_f, dtype=np.int64).reshape(-1, 4)
        if (
            np.isfinite(out_v).all()
            and (len(out_f) == 0 or (out_f.min() >= 0 and out_f.max() < len(out_v)))
            and (out_v >= lo - margin).all()
            and (out_v <= hi + margin).all()
        ):
            return out_v, out_f
    raise RuntimeError("Instant Meshes returned a corrupt mesh twice")


@dataclass
class PolyMesh:
    """A mesh of quads and triangles sharing one vertex array."""

    vertices: np.ndarray
    quads: np.ndarray  # (Q, 4)
    triangles: np.ndarray  # (T, 3)

    @property
    def face_count(self) -> int:
        return len(self.quads) + len(self.triangles)

    def triangulated(self) -> np.ndarray:
        """Triangles of every face; quads split along their shorter diagonal."""
        q, v = self.quads, self.vertices
        d02 = np.linalg.norm(v[q[:, 0]] - v[q[:, 2]], axis=1)
        d13 = np.linalg.norm(v[q[:, 1]] - v[q[:, 3]], axis=1)
        short02 = (d02 <= d13)[:, None]
        first = np.where(short02, q[:, [0, 1, 2]], q[:, [0, 1, 3]])
        second = np.where(short02, q[:, [0, 2, 3]], q[:, [1, 2, 3]])
        return np.vstack([first, second, self.triangles]).astype(np.int64)

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Unique undirected polygon edges and how many faces use each."""
        q, t = self.quads, self.triangles
        half = np.vstack(
            [
                np.stack([q, np.roll(q, -1, axis=1)], axis=-1).reshape(-1, 2),
                np.stack([t, np.roll(t, -1, axis=1)], axis=-1).reshape(-1, 2),
            ]
        )
        return np.unique(np.sort(half, axis=1), axis=0, return_counts=True)


def _drop_stacked_faces(polygons: list[list[int]]) -> tuple[list[list[int]], int]:
    """Faces on the same vertex set: exact repeats keep one; any other stack (a "pillow",
    the same quad twice with opposite orientations) is dropped whole. Returns the kept
    faces and how many were dropped."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, poly in enumerate(polygons):
        groups.setdefault(tuple(sorted(poly)), []).append(i)
    drop: set[int] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        first = polygons[members[0]]
        turns = {tuple(first[k:] + first[:k]) for k in range(len(first))}
        if all(tuple(polygons[i]) in turns for i in members):
            drop.update(members[1:])
        else:
            drop.update(members)
    return [p for i, p in enumerate(polygons) if i not in drop], len(drop)


def _dissolve_doublets(polygons: list[list[int]]) -> tuple[list[list[int]], int]:
    """One sweep merging two faces that share both edges at a vertex (a "doublet").

    Instant Meshes leaves a few: two quads sharing two consecutive edges around a vertex
    (of valence 2, or pinched with another fan). Triangulated along the shared diagonal
    they fold onto each other, so the pair becomes one face without that vertex
    (quad + quad: a quad; quad + triangle: a triangle; two triangles: nothing).
    """
    corners: dict[tuple[int, int, int], list[int]] = {}
    for i, poly in enumerate(polygons):
        n = len(poly)
        for k, v in enumerate(poly):
            a, b = poly[k - 1], poly[(k + 1) % n]
            corners.setdefault((v, min(a, b), max(a, b)), []).append(i)
    faces: list[list[int] | None] = list(polygons)
    removed = 0
    for (v, _a, _b), around in corners.items():
        if len(around) != 2 or around[0] == around[1]:
            continue
        i, j = around
        f1, f2 = faces[i], faces[j]
        if f1 is None or f2 is None or v not in f1 or v not in f2:
            continue  # changed earlier in this sweep; the next sweep looks again
        r1 = f1[f1.index(v) :] + f1[: f1.index(v)]
        r2 = f2[f2.index(v) :] + f2[: f2.index(v)]
        if r2[1] != r1[-1] or r2[-1] != r1[1]:
            continue  # same corner with the same orientation: not a doublet
        merged = r1[1:] + r2[2:-1]
        if len(set(merged)) != len(merged):
            continue
        faces[i], faces[j] = (merged if len(merged) >= 3 else None), None
        removed += 1
    return [f for f in faces if f is not None], removed


def _repair(polygons: list[list[int]]) -> tuple[list[list[int]], int]:
    """Stacked faces dropped and doublets merged, until neither is left (a merge can
    make a new stack or doublet). Returns the faces and how many repairs were made."""
    total = 0
    for _ in range(16):
        polygons, stacked = _drop_stacked_faces(polygons)
        polygons, doublets = _dissolve_doublets(polygons)
        total += stacked + doublets
        if stacked + doublets == 0:
            break
    return polygons, total


def _polymesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[PolyMesh, int]:
    """The library's (F, 4) faces as quads and triangles (a quad with one corner repeated
    is a triangle; worse is dropped), stacked faces dropped, doublets dissolved, unused
    vertices removed.
    Returns the mesh and the number of faces dropped or merged."""
    polygons = []
    for row in faces.reshape(-1, 4).tolist():
        poly = [c for k, c in enumerate(row) if c != row[(k + 1) % 4]]
        if len(poly) >= 3 and len(set(poly)) == len(poly):
            polygons.append(poly)
    polygons, repaired = _repair(polygons)
    quads = np.array([p for p in polygons if len(p) == 4], dtype=np.int64).reshape(-1, 4)
    tris = np.array([p for p in polygons if len(p) == 3], dtype=np.int64).reshape(-1, 3)
    used = np.unique(np.concatenate([quads.reshape(-1), tris.reshape(-1)]))
    remap = np.full(len(vertices), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return PolyMesh(vertices[used], remap[quads], remap[tris]), repaired


def _simple_cycles(loop: np.ndarray) -> list[np.ndarray]:
    """Split a boundary loop that passes a vertex more than once (two holes touching at a
    vertex) into simple cycles; cycles of fewer than 3 vertices are dropped."""
    stack: list[int] = []
    where: dict[int, int] = {}
    cycles = []
    for v in loop.tolist():
        if v in where:
            at = where[v]
            cycles.append(stack[at:])
            for u in stack[at + 1 :]:
                del where[u]
            del stack[at + 1 :]
        else:
            where[v] = len(stack)
            stack.append(v)
    cycles.append(stack)
    return [np.array(c, dtype=np.int64) for c in cycles if len(c) >= 3]


def _input_border_points(mesh: Any, step: float) -> np.ndarray:
    """Points along the open-border edges of `mesh`, at most `step` apart."""
    import trimesh

    edges = mesh.edges_sorted[trimesh.grouping.group_rows(mesh.edges_sorted, require_count=1)]
    if len(edges) == 0:
        return np.empty((0, 3))
    a, b = mesh.vertices[edges[:, 0]], mesh.vertices[edges[:, 1]]
    total = float(np.linalg.norm(b - a, axis=1).sum())
    step = max(step, total / 200_000, 1e-12)  # bound the sample count on huge borders
    counts = np.ceil(np.linalg.norm(b - a, axis=1) / step).astype(np.int64) + 1
    seg = np.repeat(np.arange(len(edges)), counts)
    t = np.concatenate([np.linspace(0.0, 1.0, c) for c in counts.tolist()])
    return a[seg] + t[:, None] * (b[seg] - a[seg])


@dataclass
class HoleReport:
    loops: int = 0
    filled: int = 0
    kept_input_borders: int = 0
    filled_edges: list[int] = field(default_factory=list)
    added_vertices: int = 0
    open_chains: int = 0


def close_library_holes(poly: PolyMesh, source: Any) -> tuple[PolyMesh, HoleReport]:
    """Close output boundary loops that do not follow an open border of `source`.

    A loop is (next to) one of the input's own openings when any of its vertices lies
    within BORDER_DISTANCE mean output edge lengths of the input's border. 3- and 4-edge holes
    get one face; larger ones a lofted patch, faired (bi-Laplacian) with the rest fixed.
    """
    from scipy.spatial import cKDTree

    from deployments.geometry.holes import (
        boundary_loops,
        fair_vertices,
        loft_patch,
        neighbourhood_faces,
    )

    report = HoleReport()
    tris = poly.triangulated()
    if len(tris) == 0:
        return poly, report
    loops, report.open_chains = boundary_loops(tris)
    loops = [cycle for loop in loops for cycle in _simple_cycles(loop)]
    report.loops = len(loops)
    if not loops:
        return poly, report
    edges, _ = poly.edges()
    edge_length = float(
        np.linalg.norm(poly.vertices[edges[:, 0]] - poly.vertices[edges[:, 1]], axis=1).mean()
    )
    border = _input_border_points(source, edge_length / 4)
    tree = cKDTree(border) if len(border) else None
    vertices, quads, new_tris = [poly.vertices], [poly.quads], [poly.triangles]
    next_id = len(poly.vertices)
    fair_seeds: list[np.ndarray] = []
    for loop in loops:
        if tree is not None:
            distance, _ = tree.query(poly.vertices[loop])
            if float(distance.min()) < BORDER_DISTANCE * edge_length:
                report.kept_input_borders += 1
                continue
        ring = loop[::-1]  # the patch runs against the loop's half-edges
        if len(ring) == 4:
            quads.append(ring[None].astype(np.int64))
        else:
            points, patch = loft_patch(poly.vertices, ring, next_id)
            vertices.append(points)
            new_tris.append(patch.astype(np.int64))
            if len(points):
                fair_seeds += [np.arange(next_id, next_id + len(points)), loop]
            next_id += len(points)
        report.filled += 1
        report.filled_edges.append(int(len(loop)))
    out = PolyMesh(np.vstack(vertices), np.vstack(quads), np.vstack(new_tris))
    report.added_vertices = len(out.vertices) - len(poly.vertices)
    if report.added_vertices:
        free = np.arange(len(poly.vertices), len(out.vertices))
        all_tris = out.triangulated()
        region = neighbourhood_faces(all_tris, np.concatenate(fair_seeds), 3)
        positions = out.vertices
        for _ in range(2):  # the second pass uses cotangent weights of the faired patch
            positions = fair_vertices(positions, all_tris, free, region)
        out.vertices = positions
    return out, report


def topology_stats(poly: PolyMesh) -> dict[str, Any]:
    """Quad fraction of the faces and valence-4 fraction of the interior vertices."""
    edges, counts = poly.edges()
    valence = np.bincount(edges.reshape(-1), minlength=len(poly.vertices))
    on_border = np.zeros(len(poly.vertices), dtype=bool)
    on_border[edges[counts == 1].reshape(-1)] = True
    interior = ~on_border & (valence > 0)
    return {
        "quad_fraction": round(len(poly.quads) / max(poly.face_count, 1), 4),
        "valence4_fraction": round(float((valence[interior] == 4).mean()), 4)
        if interior.any()
        else 0.0,
        "boundary_edges": int((counts == 1).sum()),
        "non_manifold_edges": int((counts > 2).sum()),
    }


def polymesh_obj(poly: PolyMesh) -> bytes:
    """OBJ text keeping quads as 4-corner faces (trimesh would triangulate them)."""
    counts = f"{len(poly.vertices)} vertices, {len(poly.quads)} quads, {len(poly.triangles)} tris"
    lines = ["# MeshForge instant_meshes_retopology: quad-dominant mesh", f"# {counts}"]
    lines += [f"v {x:.8g} {y:.8g} {z:.8g}" for x, y, z in poly.vertices.tolist()]
    lines += [f"f {a} {b} {c} {d}" for a, b, c, d in (poly.quads + 1).tolist()]
    lines += [f"f {a} {b} {c}" for a, b, c in (poly.triangles + 1).tolist()]
    return ("\n".join(lines) + "\n").encode()


def retopologize(
    mesh: Any, target: int, progress: Any = None
) -> tuple[PolyMesh, HoleReport, dict[str, Any]]:
    """Quad-dominant remesh of a trimesh to about `target` vertices. Returns the mesh, what
    was done to holes, and run details (pre-decimation, requests made)."""
    from deployments.geometry.decimate import clean_mesh, decimate_to_vertex_count

    def step(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, fraction)

    cleaned = clean_mesh(mesh)
    if len(cleaned.faces) == 0:
        raise ValueError("the mesh has no non-degenerate faces")
    limit = max(PRE_DECIMATE_MIN, PRE_DECIMATE_FACTOR * target)
    source = cleaned
    if len(cleaned.vertices) > limit:
        step("pre-decimating", 0.15)
        source = decimate_to_vertex_count(cleaned, limit)
    ask = max(int(round(target / ASK_RATIO)), 1)
    best: PolyMesh | None = None
    best_repaired = 0
    asks: list[int] = []
    for run in range(MAX_RUNS):
        step("instant meshes", 0.25 + 0.25 * run)
        asks.append(ask)
        poly, repaired = _polymesh(*_quiet_remesh(source.vertices, source.faces, ask))
        got = len(poly.vertices)
        if got and (best is None or abs(got - target) < abs(len(best.vertices) - target)):
            best, best_repaired = poly, repaired
        if got == 0 or abs(got - target) <= TOLERANCE * target:
            break
        ask = max(int(round(ask * target / got)), 1)
    if best is None or best.face_count == 0:
        raise ValueError("Instant Meshes returned an empty mesh (the input is too small or flat)")
    step("closing holes", 0.8)
    result, holes = close_library_holes(best, cleaned)
    details = {
        "pre_decimated_to": len(source.vertices) if source is not cleaned else None,
        "requested_vertex_counts": asks,
        "faces_repaired": best_repaired,
    }
    return result, holes, details


class InstantMeshesRetopology(Model):
    spec = ModelSpec(
        model_id="instant_meshes_retopology",
        feature="retopology",
        description="Clean quad-dominant retopology with Instant Meshes to a vertex count (CPU)",
        method="Instant Meshes field-aligned quad remeshing (pynanoinstantmeshes)",
        ram_mb=1024,
        inputs=("mesh",),
        output_formats=("obj", "glb", "ply"),
        default_params={"target_vertex_count": DEFAULT_TARGET},
        details={
            "target_vertices": DEFAULT_TARGET,
            "target_vertices_range": [MIN_TARGET, MAX_TARGET],
            "topology": "quad-dominant",
            "device": "cpu",
        },
    )

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        import trimesh

        from deployments.geometry.errors import MeshFormatError
        from deployments.geometry.mesh_io import CONTENT_TYPES, export_mesh, load_mesh, mesh_stats

        fmt = str(params.get("output_format") or "obj").lower()
        if fmt not in self.spec.output_formats:
            raise ModelInputError(
                f"output_format {fmt!r} is not supported; use one of {self.spec.output_formats}"
            )
        target = int(params.get("target_vertex_count") or DEFAULT_TARGET)
        if not MIN_TARGET <= target <= MAX_TARGET:
            raise ModelInputError(
                f"target_vertex_count must be between {MIN_TARGET} and {MAX_TARGET} "
                f"for {self.spec.model_id}, got {target}"
            )
        seed = params.get("seed")
        ctx.progress("loading mesh", 0.05)
        try:
            mesh = load_mesh(inputs["mesh"])
        except MeshFormatError as exc:
            raise ModelInputError(f"Cannot read the input mesh: {exc}") from exc
        before = mesh_stats(mesh)
        try:
            poly, holes, details = retopologize(mesh, target, ctx.progress)
        except ValueError as exc:
            raise ModelInputError(f"Cannot retopologize this mesh: {exc}") from exc
        ctx.progress("writing output", 0.9)
        preview = trimesh.Trimesh(poly.vertices, poly.triangulated(), process=False)
        if fmt == "obj":
            data, file_faces = polymesh_obj(poly), poly.face_count
        else:
            data, file_faces = export_mesh(preview, fmt), len(preview.faces)
        topology = topology_stats(poly)
        after = {
            "vertices": int(len(poly.vertices)),
            "faces": poly.face_count,
            "quads": int(len(poly.quads)),
        }
        return ModelOutput(
            files=[OutputFile(f"retopo_mesh.{fmt}", data, CONTENT_TYPES[fmt], primary=True)],
            preview=preview,
            result=retopology_result(self.spec.model_id, "quad-dominant", before, after, seed),
            generation_info={
                "method": self.spec.method,
                "target_vertex_count": target,
                "vertex_count": after["vertices"],
                "face_count": after["faces"],
                "quad_count": after["quads"],
                "triangle_count": int(len(poly.triangles)),
                **topology,
                "file_faces": "quads and triangles" if fmt == "obj" else "triangles",
                "file_face_count": int(file_faces),
                "faces_are_quads": fmt == "obj" and len(poly.quads) > 0,
                "holes_filled": holes.filled,
                "hole_sizes_filled": holes.filled_edges,
                "input_openings_kept": holes.kept_input_borders,
                "pre_decimated_to": details["pre_decimated_to"],
                "requested_vertex_counts": details["requested_vertex_counts"],
                "faces_repaired": details["faces_repaired"],
                "deterministic": False,
                "seed_used": False,
                "seed_note": "Instant Meshes takes no seed, so the seed does not change the "
                "result; its multi-threaded solver can give a different, equally valid mesh "
                "on a rerun of the same input and target",
            },
        )
