"""Stand-ins for microsoft/TRELLIS (`trellis.pipelines`, `trellis.utils.postprocessing_utils`,
`trellis.representations`) and the bits of `open3d` it uses.

Names and signatures mirror upstream at 6b0d647. They do tiny real work (a decoded box in
TRELLIS's [-0.5, 0.5] Z-up cube, a textured trimesh from `to_glb`) and record every call
in `Recorder.calls` as (name, kwargs) so tests can assert what the adapter asked for.
"""

# ruff: noqa: B006  (signatures mirror upstream, mutable defaults included)

from __future__ import annotations

import importlib.machinery
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
BOX_EXTENTS = (0.8, 0.4, 0.2)  # x, y, z in TRELLIS's Z-up frame


class OutOfMemoryError(RuntimeError):
    """Named like torch.cuda.OutOfMemoryError."""


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, BaseException] = {}
        """Method name -> exception to raise there (OOM, upstream errors)."""

    def record(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))
        if name in self.fail:
            raise self.fail[name]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [kw for n, kw in self.calls if n == name]


class _Sampler:
    def __init__(self, recorder: Recorder, name: str, sigma_min: float = 1e-5) -> None:
        self.recorder = recorder
        self.name = name
        self.sigma_min = sigma_min

    def sample_once(
        self, model: Any, x_t: Any, t: float, t_prev: float, cond: Any = None, **kwargs: Any
    ) -> Any:
        return types.SimpleNamespace(pred_x_prev=x_t, pred_x_0=x_t)

    def sample(
        self,
        model: Any,
        noise: Any,
        cond: Any = None,
        neg_cond: Any = None,
        steps: int = 50,
        rescale_t: float = 1.0,
        cfg_strength: float = 3.0,
        verbose: bool = True,
        **kwargs: Any,
    ) -> Any:
        self.recorder.record(
            f"{self.name}.sample", steps=steps, cfg_strength=cfg_strength, cond=cond, **kwargs
        )
        sample = noise
        for i in range(steps):
            sample = self.sample_once(model, sample, 1 - i / steps, 1 - (i + 1) / steps, cond)
            sample = sample.pred_x_prev
        return types.SimpleNamespace(samples=sample)


class MeshExtractResult:
    def __init__(self, vertices: Any, faces: Any, vertex_attrs: Any = None, res: int = 64) -> None:
        self.vertices = vertices
        self.faces = faces.long()
        self.vertex_attrs = vertex_attrs
        self.res = res
        self.success = vertices.shape[0] != 0 and faces.shape[0] != 0


class Gaussian:
    def __init__(self, color: tuple[int, int, int]) -> None:
        self.color = color


def _decoded_box() -> MeshExtractResult:
    box = trimesh.creation.box(extents=BOX_EXTENTS)
    return MeshExtractResult(
        torch.tensor(box.vertices, dtype=torch.float32), torch.tensor(box.faces)
    )


class _Pipeline:
    kind = "image"

    def __init__(self, recorder: Recorder, path: str, args: dict[str, Any]) -> None:
        self.recorder = recorder
        self.path = path
        self._pretrained_args = args
        self.models: dict[str, Any] = {k: object() for k in args["models"]}
        self.sparse_structure_sampler = _Sampler(recorder, "ss")
        self.slat_sampler = _Sampler(recorder, "slat")
        self.sparse_structure_sampler_params = dict(args["sparse_structure_sampler"]["params"])
        self.slat_sampler_params = dict(args["slat_sampler"]["params"])

    @classmethod
    def from_pretrained(cls, path: str) -> Any:
        recorder: Recorder = sys.modules["trellis"].RECORDER  # type: ignore[attr-defined]
        config = json.loads((Path(path) / "pipeline.json").read_text())
        args = config["args"]
        recorder.record(f"{cls.kind}.from_pretrained", path=path, args=args)
        return cls(recorder, path, args)

    def to(self, device: Any) -> None:
        self.recorder.record(f"{self.kind}.to", device=str(device))

    def cuda(self) -> None:
        self.to("cuda")

    def get_cond(self, cond: list[Any]) -> dict[str, Any]:
        self.recorder.record(f"{self.kind}.get_cond", cond=cond)
        return {"cond": cond, "neg_cond": None}

    def sample_sparse_structure(
        self, cond: dict[str, Any], num_samples: int = 1, sampler_params: dict[str, Any] = {}
    ) -> Any:
        self.recorder.record(
            f"{self.kind}.sample_sparse_structure",
            num_samples=num_samples,
            sampler_params=sampler_params,
        )
        params = {**self.sparse_structure_sampler_params, **sampler_params}
        self.sparse_structure_sampler.sample(None, torch.zeros(1), **cond, **params)
        return torch.zeros((8, 4), dtype=torch.int32)

    def sample_slat(
        self, cond: dict[str, Any], coords: Any, sampler_params: dict[str, Any] = {}
    ) -> Any:
        self.recorder.record(
            f"{self.kind}.sample_slat", cond=cond, coords=coords, sampler_params=sampler_params
        )
        params = {**self.slat_sampler_params, **sampler_params}
        return self.slat_sampler.sample(None, torch.zeros(1), **cond, **params).samples

    def decode_slat(self, slat: Any, formats: list[str] = ["mesh", "gaussian"]) -> dict[str, Any]:
        self.recorder.record(f"{self.kind}.decode_slat", formats=list(formats))
        out: dict[str, Any] = {}
        if "mesh" in formats:
            out["mesh"] = [_decoded_box()]
        if "gaussian" in formats:
            out["gaussian"] = [Gaussian((200, 40, 40))]
        return out


class TrellisImageTo3DPipeline(_Pipeline):
    kind = "image"

    def preprocess_image(self, input: Image.Image) -> Image.Image:
        self.recorder.record("image.preprocess_image", mode=input.mode, size=input.size)
        return input.convert("RGB").resize((518, 518))

    def run(
        self,
        image: Image.Image,
        num_samples: int = 1,
        seed: int = 42,
        sparse_structure_sampler_params: dict[str, Any] = {},
        slat_sampler_params: dict[str, Any] = {},
        formats: list[str] = ["mesh", "gaussian", "radiance_field"],
        preprocess_image: bool = True,
    ) -> dict[str, Any]:
        self.recorder.record(
            "image.run",
            image=image,
            num_samples=num_samples,
            seed=seed,
            sparse_structure_sampler_params=sparse_structure_sampler_params,
            slat_sampler_params=slat_sampler_params,
            formats=list(formats),
            preprocess_image=preprocess_image,
        )
        if preprocess_image:
            image = self.preprocess_image(image)
        cond = self.get_cond([image])
        torch.manual_seed(seed)
        coords = self.sample_sparse_structure(cond, num_samples, sparse_structure_sampler_params)
        slat = self.sample_slat(cond, coords, slat_sampler_params)
        return self.decode_slat(slat, formats)


class TrellisTextTo3DPipeline(_Pipeline):
    kind = "text"

    def run(
        self,
        prompt: str,
        num_samples: int = 1,
        seed: int = 42,
        sparse_structure_sampler_params: dict[str, Any] = {},
        slat_sampler_params: dict[str, Any] = {},
        formats: list[str] = ["mesh", "gaussian", "radiance_field"],
    ) -> dict[str, Any]:
        self.recorder.record(
            "text.run",
            prompt=prompt,
            num_samples=num_samples,
            seed=seed,
            sparse_structure_sampler_params=sparse_structure_sampler_params,
            slat_sampler_params=slat_sampler_params,
            formats=list(formats),
        )
        cond = self.get_cond([prompt])
        torch.manual_seed(seed)
        coords = self.sample_sparse_structure(cond, num_samples, sparse_structure_sampler_params)
        slat = self.sample_slat(cond, coords, slat_sampler_params)
        return self.decode_slat(slat, formats)

    def run_variant(
        self,
        mesh: Any,
        prompt: str,
        num_samples: int = 1,
        seed: int = 42,
        slat_sampler_params: dict[str, Any] = {},
        formats: list[str] = ["mesh", "gaussian", "radiance_field"],
    ) -> dict[str, Any]:
        self.recorder.record(
            "text.run_variant",
            vertices=np.asarray(mesh.vertices).copy(),
            triangles=np.asarray(mesh.triangles).copy(),
            prompt=prompt,
            num_samples=num_samples,
            seed=seed,
            slat_sampler_params=slat_sampler_params,
            formats=list(formats),
        )
        cond = self.get_cond([prompt])
        slat = self.sample_slat(cond, torch.zeros((8, 4)), slat_sampler_params)
        return self.decode_slat(slat, formats)


# -- trellis.utils.postprocessing_utils ---------------------------------------------------


def _postprocess_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    simplify: bool = True,
    simplify_ratio: float = 0.9,
    fill_holes: bool = True,
    fill_holes_max_hole_size: float = 0.04,
    fill_holes_max_hole_nbe: int = 32,
    fill_holes_resolution: int = 1024,
    fill_holes_num_views: int = 1000,
    debug: bool = False,
    verbose: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    sys.modules["trellis"].RECORDER.record(  # type: ignore[attr-defined]
        "postprocess_mesh",
        simplify=simplify,
        simplify_ratio=simplify_ratio,
        fill_holes=fill_holes,
        fill_holes_max_hole_size=fill_holes_max_hole_size,
        fill_holes_max_hole_nbe=fill_holes_max_hole_nbe,
    )
    return vertices, faces


def _to_glb(
    app_rep: Any,
    mesh: Any,
    simplify: float = 0.95,
    fill_holes: bool = True,
    fill_holes_max_size: float = 0.04,
    texture_size: int = 1024,
    debug: bool = False,
    verbose: bool = True,
) -> trimesh.Trimesh:
    vertices = mesh.vertices.cpu().numpy()
    faces = mesh.faces.cpu().numpy()
    sys.modules["trellis"].RECORDER.record(  # type: ignore[attr-defined]
        "to_glb",
        app_rep=app_rep,
        vertices=vertices.copy(),
        faces=faces.copy(),
        simplify=simplify,
        fill_holes=fill_holes,
        texture_size=texture_size,
    )
    uv = (vertices[:, :2] - vertices[:, :2].min(0)) / np.ptp(vertices[:, :2], axis=0).clip(1e-9)
    texture = Image.new("RGB", (texture_size, texture_size), app_rep.color)
    material = trimesh.visual.material.PBRMaterial(
        roughnessFactor=1.0,
        baseColorTexture=texture,
        baseColorFactor=np.array([255, 255, 255, 255], dtype=np.uint8),
    )
    return trimesh.Trimesh(
        vertices @ Y_UP,
        faces,
        visual=trimesh.visual.TextureVisuals(uv=uv, material=material),
        process=False,
    )


# -- open3d -------------------------------------------------------------------------------


class _TriangleMesh:
    def __init__(self, vertices: Any = None, triangles: Any = None) -> None:
        self.vertices = np.zeros((0, 3)) if vertices is None else np.asarray(vertices)
        self.triangles = np.zeros((0, 3), int) if triangles is None else np.asarray(triangles)


class _VoxelGrid:
    def __init__(self, indices: np.ndarray) -> None:
        self._voxels = [types.SimpleNamespace(grid_index=i) for i in indices]

    def get_voxels(self) -> list[Any]:
        return self._voxels

    @staticmethod
    def create_from_triangle_mesh_within_bounds(
        input: _TriangleMesh, voxel_size: float, min_bound: Any, max_bound: Any
    ) -> _VoxelGrid:
        sys.modules["trellis"].RECORDER.record(  # type: ignore[attr-defined]
            "o3d.voxelize",
            vertices=np.asarray(input.vertices).copy(),
            voxel_size=voxel_size,
            min_bound=tuple(min_bound),
            max_bound=tuple(max_bound),
        )
        cells = np.floor((np.asarray(input.vertices) - np.asarray(min_bound)) / voxel_size)
        return _VoxelGrid(np.unique(cells.astype(np.int64), axis=0))


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def install(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Put the stand-ins in sys.modules (undone by monkeypatch); returns the recorder."""
    recorder = Recorder()
    pipelines = _module(
        "trellis.pipelines",
        TrellisImageTo3DPipeline=TrellisImageTo3DPipeline,
        TrellisTextTo3DPipeline=TrellisTextTo3DPipeline,
    )
    postprocessing = _module(
        "trellis.utils.postprocessing_utils", to_glb=_to_glb, postprocess_mesh=_postprocess_mesh
    )
    utils = _module("trellis.utils", postprocessing_utils=postprocessing)
    representations = _module(
        "trellis.representations", MeshExtractResult=MeshExtractResult, Gaussian=Gaussian
    )
    trellis = _module(
        "trellis",
        RECORDER=recorder,
        pipelines=pipelines,
        utils=utils,
        representations=representations,
    )
    geometry = _module("open3d.geometry", TriangleMesh=_TriangleMesh, VoxelGrid=_VoxelGrid)
    utility = _module(
        "open3d.utility",
        Vector3dVector=lambda a: np.asarray(a, dtype=np.float64),
        Vector3iVector=lambda a: np.asarray(a, dtype=np.int32),
    )
    open3d = _module("open3d", geometry=geometry, utility=utility)
    for module in (
        trellis,
        pipelines,
        utils,
        postprocessing,
        representations,
        open3d,
        geometry,
        utility,
    ):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return recorder


def write_weights(root: Path) -> None:
    """TRELLIS-image-large and TRELLIS-text-xlarge folders laid out as on the Hub."""
    image = root / "TRELLIS-image-large"
    (image / "ckpts").mkdir(parents=True)
    decoders = {
        "sparse_structure_decoder": "ckpts/ss_dec_conv3d_16l8_fp16",
        "slat_decoder_gs": "ckpts/slat_dec_gs_swin8_B_64l8gs32_fp16",
        "slat_decoder_rf": "ckpts/slat_dec_rf_swin8_B_64l8r16_fp16",
        "slat_decoder_mesh": "ckpts/slat_dec_mesh_swin8_B_64l8m256c_fp16",
    }
    image_models = {
        **decoders,
        "sparse_structure_flow_model": "ckpts/ss_flow_img_dit_L_16l8_fp16",
        "slat_flow_model": "ckpts/slat_flow_img_dit_L_64l8p2_fp16",
    }
    for ref in image_models.values():
        (image / f"{ref}.json").write_text("{}")
        (image / f"{ref}.safetensors").write_bytes(b"")
    samplers = {
        "sparse_structure_sampler": {
            "name": "FlowEulerGuidanceIntervalSampler",
            "args": {"sigma_min": 1e-5},
            "params": {"steps": 25, "cfg_strength": 7.5, "cfg_interval": [0.5, 1.0]},
        },
        "slat_sampler": {
            "name": "FlowEulerGuidanceIntervalSampler",
            "args": {"sigma_min": 1e-5},
            "params": {"steps": 25, "cfg_strength": 3.0, "cfg_interval": [0.5, 1.0]},
        },
    }
    (image / "pipeline.json").write_text(
        json.dumps(
            {
                "name": "TrellisImageTo3DPipeline",
                "args": {
                    "models": image_models,
                    **samplers,
                    "slat_normalization": {},
                    "image_cond_model": "dinov2_vitl14_reg",
                },
            }
        )
    )
    text = root / "TRELLIS-text-xlarge"
    (text / "ckpts").mkdir(parents=True)
    text_models = {
        **{k: f"microsoft/TRELLIS-image-large/{v}" for k, v in decoders.items()},
        "sparse_structure_flow_model": "ckpts/ss_flow_txt_dit_XL_16l8_fp16",
        "slat_flow_model": "ckpts/slat_flow_txt_dit_XL_64l8p2_fp16",
    }
    for key in ("sparse_structure_flow_model", "slat_flow_model"):
        (text / f"{text_models[key]}.json").write_text("{}")
        (text / f"{text_models[key]}.safetensors").write_bytes(b"")
    (text / "pipeline.json").write_text(
        json.dumps(
            {
                "name": "TrellisTextTo3DPipeline",
                "args": {
                    "models": text_models,
                    **samplers,
                    "slat_normalization": {},
                    "text_cond_model": "openai/clip-vit-large-patch14",
                },
            }
        )
    )
