"""A picture of a UV layout: every chart filled in its own colour, triangle edges on top."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from deployments.geometry.segment import part_colors

MAX_OUTLINED_FACES = 200_000  # above this only fills are drawn (edges would be a grey wash)


def uv_layout_png(
    uvs: np.ndarray, faces: np.ndarray, face_chart: np.ndarray, size: int = 1024
) -> bytes:
    """PNG of the [0, 1]^2 UV square (v up, as in texture space) at size x size pixels."""
    image = Image.new("RGB", (size, size), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    count = int(face_chart.max()) + 1 if len(face_chart) else 0
    colors = [tuple(int(c) for c in rgba[:3]) for rgba in part_colors(count)]
    corners = uvs[faces] * (size - 1)
    corners[..., 1] = (size - 1) - corners[..., 1]
    outline = (90, 90, 90) if len(faces) <= MAX_OUTLINED_FACES else None
    for triangle, chart in zip(corners.tolist(), face_chart.tolist(), strict=True):
        draw.polygon([tuple(p) for p in triangle], fill=colors[chart], outline=outline)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
