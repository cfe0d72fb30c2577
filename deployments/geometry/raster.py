"""Numpy z-buffer rasterizer: which face is nearest at each pixel of a projected frame.

The fallback thumbnail renderer has no GPU or GL library to lean on, so it rasterizes with
array arithmetic only. A 280k-face mesh takes about 0.5 s at 1024 x 1024 on two cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from deployments.geometry.render import Frame

Fragments = tuple[np.ndarray, np.ndarray, np.ndarray]  # pixel index, depth, face index
_EPS = 1e-5  # barycentric slack so that shared edges leave no cracks


def _plane_coefficients(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per face, (a, b, c) with w = a*px + b*py + c for barycentrics w0, w1 and depth.

    Returns (faces, 3, 3): rows w0, w1, depth. Degenerate faces get NaN (never inside).
    """
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(np.abs(area) > 1e-12, 1.0 / area, np.nan)
        w0 = np.stack([y[:, 1] - y[:, 2], x[:, 2] - x[:, 1], x[:, 1] * y[:, 2] - x[:, 2] * y[:, 1]])
        w1 = np.stack([y[:, 2] - y[:, 0], x[:, 0] - x[:, 2], x[:, 2] * y[:, 0] - x[:, 0] * y[:, 2]])
        w0, w1 = w0 * inv, w1 * inv
    w2 = np.array([[0.0], [0.0], [1.0]]) - w0 - w1
    depth = w0 * z[:, 0] + w1 * z[:, 1] + w2 * z[:, 2]
    return np.stack([w0.T, w1.T, depth.T], axis=1)


def _fragments(frame: Frame, size: int, budget: int = 1 << 21) -> Iterator[Fragments]:
    """Yield (pixel index, depth, face) of every pixel centre inside every face.

    Faces are binned by the power-of-two width and height of the pixel box they span, so
    each bin tests a fixed grid of candidate pixels with array arithmetic, evaluating the
    barycentric and depth planes relative to the box corner (float32 is then exact enough).
    """
    tri = frame.xy[frame.faces] * (size / frame.size)
    start = np.clip(np.ceil(tri.min(axis=1) - 0.5), 0, size)
    stop = np.clip(np.floor(tri.max(axis=1) - 0.5), -1, size - 1)
    extent = np.maximum(stop - start + 1, 0).astype(np.int64)
    plane = _plane_coefficients(tri[..., 0], tri[..., 1], frame.depth[frame.faces])
    base = plane[:, :, 0] * (start[:, None, 0] + 0.5) + plane[:, :, 1] * (start[:, None, 1] + 0.5)
    base += plane[:, :, 2]
    alive = (extent > 0).all(axis=1) & np.isfinite(base).all(axis=1)
    bins = np.ceil(np.log2(np.maximum(extent, 1))).astype(np.int64)
    keys = bins[:, 0] * 64 + bins[:, 1]
    start = start.astype(np.int64)
    for key in np.unique(keys[alive]):
        chosen = np.flatnonzero(alive & (keys == key))
        gx, gy = (np.indices((1 << (key // 64), 1 << (key % 64))).reshape(2, -1)).astype(np.int32)
        step = max(1, budget // len(gx))
        for lo in range(0, len(chosen), step):
            f = chosen[lo : lo + step]
            yield _test_grid(f, (gx, gy), start[f], extent[f], plane[f], base[f], size)


def _test_grid(
    faces: np.ndarray,
    grid: tuple[np.ndarray, np.ndarray],
    start: np.ndarray,
    extent: np.ndarray,
    plane: np.ndarray,
    base: np.ndarray,
    size: int,
) -> Fragments:
    """Fragments of `faces` over one candidate grid of pixel offsets from each box corner."""
    gx, gy = grid
    coef, base = plane.astype(np.float32), base.astype(np.float32)
    w0 = base[:, 0, None] + coef[:, 0, 0, None] * gx + coef[:, 0, 1, None] * gy
    w1 = base[:, 1, None] + coef[:, 1, 0, None] * gx + coef[:, 1, 1, None] * gy
    inside = (gx < extent[:, 0, None]) & (gy < extent[:, 1, None])
    inside &= (w0 >= -_EPS) & (w1 >= -_EPS) & (w0 + w1 <= 1.0 + _EPS)
    rows, cols = np.nonzero(inside)
    depth = base[rows, 2] + coef[rows, 2, 0] * gx[cols] + coef[rows, 2, 1] * gy[cols]
    pixels = (start[rows, 1] + gy[cols]) * size + start[rows, 0] + gx[cols]
    return pixels, depth, faces[rows]


def rasterize(frame: Frame, size: int) -> np.ndarray:
    """Nearest face index per pixel (-1 for background), as a flat size*size array."""
    parts = list(_fragments(frame, size))
    pixels = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    depths = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
    faces = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int64)
    zbuffer = np.full(size * size, -np.inf)
    np.maximum.at(zbuffer, pixels, depths)
    front = depths >= zbuffer[pixels]
    image = np.full(size * size, -1, dtype=np.int64)
    image[pixels[front]] = faces[front]
    return image
