"""Image input checks: sniff the format from magic bytes and validate with Pillow.

Image uploads feed the image-to-3D and texturing models. They are checked before a job is
queued so that a renamed file, a truncated download or a decompression bomb fails fast with
an ImageFormatError instead of inside a model replica.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from deployments.geometry.errors import ImageFormatError

IMAGE_FORMATS = ("png", "jpg", "jpeg", "webp", "bmp", "tiff")
# Pillow's format names for the sniffed ones: a file must decode as what its bytes claim
_PILLOW_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "bmp": "BMP", "tiff": "TIFF"}


def sniff_image_format(head: bytes) -> str | None:
    """Detect png, jpg, webp, bmp or tiff from the first 12+ bytes; None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    return None


def _check_size(width: int, height: int, max_side: int, name: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageFormatError(f"{name} has an empty size ({width}x{height})")
    if width > max_side or height > max_side:
        raise ImageFormatError(
            f"{name} is {width}x{height} pixels; the largest side allowed is {max_side}"
        )


def _open_checked(path: Path, max_side: int, expected: str) -> Image.Image:
    """Open lazily (header only) and reject oversize images before any pixel is decoded."""
    image = Image.open(path)
    if image.format != expected:
        image.close()
        raise ImageFormatError(f"{path.name} does not decode as {expected}")
    _check_size(image.width, image.height, max_side, path.name)
    return image


def validate_image(path: Path, max_side: int) -> dict[str, Any]:
    """Check that `path` is a whole, decodable image no larger than max_side on either side.

    The side check runs on the header, before decoding, so it is the pixel limit
    (max_side squared); Pillow's own decompression-bomb guard is also turned into an
    ImageFormatError (its warning is raised as an error here, never just logged).
    Returns {"format", "width", "height", "mode"}, with "jpg" for JPEG.
    """
    path = Path(path)
    if max_side <= 0:
        raise ValueError("max_side must be positive")
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise ImageFormatError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    fmt = sniff_image_format(head)
    if fmt is None:
        raise ImageFormatError(f"{path.name} is not a {', '.join(IMAGE_FORMATS)} image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _open_checked(path, max_side, _PILLOW_FORMATS[fmt]) as image:
                image.verify()  # structure and checksums, without decoding
            with _open_checked(path, max_side, _PILLOW_FORMATS[fmt]) as image:
                image.load()  # full decode: catches truncated pixel data
                info = {"format": fmt, "width": image.width, "height": image.height}
                info["mode"] = image.mode
    except ImageFormatError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageFormatError(f"{path.name} is too large to decode safely: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageFormatError(f"{path.name} is not a valid {fmt} image: {exc}") from exc
    return info
