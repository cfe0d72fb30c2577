"""Read FBX geometry (positions and triangulated faces) into a trimesh Scene with pyufbx.

pyufbx 0.0.7 (MIT, bindings for ufbx) is the only permissive in-process FBX reader we
found, and it has two quirks handled here:

* `Mesh.vertex_positions` hands back a float32 view over ufbx's `ufbx_real` data, which is
  double in the shipped build, so the values come out garbled. A one-time probe on a tiny
  known file tells which layout the installed build has, and the positions are re-read
  with the right element type from the same (live) buffer.
* `Node.world_transform` fills a C-ordered array in column-major order, so it is the
  transpose of the node-to-world matrix.

The bindings load with ufbx's default options (no axis conversion), so the file's axes are
rotated here to +Y up and +Z front, as glTF expects. Coordinates stay in the file's units
(FBX often uses centimetres): every other loader here keeps numbers as stored, too.

Polygons are fan-triangulated (the bindings do not expose ufbx's triangulator), which is
exact for the convex faces exporters write. Materials, UVs, skins and animation are not
read: callers only need the surface.
"""

from __future__ import annotations

import ctypes
import functools
import tempfile
from pathlib import Path

import numpy as np
import trimesh

from deployments.geometry.errors import MeshFormatError

_PROBE_VALUES = np.arange(1.0, 10.0).reshape(3, 3)
_PROBE_FBX = """; FBX 7.4.0 project file
FBXHeaderExtension:  {
\tFBXHeaderVersion: 1003
\tFBXVersion: 7400
}
Objects:  {
\tGeometry: 1, "Geometry::probe", "Mesh" {
\t\tVertices: *9 {
\t\t\ta: 1,2,3,4,5,6,7,8,9
\t\t}
\t\tPolygonVertexIndex: *3 {
\t\t\ta: 0,1,-3
\t\t}
\t}
\tModel: 2, "Model::probe", "Mesh" {
\t}
}
Connections:  {
\tC: "OO",2,0
\tC: "OO",1,2
}
"""


def _reinterpret(view: np.ndarray, double: bool) -> np.ndarray:
    """Copy (n, 3) positions out of pyufbx's view, reading doubles if the build uses them."""
    if view.dtype == np.float64 or not double:
        return np.array(view, dtype=np.float64)
    count = view.shape[0] * 3
    raw = (ctypes.c_double * count).from_address(view.ctypes.data)
    return np.frombuffer(raw, dtype=np.float64, count=count).reshape(-1, 3).copy()


@functools.cache
def _real_is_double() -> bool:
    """Find out once whether this pyufbx build stores positions as doubles."""
    import ufbx

    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.fbx"
        probe.write_text(_PROBE_FBX)
        scene = ufbx.load_file(str(probe))
        try:
            view = scene.meshes[0].vertex_positions
            for double in (False, True):
                if np.allclose(_reinterpret(view, double), _PROBE_VALUES):
                    return double
        finally:
            scene.close()
    raise MeshFormatError("the installed pyufbx returns unusable vertex positions")


def _fan_triangles(faces: list[tuple[int, int]], indices: np.ndarray) -> np.ndarray:
    """Triangulate polygons given as (first index, corner count) by fanning from corner 0."""
    spans = np.asarray(faces, dtype=np.int64).reshape(-1, 2)
    spans = spans[spans[:, 1] >= 3]
    per_face = spans[:, 1] - 2
    first = np.repeat(spans[:, 0], per_face)
    step = np.arange(per_face.sum()) - np.repeat(np.cumsum(per_face) - per_face, per_face)
    corners = np.stack([first, first + step + 1, first + step + 2], axis=1)
    return np.asarray(indices, dtype=np.int64)[corners]


def _geometry_matrix(node: object) -> np.ndarray:
    """The node's geometric (pivot) transform, which applies to the mesh but not children."""
    geo = node.geometry_transform  # type: ignore[attr-defined]
    t, r, s = geo.translation, geo.rotation, geo.scale
    matrix = trimesh.transformations.quaternion_matrix([r.w, r.x, r.y, r.z])
    matrix[:3, :3] *= np.array([s.x, s.y, s.z])
    matrix[:3, 3] = [t.x, t.y, t.z]
    return matrix


def _axis_vector(axis: int) -> np.ndarray | None:
    """ufbx CoordinateAxis (0..5 = +X, -X, +Y, -Y, +Z, -Z) as a unit vector."""
    if not 0 <= int(axis) <= 5:
        return None
    vector = np.zeros(3)
    vector[int(axis) // 2] = -1.0 if int(axis) % 2 else 1.0
    return vector


def _root_matrix(settings: object) -> np.ndarray:
    """Rotate the file's declared axes to +X right, +Y up, +Z front (identity if unknown)."""
    matrix = np.eye(4)
    axes = settings.axes  # type: ignore[attr-defined]
    rows = [_axis_vector(axis) for axis in (axes.right, axes.up, axes.front)]
    if all(row is not None for row in rows):
        rotation = np.array(rows)
        if np.isclose(abs(np.linalg.det(rotation)), 1.0):
            matrix[:3, :3] = rotation
    return matrix


def read_fbx_scene(path: Path) -> trimesh.Scene:
    """Load an FBX file (binary or ASCII) as a Scene of world-space meshes, one per node."""
    import ufbx

    double = _real_is_double()
    try:
        fbx = ufbx.load_file(str(path))
    except ufbx.UfbxError as exc:
        raise MeshFormatError(f"cannot parse {Path(path).name} as fbx: {exc}") from exc
    scene = trimesh.Scene()
    try:
        root = _root_matrix(fbx.settings)
        for number, node in enumerate(fbx.nodes):
            mesh = node.mesh
            if mesh is None or mesh.vertex_positions is None or mesh.indices is None:
                continue
            vertices = _reinterpret(mesh.vertex_positions, double)
            triangles = _fan_triangles(mesh.faces, mesh.indices)
            if len(triangles) == 0:
                continue
            part = trimesh.Trimesh(vertices, triangles, process=False)
            world = np.asarray(node.world_transform, dtype=np.float64).T
            part.apply_transform(root @ world @ _geometry_matrix(node))
            scene.add_geometry(part, node_name=node.name or f"node_{number}")
    finally:
        fbx.close()
    return scene
