"""Retopology with FastMesh (jhkim0759/FastMesh): an artist-style mesh generated from a
point cloud of the input, in two variants with their own weights (V1K ~1k vertices, V4K
~4k vertices).

FastMesh works in a normalised cube; its output is fitted back onto the input's bounding
box (centre and largest extent), so the result sits where the input was, at its scale.
FastMesh has no vertex or face target: the variant decides the density, and a requested
target is reported as unsupported rather than silently dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from deployments.base import JobContext, ModelInputError, ModelOutput, ModelSpec, OutputFile
from deployments.upstream import Frame, UpstreamModel, offline_env, unsupported

NORMALISED_EXTENT = 1.9  # upstream apply_normalize: largest side 1.9, centred
SURFACE_SAMPLES = 50_000
DEFAULT_POINTS = 8192
DEFAULT_SEED = 42


class _FastMeshRetopology(UpstreamModel):
    package = "models"
    extra_packages = ("torch", "accelerate")
    upstream = "jhkim0759/FastMesh@8e97122"
    required_weights = ("config.json",)
    variant: ClassVar[str]
    nominal_vertices: ClassVar[int]

    def __init__(
        self,
        weights_root: str = "weights",
        weights_dir: str | None = None,
        repo_dir: str | None = None,
        device: str = "cuda",
        model_name: str = "MeshGen",
        input_pc_num: int = DEFAULT_POINTS,
        mixed_precision: str = "fp16",
    ) -> None:
        super().__init__(weights_root, weights_dir, repo_dir, device)
        self.model_name = model_name
        self.input_pc_num = input_pc_num
        self.mixed_precision = mixed_precision
        self._model: Any = None
        self._accelerator: Any = None

    def load(self) -> None:
        offline_env()
        with self.in_repo_dir(), self.guarded("loading"):
            from accelerate import Accelerator
            from models import MODELS

            model = MODELS[self.model_name].from_pretrained(
                str(self.weights_path), local_files_only=True
            )
            accelerator = Accelerator(mixed_precision=self.mixed_precision)
            self._model = accelerator.prepare(model)
            self._model.eval()
            self._accelerator = accelerator

    def unload(self) -> None:
        self._model = None
        self._accelerator = None
        self.free_cuda()

    def check_health(self) -> None:
        if self._model is None:
            raise RuntimeError(f"{self.model_id} is not loaded")

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        from deployments.geometry.errors import MeshFormatError
        from deployments.geometry.mesh_io import load_mesh, mesh_stats

        if self._model is None:
            self.load()
        ctx.progress("loading mesh", 0.05)
        try:
            mesh = load_mesh(inputs["mesh"])
        except MeshFormatError as exc:
            raise ModelInputError(f"Cannot read the input mesh: {exc}") from exc
        before = mesh_stats(mesh)
        seed = self.seed_everything(
            DEFAULT_SEED if params.get("seed") is None else int(params["seed"])
        )
        frame = Frame.of(mesh.vertices)
        ctx.progress("sampling the point cloud", 0.1)
        pc_normal = self._point_cloud(mesh, frame)
        ctx.progress(f"FastMesh-{self.variant} generation", 0.2)
        with self.in_repo_dir(), self.guarded("generation"):
            import torch
            from accelerate.utils import set_seed

            set_seed(seed)
            tensor = torch.from_numpy(pc_normal).unsqueeze(0).to(self.device)
            with torch.no_grad(), self._accelerator.autocast():
                meshes = self._model({"pc_normal": tensor}, is_eval=True)
        if not meshes or meshes[0] is None or len(meshes[0].faces) == 0:
            raise ModelInputError(f"{self.model_id} generated no mesh for this input")
        ctx.progress("restoring the input frame", 0.85)
        out = _fit_to(meshes[0], frame)
        return self._output(out, before, seed, frame, params)

    def _point_cloud(self, mesh: Any, frame: Frame) -> np.ndarray:
        """[N, 6] float16 points + face normals on the mesh normalised as upstream does."""
        import trimesh

        work = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
        work.apply_translation(-frame.center)
        work.apply_scale(NORMALISED_EXTENT / (2.0 * frame.scale))
        points, face_index = trimesh.sample.sample_surface(work, SURFACE_SAMPLES)
        normals = work.face_normals[face_index]
        cloud = np.concatenate([points, normals], axis=-1).astype(np.float16)
        keep = np.random.choice(len(cloud), self.input_pc_num, replace=False)
        return np.ascontiguousarray(cloud[keep])

    def _output(
        self,
        out: Any,
        before: dict[str, Any],
        seed: int,
        frame: Frame,
        params: dict[str, Any],
    ) -> ModelOutput:
        from deployments.geometry.mesh_io import CONTENT_TYPES, export_mesh, mesh_stats
        from deployments.quadric_retopology import retopology_result

        fmt = params["output_format"]
        after = mesh_stats(out)
        counts = {"vertices": after["vertices"], "faces": after["faces"]}
        reason = (
            f"FastMesh has no density target: FastMesh-{self.variant} generates about "
            f"{self.nominal_vertices} vertices (use fastmesh_v1k_retopology for ~1000, "
            "fastmesh_v4k_retopology for ~4000)"
        )
        ignored = unsupported(params, {"target_vertex_count": reason, "target_face_count": reason})
        info = self.base_info(
            variant=self.variant,
            weights=self.weights_path.name,
            seed=seed,
            input_points=self.input_pc_num,
            mixed_precision=self.mixed_precision,
            vertex_count=counts["vertices"],
            face_count=counts["faces"],
            frame={
                "restored": True,
                "how": "output bounding box fitted to the input's (centre, largest extent)",
                **frame.to_dict(),
            },
        )
        for key in ("target_vertex_count", "target_face_count"):
            if params.get(key) is not None:
                info[f"requested_{key}"] = params[key]
        if ignored:
            info["unsupported_parameters"] = ignored
        return ModelOutput(
            files=[
                OutputFile(f"retopo_mesh.{fmt}", export_mesh(out, fmt), CONTENT_TYPES[fmt], True)
            ],
            preview=out,
            result=retopology_result(self.model_id, self.variant, before, counts, seed),
            generation_info=info,
        )


def _fit_to(mesh: Any, frame: Frame) -> Any:
    """A plain copy of `mesh` whose bounding box is mapped onto `frame` (uniform scale)."""
    import trimesh

    vertices = frame.restore(Frame.of(np.asarray(mesh.vertices)).normalise(mesh.vertices))
    return trimesh.Trimesh(vertices, np.asarray(mesh.faces), process=False)


def _spec(variant: str, vertices: int, vram_mb: int, load_time_s: float) -> ModelSpec:
    return ModelSpec(
        model_id=f"fastmesh_{variant.lower()}_retopology",
        feature="retopology",
        description=f"FastMesh {variant} - Generates meshes with ~{vertices} vertices",
        method="FastMesh autoregressive vertex generation + bidirectional face prediction",
        vram_mb=vram_mb,
        ram_mb=8192,
        load_time_s=load_time_s,
        inputs=("mesh",),
        output_formats=("obj", "glb", "ply"),
        default_params={"seed": DEFAULT_SEED},
        details={
            "target_vertices": vertices,
            "device": "cuda",
            "weights": f"WopperSet/FastMesh-{variant}",
            "licence": "S-Lab License 1.0 (non-commercial)",
            "target_vertex_count": "not supported (the variant sets the density)",
        },
    )


class FastMeshV1KRetopology(_FastMeshRetopology):
    weights_subdir = "FastMesh-V1K"
    variant = "V1K"
    nominal_vertices = 1000
    spec = _spec("V1K", 1000, 16384, 30.0)


class FastMeshV4KRetopology(_FastMeshRetopology):
    weights_subdir = "FastMesh-V4K"
    variant = "V4K"
    nominal_vertices = 4000
    spec = _spec("V4K", 4000, 24500, 40.0)
