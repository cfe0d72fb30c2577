"""Mesh sniffing, loading, stats and export round trips on the real assets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from deployments.geometry.errors import MeshFormatError
from deployments.geometry.mesh_io import (
    CONTENT_TYPES,
    EXPORT_FORMATS,
    MESH_FORMATS,
    export_mesh,
    load_mesh,
    load_scene,
    mesh_stats,
    sniff_mesh_format,
)

EXPECTED = {
    "BoxTextured.glb": "glb",
    "CesiumMan.glb": "glb",
    "RiggedSimple.glb": "glb",
    "spot_textured.glb": "glb",
    "BoxTextured.gltf": "gltf",
    "CesiumMan.gltf": "gltf",
    "Duck.gltf": "gltf",
    "cheburashka.obj": "obj",
    "stanford-bunny.obj": "obj",
    "suzanne.obj": "obj",
    "teapot.obj": "obj",
    "spot_texture.png": None,
    "manifest.json": None,
    "README.md": None,
    "spot_README.txt": None,
}

# A quad cube in ASCII FBX 7.4 with a node translation (10, 0, 0) and scale 2.
CUBE_FBX = """; FBX 7.4.0 project file
FBXHeaderExtension:  {
\tFBXHeaderVersion: 1003
\tFBXVersion: 7400
}
GlobalSettings:  {
\tVersion: 1000
\tProperties70:  {
\t\tP: "UpAxis", "int", "Integer", "",%(up)d
\t\tP: "UpAxisSign", "int", "Integer", "",1
\t\tP: "FrontAxis", "int", "Integer", "",%(front)d
\t\tP: "FrontAxisSign", "int", "Integer", "",%(front_sign)d
\t\tP: "CoordAxis", "int", "Integer", "",0
\t\tP: "CoordAxisSign", "int", "Integer", "",1
\t}
}
Objects:  {
\tGeometry: 1000, "Geometry::Cube", "Mesh" {
\t\tVertices: *24 {
\t\t\ta: -1,-1,-1,1,-1,-1,1,1,-1,-1,1,-1,-1,-1,1,1,-1,1,1,1,1,-1,1,1
\t\t}
\t\tPolygonVertexIndex: *24 {
\t\t\ta: 0,3,2,-2,4,5,6,-8,0,1,5,-5,2,3,7,-7,1,2,6,-6,3,0,4,-8
\t\t}
\t}
\tModel: 2000, "Model::Cube", "Mesh" {
\t\tProperties70:  {
\t\t\tP: "Lcl Translation", "Lcl Translation", "", "A",10,0,0
\t\t\tP: "Lcl Scaling", "Lcl Scaling", "", "A",2,2,3
\t\t}
\t}
}
Connections:  {
\tC: "OO",2000,0
\tC: "OO",1000,2000
}
"""


@pytest.fixture(scope="module")
def spot(assets_dir: Path) -> trimesh.Trimesh:
    return load_mesh(assets_dir / "spot_textured.glb")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sniff_assets(assets_dir: Path, name: str) -> None:
    data = (assets_dir / name).read_bytes()
    assert sniff_mesh_format(data[:65536], name, len(data)) == EXPECTED[name]
    # content decides: a misleading name changes nothing, even with a 4 KiB head
    assert sniff_mesh_format(data[:4096], "upload.stl", len(data)) == EXPECTED[name]


def test_sniff_rejects_garbage_and_renamed_png(assets_dir: Path, tmp_path: Path) -> None:
    garbage = np.random.default_rng(0).bytes(4096)
    assert sniff_mesh_format(garbage, "model.glb", 4096) is None
    assert sniff_mesh_format(b"hello world\nnot a mesh\n", "model.obj") is None
    png = (assets_dir / "spot_texture.png").read_bytes()
    assert sniff_mesh_format(png[:4096], "model.obj", len(png)) is None
    fake = tmp_path / "model.obj"
    fake.write_bytes(png)
    with pytest.raises(MeshFormatError, match="not a recognised mesh"):
        load_mesh(fake)


def test_sniff_binary_and_ascii_stl(spot: trimesh.Trimesh) -> None:
    binary = export_mesh(spot, "stl")
    assert sniff_mesh_format(binary[:4096], None, len(binary)) == "stl"
    assert sniff_mesh_format(binary[:4096], None, len(binary) + 1) is None
    assert sniff_mesh_format(binary[:4096], "x.stl") == "stl"  # size unknown: name decides
    text = trimesh.exchange.stl.export_stl_ascii(spot).encode()
    assert sniff_mesh_format(text[:4096], None) == "stl"


@pytest.mark.parametrize(
    "name,faces",
    [("Duck.glb", 4212), ("CesiumMan.gltf", 4672), ("stanford-bunny.obj", 69451)],
)
def test_load_mesh_assets(assets_dir: Path, name: str, faces: int) -> None:
    mesh = load_mesh(assets_dir / name)
    assert isinstance(mesh, trimesh.Trimesh)
    assert len(mesh.faces) == faces
    assert np.isfinite(mesh.vertices).all()


def test_mesh_stats_welds_seams(assets_dir: Path) -> None:
    stats = mesh_stats(load_mesh(assets_dir / "spot.obj"))
    assert stats["vertices"] == 3225 and stats["faces"] == 5856
    assert stats["watertight"] is True and stats["components"] == 1
    assert np.allclose(
        stats["bounds"], [[-0.471552, -0.736784, -0.668909], [0.471552, 0.953646, 1.049]]
    )
    teapot = mesh_stats(load_mesh(assets_dir / "teapot.obj"))
    assert teapot["watertight"] is False and teapot["components"] == 4


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_export_round_trip(spot: trimesh.Trimesh, tmp_path: Path, fmt: str) -> None:
    data = export_mesh(spot, fmt)
    assert sniff_mesh_format(data[:65536], None, len(data)) == fmt
    path = tmp_path / f"model.{fmt}"
    path.write_bytes(data)
    back = load_mesh(path)
    assert len(back.faces) == len(spot.faces)
    assert np.allclose(back.bounds, spot.bounds, atol=1e-6)
    assert back.area == pytest.approx(spot.area, rel=1e-5)
    assert fmt in CONTENT_TYPES


def test_gltf_export_is_one_self_contained_file(spot: trimesh.Trimesh) -> None:
    doc = json.loads(export_mesh(spot, "gltf"))
    uris = [item["uri"] for item in doc["buffers"] + doc.get("images", []) if "uri" in item]
    assert uris and all(uri.startswith("data:") for uri in uris)


def test_obj_export_has_uvs_but_no_material_reference(spot: trimesh.Trimesh) -> None:
    text = export_mesh(spot, "obj").decode()
    assert "\nvt " in text
    assert "mtllib" not in text and "usemtl" not in text


def test_scene_parts_survive_glb(spot: trimesh.Trimesh, tmp_path: Path) -> None:
    top = spot.submesh([np.flatnonzero(spot.triangles_center[:, 1] > 0)], append=True)
    bottom = spot.submesh([np.flatnonzero(spot.triangles_center[:, 1] <= 0)], append=True)
    scene = trimesh.Scene()
    scene.add_geometry(top, node_name="part_00", geom_name="part_00")
    scene.add_geometry(bottom, node_name="part_01", geom_name="part_01")
    path = tmp_path / "parts.glb"
    path.write_bytes(export_mesh(scene, "glb"))
    assert len(load_scene(path).geometry) == 2
    assert len(load_mesh(path).faces) == len(spot.faces)
    (tmp_path / "parts.stl").write_bytes(export_mesh(scene, "stl"))
    assert len(load_mesh(tmp_path / "parts.stl").faces) == len(spot.faces)


def test_fbx_export_reads_back(spot: trimesh.Trimesh, tmp_path: Path) -> None:
    assert "fbx" in MESH_FORMATS
    path = tmp_path / "spot.fbx"
    path.write_bytes(export_mesh(spot, "fbx"))
    back = load_mesh(path)
    assert len(back.faces) == len(spot.faces)
    assert np.allclose(back.extents, spot.extents, rtol=1e-3)


def _corrupt_inputs(assets_dir: Path, spot: trimesh.Trimesh) -> dict[str, bytes]:
    glb = (assets_dir / "Duck.glb").read_bytes()
    gltf = (assets_dir / "Duck.gltf").read_bytes()
    ply = export_mesh(spot, "ply")
    return {
        "truncated.glb": glb[: len(glb) // 2],
        "header_only.glb": glb[:20],
        "truncated.gltf": gltf[: len(gltf) // 2],
        "truncated.ply": ply[: len(ply) // 2],
        "empty.obj": b"",
        "no_faces.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\n",
        "nan.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv nan 0 0\nf 1 2 3\nf 1 2 4\n",
        "bad_index.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n",
        "truncated.fbx": b"Kaydara FBX Binary  \x00\x1a\x00" + bytes(200),
    }


def test_corrupt_inputs_raise_mesh_format_error(
    assets_dir: Path, spot: trimesh.Trimesh, tmp_path: Path
) -> None:
    for name, data in _corrupt_inputs(assets_dir, spot).items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(MeshFormatError) as info:
            load_mesh(path)
        assert name in str(info.value), name


def test_explicit_format_is_checked(assets_dir: Path) -> None:
    with pytest.raises(MeshFormatError, match="unsupported mesh format"):
        load_mesh(assets_dir / "spot.obj", fmt="3ds")
    with pytest.raises(MeshFormatError):
        load_mesh(assets_dir / "spot.obj", fmt="glb")


def test_fbx_ascii_cube_with_node_transform(tmp_path: Path) -> None:
    path = tmp_path / "cube.fbx"
    path.write_text(CUBE_FBX % {"up": 1, "front": 2, "front_sign": 1})
    assert sniff_mesh_format(path.read_bytes(), None) == "fbx"
    mesh = load_mesh(path)
    assert len(mesh.faces) == 12  # six quads, fan-triangulated
    assert np.allclose(mesh.bounds, [[8, -2, -3], [12, 2, 3]])
    assert mesh_stats(mesh)["watertight"] is True
    assert mesh.volume == pytest.approx(4 * 4 * 6)


def test_fbx_z_up_is_rotated_to_y_up(tmp_path: Path) -> None:
    path = tmp_path / "zup.fbx"
    path.write_text(CUBE_FBX % {"up": 2, "front": 1, "front_sign": -1})
    mesh = load_mesh(path)
    # file Z (scaled by 3) becomes Y; file Y (front is -Y) becomes -Z
    assert np.allclose(mesh.bounds, [[8, -3, -2], [12, 3, 2]])
    assert mesh.volume == pytest.approx(4 * 4 * 6)
