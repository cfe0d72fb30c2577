"""Silhouette inflation: a closed, rounded solid from a 2-D foreground mask.

The mask is resampled to a grid of at most `max_cells` cells on its longest side. On the
cell centres we solve -Δu = 1 with u = 0 outside the mask (5-point Laplacian, scipy sparse
LU); the surface height is proportional to sqrt(u), which rises like the square root of
the distance to the outline and so rounds the rim (a disc becomes an ellipsoid).

Front and back are two grids that share the outline, so the solid is watertight:

* the mesh vertices are cell corners, plus a centre vertex in each cell that touches the
  outline; corners on the outline have height 0 and are the only vertices the two sides
  share;
* cells inside the shape are split in two along a diagonal, outline cells into a fan of
  four around their centre (never a triangle whose three corners lie on the outline, which
  would be flat on both sides);
* a cell side whose two corners lie on the outline but which separates two foreground
  cells (a one-cell-thin neck) gets a midpoint vertex, so that no edge is used by both
  sides; diagonal-only contacts between cells are closed first, as they would pinch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import sparse
from scipy.sparse.linalg import spsolve

DEFAULT_MAX_CELLS = 128
INFLATION = 1.6  # height = INFLATION * sqrt(u); 2.0 would make a disc a hemisphere


@dataclass(frozen=True)
class InflatedMesh:
    """Vertices (n, 3) in a unit frame (longest image side = 1, Y up, front +Z), faces
    (m, 3) wound outwards, and planar UVs (n, 2) of each vertex in the image (v up)."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    grid_shape: tuple[int, int]


def resample_mask(mask: np.ndarray, max_cells: int) -> np.ndarray:
    """Area-average the mask onto a grid whose longest side is at most max_cells."""
    h, w = mask.shape
    scale = min(1.0, max_cells / max(h, w))
    gh, gw = max(2, round(h * scale)), max(2, round(w * scale))
    image = Image.fromarray((mask * 255).astype(np.uint8))
    small = np.asarray(image.resize((gw, gh), Image.Resampling.BOX), dtype=np.float64)
    return small >= 127.5


def _close_diagonal_contacts(cells: np.ndarray) -> np.ndarray:
    """Fill the empty cells of every 2x2 block whose only contact is diagonal (a pinch)."""
    cells = cells.copy()
    for _ in range(64):
        a, b = cells[:-1, :-1], cells[:-1, 1:]
        c, d = cells[1:, :-1], cells[1:, 1:]
        main = a & d & ~b & ~c
        anti = b & c & ~a & ~d
        if not (main.any() or anti.any()):
            break
        cells[:-1, 1:] |= main
        cells[1:, :-1] |= main
        cells[:-1, :-1] |= anti
        cells[1:, 1:] |= anti
    return cells


def _solve_poisson(cells: np.ndarray) -> np.ndarray:
    """u on cell centres: -Δu = 1 inside, u = 0 on every cell outside (grid spacing 1)."""
    index = np.full(cells.shape, -1, dtype=np.int64)
    count = int(cells.sum())
    index[cells] = np.arange(count)
    rows, cols = [np.arange(count)], [np.arange(count)]
    values = [np.full(count, 4.0)]
    inside = np.argwhere(cells)
    padded = np.pad(index, 1, constant_values=-1)
    for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        other = padded[inside[:, 0] + 1 + dr, inside[:, 1] + 1 + dc]
        keep = other >= 0
        rows.append(index[cells][keep])
        cols.append(other[keep])
        values.append(np.full(int(keep.sum()), -1.0))
    matrix = sparse.csc_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=(count, count),
    )
    u = np.zeros(cells.shape)
    u[cells] = spsolve(matrix, np.ones(count))
    return np.maximum(u, 0.0)


class _Builder:
    """Accumulates vertices (grid row, grid col, u, on_outline) and front faces."""

    def __init__(self) -> None:
        self.points: list[np.ndarray] = []
        self.count = 0

    def add(self, rc: np.ndarray, u: np.ndarray, outline: np.ndarray) -> np.ndarray:
        ids = np.arange(self.count, self.count + len(rc))
        self.points.append(np.column_stack([rc, u, outline]))
        self.count += len(rc)
        return ids


def _corners(cells: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per corner: how many of its 4 cells are foreground, and the averaged u there."""
    padded = np.pad(cells, 1)
    up = np.pad(u, 1)
    blocks = [padded[:-1, :-1], padded[:-1, 1:], padded[1:, :-1], padded[1:, 1:]]
    ublocks = [up[:-1, :-1], up[:-1, 1:], up[1:, :-1], up[1:, 1:]]
    count: np.ndarray = np.stack(blocks).astype(np.int64).sum(axis=0)
    corner_u = np.where(count == 4, np.sum(np.stack(ublocks), axis=0) / 4.0, 0.0)
    on_outline: np.ndarray = count < 4
    return count, corner_u, on_outline


def _front_surface(cells: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex table (row, col, u, outline) and front faces, CCW seen from +Z."""
    gh, gw = cells.shape
    count, corner_u, on_outline = _corners(cells, u)
    builder = _Builder()
    corner_id = np.full((gh + 1, gw + 1), -1, dtype=np.int64)
    used = count > 0
    corner_rc = np.argwhere(used).astype(np.float64)
    corner_id[used] = builder.add(corner_rc, corner_u[used], on_outline[used])

    r, c = np.nonzero(cells)
    tl, tr = corner_id[r, c], corner_id[r, c + 1]
    bl, br = corner_id[r + 1, c], corner_id[r + 1, c + 1]
    touches = (
        on_outline[r, c] | on_outline[r, c + 1] | on_outline[r + 1, c] | on_outline[r + 1, c + 1]
    )

    faces = []
    inner = ~touches
    # in image space (row down) the order tl, bl, br is counter-clockwise seen from +Z
    faces.append(np.column_stack([tl[inner], bl[inner], br[inner]]))
    faces.append(np.column_stack([tl[inner], br[inner], tr[inner]]))

    fr, fc = r[touches], c[touches]
    centre = builder.add(
        np.column_stack([fr + 0.5, fc + 0.5]), u[fr, fc], np.zeros(len(fr), dtype=bool)
    )
    ring = [tl[touches], bl[touches], br[touches], tr[touches]]
    sides = _side_midpoints(cells, u, on_outline, fr, fc, builder)
    for k in range(4):
        a, b, mid = ring[k], ring[(k + 1) % 4], sides[k]
        plain = mid < 0
        faces.append(np.column_stack([centre[plain], a[plain], b[plain]]))
        split = ~plain
        faces.append(np.column_stack([centre[split], a[split], mid[split]]))
        faces.append(np.column_stack([centre[split], mid[split], b[split]]))
    return np.vstack(builder.points), np.vstack(faces).astype(np.int64)


def _side_midpoints(
    cells: np.ndarray,
    u: np.ndarray,
    on_outline: np.ndarray,
    fr: np.ndarray,
    fc: np.ndarray,
    builder: _Builder,
) -> list[np.ndarray]:
    """Midpoint vertex ids for the sides left, bottom, right, top of each outline cell
    (-1 where none): sides between two foreground cells whose corners are both on the
    outline. Each shared side gets one vertex, used by both its cells."""
    gh, gw = cells.shape
    # vertical sides between cell (i, j-1) and (i, j): corners (i, j) and (i+1, j)
    vert = np.zeros((gh, gw + 1), dtype=bool)
    vert[:, 1:-1] = cells[:, :-1] & cells[:, 1:] & on_outline[:-1, 1:-1] & on_outline[1:, 1:-1]
    horiz = np.zeros((gh + 1, gw), dtype=bool)
    horiz[1:-1, :] = cells[:-1, :] & cells[1:, :] & on_outline[1:-1, :-1] & on_outline[1:-1, 1:]
    vid = np.full(vert.shape, -1, dtype=np.int64)
    hid = np.full(horiz.shape, -1, dtype=np.int64)
    vi, vj = np.nonzero(vert)
    vid[vert] = builder.add(
        np.column_stack([vi + 0.5, vj.astype(np.float64)]),
        (u[vi, vj - 1] + u[vi, vj]) / 2.0,
        np.zeros(len(vi), dtype=bool),
    )
    hi, hj = np.nonzero(horiz)
    hid[horiz] = builder.add(
        np.column_stack([hi.astype(np.float64), hj + 0.5]),
        (u[hi - 1, hj] + u[hi, hj]) / 2.0,
        np.zeros(len(hi), dtype=bool),
    )
    # ring order tl -> bl -> br -> tr: sides left, bottom, right, top
    return [vid[fr, fc], hid[fr + 1, fc], vid[fr, fc + 1], hid[fr, fc]]


def inflate_mask(
    mask: np.ndarray, max_cells: int = DEFAULT_MAX_CELLS, inflation: float = INFLATION
) -> InflatedMesh:
    """Watertight inflated solid of a (h, w) boolean mask; see the module docstring."""
    h, w = mask.shape
    cells = resample_mask(mask, max_cells)
    cells = np.pad(cells, 1)  # a frame of background keeps every outline inside the grid
    cells = _close_diagonal_contacts(cells)
    if not cells.any():
        raise ValueError("the mask is empty at the meshing resolution")
    u = _solve_poisson(cells)
    table, front = _front_surface(cells, u)
    gh, gw = cells.shape[0] - 2, cells.shape[1] - 2
    cell_h, cell_w = h / gh, w / gw
    row_px = (table[:, 0] - 1.0) * cell_h
    col_px = (table[:, 1] - 1.0) * cell_w
    unit = float(max(h, w))
    height = inflation * np.sqrt(table[:, 2]) * np.sqrt(cell_h * cell_w) / unit
    outline = table[:, 3].astype(bool)

    xy = np.column_stack([(col_px - w / 2.0) / unit, (h / 2.0 - row_px) / unit])
    uv = np.column_stack([col_px / w, 1.0 - row_px / h]).clip(0.0, 1.0)
    back_of = np.arange(len(table))
    inner = np.flatnonzero(~outline)
    back_of[inner] = len(table) + np.arange(len(inner))
    vertices = np.vstack(
        [np.column_stack([xy, height]), np.column_stack([xy[inner], -height[inner]])]
    )
    uvs = np.vstack([uv, uv[inner]])
    back = back_of[front][:, ::-1]
    faces = np.vstack([front, back])
    used = np.unique(faces)
    remap = np.full(len(vertices), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return InflatedMesh(vertices[used], remap[faces], uvs[used], (gh, gw))
