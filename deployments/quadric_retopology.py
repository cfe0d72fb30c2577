"""Retopology by quadric edge-collapse decimation to a target vertex count (CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deployments.base import JobContext, Model, ModelInputError, ModelOutput, ModelSpec, OutputFile

DEFAULT_TARGET = 1000


def _reduction(before: int, after: int) -> str:
    return f"{(1 - after / before) * 100:.1f}%" if before else "0.0%"


def retopology_result(
    model_id: str, variant: str, before: dict[str, Any], after: dict[str, Any], seed: Any
) -> dict[str, Any]:
    """The result fields every retopology model reports, in the spec's shape."""
    return {
        "original_stats": {"vertices": before["vertices"], "faces": before["faces"]},
        "output_stats": after,
        "retopology_info": {
            "model": model_id,
            "variant": variant,
            "vertex_reduction": _reduction(before["vertices"], after["vertices"]),
            "face_reduction": _reduction(before["faces"], after["faces"]),
            "seed": seed,
        },
    }


class QuadricRetopology(Model):
    spec = ModelSpec(
        model_id="quadric_retopology",
        feature="retopology",
        description="Quadric edge-collapse decimation to a target vertex count (CPU)",
        method="Quadric error metric decimation (fast-simplification)",
        inputs=("mesh",),
        output_formats=("obj", "glb", "ply"),
        default_params={"target_vertex_count": DEFAULT_TARGET},
        details={"target_vertices": DEFAULT_TARGET, "device": "cpu"},
    )

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        from deployments.geometry.decimate import decimate_to_vertex_count
        from deployments.geometry.errors import MeshFormatError
        from deployments.geometry.mesh_io import CONTENT_TYPES, export_mesh, load_mesh, mesh_stats

        ctx.progress("loading mesh", 0.05)
        try:
            mesh = load_mesh(inputs["mesh"])
        except MeshFormatError as exc:
            raise ModelInputError(f"Cannot read the input mesh: {exc}") from exc
        target = int(params.get("target_vertex_count") or DEFAULT_TARGET)
        before = mesh_stats(mesh)
        ctx.progress("decimating", 0.2)
        out = decimate_to_vertex_count(mesh, target)
        ctx.progress("writing output", 0.85)
        after = mesh_stats(out)
        fmt = params["output_format"]
        seed = params.get("seed")
        data = export_mesh(out, fmt)
        return ModelOutput(
            files=[OutputFile(f"retopo_mesh.{fmt}", data, CONTENT_TYPES[fmt], primary=True)],
            preview=out,
            result=retopology_result(
                self.spec.model_id,
                f"target {target} vertices",
                before,
                {"vertices": after["vertices"], "faces": after["faces"]},
                seed,
            ),
            generation_info={
                "method": self.spec.method,
                "target_vertex_count": target,
                "vertex_count": after["vertices"],
                "face_count": after["faces"],
                "deterministic": True,
            },
        )
