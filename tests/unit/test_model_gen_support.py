"""Helpers for the generation and painting model tests: running a model, the glTF validator.

The Khronos validator (npm `gltf-validator`, run with node) is found by
`deployments.geometry.gltf_validator`; install it with
`npm install --prefix /tmp/gv gltf-validator@2.0.0-dev.3.10`. Tests that need it are
skipped (with that hint) when node or the package is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployments.base import JobContext, Model, ModelOutput
from deployments.geometry.gltf_validator import error_messages
from deployments.geometry.gltf_validator import validate_gltf as khronos_report


def validate_gltf(data: bytes, tmp_path: Path) -> dict[str, Any]:
    """{"errors", "warnings", "messages"} from the Khronos validator, or skip the test."""
    report = khronos_report(data)
    if report is None:
        pytest.skip(
            "node or npm gltf-validator missing: npm install --prefix /tmp/gv gltf-validator"
        )
    issues = report["issues"]
    return {
        "errors": issues["numErrors"],
        "warnings": issues["numWarnings"],
        "messages": error_messages(report),
    }


def run_model(model: Model, tmp_path: Path, inputs: dict[str, Path], **params: Any) -> ModelOutput:
    """Run like the replica does (params plus output_format), recording progress stages."""
    stages: list[tuple[str, float]] = []
    ctx = JobContext("job_test", 1, tmp_path, on_progress=lambda s, f: stages.append((s, f)))
    output = model.run(ctx, inputs, {"output_format": "glb", "seed": None, **params})
    assert stages, "models report progress (the cancellation point)"
    assert [f for _, f in stages] == sorted(f for _, f in stages)
    return output


def primary(output: ModelOutput) -> bytes:
    (main,) = [f for f in output.files if f.primary]
    return main.data
