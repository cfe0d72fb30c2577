#!/usr/bin/env bash
# Set up everything MeshForge needs on a fresh Debian/Ubuntu machine; safe to run again.
#   - system libraries for headless EGL rendering of thumbnails (root only; the renderer
#     falls back to pure numpy without them)
#   - a virtual environment in .venv with the project and its pinned dependencies
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
SYSTEM_PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1)
[ "${MESHFORGE_SETUP_EXTRA:-}" = "bench" ] && SYSTEM_PACKAGES+=(wrk)
command -v npm >/dev/null 2>&1 || SYSTEM_PACKAGES+=(nodejs npm)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing system packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "Note: missing system packages (${missing[*]}); run as root to install them." >&2
  fi
fi

# The Khronos glTF validator (node) checks glTF outputs in the tests.
if command -v npm >/dev/null 2>&1; then
  if [ ! -d node_modules/gltf-validator ] || [ package.json -nt node_modules/gltf-validator ]; then
    echo "Installing the glTF validator (npm)"
    npm install --no-audit --no-fund --silent >/dev/null
  fi
else
  echo "Note: node/npm not found; glTF validation in the tests will be skipped." >&2
fi

if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.meshforge-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "Installing MeshForge and its dependencies into .venv (first run takes a few minutes)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[dev]"
  touch "$stamp"
fi
