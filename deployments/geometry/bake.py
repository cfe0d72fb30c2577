"""Paint a mesh from one image: project it from a fitted front camera into a new texture.

1. New UVs with xatlas (`texels.unwrap`); every texel centre gets its surface point.
2. The camera is orthographic, looking down -Z with Y up (the glTF front view), framed so
   that the mesh's X/Y bounds fill the object's bounding box in the image (aspect kept).
3. A texel is *seen* when its face points towards the camera, no nearer surface covers it
   (depth test against a z-buffer of the mesh drawn from the camera) and it lands on the
   object in the image, not on the backdrop. Seen texels sample the image bilinearly.
4. Unseen texels take the colour of the nearest seen surface in 3-D, through a coarse
   voxel grid (the back of an object continues the colours of its sides); gutters are
   then bled from the charts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.ndimage import map_coordinates

from deployments.geometry.raster import rasterize
from deployments.geometry.render import Frame
from deployments.geometry.texels import Texels, face_normals

MIN_FACING = 0.1  # cosine between face normal and view direction for a texel to be seen
DEPTH_BUFFER_SIDE = 1024
FILL_GRID = 96  # voxels on the longest side of the grid that carries colours to unseen texels


@dataclass(frozen=True)
class Camera:
    """Orthographic front camera: image (col, row) = centre + scale * (x, -y)."""

    scale: float
    offset: np.ndarray  # (2,) image (col, row) of the world origin
    width: int
    height: int

    def project(self, points: np.ndarray) -> np.ndarray:
        """(n, 2) image (col, row) pixel coordinates, pixel centres at .5."""
        cols = self.offset[0] + self.scale * points[:, 0]
        rows = self.offset[1] - self.scale * points[:, 1]
        return np.column_stack([cols, rows])


def fit_camera(
    vertices: np.ndarray, box: tuple[int, int, int, int], width: int, height: int
) -> Camera:
    """Frame the mesh's X/Y bounds on the image box (row0, col0, row1, col1), centred."""
    low, high = vertices[:, :2].min(axis=0), vertices[:, :2].max(axis=0)
    extent = np.maximum(high - low, 1e-9)
    r0, c0, r1, c1 = box
    scale = float(min((c1 - c0) / extent[0], (r1 - r0) / extent[1]))
    mid = (low + high) / 2.0
    centre = np.array([(c0 + c1) / 2.0, (r0 + r1) / 2.0])
    offset = np.array([centre[0] - scale * mid[0], centre[1] + scale * mid[1]])
    return Camera(scale, offset, width, height)


def _visible_depth(
    camera: Camera, vertices: np.ndarray, faces: np.ndarray, points: np.ndarray
) -> np.ndarray:
    """Depth (z) of the nearest surface along the view ray through each point's pixel;
    -inf where the ray hits nothing."""
    side = max(camera.width, camera.height)
    shrink = min(1.0, DEPTH_BUFFER_SIDE / side)
    size = max(16, int(round(side * shrink)))
    xy = camera.project(vertices) * shrink
    z = vertices[:, 2]
    frame = Frame(xy, z, faces, np.zeros((len(faces), 3)), size)
    face_image = rasterize(frame, size)
    pix = camera.project(points) * shrink
    cols = np.clip(np.floor(pix[:, 0]).astype(np.int64), 0, size - 1)
    rows = np.clip(np.floor(pix[:, 1]).astype(np.int64), 0, size - 1)
    hit = face_image[rows * size + cols]
    depth = np.full(len(points), -np.inf)
    ok = hit >= 0
    tri = xy[faces[hit[ok]]]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    p = pix[ok]
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    w1 = (p[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (p[:, 1] - a[:, 1])
    w2 = (b[:, 0] - a[:, 0]) * (p[:, 1] - a[:, 1]) - (p[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    w1, w2 = (w1 / det).clip(0, 1), (w2 / det).clip(0, 1)
    zt = z[faces[hit[ok]]]
    depth[ok] = zt[:, 0] * (1 - w1 - w2) + zt[:, 1] * w1 + zt[:, 2] * w2
    return depth


def _sample(rgb: np.ndarray, pix: np.ndarray) -> np.ndarray:
    """Bilinear samples (n, 3) of an image at (col, row) pixel coordinates."""
    coords = [pix[:, 1] - 0.5, pix[:, 0] - 0.5]
    channels = [
        map_coordinates(rgb[..., k].astype(np.float64), coords, order=1, mode="nearest")
        for k in range(rgb.shape[2])
    ]
    return np.column_stack(channels)


def seen_texels(
    texels: Texels,
    vertices: np.ndarray,
    faces: np.ndarray,
    camera: Camera,
    mask: np.ndarray,
) -> np.ndarray:
    """Boolean per texel: facing the camera, unoccluded, and on the object in the image."""
    facing = face_normals(vertices, faces)[texels.face][:, 2] > MIN_FACING
    diagonal = float(np.linalg.norm(np.ptp(vertices, axis=0)))
    front = _visible_depth(camera, vertices, faces, texels.position)
    unoccluded = texels.position[:, 2] >= front - 0.01 * diagonal
    pix = camera.project(texels.position)
    cols = np.clip(np.floor(pix[:, 0]).astype(np.int64), 0, camera.width - 1)
    rows = np.clip(np.floor(pix[:, 1]).astype(np.int64), 0, camera.height - 1)
    inside = (pix[:, 0] >= 0) & (pix[:, 0] < camera.width)
    inside &= (pix[:, 1] >= 0) & (pix[:, 1] < camera.height)
    on_object = inside & mask[rows, cols]
    return facing & unoccluded & on_object


def fill_unseen(texels: Texels, colors: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Colours for unseen texels from the nearest seen surface, through a voxel grid.

    Seen colours are averaged into voxels (FILL_GRID on the longest side), empty voxels
    take the colour of the nearest filled one, a light blur softens the steps, and unseen
    texels read the grid trilinearly: O(texels), about 0.3 s at 1024².
    """
    colors = colors.copy()
    if seen.all() or not seen.any():
        return colors
    low = texels.position.min(axis=0)
    extent = float(np.ptp(texels.position, axis=0).max()) or 1.0
    step = extent / (FILL_GRID - 1)
    shape = tuple(int(n) for n in np.floor(np.ptp(texels.position, axis=0) / step) + 3)
    cell = np.floor((texels.position[seen] - low) / step + 1.0).astype(np.int64)
    flat = np.ravel_multi_index(cell.T, shape)
    count = np.bincount(flat, minlength=int(np.prod(shape))).astype(np.float64)
    grid = np.stack(
        [
            np.bincount(flat, weights=colors[seen, k], minlength=len(count))
            for k in range(colors.shape[1])
        ],
        axis=-1,
    )
    filled = count > 0
    grid[filled] = grid[filled] / count[filled, None]
    grid = grid.reshape(*shape, colors.shape[1])
    _, nearest = ndimage.distance_transform_edt(~filled.reshape(shape), return_indices=True)
    grid = grid[tuple(nearest)]
    grid = ndimage.uniform_filter(grid, size=(3, 3, 3, 1), mode="nearest")
    coords = ((texels.position[~seen] - low) / step + 1.0).T
    colors[~seen] = np.column_stack(
        [
            map_coordinates(grid[..., k], coords, order=1, mode="nearest")
            for k in range(grid.shape[-1])
        ]
    )
    return colors


def project_image(
    texels: Texels,
    vertices: np.ndarray,
    faces: np.ndarray,
    rgb: np.ndarray,
    mask: np.ndarray,
    box: tuple[int, int, int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Per-texel colours (n, 3) and the seen flags, unseen ones already filled."""
    height, width = rgb.shape[:2]
    camera = fit_camera(vertices, box, width, height)
    seen = seen_texels(texels, vertices, faces, camera, mask)
    colors = np.zeros((len(texels.index), 3))
    colors[seen] = _sample(rgb, camera.project(texels.position[seen]))
    return fill_unseen(texels, colors, seen), seen
