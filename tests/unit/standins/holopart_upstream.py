"""Stand-ins for VAST-AI-Research/HoloPart: `holopart.pipelines.pipeline_holopart` and the
helpers of `scripts/inference_holopart.py` (`prepare_data`, `run_holopart`,
`flash_extract_geometry`), with upstream's names and signatures at 48dd632.

`prepare_data` reads the GLB as upstream does (one geometry per part, local part frames
scaled to 0.7 * 0.95); `run_holopart` calls the pipeline per batch (one scheduler step per
denoising step), decodes each part through the module's `flash_extract_geometry` (the
convex hull of the part's local samples, a watertight "completion") and moves it back with
the part's centre and scale, as upstream does. Calls are recorded for the tests.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from typing import Any

import numpy as np
import pytest
import torch
import trimesh

NUM_SURFACE_SAMPLES = 2048  # upstream: 20480; fewer keeps the tests fast
PART_NORMALIZE_SCALE = 0.7


class OutOfMemoryError(RuntimeError):
    """Named like torch.cuda.OutOfMemoryError."""


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, BaseException] = {}

    def record(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))
        if name in self.fail:
            raise self.fail[name]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [kw for n, kw in self.calls if n == name]


def _recorder() -> Recorder:
    return sys.modules["holopart"].RECORDER  # type: ignore[attr-defined, no-any-return]


class _Scheduler:
    def step(self, model_output: Any, timestep: Any, sample: Any, **kwargs: Any) -> Any:
        return (sample,)


class _Vae:
    def set_flash_decoder(self) -> None:
        _recorder().record("vae.set_flash_decoder")


class HoloPartPipeline:
    def __init__(self) -> None:
        self.scheduler = _Scheduler()
        self.vae = _Vae()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, **kwargs: Any) -> Any:
        _recorder().record("from_pretrained", path=pretrained_model_name_or_path, **kwargs)
        return cls()

    def to(self, *args: Any, **kwargs: Any) -> Any:
        _recorder().record("to", args=args, kwargs=kwargs)
        return self

    def __call__(
        self,
        part_surface: Any,
        whole_surface: Any,
        num_inference_steps: int = 50,
        num_tokens: int = 2048,
        guidance_scale: float = 3.5,
        part_local_surface: Any = None,
        generator: Any = None,
        output_type: str = "geometry",
        **kwargs: Any,
    ) -> Any:
        _recorder().record(
            "pipe",
            parts=int(part_surface.shape[0]),
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            generator_seed=generator.initial_seed() if generator is not None else None,
            output_type=output_type,
        )
        latents = part_local_surface.clone()
        for t in range(num_inference_steps):
            latents = self.scheduler.step(None, t, latents)[0]
        return types.SimpleNamespace(samples=latents)


# -- scripts/inference_holopart.py ----------------------------------------------------------


def prepare_data(data_path: str, device: str = "cuda") -> dict[str, Any]:
    scene: Any = trimesh.load(data_path)
    _recorder().record("prepare_data", data_path=data_path, device=device, scene=scene)
    if not data_path.endswith(".glb"):
        raise ValueError("Unsupported file format. Please provide a .glb file.")
    names, conds, local_conds, centers, scales = [], [], [], [], []
    for name, part in scene.geometry.items():
        points, face_idx = part.sample(NUM_SURFACE_SAMPLES, return_index=True)
        cond = torch.cat(
            [torch.FloatTensor(points), torch.FloatTensor(part.face_normals[face_idx])], dim=-1
        )
        local = cond.clone()
        center = (local[:, :3].max(dim=0)[0] + local[:, :3].min(dim=0)[0]) / 2
        local[:, :3] = local[:, :3] - center
        scale = (local[:, :3].abs().max() / (0.95 * PART_NORMALIZE_SCALE)).item()
        local[:, :3] = local[:, :3] / scale
        names.append(name)
        conds.append(cond)
        local_conds.append(local)
        centers.append(center)
        scales.append(scale)
    whole = scene.dump(concatenate=True)
    points, face_idx = whole.sample(NUM_SURFACE_SAMPLES, return_index=True)
    whole_cond = torch.cat(
        [
            torch.FloatTensor(points),
            torch.FloatTensor(whole.face_normals[face_idx]),
            torch.zeros((len(points), 1)),
        ],
        dim=-1,
    )
    return {
        "whole_cond": torch.stack([whole_cond] * len(conds), dim=0),
        "part_cond": torch.stack(conds, dim=0),
        "part_local_cond": torch.stack(local_conds, dim=0),
        "part_id_list": names,
        "part_center_list": centers,
        "part_scale_list": scales,
    }


def flash_extract_geometry(
    latents: Any, vae: Any, bounds: Any = (-1.05,) * 3 + (1.05,) * 3, octree_depth: int = 9,
    num_chunks: int = 10000,
) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    _recorder().record("flash_extract_geometry", octree_depth=octree_depth, num_chunks=num_chunks)
    hull = trimesh.convex.convex_hull(latents[0, :, :3].cpu().numpy())
    return [(np.asarray(hull.vertices, dtype=np.float32), np.asarray(hull.faces))]


@torch.no_grad()
def run_holopart(
    pipe: Any,
    batch: dict[str, Any],
    batch_size: int,
    seed: int,
    num_inference_steps: int = 50,
    guidance_scale: float = 3.5,
    dense_octree_depth: int = 8,
    hierarchical_octree_depth: int = 9,
    flash_octree_depth: int = 9,
    final_octree_depth: int = -1,
    num_chunks: int = 10000,
    use_flash_decoder: bool = True,
    bounds: Any = (-1.05, -1.05, -1.05, 1.05, 1.05, 1.05),
    post_smooth: bool = True,
    device: str = "cuda",
) -> trimesh.Scene:
    _recorder().record(
        "run_holopart",
        batch_size=batch_size,
        seed=seed,
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        flash_octree_depth=flash_octree_depth,
        num_chunks=num_chunks,
        use_flash_decoder=use_flash_decoder,
        device=device,
    )
    module = sys.modules["scripts.inference_holopart"]  # upstream: a module-global lookup
    part_surface = batch["part_cond"]
    random_colors = np.random.rand(len(part_surface), 3)
    latents = []
    for i in range(0, len(part_surface), batch_size):
        latents.append(
            pipe(
                part_surface=part_surface[i : i + batch_size],
                whole_surface=batch["whole_cond"][i : i + batch_size],
                part_local_surface=batch["part_local_cond"][i : i + batch_size],
                num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale,
                generator=torch.Generator(device=device).manual_seed(seed),
                output_type="latent",
            ).samples
        )
    if use_flash_decoder:
        pipe.vae.set_flash_decoder()
    meshes = []
    for i, latent in enumerate(torch.cat(latents, dim=0)):
        output = module.flash_extract_geometry(
            latent.unsqueeze(0), pipe.vae, bounds=bounds, octree_depth=flash_octree_depth,
            num_chunks=num_chunks,
        )  # fmt: skip
        part: Any = trimesh.util.concatenate([trimesh.Trimesh(v, f) for v, f in output])
        part.visual.vertex_colors = random_colors[i]
        part.name = batch["part_id_list"][i]
        part.apply_scale(batch["part_scale_list"][i])
        part.apply_translation(np.asarray(batch["part_center_list"][i]))
        meshes.append(part)
    return trimesh.Scene(meshes)


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def install(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Put the stand-ins (and empty torch_cluster/pymeshlab) in sys.modules."""
    recorder = Recorder()
    pipeline_module = _module(
        "holopart.pipelines.pipeline_holopart", HoloPartPipeline=HoloPartPipeline
    )
    pipelines = _module("holopart.pipelines", pipeline_holopart=pipeline_module)
    holopart = _module("holopart", RECORDER=recorder, pipelines=pipelines)
    script = _module(
        "scripts.inference_holopart",
        prepare_data=prepare_data,
        run_holopart=run_holopart,
        flash_extract_geometry=flash_extract_geometry,
        NUM_SURFACE_SAMPLES=NUM_SURFACE_SAMPLES,
    )
    scripts = _module("scripts", inference_holopart=script)
    for module in (
        holopart,
        pipelines,
        pipeline_module,
        scripts,
        script,
        _module("torch_cluster"),
        _module("pymeshlab"),
    ):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return recorder
