"""Image to solid: read an object image, find its silhouette, inflate it, texture it.

Shared by the image-to-raw-mesh and image-to-textured-mesh models. The texture is the
image itself on planar UVs (front view; the back sees it mirrored), with the backdrop
replaced by the nearest object colour so that the rim never shows the background.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from deployments.geometry.images import validate_image
from deployments.geometry.inflate import DEFAULT_MAX_CELLS, InflatedMesh, inflate_mask
from deployments.geometry.mask import ForegroundMask, fill_background, foreground_mask, load_rgba

MAX_IMAGE_SIDE = 8192
ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class Silhouette:
    rgba: np.ndarray
    mask: ForegroundMask
    solid: InflatedMesh


def read_image(path: Path) -> np.ndarray:
    """Validated (h, w, 4) RGBA; raises ImageFormatError on anything unreadable."""
    validate_image(path, MAX_IMAGE_SIDE)
    return load_rgba(path)


def silhouette_solid(path: Path, max_cells: int = DEFAULT_MAX_CELLS) -> Silhouette:
    """The inflated, watertight solid of the object in the image at `path`."""
    rgba = read_image(path)
    mask = foreground_mask(rgba)
    return Silhouette(rgba, mask, inflate_mask(mask.mask, max_cells=max_cells))


def image_texture(rgba: np.ndarray, mask: np.ndarray, resolution: int) -> np.ndarray:
    """(resolution, resolution, 3) texture of the whole frame, backdrop filled."""
    rgb = fill_background(rgba[..., :3], mask)
    image = Image.fromarray(rgb).resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def separate_texture(
    texture_rgba: np.ndarray, silhouette: Silhouette, resolution: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """Texture and UVs when a separate texture image is given.

    An image of the same aspect as the input is taken as aligned with it (same frame);
    any other is stretched over the silhouette's bounding box.
    """
    h, w = silhouette.rgba.shape[:2]
    th, tw = texture_rgba.shape[:2]
    image = Image.fromarray(texture_rgba[..., :3]).resize(
        (resolution, resolution), Image.Resampling.LANCZOS
    )
    texture = np.asarray(image, dtype=np.uint8)
    uv = silhouette.solid.uv
    if abs((tw / th) / (w / h) - 1.0) <= ASPECT_TOLERANCE:
        return texture, uv, "texture_image aligned with the input frame"
    r0, c0, r1, c1 = silhouette.mask.bbox()
    low = np.array([c0 / w, 1.0 - r1 / h])
    span = np.array([(c1 - c0) / w, (r1 - r0) / h])
    fitted = ((uv - low) / np.maximum(span, 1e-9)).clip(0.0, 1.0)
    return texture, fitted, "texture_image stretched over the silhouette's bounding box"
