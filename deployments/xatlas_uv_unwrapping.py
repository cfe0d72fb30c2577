"""UV unwrapping with xatlas: charts split until under a distortion threshold, then packed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from deployments.base import JobContext, Model, ModelInputError, ModelOutput, ModelSpec, OutputFile

DEFAULT_THRESHOLD = 1.25
PACK_METHODS = ("blender", "none", "uvpackmaster")
MAX_UNWRAP_FACES = 100_000  # xatlas takes ~40 s per 100k faces on two cores
MAX_PART_FILES = 32
MAX_CHARTS_LISTED = 1000
DISTORTION_METRIC = (
    "area-weighted symmetric Dirichlet energy (s1^2 + 1/s1^2 + s2^2 + 1/s2^2) / 4 of the "
    "UV map's singular values, each chart scaled to UV area = surface area; 1 = isometric"
)


def _check_params(params: dict[str, Any]) -> tuple[float, str]:
    threshold = float(params.get("distortion_threshold") or DEFAULT_THRESHOLD)
    if not 1.0 <= threshold <= 5.0:
        raise ModelInputError(f"distortion_threshold must be between 1.0 and 5.0, got {threshold}")
    pack = str(params.get("pack_method") or "blender")
    if pack == "uvpackmaster":
        raise ModelInputError(
            "UVPackMaster is not installed on this server (it is a paid Blender add-on); "
            "use pack_method 'blender' for a packed atlas or 'none' for a grid of charts"
        )
    if pack not in PACK_METHODS:
        raise ModelInputError(f"unknown pack_method {pack!r}; expected one of {PACK_METHODS}")
    return threshold, pack


class XatlasUvUnwrapping(Model):
    spec = ModelSpec(
        model_id="xatlas_uv_unwrapping",
        feature="uv_unwrapping",
        description=(
            "UV atlas on CPU: xatlas charts per part, charts over the distortion threshold "
            "split again, packed into a square atlas (or laid on a grid)"
        ),
        method="xatlas charting with distortion-driven chart splitting and xatlas packing",
        ram_mb=1024,
        load_time_s=2.0,
        inputs=("mesh",),
        output_formats=("obj", "glb"),
        default_params={
            "distortion_threshold": DEFAULT_THRESHOLD,
            "pack_method": "blender",
            "save_individual_parts": True,
            "save_visuals": False,
        },
        details={
            "device": "cpu",
            "pack_methods": ["blender", "none"],
            "distortion_metric": DISTORTION_METRIC,
            "atlas_resolution": 1024,
            "padding_texels": 2,
            "parts": "scene nodes of the input, else its connected components",
            "max_faces_without_decimation": MAX_UNWRAP_FACES,
        },
    )

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        from deployments.geometry.uv import assemble_atlas, make_charts

        threshold, pack = _check_params(params)
        ctx.progress("loading mesh", 0.05)
        vertices, faces, part_of_face, decimated = _load_parts(inputs["mesh"])
        parts = [np.flatnonzero(part_of_face == p) for p in range(int(part_of_face.max()) + 1)]
        ctx.progress("charting", 0.15)
        charts, rounds = make_charts(
            vertices,
            faces,
            parts,
            threshold,
            progress=lambda f: ctx.progress("splitting charts over the threshold", 0.3 + 0.4 * f),
        )
        ctx.progress("packing" if pack == "blender" else "laying charts on a grid", 0.75)
        atlas = assemble_atlas(vertices, faces, charts, pack == "blender", rounds)
        ctx.progress("writing output", 0.85)
        return _output(self.spec.model_id, atlas, part_of_face, threshold, pack, params, decimated)


def _load_parts(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int] | None]:
    """Welded, cleaned geometry and a part id per face (scene nodes, else components)."""
    import trimesh

    from deployments.geometry.decimate import clean_mesh, decimate_to_vertex_count
    from deployments.geometry.errors import MeshFormatError
    from deployments.geometry.mesh_io import load_scene

    try:
        scene = load_scene(path)
    except MeshFormatError as exc:
        raise ModelInputError(f"Cannot read the input mesh: {exc}") from exc
    meshes = [m for m in scene.dump() if isinstance(m, trimesh.Trimesh)]
    pieces = [clean_mesh(m) for m in meshes if len(m.faces)]
    pieces = [m for m in pieces if len(m.faces)]
    if not pieces:
        raise ModelInputError("The input mesh has no non-degenerate triangles")
    total = sum(len(m.faces) for m in pieces)
    decimated = None
    if total > MAX_UNWRAP_FACES:
        share = MAX_UNWRAP_FACES / total
        pieces = [
            decimate_to_vertex_count(m, max(int(len(m.faces) * share / 2), 4)) for m in pieces
        ]
        decimated = {"input_faces": total, "unwrapped_faces": sum(len(m.faces) for m in pieces)}
    if len(pieces) == 1:
        components = trimesh.graph.connected_components(
            pieces[0].face_adjacency, nodes=np.arange(len(pieces[0].faces)), min_len=1
        )
        labels = np.empty(len(pieces[0].faces), dtype=np.int64)
        for index, members in enumerate(sorted(components, key=len, reverse=True)):
            labels[members] = index
    else:
        labels = np.repeat(np.arange(len(pieces)), [len(m.faces) for m in pieces])
    offsets = np.cumsum([0] + [len(m.vertices) for m in pieces])
    vertices = np.vstack([m.vertices for m in pieces])
    faces = np.vstack([m.faces + o for m, o in zip(pieces, offsets, strict=False)])
    return vertices, faces.astype(np.int64), labels, decimated


def _part_files(
    mesh: Any, part_of_face: np.ndarray, fmt: str
) -> tuple[list[OutputFile], list[dict[str, Any]]]:
    """One file per part (the largest MAX_PART_FILES - 1 alone, any others together)."""
    from deployments.geometry.mesh_io import CONTENT_TYPES, export_mesh

    count = int(part_of_face.max()) + 1
    order = np.argsort(-np.bincount(part_of_face, minlength=count), kind="stable")
    groups = [[int(p)] for p in order]
    if count > MAX_PART_FILES:
        groups = groups[: MAX_PART_FILES - 1] + [[int(p) for p in order[MAX_PART_FILES - 1 :]]]
    files, info = [], []
    for number, group in enumerate(groups):
        faces = np.flatnonzero(np.isin(part_of_face, group))
        piece = mesh.submesh([faces], append=True, repair=False)
        name = f"uv_part_{number:02d}.{fmt}"
        files.append(OutputFile(name, export_mesh(piece, fmt), CONTENT_TYPES[fmt]))
        info.append({"file": name, "parts": group, "num_faces": int(len(faces))})
    return files, info


def _mirrored_charts(atlas: Any) -> int:
    """Charts whose UVs run clockwise (mirrored; they flip normal-map tangents)."""
    corners = atlas.uvs[atlas.faces]
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    signed = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    per_chart = np.bincount(atlas.face_chart, weights=signed, minlength=len(atlas.chart_faces))
    return int((per_chart < 0).sum())


def _output(
    model_id: str,
    atlas: Any,
    part_of_face: np.ndarray,
    threshold: float,
    pack: str,
    params: dict[str, Any],
    decimated: dict[str, int] | None,
) -> ModelOutput:
    import trimesh

    from deployments.geometry.mesh_io import CONTENT_TYPES, export_mesh
    from deployments.geometry.segment import part_colors
    from deployments.geometry.uv import DECIMALS
    from deployments.geometry.uv_visual import uv_layout_png

    fmt = params["output_format"]
    mesh = trimesh.Trimesh(atlas.vertices, atlas.faces, process=False)
    mesh.visual = trimesh.visual.TextureVisuals(uv=atlas.uvs)
    files = [OutputFile(f"uv_mesh.{fmt}", export_mesh(mesh, fmt), CONTENT_TYPES[fmt], True)]
    charts = [
        {"chart_id": i, "num_faces": int(n), "distortion": round(float(d), DECIMALS)}
        for i, (n, d) in enumerate(zip(atlas.chart_faces, atlas.chart_distortion, strict=True))
    ]
    over = [c["chart_id"] for c in charts if c["distortion"] > threshold]
    doc = {"charts": charts, "face_chart": atlas.face_chart.tolist()}
    files.append(OutputFile("uv_charts.json", json.dumps(doc).encode(), CONTENT_TYPES["json"]))
    part_info: list[dict[str, Any]] = []
    if params.get("save_individual_parts", True):
        extra, part_info = _part_files(mesh, part_of_face, fmt)
        files += extra
    if params.get("save_visuals", False):
        png = uv_layout_png(atlas.uvs, atlas.faces, atlas.face_chart)
        files.append(OutputFile("uv_layout.png", png, CONTENT_TYPES["png"]))
    preview = trimesh.Trimesh(atlas.vertices, atlas.faces, process=False)
    preview.visual = trimesh.visual.ColorVisuals(
        preview, face_colors=part_colors(len(charts))[atlas.face_chart]
    )
    num_parts = int(part_of_face.max()) + 1
    final = round(atlas.distortion, 4)
    uv_info = {
        "model": model_id,
        "num_uv_components": len(charts),
        "num_parts": num_parts,
        "final_distortion": final,
        "max_chart_distortion": round(float(atlas.chart_distortion.max()), 4),
        "distortion_threshold": threshold,
        "charts_over_threshold": over,
        "pack_method": pack,
        "atlas_utilization": round(atlas.utilization, 4),
        "components_info": charts[:MAX_CHARTS_LISTED],
        "components_info_complete": len(charts) <= MAX_CHARTS_LISTED,
        "individual_parts": part_info,
    }
    info: dict[str, Any] = {
        "method": "xatlas charts per part; charts over the threshold re-charted with half "
        "their area as the chart limit (or cut in two) until under it; "
        + (
            "xatlas packing, 1024-texel square atlas, 2-texel padding"
            if pack == "blender"
            else "charts on a grid, no packing"
        ),
        "distortion_metric": DISTORTION_METRIC,
        "split_rounds": atlas.split_rounds,
        "all_charts_under_threshold": not over,
        "mirrored_charts": _mirrored_charts(atlas),
        "pre_decimated": decimated,
        "approximate": decimated is not None,
    }
    if decimated is not None:
        info["note"] = (
            f"the input had {decimated['input_faces']} faces; it was decimated to "
            f"{decimated['unwrapped_faces']} before unwrapping and the output is that mesh"
        )
    return ModelOutput(
        files=files,
        preview=preview,
        result={"num_components": len(charts), "distortion": final, "uv_info": uv_info},
        generation_info=info,
    )
