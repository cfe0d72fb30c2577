"""Characters and animals, built from capsules and spheres (Y up, metres, on y = 0)."""

from __future__ import annotations

from deployments.geometry.shapes.kit import Kit


def person(k: Kit) -> None:
    h = k.u(1.6, 1.9)
    leg, hip = h * 0.47, h * 0.5
    for s in (-1, 1):
        k.between((s * h * 0.055, 0.05, 0), (s * h * 0.06, leg, 0), h * 0.045, role="accent")
        k.sphere(h * 0.05, (s * h * 0.055, h * 0.03, h * 0.03), scale=(1, 0.6, 1.6),
                 role="accent")  # fmt: skip
    k.capsule(h * 0.11, h * 0.16, (0, hip + h * 0.14, 0))
    shoulder = h * 0.8
    for s in (-1, 1):
        k.between((s * h * 0.15, shoulder, 0), (s * h * 0.19, shoulder - h * 0.33, 0.03),
                  h * 0.035)  # fmt: skip
    k.cylinder(h * 0.03, h * 0.08, (0, h * 0.86, 0))
    k.sphere(h * 0.065, (0, h * 0.93, 0), scale=(0.9, 1.1, 1.0), subdivisions=3)


def robot(k: Kit) -> None:
    h = k.u(1.2, 2.0)
    for s in (-1, 1):
        k.box((h * 0.12, h * 0.4, h * 0.12), (s * h * 0.1, h * 0.2, 0), role="accent")
        k.box((h * 0.1, h * 0.4, h * 0.1), (s * h * 0.26, h * 0.55, 0), role="accent")
    k.box((h * 0.42, h * 0.38, h * 0.25), (0, h * 0.58, 0))
    k.box((h * 0.25, h * 0.2, h * 0.22), (0, h * 0.87, 0))
    for s in (-1, 1):
        k.sphere(h * 0.025, (s * h * 0.06, h * 0.9, h * 0.11), role="accent")
    k.cylinder(h * 0.01, h * 0.1, (0, h * 1.0, 0), role="accent", sections=8)
    k.sphere(h * 0.02, (0, h * 1.05, 0), role="accent")


def quadruped(k: Kit) -> None:
    length, h = k.u(0.6, 1.0), k.u(0.45, 0.7)
    leg = h * 0.55
    body_r = h * 0.2
    k.capsule(body_r, length * 0.7, (0, leg + body_r * 0.6, 0), axis="x")
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * length * 0.33, sz * body_r * 0.6
            k.between((x, 0.03, z), (x, leg + body_r * 0.5, z), h * 0.05)
    head = (length * 0.55, leg + body_r * 1.6, 0)
    k.between((length * 0.38, leg + body_r, 0), head, body_r * 0.45)
    k.sphere(body_r * 0.75, head, scale=(1.3, 1, 0.9))
    k.sphere(body_r * 0.35, (head[0] + body_r * 0.8, head[1] - body_r * 0.2, 0),
             scale=(1.2, 0.8, 0.9), role="accent")  # fmt: skip
    for s in (-1, 1):
        k.cone(body_r * 0.22, body_r * 0.5, (head[0] - body_r * 0.2, head[1] + body_r * 0.5,
                                             s * body_r * 0.4))  # fmt: skip
    k.between((-length * 0.5, leg + body_r, 0), (-length * 0.75, leg + body_r * 1.8, 0),
              body_r * 0.15)  # fmt: skip


def fish(k: Kit) -> None:
    length = k.u(0.3, 0.6)
    k.sphere(length * 0.35, (0, length * 0.3, 0), scale=(1.0, 0.55, 0.3), subdivisions=3)
    tail = -length * 0.33
    k.hull([(tail, length * 0.3, 0.005), (tail, length * 0.3, -0.005),
            (tail - length * 0.25, length * 0.5, 0), (tail - length * 0.25, length * 0.1, 0)],
           role="accent")  # fmt: skip
    k.hull([(0, length * 0.45, 0.004), (0, length * 0.45, -0.004),
            (-length * 0.12, length * 0.58, 0), (length * 0.12, length * 0.46, 0)],
           role="accent")  # fmt: skip
    for s in (-1, 1):
        k.sphere(length * 0.03, (length * 0.24, length * 0.34, s * length * 0.06), role="accent")


def bird(k: Kit) -> None:
    size = k.u(0.15, 0.3)
    k.sphere(size * 0.5, (0, size * 0.6, 0), scale=(1.3, 0.9, 0.9), subdivisions=3)
    k.sphere(size * 0.3, (size * 0.55, size * 1.0, 0), subdivisions=3)
    k.cone(size * 0.08, size * 0.25, (size * 0.8, size * 1.0, 0), axis="x", role="accent")
    tail = [
        (-size * 0.5, size * 0.65, 0.01),
        (-size * 0.5, size * 0.65, -0.01),
        (-size * 1.0, size * 0.8, size * 0.15),
        (-size * 1.0, size * 0.8, -size * 0.15),
    ]
    k.hull([(x, y + dy, z) for x, y, z in tail for dy in (-0.006, 0.006)])  # fmt: skip
    for s in (-1, 1):
        k.sphere(size * 0.35, (-size * 0.05, size * 0.65, s * size * 0.4), scale=(1.4, 0.35, 0.6))
        k.between((0, size * 0.3, s * size * 0.12), (0, 0.01, s * size * 0.12), size * 0.03,
                  role="accent")  # fmt: skip
