"""export_fbx (GLB -> assimp CLI -> FBX) on real assets, read back with ufbx."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deployments.geometry.fbx import FbxExportError, export_fbx, glb_to_fbx
from deployments.geometry.fbx_read import read_fbx_scene
from deployments.geometry.mesh_io import load_mesh, load_scene


def _read_back(data: bytes, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "out.fbx"
    path.write_bytes(data)
    return read_fbx_scene(path)


@pytest.mark.parametrize("name", ["spot.obj", "teapot.obj", "CesiumMan.glb", "Duck.glb"])
def test_fbx_keeps_geometry_and_placement(assets_dir: Path, tmp_path: Path, name: str) -> None:
    scene = load_scene(assets_dir / name)
    data = export_fbx(scene)
    assert data.startswith(b"Kaydara FBX Binary")
    back = _read_back(data, tmp_path)
    original = scene.to_geometry()
    merged = back.to_geometry()
    assert len(merged.faces) == len(original.faces)
    # Z-up assets rotated at their root node must not come back lying down
    assert np.allclose(back.bounds, scene.bounds, atol=1e-3 * np.ptp(scene.bounds))


def test_a_single_mesh_exports_too(assets_dir: Path, tmp_path: Path) -> None:
    mesh = load_mesh(assets_dir / "fandisk.obj")
    back = _read_back(export_fbx(mesh), tmp_path).to_geometry()
    assert len(back.faces) == len(mesh.faces)


def test_textures_and_uvs_survive(assets_dir: Path, tmp_path: Path) -> None:
    import ufbx

    path = tmp_path / "spot.fbx"
    path.write_bytes(export_fbx(load_scene(assets_dir / "spot_textured.glb")))
    fbx = ufbx.load_file(str(path))
    try:
        assert fbx.meshes[0].vertex_uvs is not None and len(fbx.textures) == 1
    finally:
        fbx.close()


def test_garbage_is_an_export_error() -> None:
    with pytest.raises(FbxExportError):
        glb_to_fbx(b"glTF but not really a binary glTF file")
