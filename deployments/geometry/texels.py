"""Texture baking groundwork: a UV atlas, the surface point behind every texel, gutters.

Baking a texture (from a projected image or from a procedural material) means: give the
mesh UVs (xatlas charts and packing), find for each texel of the target image which face
covers its centre and where on the surface that is, compute a colour per texel, then
bleed the colours outwards into the empty space between charts (gutters) so that
filtering and mipmaps never pull in black. The per-texel lookup reuses the numpy z-buffer
rasterizer of the thumbnails, run in UV space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from deployments.geometry.raster import rasterize
from deployments.geometry.render import Frame


@dataclass(frozen=True)
class Atlas:
    """A mesh with per-vertex UVs (v up); `source` maps each vertex to the input vertex."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    source: np.ndarray


@dataclass(frozen=True)
class Texels:
    """The texels of a size x size image whose centre lies on a face of the atlas.

    `index` is the flat row-major texel index (row 0 is the top of the image, v = 1).
    """

    size: int
    index: np.ndarray  # (n,) int64
    face: np.ndarray  # (n,) int64
    bary: np.ndarray  # (n, 3)
    position: np.ndarray  # (n, 3) surface point
    normal: np.ndarray  # (n, 3) unit face normal

    @property
    def coverage(self) -> float:
        """Share of the image covered by charts (xatlas packs to roughly 0.5-0.7)."""
        return len(self.index) / float(self.size * self.size)


def unwrap(vertices: np.ndarray, faces: np.ndarray, resolution: int = 1024) -> Atlas:
    """xatlas charts packed into [0, 1]² with a gutter of a few texels at `resolution`.

    Vertices are split along chart seams; UVs are returned with v up (OpenGL, trimesh).
    """
    import xatlas

    atlas = xatlas.Atlas()
    atlas.add_mesh(
        np.ascontiguousarray(vertices, np.float32), np.ascontiguousarray(faces, np.uint32)
    )
    pack = xatlas.PackOptions()
    pack.resolution = int(min(max(resolution, 256), 4096))
    pack.padding = 2
    pack.bilinear = True
    pack.blockAlign = False
    atlas.generate(xatlas.ChartOptions(), pack)
    source, indices, uvs = atlas[0]
    source = source.astype(np.int64)
    return Atlas(
        vertices=np.asarray(vertices, dtype=np.float64)[source],
        faces=indices.astype(np.int64),
        uv=uvs.astype(np.float64),
        source=source,
    )


def _barycentric(tri: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Barycentric coordinates of 2-D points in 2-D triangles, (n, 3)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00 = (v0 * v0).sum(1)
    d01 = (v0 * v1).sum(1)
    d11 = (v1 * v1).sum(1)
    d20 = (v2 * v0).sum(1)
    d21 = (v2 * v1).sum(1)
    denom = d00 * d11 - d01 * d01
    denom = np.where(np.abs(denom) < 1e-18, 1e-18, denom)
    w1 = (d11 * d20 - d01 * d21) / denom
    w2 = (d00 * d21 - d01 * d20) / denom
    return np.column_stack([1.0 - w1 - w2, w1, w2])


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)


def uv_pixels(uv: np.ndarray, size: int) -> np.ndarray:
    """UVs (v up) to pixel coordinates (x right, y down) of a size x size image."""
    return np.column_stack([uv[:, 0] * size, (1.0 - uv[:, 1]) * size])


def sample_texels(atlas: Atlas, size: int) -> Texels:
    """Which face covers each texel centre, with the surface point and normal there."""
    xy = uv_pixels(atlas.uv, size)
    faces = atlas.faces
    frame = Frame(xy, np.zeros(len(xy)), faces, np.zeros((len(faces), 3)), size)
    face_image = rasterize(frame, size)
    index = np.flatnonzero(face_image >= 0)
    face = face_image[index]
    centres = np.column_stack([index % size + 0.5, index // size + 0.5])
    bary = _barycentric(xy[faces[face]], centres).clip(0.0, 1.0)
    bary /= np.maximum(bary.sum(axis=1, keepdims=True), 1e-12)
    position = np.einsum("nk,nkd->nd", bary, atlas.vertices[faces[face]])
    normal = face_normals(atlas.vertices, faces)[face]
    return Texels(size, index, face, bary, position, normal)


def compose(texels: Texels, colors: np.ndarray, channels: int = 3) -> np.ndarray:
    """(size, size, channels) uint8 image: texel colours, gutters bled from the charts."""
    size = texels.size
    flat = np.zeros((size * size, channels), dtype=np.float64)
    flat[texels.index] = np.asarray(colors, dtype=np.float64).reshape(len(texels.index), -1)
    image = flat.reshape(size, size, channels)
    hit = np.zeros(size * size, dtype=bool)
    hit[texels.index] = True
    covered = hit.reshape(size, size)
    if covered.any() and not covered.all():
        _, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
        image = image[rows, cols]
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


MAX_BAKE_RESOLUTION = 2048  # above this, bake here and upsample: 4x the texels, no new detail


def bake_size(resolution: int) -> int:
    return min(int(resolution), MAX_BAKE_RESOLUTION)


def upscale(image: np.ndarray, resolution: int) -> np.ndarray:
    """The baked image at the requested texture size (Lanczos), or itself when equal."""
    if image.shape[0] == resolution:
        return image
    from PIL import Image

    big = Image.fromarray(image).resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(big, dtype=np.uint8)
