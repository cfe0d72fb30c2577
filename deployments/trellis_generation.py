"""TRELLIS text or image to mesh: `pipeline.run`, or its two stages with a separate
condition for the structured latent (texture prompt or texture image)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from deployments.base import JobContext, ModelInputError, ModelOutput
from deployments.trellis_pipelines import (
    DEFAULT_RESOLUTION,
    IMAGE_WEIGHTS,
    TEXT_WEIGHTS,
    _read_image,
    _Trellis,
)


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
