"""TRELLIS painting of an uploaded mesh: Gaussians generated on the mesh's voxels (text:
`run_variant`; image: stage 2 of the image pipeline), baked onto the uploaded geometry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deployments.base import JobContext, ModelInputError, ModelOutput
from deployments.trellis_pipelines import (
    DEFAULT_RESOLUTION,
    IMAGE_WEIGHTS,
    TEXT_WEIGHTS,
    Y_UP,
    _read_image,
    _Trellis,
)
from deployments.upstream import Frame

VOXEL_RESOLUTION = 64


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
