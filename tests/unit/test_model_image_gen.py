"""Image to raw / textured mesh by silhouette inflation: masks, closed solids, textures."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image, ImageDraw

from deployments.base import ModelInputError
from deployments.geometry.inflate import inflate_mask
from deployments.geometry.mask import foreground_mask, load_rgba
from deployments.silhouette_image_to_raw_mesh import SilhouetteImageToRawMesh
from deployments.silhouette_image_to_textured_mesh import SilhouetteImageToTexturedMesh
from meshforge.features import FEATURES
from tests.unit.test_model_gen_support import primary, run_model, validate_gltf


def _draw(size: tuple[int, int] = (320, 240), alpha: bool = False) -> Image.Image:
    """A red disc joined to a blue bar on a near-white (or transparent) backdrop."""
    mode, backdrop = ("RGBA", (0, 0, 0, 0)) if alpha else ("RGB", (246, 246, 244))
    image = Image.new(mode, size, backdrop)
    pen = ImageDraw.Draw(image)
    pen.ellipse((40, 40, 200, 200), fill=(200, 40, 40, 255)[: len(mode)])
    pen.rectangle((180, 100, 290, 140), fill=(40, 90, 200, 255)[: len(mode)])
    return image


def _truth(size: tuple[int, int] = (320, 240)) -> np.ndarray:
    image = Image.new("L", size, 0)
    pen = ImageDraw.Draw(image)
    pen.ellipse((40, 40, 200, 200), fill=255)
    pen.rectangle((180, 100, 290, 140), fill=255)
    return np.asarray(image) > 0


@pytest.fixture
def plain_png(tmp_path: Path) -> Path:
    path = tmp_path / "object.png"
    _draw().save(path)
    return path


def _closed(data: bytes, fmt: str = "glb") -> trimesh.Trimesh:
    mesh = trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh")
    mesh.merge_vertices(merge_tex=True, merge_norm=True)
    return mesh


@pytest.mark.parametrize("alpha", [False, True])
def test_mask_matches_the_drawn_object(tmp_path: Path, alpha: bool) -> None:
    path = tmp_path / "a.png"
    _draw(alpha=alpha).save(path)
    found = foreground_mask(load_rgba(path))
    truth = _truth()
    iou = (found.mask & truth).sum() / (found.mask | truth).sum()
    assert found.method == ("alpha" if alpha else "border_flood_fill")
    assert iou > 0.97


def _nonmanifold_vertices(mesh: trimesh.Trimesh) -> int:
    """Vertices whose incident faces form more than one fan."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    f, n = mesh.faces, len(mesh.vertices)
    centre = f.T.reshape(-1)
    left = np.roll(f, -1, axis=1).T.reshape(-1)
    right = np.roll(f, -2, axis=1).T.reshape(-1)
    keys, inverse = np.unique(
        np.concatenate([centre * n + left, centre * n + right]), return_inverse=True
    )
    m = len(centre)
    graph = sparse.coo_matrix((np.ones(m), (inverse[:m], inverse[m:])), shape=(len(keys),) * 2)
    _, labels = connected_components(graph, directed=False)
    first = np.unique(labels, return_index=True)[1]
    fans = np.bincount(keys[first] // n, minlength=n)
    return int((fans > 1).sum())


@pytest.mark.parametrize("case", ["disc", "speckle", "thin_neck", "diagonal_contact"])
def test_inflation_is_a_closed_manifold_solid(case: str) -> None:
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[:120, :160]
    masks = {
        "disc": (cols - 80) ** 2 + (rows - 60) ** 2 < 50**2,
        "speckle": np.kron(rng.random((30, 40)) > 0.5, np.ones((4, 4), dtype=bool)),
        "thin_neck": (np.abs(rows - 60) < 1) & (cols > 10)
        | ((cols - 30) ** 2 + (rows - 60) ** 2 < 400),
        "diagonal_contact": np.kron(np.eye(6, dtype=bool), np.ones((20, 20), dtype=bool))[:, :120],
    }
    solid = inflate_mask(masks[case], max_cells=96)
    mesh = trimesh.Trimesh(solid.vertices, solid.faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0
    assert _nonmanifold_vertices(mesh) == 0
    assert np.all((solid.uv >= 0) & (solid.uv <= 1))


def test_raw_mesh_is_watertight_and_valid(plain_png: Path, tmp_path: Path) -> None:
    model = SilhouetteImageToRawMesh()
    out = run_model(model, tmp_path, {"image": plain_png})
    data = primary(out)
    mesh = _closed(data)
    assert mesh.is_watertight and mesh.volume > 0
    assert validate_gltf(data, tmp_path)["errors"] == 0
    info = out.generation_info
    assert info["mask_method"] == "border_flood_fill" and info["approximate"] is True
    # the silhouette's aspect survives: wider than tall, like the drawing
    assert mesh.extents[0] > mesh.extents[1] > mesh.extents[2]
    for fmt in ("obj", "ply"):
        other = run_model(model, tmp_path, {"image": plain_png}, output_format=fmt)
        assert _closed(primary(other), fmt).is_watertight


def test_raw_mesh_from_a_real_image(assets_dir: Path, tmp_path: Path) -> None:
    out = run_model(
        SilhouetteImageToRawMesh(), tmp_path, {"image": assets_dir / "spot_texture.png"}
    )
    assert _closed(primary(out)).is_watertight


def test_textured_mesh_honours_resolution_and_validates(plain_png: Path, tmp_path: Path) -> None:
    model = SilhouetteImageToTexturedMesh()
    out = run_model(model, tmp_path, {"image": plain_png}, texture_resolution=512)
    data = primary(out)
    scene = trimesh.load(io.BytesIO(data), file_type="glb")
    (geom,) = scene.geometry.values()
    assert geom.visual.material.baseColorTexture.size == (512, 512)
    assert geom.visual.uv is not None and len(geom.visual.uv) == len(geom.vertices)
    assert validate_gltf(data, tmp_path)["errors"] == 0
    # the front centre of the disc shows the disc's red, not the backdrop
    front = geom.vertices[:, 2] > 0.5 * geom.vertices[:, 2].max()
    colors = geom.visual.to_color().vertex_colors[front, :3].astype(int)
    assert np.median(colors[:, 0]) > 150 and np.median(colors[:, 2]) < 100
    again = run_model(model, tmp_path, {"image": plain_png}, texture_resolution=512)
    assert primary(again) == data


def test_textured_mesh_uses_the_texture_image(
    plain_png: Path, assets_dir: Path, tmp_path: Path
) -> None:
    out = run_model(
        SilhouetteImageToTexturedMesh(),
        tmp_path,
        {"image": plain_png, "texture_image": assets_dir / "spot_texture.png"},
        texture_resolution=256,
        output_format="obj",
    )
    assert "texture_image" in out.generation_info["texture_source"]
    names = [f.filename for f in out.files]
    assert names == ["image_textured_mesh.obj", "texture_basecolor.png"]
    assert Image.open(io.BytesIO(out.files[1].data)).size == (256, 256)


def test_unreadable_image_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ModelInputError):
        run_model(SilhouetteImageToRawMesh(), tmp_path, {"image": bad})


def test_specs_fit_the_features() -> None:
    for model in (SilhouetteImageToRawMesh, SilhouetteImageToTexturedMesh):
        spec = model.spec
        assert spec.feature in FEATURES and spec.approximate
        assert set(spec.output_formats) <= set(FEATURES[spec.feature].output_formats)
        assert spec.model_id.endswith(spec.feature)
