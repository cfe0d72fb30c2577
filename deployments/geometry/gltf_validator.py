"""Run the Khronos glTF validator (npm `gltf-validator`, pure JavaScript) on bytes.

The validator is the reference reader for glTF: tests and self-checks use it to prove that
a GLB/glTF we write is valid (0 errors). It needs node and the npm package; where either is
missing, `validate_gltf` returns None so that callers can skip rather than fail.

The package is found through $MESHFORGE_GLTF_VALIDATOR or $GLTF_VALIDATOR_DIR (the
package folder, a node_modules folder holding it, or the folder above that), the
repository's own node_modules, the scratch install the test suite documents
(/tmp/gv), then npm's global root. Install with
`npm install --prefix /tmp/gv gltf-validator@2.0.0-dev.3.10`, `npm install
gltf-validator` in the repository (node_modules/ is git-ignored) or with `-g`.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[2]
_SCRIPT = """
const fs = require('fs');
const validator = require(process.argv[1]);
const data = new Uint8Array(fs.readFileSync(process.argv[2]));
validator.validateBytes(data, {maxIssues: 0})
  .then((report) => { process.stdout.write(JSON.stringify(report)); })
  .catch((error) => { process.stderr.write(String(error)); process.exit(2); });
"""


def _package_in(folder: Path) -> Path | None:
    for candidate in (folder, folder / "gltf-validator", folder / "node_modules/gltf-validator"):
        if (candidate / "package.json").is_file() and candidate.name == "gltf-validator":
            return candidate
    return None


@functools.cache
def find_validator() -> tuple[str, Path] | None:
    """(node executable, gltf-validator package folder), or None if either is missing."""
    node = shutil.which("node")
    if node is None:
        return None
    names = ("MESHFORGE_GLTF_VALIDATOR", "GLTF_VALIDATOR_DIR")
    folders = [Path(os.environ[n]) for n in names if os.environ.get(n)]
    folders += [_REPO / "node_modules", Path("/tmp/gv")]
    npm = shutil.which("npm")
    if npm is not None:
        try:
            root = subprocess.run(
                [npm, "root", "-g"], capture_output=True, text=True, timeout=30, check=False
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            root = ""
        if root:
            folders.append(Path(root))
    for folder in folders:
        package = _package_in(folder)
        if package is not None:
            return node, package
    return None


def validate_gltf(data: bytes, suffix: str = ".glb") -> dict[str, Any] | None:
    """The validator's report for a .glb or self-contained .gltf; None if not installed.

    The report's `issues` holds `numErrors`, `numWarnings` and the `messages` list.
    """
    found = find_validator()
    if found is None:
        return None
    node, package = found
    with tempfile.TemporaryDirectory(prefix="meshforge-gltfv-") as tmp:
        asset = Path(tmp) / f"asset{suffix}"
        asset.write_bytes(data)
        done = subprocess.run(
            [node, "-e", _SCRIPT, str(package), str(asset)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"gltf-validator failed: {done.stderr.strip()[-400:]}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def error_messages(report: dict[str, Any]) -> list[str]:
    """`code at pointer: message` for every error (severity 0) in a report."""
    return [
        f"{m.get('code')} at {m.get('pointer', '')}: {m.get('message')}"
        for m in report.get("issues", {}).get("messages", [])
        if m.get("severity") == 0
    ]
