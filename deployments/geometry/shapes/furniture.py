"""Furniture and household families (Y up, metres, standing on y = 0)."""

from __future__ import annotations

from deployments.geometry.shapes.kit import Kit


def _legs(k: Kit, w: float, d: float, h: float, r: float, inset: float, role: str = "primary"):
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (w / 2 - inset), sz * (d / 2 - inset)
            k.cylinder(r, h, (x, h / 2, z), role=role, sections=12)


def chair(k: Kit) -> None:
    w, d, seat = k.u(0.42, 0.52), k.u(0.40, 0.50), k.u(0.42, 0.48)
    t = k.u(0.03, 0.05)
    _legs(k, w, d, seat - t / 2 + 0.01, k.u(0.015, 0.025), 0.04)
    k.box((w, t, d), (0, seat, 0))
    back = k.u(0.35, 0.5)
    k.box((w, back, t), (0, seat + back / 2, -d / 2 + t / 2))


def table(k: Kit) -> None:
    w, d, h = k.u(1.0, 1.8), k.u(0.7, 1.0), k.u(0.7, 0.78)
    t = k.u(0.03, 0.06)
    _legs(k, w, d, h - t + 0.01, k.u(0.025, 0.04), 0.08)
    k.box((w, t, d), (0, h - t / 2, 0))


def stool(k: Kit) -> None:
    h, r = k.u(0.45, 0.75), k.u(0.15, 0.2)
    k.cylinder(r, 0.04, (0, h - 0.02, 0), sections=32)
    for x, z in ((1, 0), (-0.5, 0.866), (-0.5, -0.866)):
        k.between((x * r * 1.2, 0, z * r * 1.2), (x * r * 0.6, h - 0.03, z * r * 0.6), 0.015)
    k.torus(r * 0.95, 0.01, (0, h * 0.35, 0))


def bench(k: Kit) -> None:
    w, d, h = k.u(1.2, 1.8), k.u(0.3, 0.45), k.u(0.42, 0.48)
    k.box((w, 0.05, d), (0, h, 0))
    for sx in (-1, 1):
        k.box((0.05, h - 0.02, d * 0.9), (sx * (w / 2 - 0.12), (h - 0.02) / 2, 0))


def bed(k: Kit) -> None:
    w, length = k.u(0.9, 1.8), k.u(1.9, 2.1)
    k.box((w + 0.06, 0.3, length + 0.06), (0, 0.2, 0), role="accent")
    k.box((w, 0.22, length), (0, 0.45, 0))
    k.box((w + 0.06, k.u(0.7, 1.0), 0.06), (0, 0.45, -length / 2 - 0.03), role="accent")
    k.box((w * 0.7, 0.1, 0.35), (0, 0.6, -length / 2 + 0.3))


def sofa(k: Kit) -> None:
    w, d = k.u(1.6, 2.4), k.u(0.8, 0.95)
    k.box((w, 0.42, d), (0, 0.25, 0))
    k.box((w, 0.45, 0.2), (0, 0.6, -d / 2 + 0.1))
    for sx in (-1, 1):
        k.box((0.2, 0.25, d), (sx * (w / 2 - 0.1), 0.55, 0))
    for sx in (-1, 1):
        for sz in (-1, 1):
            k.cylinder(0.03, 0.08, (sx * (w / 2 - 0.08), 0.03, sz * (d / 2 - 0.08)), role="accent")


def bookshelf(k: Kit) -> None:
    w, d, h = k.u(0.7, 1.2), k.u(0.28, 0.4), k.u(1.5, 2.0)
    t = 0.025
    for sx in (-1, 1):
        k.box((t, h, d), (sx * (w / 2 - t / 2), h / 2, 0))
    k.box((w - 0.004, h, t), (0, h / 2, -d / 2 + t / 2))
    shelves = k.choice((4, 5, 6))
    for i in range(shelves):
        k.box((w - 2 * t + 0.004, t, d - 0.004), (0, t / 2 + i * (h - t) / (shelves - 1), 0.002))
    for i in range(shelves - 1):
        y = t + i * (h - t) / (shelves - 1)
        x = -w / 2 + 0.05
        while x < w / 2 - 0.08:
            bw, bh = k.u(0.02, 0.05), k.u(0.18, 0.28)
            k.box((bw, bh, d * 0.7), (x + bw / 2, y + bh / 2 + 0.002, 0), role="accent")
            x += bw + 0.004


def lamp(k: Kit) -> None:
    h = k.u(1.4, 1.8)
    k.cylinder(k.u(0.14, 0.2), 0.03, (0, 0.015, 0), sections=32)
    k.cylinder(0.015, h, (0, h / 2, 0), sections=12)
    r0, r1, sh = k.u(0.12, 0.18), k.u(0.2, 0.28), k.u(0.25, 0.35)
    k.lathe([(r1, h - 0.1), (r0, h - 0.1 + sh), (r0 - 0.01, h - 0.1 + sh)], role="accent")


def desk_lamp(k: Kit) -> None:
    k.cylinder(k.u(0.08, 0.11), 0.025, (0, 0.0125, 0), sections=32)
    a, b = k.u(0.25, 0.35), k.u(0.25, 0.32)
    elbow = (0.0, a * 0.95, -a * 0.3)
    head = (0.0, elbow[1] + b * 0.3, elbow[2] + b * 0.95)
    k.between((0, 0.02, 0), elbow, 0.01)
    k.between(elbow, head, 0.01)
    k.sphere(0.022, elbow)
    k.cone(k.u(0.06, 0.08), 0.12, (head[0], head[1] - 0.1, head[2]), axis="y", role="accent")


def cabinet(k: Kit) -> None:
    w, d, h = k.u(0.6, 1.2), k.u(0.4, 0.55), k.u(0.7, 1.1)
    k.box((w, h, d), (0, h / 2 + 0.05, 0))
    drawers = k.choice((2, 3, 4))
    for i in range(drawers):
        y = 0.05 + (i + 0.5) * h / drawers
        k.box((w * 0.9, h / drawers * 0.85, 0.02), (0, y, d / 2 + 0.005))
        k.cylinder(0.012, 0.14, (0, y, d / 2 + 0.03), axis="x", role="accent", sections=10)
    _legs(k, w, d, 0.06, 0.02, 0.05, role="accent")
