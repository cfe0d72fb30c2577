"""Skinning weights: bone heat (Baran and Popovic 2007, "Pinocchio") or rigid binding.

Bone heat treats each bone as a heat source on the surface. With the cotangent Laplacian
L and the Voronoi mass matrix M (libigl), weights of bone i solve

    (-L + M H) w_i = M H p_i

where H is diagonal with H_jj = 1 / d_j^2 (d_j: distance from vertex j to its nearest
bone) and p_i(j) = 1 when bone i is nearest to vertex j. The matrix is the same for every
bone, so it is factorised once (sparse LU) and solved for all bones at once. Pinocchio
counts only bones visible from the vertex; here the nearest bone by distance is used,
which differs only where a limb passes close to another part of the body.

Bones are (parent, child) joint pairs and deform with their parent joint, so bone weights
are summed onto parent joints. Per vertex the MAX_INFLUENCES largest joint weights are
kept, clipped at zero and renormalised to sum to one.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

MAX_INFLUENCES = 4
_TIE = 1e-6  # relative: bones this close to the nearest count as nearest too


def bone_distances(points: np.ndarray, joints: np.ndarray, bones: np.ndarray) -> np.ndarray:
    """(n, B) distance from every point to every bone segment."""
    a = joints[bones[:, 0]]
    b = joints[bones[:, 1]]
    ab = b - a
    length2 = np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-300)
    out = np.empty((len(points), len(bones)))
    for start in range(0, len(points), 20_000):
        p = points[start : start + 20_000, None, :]
        t = np.clip(np.einsum("nbk,bk->nb", p - a, ab) / length2, 0.0, 1.0)
        closest = a + t[..., None] * ab
        out[start : start + 20_000] = np.linalg.norm(p - closest, axis=2)
    return out


def _to_joints(bone_weights: np.ndarray, bones: np.ndarray, joint_count: int) -> np.ndarray:
    """Sum each bone's weights onto its parent joint: (n, J)."""
    out = np.zeros((len(bone_weights), joint_count))
    np.add.at(out.T, bones[:, 0], bone_weights.T)
    return out


def limit_influences(weights: np.ndarray, nearest_joint: np.ndarray) -> np.ndarray:
    """Keep the MAX_INFLUENCES largest, clip negatives, renormalise; rows sum to 1.

    A row with no positive weight goes entirely to `nearest_joint` of that vertex.
    """
    weights = np.clip(weights, 0.0, None)
    if weights.shape[1] > MAX_INFLUENCES:
        cut = np.partition(weights, -MAX_INFLUENCES, axis=1)[:, -MAX_INFLUENCES][:, None]
        keep = weights >= cut
        # ties at the cut could keep more than four: drop the extra ones by index
        extra = np.cumsum(keep[:, ::-1], axis=1)[:, ::-1] > MAX_INFLUENCES
        weights = np.where(keep & ~extra, weights, 0.0)
    total = weights.sum(axis=1)
    empty = total <= 0
    weights[empty] = 0.0
    weights[np.flatnonzero(empty), nearest_joint[empty]] = 1.0
    return weights / weights.sum(axis=1, keepdims=True)


def rigid_weights(points: np.ndarray, joints: np.ndarray, bones: np.ndarray) -> np.ndarray:
    """Every vertex fully bound to the parent joint of its nearest bone: (n, J)."""
    nearest = bones[np.argmin(bone_distances(points, joints, bones), axis=1), 0]
    out = np.zeros((len(points), len(joints)))
    out[np.arange(len(points)), nearest] = 1.0
    return out


def heat_weights(
    vertices: np.ndarray, faces: np.ndarray, joints: np.ndarray, bones: np.ndarray
) -> np.ndarray:
    """Bone-heat joint weights (n, J) for a welded triangle mesh; rows sum to 1."""
    import igl
    from scipy.sparse.linalg import splu

    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    distance = bone_distances(v, joints, bones)
    nearest = distance.min(axis=1)
    scale = float(np.linalg.norm(v.max(axis=0) - v.min(axis=0)))
    nearest_safe = np.maximum(nearest, 1e-6 * scale)
    is_nearest = distance <= nearest[:, None] + _TIE * scale
    p = is_nearest / is_nearest.sum(axis=1, keepdims=True)
    heat = 1.0 / nearest_safe**2
    laplacian = igl.cotmatrix(v, f)
    mass = igl.massmatrix(v, f, igl.MASSMATRIX_TYPE_VORONOI).diagonal()
    used = np.zeros(len(v), dtype=bool)
    used[f.reshape(-1)] = True
    mass = np.where(used & (mass > 0), mass, 0.0)
    # unreferenced or zero-area vertices have no Laplacian row: bind them by distance alone
    lonely = mass == 0
    diagonal = np.where(lonely, 1.0, mass * heat)
    system = (-laplacian + sparse.diags(diagonal)).tocsc()
    rhs = p * np.where(lonely, 1.0, mass * heat)[:, None]
    bone_weights = splu(system).solve(rhs)
    joint_nearest = bones[np.argmin(distance, axis=1), 0]
    return limit_influences(_to_joints(bone_weights, bones, len(joints)), joint_nearest)
