"""Thumbnails of a mesh or scene: shaded, fitted, from a 3/4 view, as PNG bytes.

Every job output gets a preview image. The fast path is OpenGL through a standalone
moderngl EGL context (headless Mesa llvmpipe needs Debian libegl1, libegl-mesa0,
libgl1-mesa-dri and libgbm1); where those libraries or the context are missing, a
vectorised numpy z-buffer rasterizer draws the same picture with no system packages.

Both renderers share one frame: an orthographic camera (Y up, 35 degrees around, 25 up),
flat Lambert shading from two camera-relative lights plus ambient, lit on both sides so
open or inconsistently wound meshes still read, and each face's own colour (face or vertex
colours such as segmentation labels, texture colours sampled at the vertices, else clay).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import trimesh
from PIL import Image

from deployments.geometry.raster import rasterize

log = logging.getLogger(__name__)

BACKGROUND = (242, 243, 246)
CLAY = np.array([0.74, 0.72, 0.68])
MAX_FACES = 400_000  # above this the numpy path draws a decimated copy
_LIGHTS = np.array([[-0.45, 0.65, 0.62], [0.7, -0.1, 0.7]])
_LIGHTS /= np.linalg.norm(_LIGHTS, axis=1, keepdims=True)
_LIGHT_POWER = np.array([0.62, 0.25])
_AMBIENT = 0.3
_MARGIN = 0.07


@dataclass(frozen=True)
class Frame:
    """Projected geometry: pixel x/y (row 0 at the top), depth (larger is nearer), colours."""

    xy: np.ndarray  # (n, 2) float64, pixel units of the output size
    depth: np.ndarray  # (n,) float64
    faces: np.ndarray  # (m, 3) int64
    shade: np.ndarray  # (m, 3) float64 in [0, 1], lit face colours
    size: int


def _face_colors(mesh: trimesh.Trimesh) -> np.ndarray:
    """RGB in [0, 1] per face from the mesh's own colours, or clay if it has none."""
    visual: Any = mesh.visual  # ColorVisuals or TextureVisuals
    try:
        if visual.kind == "texture":
            visual = visual.to_color()  # samples the texture at each vertex's UV
        if visual.kind == "face":
            return np.asarray(visual.face_colors[:, :3], dtype=np.float64) / 255.0
        if visual.kind == "vertex":
            corners = np.asarray(visual.vertex_colors[:, :3], dtype=np.float64)[mesh.faces]
            return corners.mean(axis=1) / 255.0
    except (ValueError, IndexError, AttributeError, TypeError) as exc:
        log.debug("thumbnail: ignoring unusable colours: %s", exc)
    return np.tile(CLAY, (len(mesh.faces), 1))


def _flatten(obj: trimesh.Trimesh | trimesh.Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World-space vertices, faces and per-face colours of every mesh in `obj`."""
    meshes = [obj] if isinstance(obj, trimesh.Trimesh) else obj.dump()
    meshes = [m for m in meshes if isinstance(m, trimesh.Trimesh) and len(m.faces)]
    if not meshes:
        raise ValueError("nothing to render: no triangle faces")
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes])
    vertices = np.vstack([m.vertices for m in meshes]).astype(np.float64)
    faces = np.vstack([m.faces + off for m, off in zip(meshes, offsets, strict=False)])
    colors = np.vstack([_face_colors(m) for m in meshes])
    return vertices, faces.astype(np.int64), colors


def _camera(azimuth: float = 35.0, elevation: float = 25.0) -> np.ndarray:
    """Rows: right, up, towards-camera unit vectors of a Y-up 3/4 view."""
    az, el = np.radians(azimuth), np.radians(elevation)
    back = np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    right = np.cross([0.0, 1.0, 0.0], back)
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(back, right), back])


def _shade(view_vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Flat two-sided Lambert shading with camera-relative lights."""
    tri = view_vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)
    normals *= np.where(normals[:, 2:3] < 0, -1.0, 1.0)  # face the camera: lit both sides
    diffuse = np.clip(normals @ _LIGHTS.T, 0.0, None) @ _LIGHT_POWER
    return np.clip(colors * (_AMBIENT + diffuse)[:, None], 0.0, 1.0)


def make_frame(
    obj: trimesh.Trimesh | trimesh.Scene, size: int = 512, max_faces: int | None = None
) -> Frame:
    """Project and shade `obj` for a size x size image, fitted with a small margin.

    With `max_faces`, a heavier mesh is decimated first (colours follow the nearest face).
    """
    vertices, faces, colors = _flatten(obj)
    if max_faces is not None and len(faces) > max_faces:
        vertices, faces, colors = _decimated(vertices, faces, colors, max_faces)
    view = (vertices - vertices[faces].reshape(-1, 3).mean(axis=0)) @ _camera().T
    used = view[np.unique(faces)]
    low, high = used.min(axis=0), used.max(axis=0)
    extent = max(float((high - low)[:2].max()), 1e-12)
    scale = size * (1.0 - 2.0 * _MARGIN) / extent
    mid = (low + high) / 2.0
    xy = np.empty((len(view), 2))
    xy[:, 0] = (view[:, 0] - mid[0]) * scale + size / 2.0
    xy[:, 1] = size / 2.0 - (view[:, 1] - mid[1]) * scale
    depth = (view[:, 2] - low[2]) / max(float(high[2] - low[2]), 1e-12)
    return Frame(xy, depth, faces, _shade(view, faces, colors), size)


def _decimated(
    vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray, max_faces: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quadric-decimated copy for the numpy path; each new face takes its nearest old colour."""
    from scipy.spatial import cKDTree

    from deployments.geometry.decimate import simplify_arrays

    points, small = simplify_arrays(vertices, faces, max_faces)
    _, nearest = cKDTree(vertices[faces].mean(axis=1)).query(points[small].mean(axis=1))
    return points, small, colors[nearest]


def render_numpy(
    obj: trimesh.Trimesh | trimesh.Scene, size: int = 512, supersample: int = 2
) -> np.ndarray:
    """Render with the numpy rasterizer; (size, size, 3) uint8 RGB, box-filtered from
    `supersample` times the resolution for smooth edges."""
    frame = make_frame(obj, size, max_faces=MAX_FACES)
    big = size * supersample
    face_image = rasterize(frame, big)
    palette = np.vstack([frame.shade, np.array(BACKGROUND) / 255.0])
    rgb = palette[face_image].reshape(big, big, 3)  # -1 picks the background row
    rgb = rgb.reshape(size, supersample, size, supersample, 3).mean(axis=(1, 3))
    return np.round(rgb * 255.0).astype(np.uint8)


_VERTEX_SHADER = """
#version 330
in vec3 in_pos;
in vec3 in_color;
out vec3 color;
void main() {
    gl_Position = vec4(in_pos, 1.0);
    color = in_color;
}
"""
_FRAGMENT_SHADER = """
#version 330
in vec3 color;
out vec4 frag;
void main() {
    frag = vec4(color, 1.0);
}
"""


def _gl_vertices(frame: Frame) -> np.ndarray:
    """Unindexed (x, y, z, r, g, b) float32 rows in clip space, three per face."""
    size = frame.size
    corners = frame.faces.reshape(-1)
    data = np.empty((len(corners), 6), dtype=np.float32)
    data[:, 0] = frame.xy[corners, 0] * (2.0 / size) - 1.0
    data[:, 1] = 1.0 - frame.xy[corners, 1] * (2.0 / size)
    data[:, 2] = 0.98 - 1.96 * frame.depth[corners]  # nearer is smaller for GL_LESS
    data[:, 3:] = np.repeat(frame.shade, 3, axis=0)
    return data


def render_egl(
    obj: trimesh.Trimesh | trimesh.Scene, size: int = 512, samples: int = 4
) -> np.ndarray:
    """Render with OpenGL in a headless EGL context; (size, size, 3) uint8 RGB.

    Raises whatever moderngl raises when EGL or a GL 3.3 context is unavailable. A new
    context is made and released per call: contexts are bound to the creating thread.
    """
    import moderngl

    frame = make_frame(obj, size)
    ctx = moderngl.create_context(standalone=True, backend="egl")  # type: ignore[arg-type]
    try:
        samples = min(samples, ctx.max_samples)
        program = ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        vbo = ctx.buffer(_gl_vertices(frame).tobytes())
        vao = ctx.vertex_array(program, [(vbo, "3f 3f", "in_pos", "in_color")])
        target = ctx.framebuffer(
            color_attachments=[ctx.renderbuffer((size, size), 4, samples=samples)],
            depth_attachment=ctx.depth_renderbuffer((size, size), samples=samples),
        )
        resolved = ctx.framebuffer(color_attachments=[ctx.renderbuffer((size, size), 4)])
        target.use()
        ctx.enable(moderngl.DEPTH_TEST)
        red, green, blue = (channel / 255.0 for channel in BACKGROUND)
        ctx.clear(red, green, blue, 1.0, depth=1.0)
        vao.render(moderngl.TRIANGLES)
        ctx.copy_framebuffer(resolved, target)
        raw = resolved.read(components=3, alignment=1)
    finally:
        ctx.release()
    return np.frombuffer(raw, dtype=np.uint8).reshape(size, size, 3)[::-1].copy()


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (h, w, 3) uint8 image."""
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def render_thumbnail(
    obj: trimesh.Trimesh | trimesh.Scene, size: int = 512, renderer: str | None = None
) -> tuple[bytes, str]:
    """PNG thumbnail and the renderer that drew it ("egl" or "numpy").

    `renderer=None` tries EGL and falls back to numpy on any failure (logged): a thumbnail
    must never fail a job that produced its output.
    """
    if renderer not in (None, "egl", "numpy"):
        raise ValueError(f"unknown renderer {renderer!r}")
    if renderer in (None, "egl"):
        try:
            return encode_png(render_egl(obj, size)), "egl"
        except Exception as exc:  # boundary: any GL/EGL failure means "use the fallback"
            if renderer == "egl":
                raise
            log.warning("EGL thumbnail failed, using the numpy renderer: %s", exc)
    return encode_png(render_numpy(obj, size)), "numpy"
