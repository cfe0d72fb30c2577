#!/usr/bin/env bash
# Install MeshForge into a GPU worker image without disturbing the upstream model's stack.
#
#   install-meshforge.sh /opt/meshforge
#
# 1. Pins the packages of the upstream environment that MeshForge must not move (torch and
#    its CUDA extensions, numpy, transformers, bpy, ...) at the versions already installed.
# 2. Installs MeshForge's runtime dependencies except torch (the upstream environment brings
#    its own CUDA build) and ray (the base image's, which must equal the cluster's), within
#    those pins. A real conflict fails the build here, visibly.
# 3. Installs the project itself without dependencies, then checks that the replica code
#    imports (upstream packages are imported only when a model loads, so this needs no GPU).
set -euo pipefail

src="${1:-/opt/meshforge}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

keep='^(torch|torchvision|torchaudio|triton|numpy|xformers|flash[-_]attn|spconv.*|cumm.*|kaolin|nvdiffrast|diffoctreerast|diff[-_]gaussian[-_]rasterization|torch[-_]scatter|torch[-_]cluster|torch[-_]geometric|bpy|partuv|transformers|diffusers|accelerate|lightning|pytorch[-_]lightning|open3d|diso|onnxruntime.*|nvidia-.*)=='
python -m pip freeze --exclude-editable | grep -iE "$keep" > "$work/constraints.txt" || true
echo "pinned from the upstream environment:" && cat "$work/constraints.txt"

python - "$src/pyproject.toml" > "$work/requirements.txt" <<'PY'
import re
import sys
import tomllib

with open(sys.argv[1], "rb") as fh:
    deps = tomllib.load(fh)["project"]["dependencies"]
for dep in deps:
    name = re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0].lower()
    if name not in {"torch", "ray"}:
        print(dep)
PY
python -m pip install --no-cache-dir -r "$work/requirements.txt" -c "$work/constraints.txt"
python -m pip install --no-cache-dir --no-deps "$src"
python -m pip check || echo "pip check reported the conflicts above (upstream pins); see cluster/GPU.md"
python -c "import app.serve_app, deployments.replica, deployments.registry; print('MeshForge imports')"
