"""UV atlas with xatlas: charts, distortion-driven splitting, and packing or a plain grid.

1. xatlas (MIT) cuts each part into charts and parameterises them (LSCM / planar / ortho).
   Parts never share a chart: each part is its own mesh in the atlas.
2. Every chart's distortion is measured (uv_distortion.py: area-weighted symmetric
   Dirichlet at uniform scale, 1 = isometric). Charts over the threshold are charted
   again, each as its own mesh, with xatlas' max_chart_area at half their area and a
   lower max_cost; a chart xatlas hands back whole (it keeps near-planar regions
   together) is cut in two across its main axis instead. Every round thus at least
   halves the offending charts, up to MAX_SPLIT_ROUNDS rounds. A one-triangle chart is
   laid out flat at true size (distortion exactly 1), so any threshold >= 1 is reachable;
   charts still over the threshold after the last round are reported, not hidden.
   Distortions are compared at DECIMALS decimals, as reported.
3. Charts are rescaled to one texel density (UV area = surface area), mirrored charts are
   flipped back (so tangent frames keep one handedness), and laid out on a grid. With
   packing, the grid goes through xatlas' packer as a UV mesh into a square 1024-texel
   atlas with 2-texel padding; the packer's placement is taken and each chart's exact
   UVs are fitted onto it by a similarity, so packing adds no distortion. Without
   packing, the grid itself is normalised into [0, 1]^2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from deployments.geometry.uv_distortion import chart_distortion, isometric_layout

MAX_SPLIT_ROUNDS = 12
ATLAS_RESOLUTION = 1024
PADDING_TEXELS = 2
DECIMALS = 4  # distortions are compared and reported rounded to this many decimals


@dataclass
class Chart:
    faces: np.ndarray  # (m,) face ids into the unwrapped mesh
    uvs: np.ndarray  # (m, 3, 2) corner UVs, any scale
    distortion: float = 1.0


@dataclass
class UvAtlas:
    """The unwrapped mesh (vertices split along chart seams) and what was measured."""

    vertices: np.ndarray  # (n, 3)
    faces: np.ndarray  # (m, 3) into vertices; same order as the input faces
    uvs: np.ndarray  # (n, 2) in [0, 1]
    source_vertex: np.ndarray  # (n,) index of each vertex in the input mesh
    face_chart: np.ndarray  # (m,) chart id per face
    chart_distortion: np.ndarray  # (k,) measured on the final UVs
    chart_faces: np.ndarray  # (k,)
    distortion: float  # area-weighted over the whole mesh
    split_rounds: int
    utilization: float


CHARTING_SIZE = 100.0  # bounding-box diagonal of the copy that xatlas charts


def _xatlas_charts(
    vertices: np.ndarray, faces: np.ndarray, groups: list[np.ndarray], options: object
) -> list[list[Chart]]:
    """Chart every group of faces as its own xatlas mesh; corner UVs in texel units."""
    import xatlas

    atlas = xatlas.Atlas()
    for ids in groups:
        used, local = np.unique(faces[ids], return_inverse=True)
        atlas.add_mesh(vertices[used].astype(np.float32), local.reshape(-1, 3).astype(np.uint32))
    pack = xatlas.PackOptions()
    pack.resolution = 256  # packing is redone at the end; keep these rounds cheap
    atlas.generate(options, pack)
    size = np.array([atlas.width, atlas.height], dtype=np.float64)
    out: list[list[Chart]] = []
    for index, ids in enumerate(groups):
        _, indices, uvs = atlas.get_mesh(index)
        _, chart_of_vertex = atlas.get_mesh_vertex_assignment(index)
        corner_uv = uvs.astype(np.float64)[indices] * size  # isotropic texel units
        labels = np.unique(chart_of_vertex[indices[:, 0]], return_inverse=True)[1]
        out.append(
            [Chart(ids[labels == k], corner_uv[labels == k]) for k in range(int(labels.max()) + 1)]
        )
    return out


def _options(round_index: int, max_area: float = 0.0) -> object:
    import xatlas

    options = xatlas.ChartOptions()
    if round_index:
        options.max_cost = 2.0 / 2**round_index
        options.max_chart_area = float(max_area)
    return options


def _measure(vertices: np.ndarray, faces: np.ndarray, charts: list[Chart]) -> None:
    for chart in charts:
        if len(chart.faces) == 1:
            chart.uvs = isometric_layout(vertices[faces[chart.faces]])
            chart.distortion = 1.0
            continue
        labels = np.zeros(len(chart.faces), dtype=np.int64)
        value, _, _ = chart_distortion(vertices[faces[chart.faces]], chart.uvs, labels, 1)
        chart.distortion = float(value[0])


def _halves(vertices: np.ndarray, faces: np.ndarray, ids: np.ndarray) -> list[np.ndarray]:
    """Cut a face set in two at the median of its face centres along their main axis."""
    centres = vertices[faces[ids]].mean(axis=1)
    centred = centres - centres.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    order = np.argsort(centred @ axis, kind="stable")
    half = len(ids) // 2
    return [ids[order[:half]], ids[order[half:]]]


def _area(vertices: np.ndarray, faces: np.ndarray, ids: np.ndarray) -> float:
    tri = vertices[faces[ids]]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return float(np.linalg.norm(cross, axis=1).sum() / 2)


def _split_round(
    vertices: np.ndarray, faces: np.ndarray, pending: list[Chart], round_index: int
) -> list[Chart]:
    """Chart the pending charts again so that each comes back in at least two pieces.

    xatlas gets each chart as its own mesh with max_chart_area at half the chart's area
    (charts are bucketed by area so that one setting serves a bucket). A chart that xatlas
    returns whole (it keeps near-planar regions together regardless) is cut in two along
    its main axis, and both halves are charted again.
    """
    groups = [c.faces for c in pending]
    area = np.array([_area(vertices, faces, ids) for ids in groups])
    bucket = np.floor(np.log2(np.maximum(area, 1e-300)))
    pieces: list[list[Chart]] = [[] for _ in groups]
    for level in np.unique(bucket):
        members = np.flatnonzero(bucket == level)
        options = _options(round_index, float(area[members].min()) / 2)
        found = _xatlas_charts(vertices, faces, [groups[i] for i in members], options)
        for i, charts in zip(members, found, strict=True):
            pieces[i] = charts
    whole = [i for i, charts in enumerate(pieces) if len(charts) == 1 and len(groups[i]) > 1]
    if whole:
        halves = [h for i in whole for h in _halves(vertices, faces, groups[i])]
        redone = _xatlas_charts(vertices, faces, halves, _options(round_index))
        for n, index in enumerate(whole):
            pieces[index] = redone[2 * n] + redone[2 * n + 1]
    return [chart for charts in pieces for chart in charts]


def make_charts(
    vertices: np.ndarray,
    faces: np.ndarray,
    parts: list[np.ndarray],
    threshold: float,
    progress: Callable[[float], None] | None = None,
) -> tuple[list[Chart], int]:
    """Charts whose distortion is under `threshold` where reachable; and the rounds used."""
    # xatlas works in float32 with absolute area epsilons: on a small model (a bunny a few
    # centimetres across, decimated) tiny charts come back with NaN UVs. Distortion and
    # chart shapes do not depend on scale, so chart a copy scaled to a fixed size.
    diagonal = float(np.linalg.norm(np.ptp(vertices, axis=0))) or 1.0
    vertices = vertices * (CHARTING_SIZE / diagonal)
    charts = [c for group in _xatlas_charts(vertices, faces, parts, _options(0)) for c in group]
    _measure(vertices, faces, charts)
    limit = threshold + 0.5 * 10.0**-DECIMALS  # what rounds to the threshold passes
    done = [c for c in charts if c.distortion < limit]
    pending = [c for c in charts if c.distortion >= limit]
    rounds = 0
    while pending and rounds < MAX_SPLIT_ROUNDS:
        rounds += 1
        if progress is not None:
            progress(rounds / MAX_SPLIT_ROUNDS)
        pieces = _split_round(vertices, faces, pending, rounds)
        _measure(vertices, faces, pieces)
        done += [c for c in pieces if c.distortion < limit]
        pending = [c for c in pieces if c.distortion >= limit]
    charts = done + pending
    charts.sort(key=lambda c: int(c.faces.min()))
    return charts, rounds


def _flatten_chart(vertices: np.ndarray, faces: np.ndarray, chart: Chart) -> np.ndarray:
    """Corner UVs at true size (UV area = surface area), mirrored charts flipped back,
    with the chart's bounding box starting at the origin."""
    tri = vertices[faces[chart.faces]]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    uv = chart.uvs
    e1, e2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    signed = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    uv_area = np.abs(signed).sum()
    scale = np.sqrt(area.sum() / uv_area) if uv_area > 0 and area.sum() > 0 else 1.0
    uv = uv * scale
    if signed.sum() < 0:
        uv = uv * np.array([-1.0, 1.0])
    flat = uv.reshape(-1, 2)
    return uv - flat.min(axis=0)


def grid_layout(chart_uvs: list[np.ndarray], gap: float = 0.05) -> tuple[list[np.ndarray], float]:
    """Place charts in equal square cells, row by row; returns moved UVs and the side."""
    sizes = np.array([uv.reshape(-1, 2).max(axis=0) for uv in chart_uvs])
    cell = float(sizes.max()) * (1.0 + gap) if len(sizes) else 1.0
    cell = cell if cell > 0 else 1.0
    cols = int(np.ceil(np.sqrt(len(chart_uvs)))) or 1
    rows = int(np.ceil(len(chart_uvs) / cols)) or 1
    placed = [
        uv + np.array([(i % cols) * cell, (i // cols) * cell]) + cell * gap / 2
        for i, uv in enumerate(chart_uvs)
    ]
    return placed, max(cols, rows) * cell


def _chart_vertices(
    faces: np.ndarray, charts: list[Chart], corner_uvs: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split vertices per chart: (source vertex, uv) per new vertex, new faces, face chart."""
    count = len(faces)
    new_faces = np.empty((count, 3), dtype=np.int64)
    face_chart = np.empty(count, dtype=np.int64)
    sources, uvs = [], []
    offset = 0
    for index, (chart, uv) in enumerate(zip(charts, corner_uvs, strict=True)):
        corners = faces[chart.faces].reshape(-1)
        keys = np.column_stack([corners.astype(np.float64), uv.reshape(-1, 2)])
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        new_faces[chart.faces] = inverse.reshape(-1, 3) + offset
        face_chart[chart.faces] = index
        sources.append(unique[:, 0].astype(np.int64))
        uvs.append(unique[:, 1:])
        offset += len(unique)
    return np.concatenate(sources), np.vstack(uvs), new_faces, face_chart


def _fit_similarities(
    exact: np.ndarray, packed: np.ndarray, labels: np.ndarray, count: int
) -> np.ndarray:
    """Map each chart's exact UVs onto where the packer put it: one scale for all charts
    (uniform texel density), a rotation and a translation per chart (least squares)."""
    weights = np.bincount(labels, minlength=count).astype(np.float64)
    safe = np.maximum(weights, 1.0)[:, None]
    mean_x = np.column_stack([np.bincount(labels, exact[:, i], count) for i in (0, 1)]) / safe
    mean_y = np.column_stack([np.bincount(labels, packed[:, i], count) for i in (0, 1)]) / safe
    x = exact - mean_x[labels]
    y = packed - mean_y[labels]
    scale = np.sqrt((y**2).sum() / max((x**2).sum(), 1e-300))
    cov = np.empty((count, 2, 2))
    for i in (0, 1):
        for j in (0, 1):
            cov[:, i, j] = np.bincount(labels, x[:, i] * y[:, j], count)
    u, _, vt = np.linalg.svd(cov)
    flip = np.sign(np.linalg.det(u @ vt))
    u[:, :, 1] *= flip[:, None]  # proper rotations only: the packer does not mirror
    rotation = np.transpose(u @ vt, (0, 2, 1))  # y ~ R x per chart
    moved = np.einsum("nij,nj->ni", rotation[labels], x) * scale
    return moved + mean_y[labels]


def _pack(
    uvs: np.ndarray, faces: np.ndarray, face_chart: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """xatlas packing of a UV mesh: (vertex map, faces, uvs in [0,1]^2, utilisation).

    xatlas moves charts as wholes but nudges the vertices of small charts (up to 5% of
    their distortion on two-texel charts), so only its placement is taken: every chart's
    exact UVs are fitted onto the packed ones by a similarity (see _fit_similarities).
    Input UVs are scaled up first; xatlas snaps the coordinates of small UV meshes.
    """
    import xatlas

    atlas = xatlas.Atlas()
    atlas.add_uv_mesh((uvs * 1e4).astype(np.float32), faces.astype(np.uint32))
    pack = xatlas.PackOptions()
    pack.resolution = ATLAS_RESOLUTION
    pack.padding = PADDING_TEXELS
    # xatlas' 90-degree chart rotation swaps u and v, which mirrors the chart: keep only
    # the rotation to the chart's main axis, so that no chart comes out mirrored
    pack.rotate_charts = False
    pack.rotate_charts_to_axis = True
    atlas.generate(xatlas.ChartOptions(), pack)
    vmap, indices, packed = atlas.get_mesh(0)
    vmap, indices = vmap.astype(np.int64), indices.astype(np.int64)
    size = np.array([atlas.width, atlas.height], dtype=np.float64)
    packed = packed.astype(np.float64) * size / size.max()  # square texels, not stretched
    vertex_chart = np.empty(len(vmap), dtype=np.int64)
    vertex_chart[indices.reshape(-1)] = np.repeat(face_chart, 3)
    fitted = _fit_similarities(uvs[vmap], packed, vertex_chart, count)
    return vmap, indices, np.clip(fitted, 0.0, 1.0), float(atlas.utilization)


def assemble_atlas(
    vertices: np.ndarray, faces: np.ndarray, charts: list[Chart], pack: bool, rounds: int
) -> UvAtlas:
    """Lay the charts out (packed or grid) and measure the result on the final UVs."""
    flat = [_flatten_chart(vertices, faces, c) for c in charts]
    placed, side = grid_layout(flat)
    sources, uvs, new_faces, face_chart = _chart_vertices(faces, charts, placed)
    uvs = uvs / side
    utilization = float(sum(_uv_area(u / side) for u in placed))
    if pack:
        vmap, new_faces, uvs, utilization = _pack(uvs, new_faces, face_chart, len(charts))
        sources = sources[vmap]
    out_vertices = vertices[sources]
    positions = out_vertices[new_faces]
    distortion, area, energy = chart_distortion(positions, uvs[new_faces], face_chart, len(charts))
    total = float(area.sum())
    return UvAtlas(
        vertices=out_vertices,
        faces=new_faces,
        uvs=uvs,
        source_vertex=sources,
        face_chart=face_chart,
        chart_distortion=distortion,
        chart_faces=np.bincount(face_chart, minlength=len(charts)),
        distortion=float((area * energy).sum() / total) if total > 0 else 1.0,
        split_rounds=rounds,
        utilization=utilization,
    )


def _uv_area(uv: np.ndarray) -> float:
    e1, e2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    return float(np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).sum() / 2)
