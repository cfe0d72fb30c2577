"""TRELLIS family base: constants, the pipeline cache shared in one process, pipeline
loading (with an offline rewrite of the text pipeline.json), sampling progress, and the
conversion of upstream outputs to meshes."""

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
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from deployments.base import JobContext, ModelInputError, ModelOutput
from deployments.upstream import SharedCache, UpstreamModel, offline_env, unsupported

UPSTREAM = "microsoft/TRELLIS@6b0d647"
IMAGE_WEIGHTS = "TRELLIS-image-large"
TEXT_WEIGHTS = "TRELLIS-text-xlarge"
DEFAULT_RESOLUTION = 1024
DEFAULT_SIMPLIFY = 0.95  # to_glb's default: fraction of the decoded triangles removed
Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""to_glb's rotation: v_yup = v_zup @ Y_UP (TRELLIS works Z-up, glTF is Y-up)."""
UNUSED_DECODERS = ("slat_decoder_rf",)  # radiance fields are never decoded here
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
