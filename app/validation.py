"""Checks a file by content before anything accepts it: format sniffing and a real parse."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshforge.errors import FileUploadError, MeshForgeError

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class CheckedFile:
    kind: str
    fmt: str
    filename: str
    content_type: str
    info: dict[str, Any]


def safe_filename(name: str | None, fmt: str) -> str:
    """A storage-safe name whose extension is the detected format."""
    stem = Path(name or "").name.rsplit(".", 1)[0] if name else ""
    stem = _SAFE.sub("_", stem).strip("._")[:80] or "upload"
    return f"{stem}.{fmt}"


def check_mesh(
    path: Path, filename: str | None, error: type[MeshForgeError] = FileUploadError
) -> CheckedFile:
    from deployments.geometry.errors import MeshFormatError
    from deployments.geometry.mesh_io import CONTENT_TYPES, load_mesh, mesh_stats, sniff_mesh_format

    with path.open("rb") as fh:
        head = fh.read(4096)
    fmt = sniff_mesh_format(head, filename, size=path.stat().st_size)
    if fmt is None:
        raise error(
            "The file is not a supported mesh (GLB, GLTF, OBJ, PLY, STL, FBX)",
            {"filename": filename},
        )
    try:
        mesh = load_mesh(path, fmt)
    except MeshFormatError as exc:
        raise error(
            f"The {fmt.upper()} file could not be read: {exc}",
            {"filename": filename, "format": fmt},
        ) from None
    stats = mesh_stats(mesh)
    info = {
        "vertices": stats["vertices"],
        "faces": stats["faces"],
        "watertight": stats.get("watertight"),
    }
    return CheckedFile("mesh", fmt, safe_filename(filename, fmt), CONTENT_TYPES[fmt], info)


def check_image(
    path: Path, filename: str | None, max_side: int, error: type[MeshForgeError] = FileUploadError
) -> CheckedFile:
    from deployments.geometry.errors import ImageFormatError
    from deployments.geometry.images import sniff_image_format, validate_image

    with path.open("rb") as fh:
        head = fh.read(64)
    fmt = sniff_image_format(head)
    if fmt is None:
        raise error(
            "The file is not a supported image (PNG, JPG, WebP, BMP, TIFF)", {"filename": filename}
        )
    try:
        info = validate_image(path, max_side)
    except ImageFormatError as exc:
        raise error(f"The image could not be accepted: {exc}", {"filename": filename}) from None
    content_type = {"jpg": "image/jpeg"}.get(fmt, f"image/{fmt}")
    return CheckedFile("image", fmt, safe_filename(filename, fmt), content_type, info)


def check_file(
    kind: str,
    path: Path,
    filename: str | None,
    max_side: int,
    error: type[MeshForgeError] = FileUploadError,
) -> CheckedFile:
    if kind == "mesh":
        return check_mesh(path, filename, error)
    return check_image(path, filename, max_side, error)
