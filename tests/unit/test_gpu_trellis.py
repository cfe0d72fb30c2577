"""The TRELLIS adapters against stand-ins of the upstream package: shared pipelines, the
mapping of every request field onto upstream calls, frames, progress and failures."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from PIL import Image

from deployments import trellis as tr
from deployments.base import JobCancelled, JobContext, ModelInputError, ModelOutOfMemory
from deployments.registry import model_class
from deployments.upstream import UpstreamModel
from tests.unit.standins import trellis_upstream as standin
from tests.unit.test_model_gen_support import primary, run_model

ALL = (
    tr.TrellisTextToRawMesh,
    tr.TrellisTextToTexturedMesh,
    tr.TrellisTextMeshPainting,
    tr.TrellisImageToRawMesh,
    tr.TrellisImageToTexturedMesh,
    tr.TrellisImageMeshPainting,
)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> standin.Recorder:
    return standin.install(monkeypatch)


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    root = tmp_path / "weights"
    standin.write_weights(root)
    return root


@pytest.fixture
def image(tmp_path: Path) -> Path:
    rgba = np.zeros((64, 64, 4), dtype=np.uint8)
    rgba[16:48, 16:48] = (200, 40, 40, 255)
    path = tmp_path / "object.png"
    Image.fromarray(rgba).save(path)
    return path


@pytest.fixture
def texture_image(tmp_path: Path) -> Path:
    path = tmp_path / "texture.jpg"
    Image.new("RGB", (40, 30), (20, 90, 200)).save(path)
    return path


@pytest.fixture
def offset_mesh(tmp_path: Path) -> tuple[Path, trimesh.Trimesh]:
    """A Y-up box far from the origin, larger than the unit cube."""
    mesh = trimesh.creation.box(extents=(4.0, 2.0, 1.0))
    mesh.apply_translation((10.0, -3.0, 5.0))
    path = tmp_path / "box.glb"
    mesh.export(path)
    return path, mesh


@pytest.fixture(autouse=True)
def _clean_cache() -> Any:
    yield
    for key in list(tr.PIPELINES.holders()):
        tr.PIPELINES._entries.pop(key, None)


def _loaded(cls: type[tr._Trellis], weights: Path, **options: Any) -> tr._Trellis:
    model = cls(weights_root=str(weights), **options)
    model.load()
    return model


def _glb_mesh(data: bytes) -> Any:
    scene: Any = trimesh.load(io.BytesIO(data), file_type="glb")
    return scene.to_geometry() if isinstance(scene, trimesh.Scene) else scene


# -- registry, specs, availability ----------------------------------------------------------


def test_registry_and_specs() -> None:
    vram = {
        "trellis_text_to_raw_mesh": 11776,
        "trellis_text_to_textured_mesh": 11776,
        "trellis_text_mesh_painting": 8192,
        "trellis_image_to_raw_mesh": 11776,
        "trellis_image_to_textured_mesh": 11776,
        "trellis_image_mesh_painting": 12288,
    }
    for cls in ALL:
        assert model_class(cls.spec.model_id) is cls
        assert cls.spec.vram_mb == vram[cls.spec.model_id]
        assert "headroom" in cls.spec.details["vram_note"]
        assert cls.spec.output_formats == ("glb", "obj", "ply", "fbx")


def test_availability_reasons(tmp_path: Path, weights: Path) -> None:
    reason = tr.TrellisImageToRawMesh(weights_root=str(weights)).availability()
    assert reason is not None and "'trellis'" in reason


def test_availability_with_package(
    recorder: standin.Recorder, weights: Path, tmp_path: Path
) -> None:
    for cls in ALL:
        assert cls(weights_root=str(weights)).availability() is None
    missing = cls(weights_root=str(tmp_path / "nowhere")).availability()
    assert missing is not None and "does not exist" in missing
    # The text pipeline needs the decoders of image-large too.
    text = tr.TrellisTextToRawMesh(
        weights_root=str(weights), image_weights_dir=str(tmp_path / "no-image")
    )
    reason = text.availability()
    assert reason is not None and "decoders" in reason


# -- one pipeline set per process -----------------------------------------------------------


def test_family_shares_pipelines(recorder: standin.Recorder, weights: Path) -> None:
    models = [cls(weights_root=str(weights)) for cls in ALL]
    for model in models:
        model.load()
        model.load()  # idempotent
    assert len(recorder.named("image.from_pretrained")) == 1
    assert len(recorder.named("text.from_pretrained")) == 1
    assert sorted(tr.PIPELINES.holders().values()) == [3, 3]
    assert recorder.named("image.to") == [{"device": "cuda"}]
    pipeline = models[3]._pipeline
    assert "slat_decoder_rf" not in pipeline.models  # never decoded: not kept on the GPU
    assert models[5]._pipeline is pipeline
    for model in models[:-1]:
        model.unload()
    assert list(tr.PIPELINES.holders().values()) == [1]
    models[-1].unload()
    models[-1].unload()
    assert tr.PIPELINES.holders() == {}


def test_text_pipeline_loads_decoders_from_local_image_weights(
    recorder: standin.Recorder, weights: Path, tmp_path: Path
) -> None:
    clip = tmp_path / "clip-vit-large-patch14"
    _loaded(tr.TrellisTextToRawMesh, weights, clip_dir=str(clip))
    (call,) = recorder.named("text.from_pretrained")
    models = call["args"]["models"]
    image_dir = weights / "TRELLIS-image-large"
    assert models["slat_decoder_gs"] == str(image_dir / "ckpts/slat_dec_gs_swin8_B_64l8gs32_fp16")
    assert models["slat_flow_model"] == "ckpts/slat_flow_txt_dit_XL_64l8p2_fp16"
    assert call["args"]["text_cond_model"] == str(clip)
    assert not Path(call["path"]).exists()  # the rewritten pipeline.json is temporary
    original = json.loads((weights / "TRELLIS-text-xlarge/pipeline.json").read_text())
    assert original["args"]["models"]["slat_decoder_gs"].startswith("microsoft/")


def test_weights_dir_options(recorder: standin.Recorder, tmp_path: Path) -> None:
    root = tmp_path / "elsewhere"
    standin.write_weights(root)
    model = tr.TrellisImageToRawMesh(weights_dir=str(root / "TRELLIS-image-large"))
    assert model.availability() is None
    text = tr.TrellisTextToRawMesh(
        weights_root="nowhere",
        text_weights_dir=str(root / "TRELLIS-text-xlarge"),
        image_weights_dir=str(root / "TRELLIS-image-large"),
    )
    assert text.availability() is None


# -- text to mesh ---------------------------------------------------------------------------


def test_text_to_raw_mesh(recorder: standin.Recorder, weights: Path, tmp_path: Path) -> None:
    model = _loaded(tr.TrellisTextToRawMesh, weights, slat_sampler_params={"steps": 4})
    stages: list[str] = []
    ctx = JobContext("job", 1, tmp_path, on_progress=lambda s, f: stages.append(s))
    out = model.run(ctx, {}, {"text_prompt": "a chair", "seed": 7, "output_format": "glb"})
    (call,) = recorder.named("text.run")
    assert call["prompt"] == "a chair" and call["seed"] == 7 and call["formats"] == ["mesh"]
    assert call["num_samples"] == 1
    assert call["sparse_structure_sampler_params"]["steps"] == 25  # pipeline.json default
    assert call["slat_sampler_params"] == {
        "steps": 4,
        "cfg_strength": 3.0,
        "cfg_interval": [0.5, 1.0],
    }
    (post,) = recorder.named("postprocess_mesh")
    assert post["simplify_ratio"] == 0.95 and post["fill_holes"] is True
    assert post["fill_holes_max_hole_nbe"] == int(250 * np.sqrt(0.05))
    mesh = _glb_mesh(primary(out))
    # Z-up (0.8, 0.4, 0.2) box comes back Y-up: its z extent is now the y extent.
    assert np.allclose(mesh.extents, (0.8, 0.2, 0.4))
    assert sum("sparse structure (step" in s for s in stages) == 25
    assert sum("structured latent (step" in s for s in stages) == 4
    info = out.generation_info
    assert info["seed"] == 7 and info["upstream"] == tr.UPSTREAM
    assert info["slat_sampler"]["steps"] == 4 and info["sparse_structure_sampler"]["steps"] == 25
    assert info["unsupported_parameters"] == {}
    assert isinstance(out.preview, trimesh.Trimesh)


def test_text_to_textured_mesh_runs_upstream_run(
    recorder: standin.Recorder, weights: Path, tmp_path: Path
) -> None:
    model = _loaded(tr.TrellisTextToTexturedMesh, weights)
    out = run_model(model, tmp_path, {}, text_prompt="a red car", texture_resolution=512, seed=3)
    (call,) = recorder.named("text.run")
    assert call["formats"] == ["mesh", "gaussian"] and call["seed"] == 3
    (glb,) = recorder.named("to_glb")
    assert glb["texture_size"] == 512 and glb["simplify"] == 0.95 and glb["fill_holes"] is True
    mesh = _glb_mesh(primary(out))
    texture = mesh.visual.material.baseColorTexture
    assert texture.size == (512, 512)
    assert out.generation_info["texture_resolution"] == 512


def test_texture_prompt_conditions_stage_two(
    recorder: standin.Recorder, weights: Path, tmp_path: Path
) -> None:
    model = _loaded(tr.TrellisTextToTexturedMesh, weights)
    out = run_model(
        model,
        tmp_path,
        {},
        text_prompt="a red car",
        texture_prompt="shiny metallic paint",
        seed=5,
        output_format="obj",
    )
    assert recorder.named("text.run") == []
    conds = [c["cond"] for c in recorder.named("text.get_cond")]
    assert conds == [["a red car"], ["a red car. shiny metallic paint"]]
    (slat,) = recorder.named("text.sample_slat")
    assert slat["cond"]["cond"] == ["a red car. shiny metallic paint"]
    assert recorder.named("text.decode_slat") == [{"formats": ["mesh", "gaussian"]}]
    info = out.generation_info
    assert info["texture_prompt"] == "shiny metallic paint"
    names = [f.filename for f in out.files]
    assert names == ["textured_mesh.obj", "texture_basecolor.png"]


def test_seed_drawn_when_missing(recorder: standin.Recorder, weights: Path, tmp_path: Path) -> None:
    model = _loaded(tr.TrellisTextToRawMesh, weights)
    out = run_model(model, tmp_path, {}, text_prompt="a lamp")
    (call,) = recorder.named("text.run")
    assert isinstance(call["seed"], int) and out.generation_info["seed"] == call["seed"]


def test_unknown_fields_are_reported(
    recorder: standin.Recorder, weights: Path, tmp_path: Path
) -> None:
    model = _loaded(tr.TrellisTextToRawMesh, weights)
    out = run_model(model, tmp_path, {}, text_prompt="a lamp", num_parts=4)
    assert set(out.generation_info["unsupported_parameters"]) == {"num_parts"}


# -- image to mesh --------------------------------------------------------------------------


def test_image_to_raw_mesh(
    recorder: standin.Recorder, weights: Path, tmp_path: Path, image: Path
) -> None:
    model = _loaded(tr.TrellisImageToRawMesh, weights)
    out = run_model(model, tmp_path, {"image": image}, seed=11, output_format="ply")
    (call,) = recorder.named("image.run")
    assert call["seed"] == 11 and call["formats"] == ["mesh"] and call["preprocess_image"]
    assert call["image"].mode == "RGBA"  # transparency kept: upstream skips rembg then
    mesh: Any = trimesh.load(io.BytesIO(primary(out)), file_type="ply")
    assert len(mesh.faces) == 12


def test_image_to_textured_mesh_with_texture_image(
    recorder: standin.Recorder,
    weights: Path,
    tmp_path: Path,
    image: Path,
    texture_image: Path,
) -> None:
    model = _loaded(tr.TrellisImageToTexturedMesh, weights)
    inputs = {"image": image, "texture_image": texture_image}
    out = run_model(model, tmp_path, inputs, seed=2, texture_resolution=256)
    assert recorder.named("image.run") == []
    shots = recorder.named("image.preprocess_image")
    assert [s["mode"] for s in shots] == ["RGBA", "RGB"]  # shape image, then texture image
    (slat,) = recorder.named("image.sample_slat")
    assert slat["sampler_params"]["steps"] == 25
    (glb,) = recorder.named("to_glb")
    assert glb["texture_size"] == 256
    assert out.generation_info["texture_source"] == "texture image"


def test_image_to_textured_mesh_without_texture_image(
    recorder: standin.Recorder, weights: Path, tmp_path: Path, image: Path
) -> None:
    model = _loaded(tr.TrellisImageToTexturedMesh, weights)
    out = run_model(model, tmp_path, {"image": image})
    (call,) = recorder.named("image.run")
    assert call["formats"] == ["mesh", "gaussian"]
    assert out.generation_info["texture_source"] == "input image"


def test_unreadable_image(recorder: standin.Recorder, weights: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    model = _loaded(tr.TrellisImageToRawMesh, weights)
    with pytest.raises(ModelInputError, match="Cannot read the input image"):
        run_model(model, tmp_path, {"image": bad})


# -- painting -------------------------------------------------------------------------------


def test_image_painting_runs_stage_two_on_the_mesh_voxels(
    recorder: standin.Recorder,
    weights: Path,
    tmp_path: Path,
    image: Path,
    offset_mesh: tuple[Path, trimesh.Trimesh],
) -> None:
    path, source = offset_mesh
    model = _loaded(tr.TrellisImageMeshPainting, weights, device="cpu")
    out = run_model(model, tmp_path, {"image": image, "mesh": path}, seed=9, texture_resolution=512)
    (vox,) = recorder.named("o3d.voxelize")
    assert vox["voxel_size"] == 1 / 64 and vox["min_bound"] == (-0.5, -0.5, -0.5)
    # The mesh reaches upstream in TRELLIS's frame: unit cube, Z-up (y extent -> z).
    cube = vox["vertices"]
    assert np.allclose(cube.max(0) - cube.min(0), (1.0, 0.25, 0.5), atol=1e-5)
    (slat,) = recorder.named("image.sample_slat")
    coords = slat["coords"]
    assert coords.dtype.is_floating_point is False and coords.shape[1] == 4
    assert int(coords[:, 0].abs().sum()) == 0  # batch index 0
    assert recorder.named("image.decode_slat") == [{"formats": ["gaussian"]}]
    (glb,) = recorder.named("to_glb")
    assert glb["simplify"] == 0.0 and glb["fill_holes"] is False and glb["texture_size"] == 512
    assert np.allclose(glb["vertices"], cube, atol=1e-6)
    painted = _glb_mesh(primary(out))
    assert np.allclose(painted.bounds, source.bounds, atol=1e-4)  # back in the input frame
    assert len(painted.faces) == len(source.faces)
    assert out.generation_info["seed"] == 9
    assert out.generation_info["input_frame"]["scale"] == pytest.approx(4.0)


def test_text_painting_uses_run_variant(
    recorder: standin.Recorder,
    weights: Path,
    tmp_path: Path,
    offset_mesh: tuple[Path, trimesh.Trimesh],
) -> None:
    path, source = offset_mesh
    model = _loaded(
        tr.TrellisTextMeshPainting, weights, device="cpu", slat_sampler_params={"cfg_strength": 7.5}
    )
    out = run_model(
        model, tmp_path, {"mesh": path}, text_prompt="rusty metal", seed=4, texture_resolution=1024
    )
    (call,) = recorder.named("text.run_variant")
    assert call["prompt"] == "rusty metal" and call["seed"] == 4
    assert call["formats"] == ["gaussian"]
    assert call["slat_sampler_params"]["cfg_strength"] == 7.5
    extents = call["vertices"].max(0) - call["vertices"].min(0)
    assert np.allclose(extents, (1.0, 0.25, 0.5), atol=1e-5)
    painted = _glb_mesh(primary(out))
    assert np.allclose(painted.bounds, source.bounds, atol=1e-4)
    assert out.generation_info["text_prompt"] == "rusty metal"
    assert out.generation_info["upstream_model"] == tr.TEXT_WEIGHTS


def test_painting_bad_mesh(recorder: standin.Recorder, weights: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.obj"
    bad.write_text("this is not a mesh\n")
    model = _loaded(tr.TrellisTextMeshPainting, weights)
    with pytest.raises(ModelInputError):
        run_model(model, tmp_path, {"mesh": bad}, text_prompt="x")


# -- failures -------------------------------------------------------------------------------


def test_out_of_memory(
    recorder: standin.Recorder, weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    freed: list[bool] = []
    monkeypatch.setattr(UpstreamModel, "free_cuda", staticmethod(lambda: freed.append(True)))
    recorder.fail["ss.sample"] = standin.OutOfMemoryError("CUDA out of memory")
    model = _loaded(tr.TrellisTextToRawMesh, weights)
    with pytest.raises(ModelOutOfMemory):
        run_model(model, tmp_path, {}, text_prompt="a chair")
    assert freed
    del recorder.fail["ss.sample"]
    run_model(model, tmp_path, {}, text_prompt="a chair")  # the replica keeps serving


def test_upstream_error_is_an_input_error(
    recorder: standin.Recorder, weights: Path, tmp_path: Path
) -> None:
    recorder.fail["to_glb"] = ValueError("xatlas failed")
    model = _loaded(tr.TrellisTextToTexturedMesh, weights)
    with pytest.raises(ModelInputError, match="trellis_text_to_textured_mesh failed during"):
        run_model(model, tmp_path, {}, text_prompt="a chair")


def test_cancellation_stops_sampling_and_unhooks(
    recorder: standin.Recorder, weights: Path, tmp_path: Path
) -> None:
    model = _loaded(tr.TrellisTextToRawMesh, weights)
    ctx = JobContext("job", 1, tmp_path)

    def cancel(stage: str, fraction: float) -> None:
        if "step 3/" in stage:
            ctx.cancelled.set()

    ctx._on_progress = cancel
    with pytest.raises(JobCancelled):
        model.run(ctx, {}, {"text_prompt": "a chair", "seed": 1, "output_format": "glb"})
    sampler = model._pipeline.sparse_structure_sampler
    assert "sample_once" not in vars(sampler)
    assert recorder.named("postprocess_mesh") == []


def test_load_failure_leaves_nothing_cached(recorder: standin.Recorder, weights: Path) -> None:
    recorder.fail["image.from_pretrained"] = OSError("no such file: ckpts/x.safetensors")
    model = tr.TrellisImageToRawMesh(weights_root=str(weights))
    with pytest.raises(ModelInputError, match="loading the pipeline"):
        model.load()
    assert tr.PIPELINES.holders() == {}
