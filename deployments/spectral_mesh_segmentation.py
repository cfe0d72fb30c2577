"""Segmentation into `num_parts` connected parts by spectral clustering of the face graph (CPU)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from deployments.base import JobContext, Model, ModelInputError, ModelOutput, ModelSpec, OutputFile


class SpectralSegmentation(Model):
    spec = ModelSpec(
        model_id="spectral_mesh_segmentation",
        feature="mesh_segmentation",
        description="Spectral clustering of the face-adjacency graph into connected parts (CPU)",
        method="Spectral clustering on geodesic + dihedral-concavity face graph",
        inputs=("mesh",),
        output_formats=("glb", "json"),
        default_params={"num_parts": 8},
        details={"device": "cpu", "num_parts_range": [2, 32]},
        approximate=True,
    )

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        from deployments.geometry.errors import MeshFormatError
        from deployments.geometry.mesh_io import CONTENT_TYPES, export_mesh, load_mesh
        from deployments.geometry.segment import segments_to_scene, spectral_segment

        ctx.progress("loading mesh", 0.05)
        try:
            mesh = load_mesh(inputs["mesh"])
        except MeshFormatError as exc:
            raise ModelInputError(f"Cannot read the input mesh: {exc}") from exc
        num_parts = int(params.get("num_parts") or 8)
        seed = int(params.get("seed") or 0)
        ctx.progress("spectral clustering", 0.2)
        try:
            labels = spectral_segment(mesh, num_parts, seed=seed)
        except ValueError as exc:
            raise ModelInputError(str(exc)) from exc
        ctx.progress("writing output", 0.85)
        scene = segments_to_scene(mesh, labels)
        counts = np.bincount(labels, minlength=num_parts)
        parts = [
            {"part_id": i, "name": f"part_{i:02d}", "num_faces": int(c)}
            for i, c in enumerate(counts)
        ]
        labels_doc = {
            "num_parts": num_parts,
            "num_faces": int(len(labels)),
            "parts": parts,
            "face_labels": labels.astype(int).tolist(),
        }
        labels_json = json.dumps(labels_doc).encode()
        fmt = params["output_format"]
        files = [
            OutputFile(
                "segmentation_labels.json",
                labels_json,
                CONTENT_TYPES["json"],
                primary=fmt == "json",
            )
        ]
        if fmt != "json":
            files.insert(
                0,
                OutputFile(
                    f"segmented_mesh.{fmt}",
                    export_mesh(scene, fmt),
                    CONTENT_TYPES[fmt],
                    primary=True,
                ),
            )
        return ModelOutput(
            files=files,
            preview=scene,
            result={"num_parts": num_parts, "parts": parts},
            generation_info={
                "method": self.spec.method,
                "num_parts": num_parts,
                "approximate": True,
                "seed": seed,
            },
        )
