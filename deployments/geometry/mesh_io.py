"""Mesh input and output: content sniffing, loading into one triangle mesh, export to bytes.

Uploads arrive with client-chosen names, so the format is decided from the bytes and the
extension only breaks ties. Every loader error (trimesh, pyufbx, numpy) is turned into a
MeshFormatError with a readable message, so callers have exactly one exception to map to
an API error. FBX is read with pyufbx (MIT); everything else with trimesh.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from deployments.geometry.errors import MeshFormatError

MESH_FORMATS = ("glb", "gltf", "obj", "ply", "stl", "fbx")
EXPORT_FORMATS = ("glb", "gltf", "obj", "ply", "stl")
CONTENT_TYPES = {
    "glb": "model/gltf-binary",
    "gltf": "model/gltf+json",
    "obj": "application/wavefront-obj",
    "ply": "application/x-ply",
    "stl": "model/stl",
    "fbx": "model/fbx",
    "json": "application/json",
    "png": "image/png",
}
SNIFF_BYTES = 64 * 1024

_GLTF_ASSET = re.compile(rb'"asset"\s*:\s*\{')
_GLTF_KEYS = re.compile(rb'"(accessors|bufferViews|buffers|meshes|nodes|scenes)"\s*:')
_OBJ_KEYWORDS = {
    b"v", b"vt", b"vn", b"vp", b"f", b"l", b"p", b"o", b"g", b"s",
    b"usemtl", b"mtllib", b"cstype", b"deg", b"curv", b"surf", b"parm", b"end",
}  # fmt: skip
_OBJ_DATA = {b"v", b"f", b"vn", b"vt", b"o", b"g", b"usemtl", b"mtllib"}


def _extension(filename: str | None) -> str | None:
    if not filename or "." not in filename:
        return None
    ext = filename.rsplit(".", 1)[1].lower()
    return ext if ext in MESH_FORMATS else None


def _binary_stl_size_ok(head: bytes, size: int | None) -> bool:
    """True when the 84-byte header's triangle count matches the total size exactly."""
    if len(head) < 84:
        return False
    (count,) = struct.unpack_from("<I", head, 80)
    total = size if size is not None else len(head)
    return count > 0 and total == 84 + 50 * count


def _sniff_obj(text: bytes, ext: str | None) -> str | None:
    """OBJ has no magic: every complete line must start with an OBJ keyword or '#'."""
    lines = text.splitlines()
    if len(lines) > 1 and not text.endswith((b"\n", b"\r")):
        lines = lines[:-1]  # the head may end mid-token ("usemtl" cut to "us")
    seen_data = False
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        keyword = line.split(None, 1)[0]
        if keyword not in _OBJ_KEYWORDS:
            return None
        seen_data = seen_data or keyword in _OBJ_DATA
    if seen_data or (ext == "obj" and text.strip()):
        return "obj"
    return None


def _sniff_text(text: bytes, ext: str | None) -> str | None:
    stripped = text.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{"):
        # glTF requires "asset"; if a huge file puts it past the head, trust a .gltf name
        if _GLTF_ASSET.search(stripped) or (ext == "gltf" and _GLTF_KEYS.search(stripped)):
            return "gltf"
        return None
    if stripped.startswith(b"; FBX") or b"FBXHeaderExtension" in stripped[:4096]:
        return "fbx"
    if stripped.startswith(b"solid") and (b"facet" in stripped or b"endsolid" in stripped):
        return "stl"
    return _sniff_obj(stripped, ext)


def sniff_mesh_format(
    head: bytes, filename: str | None = None, size: int | None = None
) -> str | None:
    """Detect a mesh format from the first bytes of a file (at least 84; 64 KiB is plenty).

    `size` is the whole file's length; binary STL has no magic, so it is only recognised
    when its triangle count matches `size` (or the head is the whole file), or, when size is
    unknown, if the extension says .stl. The extension is otherwise a tiebreak only (an OBJ
    holding nothing but comments, glTF JSON whose "asset" lies past the head). Returns None
    when the content matches no mesh format.
    """
    ext = _extension(filename)
    if head[:4] == b"glTF":
        return "glb"
    if head.startswith(b"Kaydara FBX Binary"):
        return "fbx"
    if head.startswith((b"ply\n", b"ply\r\n")):
        return "ply"
    if _binary_stl_size_ok(head, size):
        return "stl"
    if b"\x00" not in head[:4096]:
        found = _sniff_text(head, ext)
        if found:
            return found
    elif ext == "stl" and size is None and len(head) >= 84:
        return "stl"
    return None


def _resolve_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        fmt = fmt.lower().lstrip(".")
        if fmt not in MESH_FORMATS:
            raise MeshFormatError(
                f"unsupported mesh format {fmt!r}; expected one of {MESH_FORMATS}"
            )
        return fmt
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise MeshFormatError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    if size == 0:
        raise MeshFormatError(f"{path.name} is empty")
    found = sniff_mesh_format(head, path.name, size)
    if found is None:
        raise MeshFormatError(f"{path.name} is not a recognised mesh ({', '.join(MESH_FORMATS)})")
    return found


def _trimeshes(scene: trimesh.Scene) -> trimesh.Scene:
    """Drop point clouds, paths and empty geometry; keep the node graph of the rest."""
    for name, geom in list(scene.geometry.items()):
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            scene.delete_geometry(name)
    return scene


def _check_finite(mesh: trimesh.Trimesh, name: str) -> None:
    if not np.isfinite(mesh.vertices).all():
        raise MeshFormatError(f"{name} has non-finite (NaN or infinite) vertex coordinates")


def load_scene(path: Path, fmt: str | None = None) -> trimesh.Scene:
    """Load any supported format as a scene of triangle meshes, keeping parts and transforms.

    Raises MeshFormatError when the file cannot be parsed, holds no faces, or has
    non-finite coordinates.
    """
    path = Path(path)
    fmt = _resolve_format(path, fmt)
    try:
        if fmt == "fbx":
            from deployments.geometry.fbx_read import read_fbx_scene

            scene = read_fbx_scene(path)
        else:
            # unprocessed first: trimesh's processing silently drops NaN vertices
            loaded = trimesh.load(path, file_type=fmt, force="scene", process=False)
            scene = loaded if isinstance(loaded, trimesh.Scene) else trimesh.Scene(loaded)
    except MeshFormatError:
        raise
    except Exception as exc:  # any parser failure means unreadable input
        reason = f"{type(exc).__name__}: {exc}"
        raise MeshFormatError(f"cannot parse {path.name} as {fmt} ({reason})") from exc
    scene = _trimeshes(scene)
    if not scene.geometry:
        raise MeshFormatError(f"{path.name} contains no triangle faces")
    for geom in scene.geometry.values():
        _check_finite(geom, path.name)
        if fmt in ("obj", "ply", "stl"):
            geom.process()  # what trimesh.load does by default for these (glTF: nothing)
    return scene


def scene_to_mesh(obj: trimesh.Trimesh | trimesh.Scene) -> trimesh.Trimesh:
    """One mesh from a scene, node transforms applied (instances repeated)."""
    if isinstance(obj, trimesh.Trimesh):
        return obj
    meshes = [g for g in obj.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    if not meshes:
        raise MeshFormatError("scene contains no triangle faces")
    if len(meshes) == 1:
        return meshes[0]
    merged = trimesh.util.concatenate(meshes)
    assert isinstance(merged, trimesh.Trimesh)  # all inputs are Trimesh
    return merged


def load_mesh(path: Path, fmt: str | None = None) -> trimesh.Trimesh:
    """Load any supported format into ONE triangle mesh (scene parts concatenated, transformed).

    `fmt` overrides content sniffing. Raises MeshFormatError on unreadable input, zero
    faces or non-finite vertices.
    """
    path = Path(path)
    mesh = scene_to_mesh(load_scene(path, fmt))
    if len(mesh.faces) == 0:
        raise MeshFormatError(f"{Path(path).name} contains no triangle faces")
    _check_finite(mesh, path.name)
    return mesh


def mesh_stats(mesh: trimesh.Trimesh) -> dict[str, Any]:
    """Counts plus topology, computed on positions welded across UV/normal seams.

    Loaders split vertices at seams, which would make every textured mesh look open; the
    topology numbers describe the surface, the counts describe the mesh as given.
    """
    unique, inverse = np.unique(mesh.vertices, axis=0, return_inverse=True)
    welded = trimesh.Trimesh(unique, inverse.reshape(-1)[mesh.faces], process=False)
    components = trimesh.graph.connected_components(
        welded.face_adjacency, nodes=np.arange(len(welded.faces)), min_len=1
    )
    return {
        "vertices": int(len(mesh.vertices)),
        "faces": int(len(mesh.faces)),
        "watertight": bool(welded.is_watertight),
        "bounds": np.asarray(mesh.bounds, dtype=float).tolist(),
        "components": int(len(components)),
    }


def _as_scene(obj: trimesh.Trimesh | trimesh.Scene) -> trimesh.Scene:
    return obj if isinstance(obj, trimesh.Scene) else trimesh.Scene(obj)


def _export_gltf(scene: trimesh.Scene) -> bytes:
    """One self-contained .gltf: every external buffer/image is inlined as a data URI."""
    files = trimesh.exchange.gltf.export_gltf(scene, embed_buffers=True)
    doc = json.loads(files.pop("model.gltf"))
    for item in doc.get("buffers", []) + doc.get("images", []):
        uri = item.get("uri")
        if uri and not uri.startswith("data:"):
            mime = item.get("mimeType", "application/octet-stream")
            item["uri"] = f"data:{mime};base64," + base64.b64encode(files[uri]).decode()
    return json.dumps(doc, separators=(",", ":")).encode()


def _export_obj(obj: trimesh.Trimesh | trimesh.Scene) -> bytes:
    """Single OBJ text with UVs and colours kept but no material library references."""
    text, _ = trimesh.exchange.obj.export_obj(obj, include_texture=True, return_texture=True)
    lines = [ln for ln in text.splitlines() if not ln.startswith(("mtllib ", "usemtl "))]
    return ("\n".join(lines) + "\n").encode()


def export_mesh(obj: trimesh.Trimesh | trimesh.Scene, fmt: str) -> bytes:
    """Serialise a mesh or scene to one file's bytes in `fmt` (see CONTENT_TYPES).

    glb/gltf keep scene parts as nodes; obj keeps them as objects; ply and stl hold one
    mesh, so scenes are flattened first.
    """
    fmt = fmt.lower()
    if fmt == "fbx":
        from deployments.geometry.fbx import export_fbx

        return export_fbx(obj)
    if fmt == "glb":
        return bytes(_as_scene(obj).export(file_type="glb"))
    if fmt == "gltf":
        return _export_gltf(_as_scene(obj))
    if fmt == "obj":
        return _export_obj(obj)
    if fmt in ("ply", "stl"):
        buf = io.BytesIO()
        scene_to_mesh(obj).export(buf, file_type=fmt)
        return buf.getvalue()
    raise ValueError(f"unsupported export format {fmt!r}; expected one of {EXPORT_FORMATS}")
