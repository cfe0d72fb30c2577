"""Procedural solid textures: colour, metallic and roughness as functions of 3-D position.

Patterns are evaluated at the surface point behind each texel, so they run continuously
across UV seams. Positions are normalised first (bounding-box diagonal = 1), so a pattern
looks the same on a mug and on a house. Noise is integer-hashed value noise with fractal
octaves: deterministic for a seed on every platform (no float-sine hashing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates

from deployments.geometry.materials import RGB

LATTICE_LIMIT = 8_000_000  # lattice values hashed up front; beyond this, hash per point
_PRIMES = np.array([73856093, 19349663, 83492791], dtype=np.uint64)


def _hash(cells: np.ndarray, seed: int) -> np.ndarray:
    """Uniform [0, 1) per integer lattice point (n, 3)."""
    h = cells.astype(np.int64).view(np.uint64) * _PRIMES
    h = h[:, 0] ^ h[:, 1] ^ h[:, 2] ^ np.uint64((seed * 2654435761) & 0xFFFFFFFF)
    h ^= h >> np.uint64(15)
    h *= np.uint64(0x2C1B3C6D)
    h ^= h >> np.uint64(12)
    h *= np.uint64(0x297A2D39)
    h ^= h >> np.uint64(15)
    return (h & np.uint64(0xFFFFFF)).astype(np.float64) / float(0xFFFFFF)


def _lattice_noise(points: np.ndarray, seed: int) -> np.ndarray:
    """Value noise straight from the hash at each point's 8 lattice corners."""
    base = np.floor(points)
    frac = points - base
    w = frac * frac * (3.0 - 2.0 * frac)
    base = base.astype(np.int64)
    out = np.zeros(len(points))
    for corner in range(8):
        offset = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        weight = np.prod(np.where(offset == 1, w, 1.0 - w), axis=1)
        out += weight * _hash(base + offset, seed)
    return out


def value_noise(points: np.ndarray, seed: int = 0) -> np.ndarray:
    """Smooth noise in [0, 1] with unit lattice spacing.

    When the points span a modest lattice, its values are hashed once and interpolated
    in C (`map_coordinates`, with smoothstep-remapped coordinates): the same values as
    hashing every corner of every point, about ten times faster.
    """
    if len(points) == 0:
        return np.zeros(0)
    low = np.floor(points.min(axis=0))
    dims = (np.floor(points.max(axis=0)) - low).astype(np.int64) + 2
    if int(np.prod(dims)) > LATTICE_LIMIT or len(points) < int(np.prod(dims)):
        return _lattice_noise(points, seed)
    lattice = np.indices(tuple(dims)).reshape(3, -1).T + low.astype(np.int64)
    table = _hash(lattice, seed).reshape(tuple(dims))
    local = points - low
    base = np.floor(local)
    frac = local - base
    coords = (base + frac * frac * (3.0 - 2.0 * frac)).T
    return map_coordinates(table, coords, order=1, mode="nearest", prefilter=False)


def fbm(points: np.ndarray, octaves: int = 4, seed: int = 0) -> np.ndarray:
    """Fractal sum of value noise, in [0, 1]."""
    total, amplitude, norm = np.zeros(len(points)), 1.0, 0.0
    for octave in range(octaves):
        total += amplitude * value_noise(points * (2.0**octave), seed + 17 * octave)
        norm += amplitude
        amplitude *= 0.5
    return total / norm


@dataclass
class Layer:
    """Per-point colour (n, 3) in 0..1, metallic (n,) and roughness (n,)."""

    color: np.ndarray
    metallic: np.ndarray
    roughness: np.ndarray


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a * (1.0 - t[:, None]) + b * t[:, None]


def _plane(q: np.ndarray, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two in-plane coordinates for the dominant axis of each normal (triplanar pick)."""
    axis = np.abs(normal).argmax(axis=1)
    u = np.where(axis == 0, q[:, 2], q[:, 0])
    v = np.where(axis == 1, q[:, 2], q[:, 1])
    return u, v


def _flat(q, n, c, seed):
    return c * (0.96 + 0.08 * fbm(q * 8.0, 3, seed))[:, None]


def _wood(q, n, c, seed):
    rings = np.hypot(q[:, 0], q[:, 2]) * 40.0 + 3.0 * fbm(q * 3.0, 3, seed)
    t = 0.5 + 0.5 * np.sin(rings * 2 * np.pi)
    grain = fbm(q * np.array([60.0, 6.0, 60.0]), 2, seed + 1)
    return _mix(c * 1.12, c * 0.7, t**3) * (0.9 + 0.2 * grain)[:, None]


def _brushed(q, n, c, seed):
    streak = fbm(q * np.array([3.0, 300.0, 300.0]), 2, seed)
    return c * (0.9 + 0.2 * streak)[:, None]


def _stone(q, n, c, seed):
    body = fbm(q * 12.0, 4, seed)
    speck = value_noise(q * 150.0, seed + 5) > 0.82
    color = c * (0.75 + 0.5 * body)[:, None]
    color[speck] *= 0.7
    return color


def _marble(q, n, c, seed):
    v = np.sin(q[:, 0] * 14.0 + q[:, 1] * 6.0 + 7.0 * fbm(q * 3.0, 4, seed))
    vein = (1.0 - np.abs(v)) ** 10
    return _mix(c, np.array([0.42, 0.42, 0.45]), vein * 0.8)


def _fabric(q, n, c, seed):
    u, v = _plane(q, n)
    weave = np.sin(u * 900.0) * np.sin(v * 900.0)
    return c * (0.9 + 0.08 * weave + 0.1 * fbm(q * 20.0, 2, seed))[:, None]


def _leather(q, n, c, seed):
    return c * (0.8 + 0.35 * fbm(q * 70.0, 3, seed))[:, None]


def _brick(q, n, c, seed):
    u, v = _plane(q, n)
    rows = np.floor(v * 30.0)
    cols = np.floor(u * 12.0 + 0.5 * (rows % 2))
    in_row, in_col = (v * 30.0) % 1.0, (u * 12.0 + 0.5 * (rows % 2)) % 1.0
    mortar = (in_row < 0.12) | (in_col < 0.05)
    cells = np.column_stack([rows, cols, np.zeros_like(rows)])
    tint = 0.8 + 0.35 * _hash(cells, seed)
    color = c * tint[:, None] * (0.92 + 0.16 * fbm(q * 40.0, 2, seed))[:, None]
    color[mortar] = np.array([0.78, 0.76, 0.72])
    return color


def _foliage(q, n, c, seed):
    t = fbm(q * 15.0, 4, seed)
    hue = np.array([1.15, 1.0, 0.7])
    return _mix(c * 0.65, np.clip(c * hue * 1.25, 0, 1), t)


def _fur(q, n, c, seed):
    return c * (0.75 + 0.4 * fbm(q * np.array([80.0, 20.0, 80.0]), 3, seed))[:, None]


def _scales(q, n, c, seed):
    u, v = _plane(q, n)
    cell = 0.5 + 0.5 * np.sin(u * 120.0 + np.sin(v * 120.0) * 1.5) * np.sin(v * 120.0)
    return c * (0.8 + 0.3 * cell)[:, None]


PATTERNS: dict[str, Callable[..., np.ndarray]] = {
    "flat": _flat,
    "wood": _wood,
    "brushed": _brushed,
    "rust": _brushed,
    "stone": _stone,
    "marble": _marble,
    "fabric": _fabric,
    "leather": _leather,
    "brick": _brick,
    "foliage": _foliage,
    "fur": _fur,
    "scales": _scales,
}
RUST_COLORS = (np.array([0.42, 0.18, 0.07]), np.array([0.66, 0.33, 0.12]))


def normalise(points: np.ndarray) -> np.ndarray:
    """Positions with the bounding-box diagonal scaled to 1, minimum corner at the origin."""
    low = points.min(axis=0)
    diagonal = float(np.linalg.norm(np.ptp(points, axis=0))) or 1.0
    return (points - low) / diagonal


def shade(
    pattern: str,
    color: RGB,
    metallic: float,
    roughness: float,
    q: np.ndarray,
    normal: np.ndarray,
    seed: int = 0,
    worn: bool = False,
) -> Layer:
    """Evaluate a material at normalised points `q` with unit normals."""
    base = np.asarray(color, dtype=np.float64)
    rgb = PATTERNS.get(pattern, _flat)(q, normal, base, seed)
    metal = np.full(len(q), float(metallic))
    rough = np.full(len(q), float(roughness))
    if pattern == "rust":
        patch = np.clip((fbm(q * 6.0, 4, seed + 3) - 0.45) * 6.0, 0.0, 1.0)
        rust = _mix(RUST_COLORS[0], RUST_COLORS[1], fbm(q * 40.0, 2, seed + 4))
        rgb = _mix(rgb, rust, patch)
        metal = metal * (1.0 - patch)
        rough = rough + (0.92 - rough) * patch
    if worn:
        grime = np.clip((fbm(q * 5.0, 3, seed + 9) - 0.5) * 4.0, 0.0, 1.0)
        rgb = rgb * (1.0 - 0.35 * grime)[:, None]
        rough = rough + (0.95 - rough) * grime * 0.6
    return Layer(np.clip(rgb, 0.0, 1.0), np.clip(metal, 0, 1), np.clip(rough, 0.02, 1))
