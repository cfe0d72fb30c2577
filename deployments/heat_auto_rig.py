"""Auto-rigging on CPU: voxel medial-axis skeleton, bone-heat skinning, skinned GLB / FBX."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from deployments.base import JobContext, Model, ModelInputError, ModelOutput, ModelSpec, OutputFile

RIG_MODES = {
    "skeleton": "joints only; every vertex rigidly bound to the joint of its nearest bone",
    "skin": "joints + smooth bone-heat weights (up to 4 joints per vertex)",
    "full": "joints + bone-heat weights + a 2 s test animation swinging every inner joint",
}


class HeatAutoRig(Model):
    spec = ModelSpec(
        model_id="heat_auto_rig",
        feature="auto_rig",
        description=(
            "Skeleton from the shape's voxel medial axis and skinning weights by bone heat "
            "(Pinocchio), written as a skinned GLB or FBX (CPU)"
        ),
        method="Voxel medial-axis skeleton + bone-heat skinning (cotangent Laplacian)",
        ram_mb=1024,
        load_time_s=2.0,
        inputs=("mesh",),
        output_formats=("fbx", "glb"),
        default_params={"rig_mode": "skeleton"},
        details={
            "device": "cpu",
            "rig_modes": RIG_MODES,
            "voxel_resolution": 96,
            "max_influences": 4,
            "flat_input": "rigged from its 2-D silhouette in its own plane",
        },
        approximate=True,
    )

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        from deployments.geometry.errors import MeshFormatError
        from deployments.geometry.mesh_io import load_mesh
        from deployments.geometry.skeleton import SkeletonError, build_skeleton

        mode = str(params.get("rig_mode") or "skeleton")
        if mode not in RIG_MODES:
            raise ModelInputError(f"rig_mode must be one of {sorted(RIG_MODES)}, got {mode!r}")
        ctx.progress("loading mesh", 0.05)
        try:
            mesh = load_mesh(inputs["mesh"])
        except MeshFormatError as exc:
            raise ModelInputError(f"Cannot read the input mesh: {exc}") from exc
        welded, inverse = _weld(mesh)
        ctx.progress("building the skeleton", 0.15)
        try:
            skeleton = build_skeleton(welded)
        except SkeletonError as exc:
            raise ModelInputError(f"Cannot rig this mesh: {exc}") from exc
        ctx.progress("binding the skin" if mode == "skeleton" else "solving bone heat", 0.45)
        weights = _weights(welded, skeleton, mode)[inverse]
        ctx.progress("writing the rig", 0.8)
        return _output(self.spec.model_id, mesh, skeleton, weights, mode, params)


def _weld(mesh: Any) -> tuple[Any, np.ndarray]:
    """Positions welded across UV/normal seams, degenerate faces dropped; and the map back."""
    import trimesh

    unique, inverse = np.unique(mesh.vertices, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    faces = inverse[mesh.faces]
    keep = (
        (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    )
    if not keep.any():
        raise ModelInputError("The mesh has no non-degenerate triangles")
    return trimesh.Trimesh(unique, faces[keep], process=False), inverse


def _weights(welded: Any, skeleton: Any, mode: str) -> np.ndarray:
    from deployments.geometry.skinning import heat_weights, rigid_weights

    if mode == "skeleton":
        return rigid_weights(welded.vertices, skeleton.positions, skeleton.bones)
    return heat_weights(welded.vertices, welded.faces, skeleton.positions, skeleton.bones)


def _texture(mesh: Any) -> tuple[np.ndarray | None, bytes | None]:
    """glTF-convention UVs and PNG bytes of the base colour texture, if the input has one."""
    visual = mesh.visual
    uv = getattr(visual, "uv", None)
    material = getattr(visual, "material", None)
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    if getattr(visual, "kind", None) != "texture" or uv is None or image is None:
        return None, None
    if len(uv) != len(mesh.vertices):
        return None, None
    buffer = io.BytesIO()
    image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").save(buffer, "PNG")
    flipped = np.column_stack([uv[:, 0], 1.0 - uv[:, 1]])  # trimesh keeps v up; glTF v down
    return flipped, buffer.getvalue()


def _output(
    model_id: str, mesh: Any, skeleton: Any, weights: np.ndarray, mode: str, params: dict[str, Any]
) -> ModelOutput:
    import trimesh

    from deployments.geometry.fbx import glb_to_fbx
    from deployments.geometry.gltf_skin import SkinnedMesh, skinned_glb
    from deployments.geometry.mesh_io import CONTENT_TYPES
    from deployments.geometry.segment import part_colors

    uvs, png = _texture(mesh)
    skin = SkinnedMesh(
        vertices=np.asarray(mesh.vertices),
        faces=np.asarray(mesh.faces),
        normals=_unit_normals(mesh),
        weights=weights,
        joints=skeleton.positions,
        parents=skeleton.parents,
        names=skeleton.names,
        uvs=uvs,
        texture_png=png,
    )
    glb = skinned_glb(skin, animate=mode == "full")
    fmt = params["output_format"]
    files = []
    if fmt == "fbx":
        files.append(OutputFile("rigged_mesh.fbx", glb_to_fbx(glb), CONTENT_TYPES["fbx"], True))
    files.append(OutputFile("rigged_mesh.glb", glb, CONTENT_TYPES["glb"], fmt == "glb"))
    joints = [
        {"name": name, "parent": int(parent), "position": [round(float(x), 6) for x in pos]}
        for name, parent, pos in zip(
            skeleton.names, skeleton.parents, skeleton.positions, strict=True
        )
    ]
    doc = {"rig_mode": mode, "joints": joints, "max_influences": 1 if mode == "skeleton" else 4}
    files.append(OutputFile("skeleton.json", json.dumps(doc).encode(), CONTENT_TYPES["json"]))
    dominant = np.argmax(weights, axis=1)
    preview = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    preview.visual = trimesh.visual.ColorVisuals(
        preview, vertex_colors=part_colors(len(skeleton.positions))[dominant]
    )
    rig_info = {
        "model": model_id,
        "rig_mode": mode,
        "rig_mode_meaning": RIG_MODES[mode],
        "num_joints": len(joints),
        "num_bones": int(len(skeleton.bones)),
        "root_joint": skeleton.names[0],
        "max_influences": doc["max_influences"],
        "animation": "test_swing (2.0 s)" if mode == "full" else None,
        "skeleton_source": "2-D silhouette (flat input)" if skeleton.planar else "3-D voxels",
        "joints": joints,
    }
    return ModelOutput(
        files=files,
        preview=preview,
        result={"rig_info": rig_info},
        generation_info=_generation_info(mode, skeleton.planar, png is not None),
    )


def _unit_normals(mesh: Any) -> np.ndarray:
    normals = np.asarray(mesh.vertex_normals, dtype=np.float64)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    fallback = np.array([0.0, 1.0, 0.0])
    return np.where(length > 1e-12, normals / np.maximum(length, 1e-12), fallback)


def _generation_info(mode: str, planar: bool, textured: bool) -> dict[str, Any]:
    return {
        "method": (
            "inside voxelised by winding number (96 cells on the longest side), thinned to "
            "its medial axis (scikit-image), pruned, cut into joints at junctions, ends and "
            "about every 12% of the size; "
            + (
                "rigid binding to the nearest bone"
                if mode == "skeleton"
                else "bone-heat weights: (-L + M H) w = M H p with libigl cotangent L and "
                "Voronoi mass M, H = 1/d^2 to the nearest bone, top 4 joints renormalised"
            )
        ),
        "rig_mode": mode,
        "approximate": True,
        "approximations": [
            "joints are named root, joint_01, ... (no semantic labels) and have no bind "
            "rotation: bones point from each joint to its children",
            "parts thinner than about 1/96 of the size (fingers) get no joints of their own",
            "bone heat uses the nearest bone, without Pinocchio's visibility test",
        ]
        + (["flat input: skeleton from its silhouette in its own plane"] if planar else []),
        "texture_kept": textured,
    }
