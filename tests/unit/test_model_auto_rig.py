"""heat_auto_rig on real assets: skinned GLB valid, FBX with joints and weights, weights sane."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pygltflib
import pytest
import trimesh

from deployments.base import JobContext, ModelInputError, ModelOutput
from deployments.geometry.gltf_validator import error_messages, validate_gltf
from deployments.geometry.mesh_io import load_mesh
from deployments.geometry.skeleton import build_skeleton
from deployments.geometry.skinning import heat_weights
from deployments.heat_auto_rig import HeatAutoRig

_COMPONENTS = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def _run(tmp: Path, mesh: Path, **params: Any) -> ModelOutput:
    stages: list[float] = []
    ctx = JobContext("job_rig", 1, tmp, on_progress=lambda _s, f: stages.append(f))
    out = HeatAutoRig().run(ctx, {"mesh": mesh}, {"output_format": "glb", **params})
    assert stages == sorted(stages)
    return out


def _file(out: ModelOutput, suffix: str) -> bytes:
    return next(f.data for f in out.files if f.filename.endswith(suffix))


def _accessor(doc: pygltflib.GLTF2, blob: bytes, index: int) -> np.ndarray:
    accessor = doc.accessors[index]
    view = doc.bufferViews[accessor.bufferView]
    start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
    width = _WIDTH[accessor.type]
    dtype = _COMPONENTS[accessor.componentType]
    raw = np.frombuffer(blob, dtype=dtype, count=accessor.count * width, offset=start)
    return raw.reshape(accessor.count, width)


def _skin_arrays(glb: bytes) -> tuple[pygltflib.GLTF2, np.ndarray, np.ndarray]:
    doc = pygltflib.GLTF2.load_from_bytes(glb)
    blob = doc.binary_blob()
    attributes = doc.meshes[0].primitives[0].attributes
    return (
        doc,
        _accessor(doc, blob, attributes.JOINTS_0),
        _accessor(doc, blob, attributes.WEIGHTS_0),
    )


@pytest.fixture(scope="module")
def cesium_full(assets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelOutput:
    return _run(tmp_path_factory.mktemp("rig"), assets_dir / "CesiumMan.glb", rig_mode="full")


@pytest.fixture(scope="module")
def cheburashka_fbx(assets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelOutput:
    return _run(
        tmp_path_factory.mktemp("rig"),
        assets_dir / "cheburashka.obj",
        rig_mode="skin",
        output_format="fbx",
    )


def test_skinned_glb_structure_and_weights(cesium_full: ModelOutput) -> None:
    doc, joints, weights = _skin_arrays(_file(cesium_full, ".glb"))
    info = cesium_full.result["rig_info"]
    skin = doc.skins[0]
    assert len(skin.joints) == info["num_joints"] >= 10
    assert doc.accessors[skin.inverseBindMatrices].count == len(skin.joints)
    assert doc.nodes[0].skin == 0 and doc.animations[0].channels
    assert len(weights) == len(joints) == 3273
    assert weights.min() >= 0.0
    assert np.abs(weights.astype(np.float64).sum(axis=1) - 1.0).max() < 1e-6
    assert (weights > 0).sum(axis=1).max() <= 4 and joints.max() < len(skin.joints)
    assert info["rig_mode"] == "full" and info["animation"]
    assert cesium_full.generation_info["texture_kept"] is True


def test_skinned_glb_passes_the_khronos_validator(cesium_full: ModelOutput) -> None:
    report = validate_gltf(_file(cesium_full, ".glb"))
    if report is None:
        pytest.skip("node / npm gltf-validator not installed (see gltf_validator.py)")
    assert report["issues"]["numErrors"] == 0, error_messages(report)


def test_skeleton_is_a_humanoid_tree(cesium_full: ModelOutput) -> None:
    joints = cesium_full.result["rig_info"]["joints"]
    parents = [j["parent"] for j in joints]
    assert parents[0] == -1 and all(0 <= p < i for i, p in enumerate(parents) if i)
    leaves = set(range(len(joints))) - set(parents)
    assert len(leaves) >= 5  # head, two hands, two feet
    heights = np.array([j["position"][1] for j in joints])
    assert heights.min() < 0.2 and heights.max() > 1.3  # feet to head on a 1.5 m figure


def test_fbx_reads_back_with_joints_and_weights(
    cheburashka_fbx: ModelOutput, tmp_path: Path
) -> None:
    import ufbx

    assert (
        cheburashka_fbx.files[0].filename == "rigged_mesh.fbx" and cheburashka_fbx.files[0].primary
    )
    path = tmp_path / "rig.fbx"
    path.write_bytes(cheburashka_fbx.files[0].data)
    scene = ufbx.load_file(str(path))
    try:
        joints = cheburashka_fbx.result["rig_info"]["num_joints"]
        assert len(scene.bones) == joints
        (deformer,) = scene.skin_deformers
        influences = sum(cluster.num_weights for cluster in deformer.clusters)
        assert 0 < len(deformer.clusters) <= joints
        assert influences >= scene.meshes[0].num_vertices
    finally:
        scene.close()


def test_fbx_job_also_ships_the_valid_glb(cheburashka_fbx: ModelOutput) -> None:
    _, _, weights = _skin_arrays(_file(cheburashka_fbx, ".glb"))
    assert weights.min() >= 0 and np.allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    report = validate_gltf(_file(cheburashka_fbx, ".glb"))
    if report is None:
        pytest.skip("node / npm gltf-validator not installed (see gltf_validator.py)")
    assert report["issues"]["numErrors"] == 0, error_messages(report)


def test_skeleton_mode_binds_rigidly(assets_dir: Path, tmp_path: Path) -> None:
    out = _run(tmp_path, assets_dir / "spot.obj", rig_mode="skeleton")
    _, _, weights = _skin_arrays(out.files[0].data)
    assert set(np.unique(weights)) <= {0.0, 1.0} and (weights.sum(axis=1) == 1.0).all()
    assert out.result["rig_info"]["max_influences"] == 1
    scene = trimesh.load(io.BytesIO(out.files[0].data), file_type="glb")
    assert len(next(iter(scene.geometry.values())).faces) == 5856


def test_heat_weights_are_smooth_partitions_of_unity(assets_dir: Path) -> None:
    mesh = load_mesh(assets_dir / "cheburashka.obj")
    skeleton = build_skeleton(mesh)
    weights = heat_weights(mesh.vertices, mesh.faces, skeleton.positions, skeleton.bones)
    assert weights.shape == (len(mesh.vertices), len(skeleton.positions))
    assert weights.min() >= 0.0 and np.allclose(weights.sum(axis=1), 1.0)
    assert ((weights > 0).sum(axis=1) <= 4).all()
    assert ((weights > 0.05) & (weights < 0.95)).any(axis=1).mean() > 0.2  # blended joints


def test_flat_input_is_rigged_in_its_plane(assets_dir: Path, tmp_path: Path) -> None:
    out = _run(tmp_path, assets_dir / "woody.obj", rig_mode="skin")
    info = out.result["rig_info"]
    assert info["skeleton_source"].startswith("2-D") and info["num_joints"] >= 6
    assert all(abs(j["position"][2]) < 1e-6 for j in info["joints"])  # woody lies in z = 0
    report = validate_gltf(out.files[0].data)
    if report is not None:
        assert report["issues"]["numErrors"] == 0, error_messages(report)


def test_degenerate_input_is_a_clear_error(tmp_path: Path) -> None:
    line = tmp_path / "line.obj"
    line.write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nv 3 0 0\nf 1 2 3\nf 2 3 4\n")
    with pytest.raises(ModelInputError):
        _run(tmp_path, line)


def test_unknown_rig_mode_is_rejected(assets_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelInputError, match="rig_mode"):
        _run(tmp_path, assets_dir / "spot.obj", rig_mode="muscles")
