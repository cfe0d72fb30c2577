"""FBX export: write GLB, convert it with the assimp command-line tool from cmeel-assimp.

There is no permissive in-process FBX writer for Python. cmeel-assimp (BSD-3, a wheel
with libassimp 6 and its `assimp` CLI) converts GLB to binary FBX in about 0.1 s and keeps
skins, animations and embedded textures; Blender and ufbx read the result back. Debian's
assimp 5.2 writes binary FBX that other readers reject, and pyassimp crashes on rigged
files, so the conversion runs the cmeel binary in a subprocess: a crash there cannot take
the replica down, and a hung conversion is killed after a timeout.

GLB comes from trimesh for plain meshes and scenes (`export_fbx`), or from any writer that
keeps more than trimesh does (the skinned GLB of the auto-rigger) via `glb_to_fbx`.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import trimesh

CONVERT_TIMEOUT_S = 120.0
_ENV_BINARY = "MESHFORGE_ASSIMP"


class FbxExportError(RuntimeError):
    """The FBX converter is missing or failed on a well-formed GLB."""


def _cmeel_prefix() -> Path | None:
    """Where cmeel-assimp unpacked its binaries (site-packages/cmeel.prefix), if installed."""
    try:
        import cmeel.consts as consts
    except ImportError:
        return None
    return Path(consts.__file__).resolve().parent.parent / consts.CMEEL_PREFIX


@functools.cache
def assimp_command() -> tuple[list[str], dict[str, str]]:
    """The assimp binary to run and the environment it needs (its shared library path).

    Order: $MESHFORGE_ASSIMP, the ELF binary inside cmeel-assimp's prefix (run directly,
    with its lib folder on LD_LIBRARY_PATH, which is what cmeel's Python wrapper does),
    then an `assimp` on PATH next to this interpreter or anywhere.
    """
    env = dict(os.environ)
    override = os.environ.get(_ENV_BINARY)
    if override:
        return [override], env
    prefix = _cmeel_prefix()
    if prefix is not None and (prefix / "bin" / "assimp").is_file():
        lib = str(prefix / "lib")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (lib, env.get("LD_LIBRARY_PATH", "")) if p
        )
        return [str(prefix / "bin" / "assimp")], env
    beside = Path(sys.executable).parent / "assimp"
    found = str(beside) if beside.is_file() else shutil.which("assimp")
    if found is None:
        raise FbxExportError("FBX export needs the assimp CLI: pip install cmeel-assimp")
    return [found], env


def convert_with_assimp(data: bytes, source_ext: str, target_format: str) -> bytes:
    """Run `assimp export` on `data` (a file of type `source_ext`) to `target_format`.

    `target_format` is an assimp exporter id: "fbx" (binary) or "fbxa" (ASCII).
    """
    command, env = assimp_command()
    with tempfile.TemporaryDirectory(prefix="meshforge-fbx-") as tmp:
        source = Path(tmp) / f"input.{source_ext}"
        target = Path(tmp) / "output.fbx"
        source.write_bytes(data)
        try:
            done = subprocess.run(
                [*command, "export", str(source), str(target), f"-f{target_format}"],
                env=env,
                capture_output=True,
                timeout=CONVERT_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FbxExportError(f"assimp could not run: {exc}") from exc
        if done.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
            tail = (done.stderr or done.stdout).decode(errors="replace").strip()[-400:]
            raise FbxExportError(f"assimp failed (exit {done.returncode}): {tail}")
        return target.read_bytes()


def _anchor_single_root(glb: bytes) -> bytes:
    """Give the default scene a second, empty root node when it has only one.

    assimp turns a lone glTF root node into its own scene root, and its FBX exporter drops
    the root's transform (a Z-up asset rotated to Y-up at its root node comes out lying
    down). With two roots, assimp adds an identity root above them and keeps both.
    """
    if len(glb) < 20 or glb[:4] != b"glTF":
        return glb
    json_length, chunk_type = struct.unpack_from("<II", glb, 12)
    if chunk_type != 0x4E4F534A:  # "JSON"
        return glb
    doc = json.loads(glb[20 : 20 + json_length])
    scenes = doc.get("scenes") or []
    scene = scenes[doc.get("scene", 0)] if scenes else None
    if scene is None or len(scene.get("nodes", [])) != 1:
        return glb
    doc.setdefault("nodes", []).append({"name": "fbx_root_anchor"})
    scene["nodes"].append(len(doc["nodes"]) - 1)
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    rest = glb[20 + json_length :]
    header = struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(text) + len(rest))
    return header + struct.pack("<II", len(text), 0x4E4F534A) + text + rest


def glb_to_fbx(glb: bytes, ascii_fbx: bool = False) -> bytes:
    """Convert GLB bytes (any writer: skins, animations and textures are carried over)."""
    return convert_with_assimp(_anchor_single_root(glb), "glb", "fbxa" if ascii_fbx else "fbx")


def export_fbx(obj: trimesh.Trimesh | trimesh.Scene) -> bytes:
    """Binary FBX of a mesh or scene: parts, node transforms, UVs, colours and textures."""
    scene = obj if isinstance(obj, trimesh.Scene) else trimesh.Scene(obj)
    return glb_to_fbx(bytes(scene.export(file_type="glb")))
