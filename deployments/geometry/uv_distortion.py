"""Distortion of a UV chart: area-weighted symmetric Dirichlet energy at uniform scale.

Per triangle, J is the 2x2 Jacobian of the map from the triangle (in its own plane) to UV
space, with singular values s1 >= s2 (the stretch along the principal directions). The
symmetric Dirichlet energy

    E = (s1^2 + s1^-2 + s2^2 + s2^-2) / 4

is 1 for an isometry and grows both when UVs stretch and when they squash (s = 2 or
s = 0.5 both give 2.125 when the other direction is exact; s1 = s2 = 1.5 gives 1.35).
The scale of a chart in the atlas is arbitrary (packing rescales it), so each chart is
first scaled so that its UV area equals its surface area; a chart that is isometric up to
scale (e.g. any planar region, or a single triangle) then measures exactly 1.

Chart distortion = sum(area * E) / sum(area) over its triangles (3-D areas), and the
distortion of a whole atlas is the same mean over all triangles. Values are >= 1.
Triangles whose UV orientation disagrees with the rest of their chart (folds) and UV
triangles of zero area count as CAP; E is capped there so that one sliver cannot make a
chart infinite. Triangles of zero surface area carry no weight.
"""

from __future__ import annotations

import numpy as np

CAP = 1000.0


def jacobian_singular_values(
    positions: np.ndarray, uvs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per triangle: 3-D area (m,), singular values of J (m, 2) and sign of det J (m,).

    `positions` is (m, 3, 3) corner positions, `uvs` (m, 3, 2) corner UVs.
    """
    e1 = positions[:, 1] - positions[:, 0]
    e2 = positions[:, 2] - positions[:, 0]
    normal = np.cross(e1, e2)
    double_area = np.linalg.norm(normal, axis=1)
    length = np.linalg.norm(e1, axis=1)
    ok = (double_area > 0) & (length > 0)
    x_axis = e1 / np.where(length > 0, length, 1.0)[:, None]
    y_axis = np.cross(normal / np.where(ok, double_area, 1.0)[:, None], x_axis)
    # columns of `flat` are the two edges in the triangle's own orthonormal frame
    flat = np.zeros((len(positions), 2, 2))
    flat[:, 0, 0] = length
    flat[:, 0, 1] = np.einsum("ij,ij->i", e2, x_axis)
    flat[:, 1, 1] = np.einsum("ij,ij->i", e2, y_axis)
    flat[~ok] = np.eye(2)
    edges_uv = np.stack([uvs[:, 1] - uvs[:, 0], uvs[:, 2] - uvs[:, 0]], axis=2)
    jac = edges_uv @ np.linalg.inv(flat)
    singular = np.linalg.svd(jac, compute_uv=False)
    sign = np.sign(np.linalg.det(jac))
    area = np.where(ok, double_area / 2.0, 0.0)
    return area, singular, sign


def chart_energies(
    area: np.ndarray, singular: np.ndarray, sign: np.ndarray, labels: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-triangle energy (m,) and per-chart area-weighted distortion (count,)."""
    uv_area = area * singular[:, 0] * singular[:, 1]
    chart_area = np.bincount(labels, weights=area, minlength=count)
    chart_uv = np.bincount(labels, weights=uv_area, minlength=count)
    scale = np.sqrt(np.divide(chart_area, chart_uv, out=np.ones(count), where=chart_uv > 0))
    s = singular * scale[labels][:, None]
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        energy = (s[:, 0] ** 2 + s[:, 0] ** -2 + s[:, 1] ** 2 + s[:, 1] ** -2) / 4.0
    energy = np.where(np.isfinite(energy), np.minimum(energy, CAP), CAP)
    # orientation of a chart = sign of its area-weighted UV area; disagreeing faces fold
    orientation = np.bincount(labels, weights=uv_area * sign, minlength=count)
    majority = np.where(orientation >= 0, 1.0, -1.0)[labels]
    energy = np.where((sign != 0) & (sign != majority), CAP, energy)
    energy = np.where(area > 0, energy, 1.0)
    weighted = np.bincount(labels, weights=area * energy, minlength=count)
    distortion = np.divide(weighted, chart_area, out=np.ones(count), where=chart_area > 0)
    return energy, distortion


def chart_distortion(
    positions: np.ndarray, uvs: np.ndarray, labels: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-chart distortion (count,), per-triangle area (m,) and energy (m,)."""
    area, singular, sign = jacobian_singular_values(positions, uvs)
    energy, distortion = chart_energies(area, singular, sign, labels, count)
    return distortion, area, energy


def isometric_layout(positions: np.ndarray) -> np.ndarray:
    """UVs (m, 3, 2) laying each triangle flat at true size, counter-clockwise."""
    e1 = positions[:, 1] - positions[:, 0]
    e2 = positions[:, 2] - positions[:, 0]
    normal = np.cross(e1, e2)
    length = np.linalg.norm(e1, axis=1)
    x_axis = e1 / np.where(length > 0, length, 1.0)[:, None]
    norm = np.linalg.norm(normal, axis=1)
    y_axis = np.cross(normal / np.where(norm > 0, norm, 1.0)[:, None], x_axis)
    uvs = np.zeros((len(positions), 3, 2))
    uvs[:, 1, 0] = length
    uvs[:, 2, 0] = np.einsum("ij,ij->i", e2, x_axis)
    uvs[:, 2, 1] = np.einsum("ij,ij->i", e2, y_axis)
    return uvs
