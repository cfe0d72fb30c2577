"""TRELLIS (microsoft/TRELLIS): text or image to 3D, and text or image painting of a mesh.

The six models of the family are served by one deployment and share the pipelines loaded
in their process: `TrellisImageTo3DPipeline` (TRELLIS-image-large) and
`TrellisTextTo3DPipeline` (TRELLIS-text-xlarge, whose decoders are those of image-large),
each loaded once by whichever model needs it first and freed when the last one unloads.

Mapping of the request onto upstream:
* text/image generation: `pipeline.run(prompt|image, seed, sampler params, formats)`; with a
  `texture_prompt` or a texture image the two stages run separately: the sparse structure
  from the prompt/image, the structured latent (appearance and fine detail) from the
  texture condition.
* text painting: `TrellisTextTo3DPipeline.run_variant` on the uploaded mesh; image painting:
  stage 2 of the image pipeline on the mesh's voxels. Both bake the decoded Gaussians onto
  the uploaded geometry with `postprocessing_utils.to_glb(simplify=0, fill_holes=False)` and
  return it in the input's frame.
* `texture_resolution` -> `to_glb(texture_size=...)`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from deployments.base import JobContext, ModelInputError, ModelOutput, ModelSpec
from deployments.upstream import Frame, SharedCache, UpstreamModel, offline_env, unsupported

UPSTREAM = "microsoft/TRELLIS@6b0d647"
IMAGE_WEIGHTS = "TRELLIS-image-large"
TEXT_WEIGHTS = "TRELLIS-text-xlarge"
MESH_FORMATS = ("glb", "obj", "ply", "fbx")
DEFAULT_RESOLUTION = 1024
DEFAULT_SIMPLIFY = 0.95  # to_glb's default: fraction of the decoded triangles removed
Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""to_glb's rotation: v_yup = v_zup @ Y_UP (TRELLIS works Z-up, glTF is Y-up)."""
UNUSED_DECODERS = ("slat_decoder_rf",)  # radiance fields are never decoded here
VOXEL_RESOLUTION = 64
VRAM_NOTE = (
    "declared from 3DAIGC-API's torch.cuda.max_memory_allocated() on an RTX 4090, which "
    "leaves out the CUDA context and non-PyTorch allocations: allow 1-2 GB of headroom "
    "until benchmarks/vram_probe.py has measured it"
)
_NOT_USED = "not a parameter of TRELLIS; ignored"


# -- pipelines shared by the family in one process ---------------------------------------


PIPELINES = SharedCache()
"""The TRELLIS pipelines loaded in this process, keyed by kind and weights folders."""
_RUN_LOCK = threading.RLock()  # the shared pipelines run one job at a time


# -- helpers ------------------------------------------------------------------------------


@contextmanager
def _sampler_progress(
    ctx: JobContext, sampler: Any, stage: str, span: tuple[float, float], steps: int
) -> Iterator[None]:
    """Report each Euler step of an upstream flow sampler (its `sample_once` calls)."""
    original = sampler.sample_once
    had_own = "sample_once" in vars(sampler)
    done = 0

    def sample_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal done
        out = original(*args, **kwargs)
        done += 1
        total = max(steps, done, 1)
        ctx.progress(f"{stage} (step {done}/{total})", span[0] + (span[1] - span[0]) * done / total)
        return out

    sampler.sample_once = sample_once
    try:
        yield
    finally:
        if had_own:
            sampler.sample_once = original
        else:
            del sampler.sample_once


def _read_image(path: Path, what: str) -> Any:
    """A PIL image as TRELLIS wants it: RGBA when it carries transparency, else RGB."""
    from PIL import Image

    try:
        with Image.open(path) as src:
            src.load()
            transparent = "A" in src.getbands() or "transparency" in src.info
            return src.convert("RGBA" if transparent else "RGB")
    except Exception as exc:
        raise ModelInputError(f"Cannot read the {what}: {exc}") from exc


def _texture_of(mesh: Any) -> np.ndarray | None:
    image = getattr(getattr(mesh.visual, "material", None), "baseColorTexture", None)
    return None if image is None else np.asarray(image.convert("RGBA"))


def _unit_cube_frame(mesh: Any) -> Frame:
    """The frame that maps a mesh into TRELLIS's [-0.5, 0.5] cube (largest side 1)."""
    frame = Frame.of(mesh.vertices)
    return Frame(center=frame.center, scale=frame.scale * 2.0)


def _voxel_coords(vertices_zup: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[N, 3] occupied cells of the 64^3 grid over [-0.5, 0.5]^3, as upstream's
    `TrellisTextTo3DPipeline.voxelize` computes them (open3d, surface voxels)."""
    import open3d as o3d

    vertices = np.clip(vertices_zup, -0.5 + 1e-6, 0.5 - 1e-6)
    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(faces.astype(np.int32))
    )
    grid = o3d.geometry.VoxelGrid.create_from_triangle_mesh_within_bounds(
        mesh,
        voxel_size=1 / VOXEL_RESOLUTION,
        min_bound=(-0.5, -0.5, -0.5),
        max_bound=(0.5, 0.5, 0.5),
    )
    cells = np.array([voxel.grid_index for voxel in grid.get_voxels()], dtype=np.int32)
    return cells.reshape(-1, 3)


def _o3d_mesh(vertices: np.ndarray, faces: np.ndarray) -> Any:
    import open3d as o3d

    return o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(faces.astype(np.int32))
    )


def _local_text_pipeline(text_dir: Path, image_dir: Path, clip_dir: str | None) -> Path | None:
    """A folder holding a copy of the text pipeline.json whose Hub references (the decoders
    of TRELLIS-image-large, the CLIP text encoder) point at local folders; None when the
    original needs no rewrite. Upstream `from_pretrained` takes only a path, and would
    otherwise fetch those from the Hub."""
    config = json.loads((text_dir / "pipeline.json").read_text())
    args = config["args"]
    changed = False
    for key, ref in list(args["models"].items()):
        if Path(f"{text_dir}/{ref}.json").exists():
            continue
        rest = ref.split("/", 2)[2] if ref.count("/") >= 2 else ref
        local = image_dir / rest
        if Path(f"{local}.json").exists():
            args["models"][key] = str(local)
            changed = True
    if clip_dir:
        args["text_cond_model"] = clip_dir
        changed = True
    if not changed:
        return None
    staging = Path(tempfile.mkdtemp(prefix="trellis-text-pipeline-"))
    (staging / "pipeline.json").write_text(json.dumps(config))
    return staging


# -- the family ---------------------------------------------------------------------------


class _Trellis(UpstreamModel):
    """What the six TRELLIS models share: weights folders, the pipeline cache, sampling
    with progress, and the conversion of upstream outputs to meshes."""

    package = "trellis"
    extra_packages = ("torch",)
    upstream = UPSTREAM
    weights_subdir = IMAGE_WEIGHTS
    required_weights = ("pipeline.json",)
    pipeline_kind: ClassVar[str] = "image"
    consumed: ClassVar[tuple[str, ...]] = ("seed",)
    """Request fields this model passes to upstream (the rest is reported unsupported)."""

    def __init__(
        self,
        weights_root: str = "weights",
        weights_dir: str | None = None,
        repo_dir: str | None = None,
        device: str = "cuda",
        image_weights_dir: str | None = None,
        text_weights_dir: str | None = None,
        clip_dir: str | None = None,
        sparse_structure_sampler_params: dict[str, Any] | None = None,
        slat_sampler_params: dict[str, Any] | None = None,
        simplify: float = DEFAULT_SIMPLIFY,
        fill_holes: bool = True,
    ) -> None:
        super().__init__(weights_root, weights_dir, repo_dir, device)
        self.image_weights_dir = image_weights_dir
        self.text_weights_dir = text_weights_dir
        self.clip_dir = clip_dir
        self.ss_params = dict(sparse_structure_sampler_params or {})
        self.slat_params = dict(slat_sampler_params or {})
        self.simplify = float(simplify)
        self.fill_holes = bool(fill_holes)
        self._pipeline: Any = None
        self._key: tuple[str, ...] | None = None

    # -- weights ------------------------------------------------------------------------

    def _folder(self, explicit: str | None, kind: str, subdir: str) -> Path:
        if explicit:
            return Path(explicit).expanduser()
        if self.weights_dir and self.pipeline_kind == kind:
            return Path(self.weights_dir).expanduser()
        return Path(self.weights_root).expanduser() / subdir

    @property
    def image_path(self) -> Path:
        return self._folder(self.image_weights_dir, "image", IMAGE_WEIGHTS)

    @property
    def text_path(self) -> Path:
        return self._folder(self.text_weights_dir, "text", TEXT_WEIGHTS)

    @property
    def weights_path(self) -> Path:
        return self.text_path if self.pipeline_kind == "text" else self.image_path

    def availability(self) -> str | None:
        reason = super().availability()
        if reason is None and self.pipeline_kind == "text":
            if not (self.image_path / "ckpts").is_dir():
                return (
                    f"{self.model_id}: the decoders of {IMAGE_WEIGHTS} are needed by the text "
                    f"pipeline and {self.image_path / 'ckpts'} does not exist"
                )
        return reason

    # -- lifecycle ----------------------------------------------------------------------

    def _cache_key(self) -> tuple[str, ...]:
        if self.pipeline_kind == "text":
            return (
                "text",
                self.device,
                str(self.text_path),
                str(self.image_path),
                self.clip_dir or "",
            )
        return ("image", self.device, str(self.image_path))

    def load(self) -> None:
        if self._pipeline is not None:
            return
        offline_env()
        os.environ.setdefault("SPCONV_ALGO", "native")  # no autotuning pass at first use
        if self.repo_dir and self.repo_dir not in sys.path:
            sys.path.insert(0, self.repo_dir)  # trellis imports lazily while running
        key = self._cache_key()
        self._pipeline = PIPELINES.acquire(key, self, self._load_pipeline)
        self._key = key

    def _load_pipeline(self) -> Any:
        import torch

        with self.guarded("loading the pipeline"):
            if self.pipeline_kind == "text":
                from trellis.pipelines import TrellisTextTo3DPipeline

                staging = _local_text_pipeline(self.text_path, self.image_path, self.clip_dir)
                try:
                    pipeline = TrellisTextTo3DPipeline.from_pretrained(
                        str(staging or self.text_path)
                    )
                finally:
                    if staging is not None:
                        shutil.rmtree(staging, ignore_errors=True)
            else:
                from trellis.pipelines import TrellisImageTo3DPipeline

                pipeline = TrellisImageTo3DPipeline.from_pretrained(str(self.image_path))
            for name in UNUSED_DECODERS:
                pipeline.models.pop(name, None)
            pipeline.to(torch.device(self.device))
        return pipeline

    def unload(self) -> None:
        if self._key is not None:
            PIPELINES.release(self._key, self)
        self._pipeline = None
        self._key = None
        self.free_cuda()

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        if self._pipeline is None:
            self.load()
        with _RUN_LOCK:
            return self._run(ctx, inputs, params)

    def _run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        raise NotImplementedError

    # -- sampling -----------------------------------------------------------------------

    def _settings(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Sparse-structure and structured-latent sampler parameters: pipeline.json's
        defaults, overridden by the deployment options."""
        p = self._pipeline
        ss = {**(getattr(p, "sparse_structure_sampler_params", None) or {}), **self.ss_params}
        slat = {**(getattr(p, "slat_sampler_params", None) or {}), **self.slat_params}
        return ss, slat

    @contextmanager
    def _sampling(
        self, ctx: JobContext, ss: dict[str, Any] | None, slat: dict[str, Any]
    ) -> Iterator[None]:
        """Progress for both flow samplers (ss None: stage 2 only) and error mapping."""
        p = self._pipeline
        with ExitStack() as stack:
            slat_span = (0.1, 0.65)
            if ss is not None:
                stack.enter_context(
                    _sampler_progress(
                        ctx,
                        p.sparse_structure_sampler,
                        "sampling the sparse structure",
                        (0.08, 0.38),
                        int(ss.get("steps") or 0),
                    )
                )
                slat_span = (0.38, 0.68)
            stack.enter_context(
                _sampler_progress(
                    ctx,
                    p.slat_sampler,
                    "sampling the structured latent",
                    slat_span,
                    int(slat.get("steps") or 0),
                )
            )
            stack.enter_context(self.guarded("sampling"))
            yield

    # -- outputs ------------------------------------------------------------------------

    def _glb(self, gaussian: Any, mesh: Any, resolution: int, simplify: float, fill: bool) -> Any:
        from trellis.utils import postprocessing_utils

        with self.guarded("texture baking"):
            return postprocessing_utils.to_glb(
                gaussian,
                mesh,
                simplify=simplify,
                fill_holes=fill,
                texture_size=resolution,
                verbose=False,
            )

    def _raw(self, mesh: Any) -> Any:
        """The decoded mesh, post-processed as `to_glb` does (decimation, hole filling)
        but without UVs or texture, rotated to Y-up."""
        import trimesh
        from trellis.utils import postprocessing_utils

        with self.guarded("mesh post-processing"):
            vertices, faces = postprocessing_utils.postprocess_mesh(
                mesh.vertices.cpu().numpy(),
                mesh.faces.cpu().numpy(),
                simplify=self.simplify > 0,
                simplify_ratio=self.simplify,
                fill_holes=self.fill_holes,
                fill_holes_max_hole_size=0.04,
                fill_holes_max_hole_nbe=int(250 * math.sqrt(1 - self.simplify)),
                fill_holes_resolution=1024,
                fill_holes_num_views=1000,
                verbose=False,
            )
        vertices = np.asarray(vertices, dtype=np.float64) @ Y_UP
        return trimesh.Trimesh(vertices, np.asarray(faces, dtype=np.int64), process=False)

    def _output(
        self,
        ctx: JobContext,
        mesh: Any,
        params: dict[str, Any],
        stem: str,
        info: dict[str, Any],
    ) -> ModelOutput:
        from deployments.geometry.pbr import mesh_outputs

        ctx.progress("writing output", 0.92)
        texture = _texture_of(mesh)
        textures = {"texture_basecolor": texture} if texture is not None else None
        ignored = unsupported(
            params, {k: _NOT_USED for k in params if k not in (*self.consumed, *_BOOKKEEPING)}
        )
        return ModelOutput(
            files=mesh_outputs(mesh, params["output_format"], stem, textures),
            preview=mesh,
            generation_info=self.base_info(
                **info,
                vertex_count=int(len(mesh.vertices)),
                face_count=int(len(mesh.faces)),
                unsupported_parameters=ignored,
            ),
        )

    def _sampler_info(self, ss: dict[str, Any] | None, slat: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"slat_sampler": slat}
        if ss is not None:
            out["sparse_structure_sampler"] = ss
        return out


_BOOKKEEPING = ("output_format", "requested_model")


# -- text or image to mesh ---------------------------------------------------------------


@dataclass
class _Conditions:
    main: Any  # what pipeline.run takes: the prompt or the image
    stage2: Any  # a separate condition for the structured latent, or None
    info: dict[str, Any]


class _Generation(_Trellis):
    """pipeline.run, or its two stages with separate conditions when the request has a
    texture prompt or texture image."""

    textured: ClassVar[bool] = False

    def _conditions(self, inputs: dict[str, Path], params: dict[str, Any]) -> _Conditions:
        raise NotImplementedError

    def _encode(self, condition: Any) -> Any:
        return condition

    def _run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        import torch

        conditions = self._conditions(inputs, params)
        resolution = int(params.get("texture_resolution") or DEFAULT_RESOLUTION)
        seed = self.seed_everything(params.get("seed"))
        formats = ["mesh", "gaussian"] if self.textured else ["mesh"]
        ss, slat = self._settings()
        p = self._pipeline
        ctx.progress("encoding the condition", 0.04)
        with self._sampling(ctx, ss, slat):
            if conditions.stage2 is not None:
                # Upstream run() split in its two stages: shape, then appearance and detail.
                with torch.no_grad():
                    cond = p.get_cond([self._encode(conditions.main)])
                    torch.manual_seed(seed)
                    coords = p.sample_sparse_structure(cond, 1, ss)
                    cond2 = p.get_cond([self._encode(conditions.stage2)])
                    latent = p.sample_slat(cond2, coords, slat)
                    ctx.progress("decoding", 0.7)
                    outputs = p.decode_slat(latent, formats)
            else:
                extra = {"preprocess_image": True} if self.pipeline_kind == "image" else {}
                outputs = p.run(
                    conditions.main,
                    num_samples=1,
                    seed=seed,
                    sparse_structure_sampler_params=ss,
                    slat_sampler_params=slat,
                    formats=formats,
                    **extra,
                )
        decoded = outputs["mesh"][0]
        if not getattr(decoded, "success", True):
            raise ModelInputError(
                f"{self.model_id}: TRELLIS decoded an empty mesh; try another seed"
            )
        info: dict[str, Any] = {
            **conditions.info,
            "seed": seed,
            "simplify": self.simplify,
            "fill_holes": self.fill_holes,
            **self._sampler_info(ss, slat),
        }
        if self.textured:
            ctx.progress("baking the texture", 0.75)
            gaussian = outputs["gaussian"][0]
            mesh = self._glb(gaussian, decoded, resolution, self.simplify, self.fill_holes)
            info["texture_resolution"] = resolution
        else:
            ctx.progress("post-processing the mesh", 0.75)
            mesh = self._raw(decoded)
        stem = "textured_mesh" if self.textured else "raw_mesh"
        return self._output(ctx, mesh, params, stem, info)


class _TextGeneration(_Generation):
    pipeline_kind = "text"

    def _conditions(self, inputs: dict[str, Path], params: dict[str, Any]) -> _Conditions:
        prompt = str(params.get("text_prompt") or "").strip()
        if not prompt:
            raise ModelInputError(f"{self.model_id} needs a text_prompt")
        info: dict[str, Any] = {
            "upstream_model": TEXT_WEIGHTS,
            "variant": "text-xlarge, run",
            "text_prompt": prompt,
        }
        texture_prompt = str(params.get("texture_prompt") or "").strip() if self.textured else ""
        if not texture_prompt:
            return _Conditions(prompt, None, info)
        # The texture prompt refines the object's description for stage 2, so the
        # structured latent keeps the object's identity and takes the requested look.
        stage2 = f"{prompt}. {texture_prompt}"
        info.update(
            variant="text-xlarge, run in two stages (shape from text_prompt, structured "
            "latent from text_prompt + texture_prompt)",
            texture_prompt=texture_prompt,
            slat_prompt=stage2,
        )
        return _Conditions(prompt, stage2, info)


class _ImageGeneration(_Generation):
    pipeline_kind = "image"

    def _encode(self, condition: Any) -> Any:
        return self._pipeline.preprocess_image(condition)

    def _conditions(self, inputs: dict[str, Path], params: dict[str, Any]) -> _Conditions:
        image = _read_image(inputs["image"], "input image")
        info: dict[str, Any] = {
            "upstream_model": IMAGE_WEIGHTS,
            "variant": "image-large, run",
            "background_removal": "rembg u2net unless the image has transparency",
        }
        texture_path = inputs.get("texture_image") if self.textured else None
        if texture_path is None:
            if self.textured:
                info["texture_source"] = "input image"
            return _Conditions(image, None, info)
        info.update(
            variant="image-large, run in two stages (shape from the image, structured latent "
            "from the texture image)",
            texture_source="texture image",
        )
        return _Conditions(image, _read_image(texture_path, "texture image"), info)


# -- painting an uploaded mesh ------------------------------------------------------------


@dataclass
class _PaintJob:
    inputs: dict[str, Path]
    params: dict[str, Any]
    vertices: np.ndarray  # in TRELLIS's frame: [-0.5, 0.5] cube, Z-up
    faces: np.ndarray
    seed: int
    info: dict[str, Any]


class _Painting(_Trellis):
    """Bakes TRELLIS Gaussians generated on the uploaded mesh's voxels onto that mesh."""

    def _paint(self, ctx: JobContext, job: _PaintJob) -> Any:
        """The decoded Gaussians for the mesh in `job` (records what ran in job.info)."""
        raise NotImplementedError

    def _run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        import torch
        from trellis.representations import MeshExtractResult

        from deployments.geometry.errors import MeshFormatError
        from deployments.geometry.mesh_io import load_mesh

        ctx.progress("loading mesh", 0.02)
        try:
            mesh = load_mesh(inputs["mesh"])
        except MeshFormatError as exc:
            raise ModelInputError(f"Cannot read the input mesh: {exc}") from exc
        if len(mesh.faces) == 0:
            raise ModelInputError(f"{self.model_id}: the input mesh has no faces")
        resolution = int(params.get("texture_resolution") or DEFAULT_RESOLUTION)
        seed = self.seed_everything(params.get("seed"))
        frame = _unit_cube_frame(mesh)
        # Into TRELLIS's frame: the [-0.5, 0.5] cube, Z-up (v_zup = v_yup @ Y_UP.T).
        cube_zup = np.asarray(frame.normalise(np.asarray(mesh.vertices))) @ Y_UP.T
        faces = np.asarray(mesh.faces, dtype=np.int64)
        job = _PaintJob(inputs, params, cube_zup, faces, seed, {"seed": seed})
        gaussian = self._paint(ctx, job)
        info = job.info
        ctx.progress("baking the texture", 0.72)
        base = MeshExtractResult(
            vertices=torch.tensor(cube_zup, dtype=torch.float32, device=self.device),
            faces=torch.tensor(faces, dtype=torch.int64, device=self.device),
        )
        painted = self._glb(gaussian, base, resolution, 0.0, False)
        painted.vertices = frame.restore(np.asarray(painted.vertices))
        info.update(
            texture_resolution=resolution,
            input_frame=frame.to_dict(),
            geometry="input faces kept (vertices split at UV seams), placed in the input frame",
        )
        return self._output(ctx, painted, params, "painted_mesh", info)


class _TextPainting(_Painting):
    pipeline_kind = "text"

    def _paint(self, ctx: JobContext, job: _PaintJob) -> Any:
        prompt = str(job.params.get("text_prompt") or "").strip()
        if not prompt:
            raise ModelInputError(f"{self.model_id} needs a text_prompt")
        _, slat = self._settings()
        ctx.progress("voxelizing the mesh", 0.05)
        with self._sampling(ctx, None, slat):
            outputs = self._pipeline.run_variant(
                _o3d_mesh(job.vertices, job.faces),
                prompt,
                num_samples=1,
                seed=job.seed,
                slat_sampler_params=slat,
                formats=["gaussian"],
            )
        job.info.update(
            upstream_model=TEXT_WEIGHTS,
            variant="text-xlarge, run_variant (stage 2 on the mesh's 64^3 voxels)",
            text_prompt=prompt,
            **self._sampler_info(None, slat),
        )
        return outputs["gaussian"][0]


class _ImagePainting(_Painting):
    pipeline_kind = "image"

    def _paint(self, ctx: JobContext, job: _PaintJob) -> Any:
        import torch

        image = _read_image(job.inputs["image"], "input image")
        _, slat = self._settings()
        ctx.progress("voxelizing the mesh", 0.05)
        cells = _voxel_coords(job.vertices, job.faces)
        if len(cells) == 0:
            raise ModelInputError(f"{self.model_id}: the mesh occupies no voxel")
        p = self._pipeline
        with self._sampling(ctx, None, slat), torch.no_grad():
            coords = torch.cat(
                [torch.zeros((len(cells), 1), dtype=torch.int32), torch.from_numpy(cells)], 1
            ).to(self.device)
            cond = p.get_cond([p.preprocess_image(image)])
            torch.manual_seed(job.seed)
            latent = p.sample_slat(cond, coords, slat)
            ctx.progress("decoding", 0.7)
            gaussian = p.decode_slat(latent, ["gaussian"])["gaussian"][0]
        job.info.update(
            upstream_model=IMAGE_WEIGHTS,
            variant="image-large, stage 2 only (sample_slat on the mesh's 64^3 voxels)",
            voxels=int(len(cells)),
            **self._sampler_info(None, slat),
        )
        return gaussian


# -- the six models -----------------------------------------------------------------------


def _spec(
    model_id: str,
    feature: str,
    description: str,
    method: str,
    vram_mb: int,
    inputs: tuple[str, ...],
    weights: str,
    textured: bool,
) -> ModelSpec:
    defaults: dict[str, Any] = {"output_format": "glb"}
    details: dict[str, Any] = {
        "device": "cuda",
        "upstream": UPSTREAM,
        "licence": "MIT",
        "weights": weights,
        "vram_note": VRAM_NOTE,
        "deployment": "shares one loaded pipeline set with the other TRELLIS models of its process",
        "sampler_params": "pipeline.json defaults unless the deployment options set "
        "sparse_structure_sampler_params / slat_sampler_params",
    }
    if textured:
        defaults["texture_resolution"] = DEFAULT_RESOLUTION
        details["texture_resolution"] = [256, 4096]
    return ModelSpec(
        model_id=model_id,
        feature=feature,
        description=description,
        method=method,
        vram_mb=vram_mb,
        ram_mb=16384 if weights.startswith(TEXT_WEIGHTS) else 12288,
        load_time_s=60.0 if weights.startswith(TEXT_WEIGHTS) else 45.0,
        inputs=inputs,
        output_formats=MESH_FORMATS,
        default_params=defaults,
        details=details,
    )


_TEXT_DECODERS = f"{TEXT_WEIGHTS} (+ the decoders of {IMAGE_WEIGHTS})"


class TrellisTextToRawMesh(_TextGeneration):
    consumed = ("text_prompt", "seed")
    spec = _spec(
        "trellis_text_to_raw_mesh",
        "text_to_raw_mesh",
        "TRELLIS text-to-3D (text-xlarge): untextured mesh",
        "TRELLIS rectified-flow transformers (sparse structure, then structured latent), "
        "FlexiCubes mesh decoder; decimated and hole-filled as upstream's to_glb",
        11776,
        (),
        _TEXT_DECODERS,
        textured=False,
    )


class TrellisTextToTexturedMesh(_TextGeneration):
    textured = True
    consumed = ("text_prompt", "texture_prompt", "texture_resolution", "seed")
    spec = _spec(
        "trellis_text_to_textured_mesh",
        "text_to_textured_mesh",
        "TRELLIS text-to-3D (text-xlarge): mesh with a baked PBR base-colour texture",
        "TRELLIS rectified-flow transformers; mesh + 3D Gaussians decoded, texture baked "
        "from Gaussian renders by upstream's to_glb; a texture_prompt conditions stage 2",
        11776,
        (),
        _TEXT_DECODERS,
        textured=True,
    )


class TrellisTextMeshPainting(_TextPainting):
    consumed = ("text_prompt", "texture_resolution", "seed")
    spec = _spec(
        "trellis_text_mesh_painting",
        "text_mesh_painting",
        "TRELLIS text-guided painting of an uploaded mesh (text-xlarge run_variant)",
        "TRELLIS run_variant: structured latent sampled on the mesh's voxels from the "
        "prompt, Gaussians baked onto the uploaded geometry by to_glb",
        8192,
        ("mesh",),
        _TEXT_DECODERS,
        textured=True,
    )


class TrellisImageToRawMesh(_ImageGeneration):
    consumed = ("seed",)
    spec = _spec(
        "trellis_image_to_raw_mesh",
        "image_to_raw_mesh",
        "TRELLIS image-to-3D (image-large): untextured mesh",
        "TRELLIS rectified-flow transformers on DINOv2 features, FlexiCubes mesh decoder; "
        "decimated and hole-filled as upstream's to_glb",
        11776,
        ("image",),
        IMAGE_WEIGHTS,
        textured=False,
    )


class TrellisImageToTexturedMesh(_ImageGeneration):
    textured = True
    consumed = ("texture_resolution", "seed")
    spec = _spec(
        "trellis_image_to_textured_mesh",
        "image_to_textured_mesh",
        "TRELLIS image-to-3D (image-large): mesh with a baked PBR base-colour texture",
        "TRELLIS rectified-flow transformers; texture baked from decoded 3D Gaussians by "
        "upstream's to_glb; a texture image conditions stage 2",
        11776,
        ("image", "texture_image"),
        IMAGE_WEIGHTS,
        textured=True,
    )


class TrellisImageMeshPainting(_ImagePainting):
    consumed = ("texture_resolution", "seed")
    spec = _spec(
        "trellis_image_mesh_painting",
        "image_mesh_painting",
        "TRELLIS image-guided painting of an uploaded mesh (image-large, stage 2 only)",
        "TRELLIS structured latent sampled on the mesh's voxels from the image, Gaussians "
        "baked onto the uploaded geometry by to_glb",
        12288,
        ("image", "mesh"),
        IMAGE_WEIGHTS,
        textured=True,
    )
