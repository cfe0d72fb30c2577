"""Image mesh painting: projection with a depth test, unseen fill, baked texture."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from deployments.base import ModelInputError
from deployments.geometry.bake import project_image
from deployments.geometry.mask import foreground_mask, load_rgba
from deployments.geometry.mesh_io import load_mesh
from deployments.geometry.texels import sample_texels, unwrap
from deployments.projection_image_mesh_painting import ProjectionImageMeshPainting
from tests.unit.test_model_gen_support import primary, run_model, validate_gltf

RED, BLUE = (220, 30, 30), (30, 60, 220)


@pytest.fixture
def split_png(tmp_path: Path) -> Path:
    """Left half red, right half blue, on a white frame (the backdrop the mask removes)."""
    image = np.full((200, 300, 3), 255, dtype=np.uint8)
    image[20:180, 20:150] = RED
    image[20:180, 150:280] = BLUE
    path = tmp_path / "split.png"
    Image.fromarray(image).save(path)
    return path


def test_projection_puts_each_colour_on_its_side(assets_dir: Path, split_png: Path) -> None:
    mesh = load_mesh(assets_dir / "spot.obj")
    atlas = unwrap(mesh.vertices, mesh.faces, 256)
    texels = sample_texels(atlas, 256)
    rgba = load_rgba(split_png)
    mask = foreground_mask(rgba)
    colors, seen = project_image(
        texels, atlas.vertices, atlas.faces, rgba[..., :3], mask.mask, mask.bbox()
    )
    assert 0.15 < seen.mean() < 0.65  # a front view sees roughly half of a closed surface
    x = texels.position[:, 0]
    middle = (x.min() + x.max()) / 2
    extent = x.max() - x.min()
    left = x < middle - 0.1 * extent
    right = x > middle + 0.1 * extent
    assert np.abs(colors[seen & left] - RED).max(axis=1).mean() < 20
    assert np.abs(colors[seen & right] - BLUE).max(axis=1).mean() < 20
    # unseen texels are filled from nearby seen colours, never left black
    assert colors[~seen].max(axis=1).min() > 20
    # the back continues the side it lies behind
    back_left = ~seen & (x < middle - 0.3 * extent)
    assert (colors[back_left][:, 0] > colors[back_left][:, 2]).mean() > 0.9


@pytest.mark.parametrize("mesh_name", ["spot.obj", "Duck.glb"])
def test_painted_mesh_is_valid_gltf(
    assets_dir: Path, split_png: Path, tmp_path: Path, mesh_name: str
) -> None:
    model = ProjectionImageMeshPainting()
    inputs = {"image": split_png, "mesh": assets_dir / mesh_name}
    out = run_model(model, tmp_path, inputs, texture_resolution=256)
    data = primary(out)
    assert validate_gltf(data, tmp_path)["errors"] == 0
    scene = trimesh.load(io.BytesIO(data), file_type="glb")
    (geom,) = scene.geometry.values()
    assert geom.visual.material.baseColorTexture.size == (256, 256)
    source = load_mesh(inputs["mesh"])
    assert len(geom.faces) == len(source.faces)
    assert np.allclose(geom.bounds, source.bounds, atol=1e-5)
    info = out.generation_info
    assert 0.0 < info["visible_fraction"] < 1.0
    assert info["approximate"] is True
    assert primary(run_model(model, tmp_path, inputs, texture_resolution=256)) == data


def test_obj_output_carries_the_texture_file(
    assets_dir: Path, split_png: Path, tmp_path: Path
) -> None:
    out = run_model(
        ProjectionImageMeshPainting(),
        tmp_path,
        {"image": split_png, "mesh": assets_dir / "spot.obj"},
        texture_resolution=256,
        output_format="obj",
    )
    assert [f.filename for f in out.files] == ["painted_mesh.obj", "texture_basecolor.png"]
    mesh = trimesh.load(io.BytesIO(out.files[0].data), file_type="obj", force="mesh")
    assert mesh.visual.uv is not None
    assert Image.open(io.BytesIO(out.files[1].data)).size == (256, 256)


def test_bad_mesh_is_an_input_error(split_png: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.obj"
    broken.write_text("this is not a mesh\n")
    with pytest.raises(ModelInputError):
        run_model(ProjectionImageMeshPainting(), tmp_path, {"image": split_png, "mesh": broken})
