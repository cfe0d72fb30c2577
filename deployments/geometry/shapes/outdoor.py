"""Plants, rocks, buildings and vehicles (Y up, metres, standing on y = 0)."""

from __future__ import annotations

import numpy as np

from deployments.geometry.shapes.kit import Kit


def tree(k: Kit) -> None:
    h = k.u(2.5, 4.0)
    k.cylinder(h * 0.05, h * 0.55, (0, h * 0.275, 0), role="accent", sections=16)
    for _ in range(k.choice((3, 4, 5))):
        r = h * k.u(0.18, 0.28)
        centre = (k.u(-0.15, 0.15) * h, h * k.u(0.6, 0.8), k.u(-0.15, 0.15) * h)
        k.sphere(r, centre, scale=(1, k.u(0.8, 1.0), 1))


def pine_tree(k: Kit) -> None:
    h = k.u(3.0, 5.0)
    k.cylinder(h * 0.04, h * 0.3, (0, h * 0.15, 0), role="accent", sections=12)
    tiers = k.choice((3, 4, 5))
    for i in range(tiers):
        base = h * (0.2 + 0.6 * i / tiers)
        k.cone(h * 0.28 * (1 - 0.6 * i / tiers), h * 0.4, (0, base, 0), sections=20)


def cactus(k: Kit) -> None:
    h = k.u(1.2, 2.0)
    r = h * 0.09
    k.capsule(r, h - 2 * r, (0, h / 2, 0))
    for side in (-1, 1):
        y, arm = h * k.u(0.35, 0.55), h * k.u(0.2, 0.35)
        x = side * r * 2.4
        k.between((0, y, 0), (x * 0.97, y, 0), r * 0.7)
        k.capsule(r * 0.7, arm, (x, y + arm / 2, 0))
    k.lathe([(r * 1.6, 0), (r * 1.8, r * 2.2)], role="accent")


def mushroom(k: Kit) -> None:
    h, cap = k.u(0.08, 0.15), k.u(0.06, 0.11)
    k.lathe([(h * 0.16, 0), (h * 0.12, h * 0.9)], role="accent")
    k.lathe([(cap, h * 0.8), (cap * 0.85, h * 1.05), (cap * 0.5, h * 1.25), (0.001, h * 1.33)])


def rock(k: Kit) -> None:
    size = k.u(0.4, 1.0)
    points = k.rng.normal(size=(40, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    points *= size * k.rng.uniform(0.8, 1.0, size=(40, 1)) * np.array([1.0, 0.6, 0.8])
    points[:, 1] -= points[:, 1].min()
    k.hull(points)


def flower(k: Kit) -> None:
    h = k.u(0.3, 0.5)
    k.cylinder(0.006, h, (0, h / 2, 0), role="accent", sections=8)
    petals = k.choice((5, 6, 8))
    for i in range(petals):
        a = 2 * np.pi * i / petals
        k.sphere(0.03, (0.035 * np.cos(a), h, 0.035 * np.sin(a)), scale=(1.2, 0.25, 0.7))
    k.sphere(0.018, (0, h + 0.004, 0), role="accent")


def snowman(k: Kit) -> None:
    r = k.u(0.3, 0.4)
    k.sphere(r, (0, r, 0), subdivisions=3)
    k.sphere(r * 0.7, (0, r * 2.3, 0), subdivisions=3)
    k.sphere(r * 0.48, (0, r * 3.25, 0), subdivisions=3)
    k.cone(0.04, 0.18, (0, r * 3.25, r * 0.42), axis="z", role="accent")
    k.cylinder(r * 0.35, r * 0.5, (0, r * 3.85, 0), role="accent")


def house(k: Kit) -> None:
    w, d, h = k.u(6, 9), k.u(5, 8), k.u(2.6, 3.2)
    k.box((w, h, d), (0, h / 2, 0))
    roof = k.u(1.5, 2.5)
    k.prism([(-w / 2 - 0.3, h - 0.05), (w / 2 + 0.3, h - 0.05), (0, h + roof)], d + 0.6,
            role="accent")  # fmt: skip
    k.box((1.0, 2.0, 0.1), (0, 1.0, d / 2 + 0.02), role="accent")
    for x in (-w / 3.5, w / 3.5):
        k.box((1.0, 1.0, 0.1), (x, h * 0.55, d / 2 + 0.02), role="accent")
    k.box((0.6, roof, 0.6), (w / 4, h + roof * 0.55, 0), role="accent")


def tower(k: Kit) -> None:
    r, h = k.u(2.0, 3.0), k.u(8, 14)
    k.cylinder(r, h, (0, h / 2, 0), sections=32)
    k.cylinder(r * 1.15, 0.6, (0, h + 0.3, 0), sections=32)
    merlons = 12
    for i in range(merlons):
        a = 2 * np.pi * i / merlons
        k.box((0.5, 0.6, 0.5), (r * 1.05 * np.cos(a), h + 0.85, r * 1.05 * np.sin(a)))
    k.box((1.2, 2.2, 0.3), (0, 1.1, r - 0.05), role="accent")


def lighthouse(k: Kit) -> None:
    h, r = k.u(12, 18), k.u(1.8, 2.4)
    k.lathe([(r, 0), (r * 0.65, h)], sections=32)
    for y in np.linspace(0.2, 0.8, 3):
        k.lathe([(r * (1 - 0.35 * y) + 0.03, 0), (r * (1 - 0.35 * (y + 0.1)) + 0.03, h * 0.1)],
                centre=(0, h * y, 0), role="accent")  # fmt: skip
    k.cylinder(r * 0.75, 0.3, (0, h + 0.15, 0), role="accent", sections=32)
    k.cylinder(r * 0.5, 1.5, (0, h + 1.0, 0), sections=16)
    k.cone(r * 0.6, 1.0, (0, h + 1.7, 0), role="accent", sections=16)


def car(k: Kit) -> None:
    length, w, h = k.u(3.8, 4.8), k.u(1.7, 1.9), k.u(1.3, 1.5)
    wr, clearance = k.u(0.3, 0.36), 0.18
    body_top = clearance + h * 0.45
    k.hull([(x, y, z) for x in (-length / 2, length / 2) for y in (clearance, body_top)
            for z in (-w / 2, w / 2)] + [(length / 2 + 0.05, body_top - 0.15, 0)])  # fmt: skip
    cabin = length * k.u(0.45, 0.55)
    outline = ((-cabin / 2 - 0.1, body_top - 0.02), (cabin / 2 + 0.35, body_top - 0.02),
               (-cabin / 2 + 0.25, h), (cabin / 2 - 0.15, h))  # fmt: skip
    k.hull([(x, y, z) for z in (-w / 2 + 0.08, w / 2 - 0.08) for x, y in outline], role="accent")
    for x in (-length * 0.32, length * 0.32):
        for z in (-w / 2 + 0.12, w / 2 - 0.12):
            k.cylinder(wr, 0.22, (x, wr, z), axis="z", role="accent", sections=20)


def truck(k: Kit) -> None:
    length, w = k.u(6.0, 8.0), k.u(2.3, 2.5)
    wr = 0.5
    k.box((length * 0.7, 2.6, w), (-length * 0.15, 0.9 + 1.3, 0))
    k.box((length * 0.26, 2.2, w), (length * 0.36, 0.9 + 1.1, 0))
    k.box((0.05, 0.9, w * 0.8), (length * 0.49 + 0.02, 2.3, 0), role="accent")
    for x in (-length * 0.38, -length * 0.18, length * 0.35):
        for z in (-w / 2 + 0.2, w / 2 - 0.2):
            k.cylinder(wr, 0.35, (x, wr, z), axis="z", role="accent", sections=20)


def airplane(k: Kit) -> None:
    length, span = k.u(8, 14), k.u(8, 14)
    r = length * 0.06
    k.capsule(r, length - 2 * r, (0, 2.0, 0), axis="x")
    k.hull([(x, 2.0, z) for x, z in ((length * 0.1, 0), (-length * 0.12, 0),
                                     (-length * 0.05, span / 2), (-length * 0.12, span / 2),
                                     (-length * 0.05, -span / 2), (-length * 0.12, -span / 2))]
           + [(length * 0.05, 2.1, 0)])  # fmt: skip
    tail = -length / 2 + r
    k.hull([(tail, 2.0, 0), (tail + length * 0.12, 2.0, 0), (tail, 2.0 + length * 0.15, 0),
            (tail + 0.2, 2.0 + length * 0.15, 0), (tail, 2.0, 0.05), (tail, 2.0, -0.05)],
           role="accent")  # fmt: skip
    k.hull([(tail, 2.0, z) for z in (-span * 0.18, span * 0.18)]
           + [(tail + length * 0.08, 2.0, 0), (tail, 2.08, 0)])  # fmt: skip
    for z in (-span * 0.2, span * 0.2):
        k.cylinder(r * 0.4, length * 0.15, (length * 0.02, 2.0 - r * 0.8, z), axis="x",
                   role="accent")  # fmt: skip


def rocket(k: Kit) -> None:
    h, r = k.u(4, 7), k.u(0.3, 0.45)
    k.lathe([(r * 0.8, 0.3), (r, 0.6), (r, h * 0.75), (r * 0.6, h * 0.92), (0.02, h)], sections=32)
    fins = k.choice((3, 4))
    for i in range(fins):
        a = 2 * np.pi * i / fins
        d = np.array([np.cos(a), 0, np.sin(a)])
        base = d * r * 0.8
        k.hull([base + (0, 0.3, 0), base + (0, 1.4, 0), d * r * 2.0 + (0, 0.0, 0),
                d * r * 2.0 + (0, 0.5, 0), base + (0, 0.8, 0) + np.cross(d, (0, 1, 0)) * 0.03],
               role="accent")  # fmt: skip


def boat(k: Kit) -> None:
    length, w = k.u(4, 7), k.u(1.5, 2.2)
    k.hull([(-length / 2, 0.6, -w / 2), (-length / 2, 0.6, w / 2), (length / 2, 0.7, 0),
            (-length / 2 + 0.3, 0.0, -w / 4), (-length / 2 + 0.3, 0.0, w / 4),
            (length / 2 - 0.8, 0.05, 0), (length * 0.3, 0.6, -w / 2.5),
            (length * 0.3, 0.6, w / 2.5)])  # fmt: skip
    mast = k.u(3, 5)
    k.cylinder(0.06, mast, (-length * 0.05, 0.5 + mast / 2, 0), role="accent", sections=10)
    k.prism([(-length * 0.05 + 0.08, 1.0), (-length * 0.05 + 0.08, 0.5 + mast * 0.95),
             (length * 0.3, 1.0)], 0.03, role="accent")  # fmt: skip
