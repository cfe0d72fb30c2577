"""Tableware, containers, tools and weapons (Y up, metres, standing on y = 0)."""

from __future__ import annotations

import numpy as np

from deployments.geometry.shapes.kit import Kit


def mug(k: Kit) -> None:
    r, h, wall = k.u(0.04, 0.05), k.u(0.09, 0.12), 0.005
    k.lathe([(r, 0), (r, h), (r - wall, h), (r - wall, 0.008)])
    k.torus(h * 0.3, 0.007, (r + h * 0.22, h * 0.52, 0), axis="z")


def cup(k: Kit) -> None:
    r, h = k.u(0.035, 0.045), k.u(0.06, 0.08)
    k.lathe([(r * 0.65, 0), (r, h), (r - 0.004, h), (r * 0.65 - 0.004, 0.006)])
    k.torus(h * 0.28, 0.005, (r * 0.85 + h * 0.18, h * 0.55, 0), axis="z")
    k.lathe([(r * 1.9, 0), (r * 1.9, 0.006)], centre=(0, -0.004, 0), role="accent")


def vase(k: Kit) -> None:
    h, belly, neck = k.u(0.25, 0.45), k.u(0.08, 0.14), k.u(0.03, 0.05)
    lip = neck * k.u(1.2, 1.6)
    k.lathe(
        [(belly * 0.6, 0), (belly, h * 0.35), (belly * 0.8, h * 0.6), (neck, h * 0.85),
         (lip, h), (lip - 0.005, h), (neck - 0.005, h * 0.85), (neck - 0.005, h * 0.2)],
        sections=48,
    )  # fmt: skip


def bottle(k: Kit) -> None:
    r, h, neck = k.u(0.03, 0.045), k.u(0.22, 0.32), k.u(0.011, 0.015)
    k.lathe([(r, 0), (r, h * 0.62), (neck, h * 0.8), (neck, h)], sections=32)
    k.cylinder(neck + 0.002, 0.02, (0, h + 0.008, 0), role="accent", sections=16)


def bowl(k: Kit) -> None:
    r, h, wall = k.u(0.08, 0.14), k.u(0.05, 0.08), 0.006
    profile: list[tuple[float, float]] = [(r * 0.45, 0.0)]
    for t in np.linspace(0.15, 1.0, 6):
        profile.append((r * (0.45 + 0.55 * np.sin(t * np.pi / 2)), h * t))
    inner = [(x - wall, y) for x, y in reversed(profile[1:])]
    inner[-1] = (inner[-1][0], wall)
    k.lathe(profile + inner, sections=48)


def wine_glass(k: Kit) -> None:
    foot, stem, cupr = k.u(0.035, 0.045), k.u(0.07, 0.1), k.u(0.035, 0.045)
    ch = k.u(0.08, 0.1)
    k.lathe(
        [(foot, 0), (foot, 0.004), (0.005, 0.012), (0.004, stem), (cupr * 0.5, stem + 0.01),
         (cupr, stem + ch * 0.55), (cupr * 0.9, stem + ch), (cupr * 0.9 - 0.002, stem + ch),
         (cupr - 0.002, stem + ch * 0.55), (cupr * 0.5 - 0.002, stem + 0.015)],
        sections=40,
    )  # fmt: skip


def teapot(k: Kit) -> None:
    r = k.u(0.09, 0.11)
    k.sphere(r, (0, r * 0.85, 0), scale=(1, 0.8, 1), subdivisions=3)
    k.lathe([(r * 0.45, r * 1.45), (r * 0.35, r * 1.6), (0.012, r * 1.62)])
    k.sphere(0.014, (0, r * 1.67, 0), role="accent")
    k.between((r * 0.8, r * 0.6, 0), (r * 1.55, r * 1.25, 0), r * 0.12)
    k.torus(r * 0.38, r * 0.07, (-r * 1.0, r * 0.9, 0), axis="z")


def barrel(k: Kit) -> None:
    r, h = k.u(0.28, 0.32), k.u(0.8, 0.95)
    k.lathe([(r * 0.85, 0), (r, h * 0.5), (r * 0.85, h)], sections=40)
    for y in (0.12, 0.38, 0.62, 0.88):
        rr = r * (0.85 + 0.15 * np.sin(np.pi * y))
        k.torus(rr, 0.012, (0, h * y, 0), role="accent")


def crate(k: Kit) -> None:
    s = k.u(0.4, 0.7)
    k.box((s, s, s), (0, s / 2, 0))
    b = 0.06 * s / 0.5
    for dx, dz in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        k.box((b, s + 0.01, b), (dx * (s / 2 - b / 2 + 0.004), s / 2, dz * (s / 2 - b / 2 + 0.004)),
              role="accent")  # fmt: skip


def chest(k: Kit) -> None:
    w, d, h = k.u(0.6, 0.9), k.u(0.4, 0.5), k.u(0.35, 0.45)
    k.box((w, h, d), (0, h / 2, 0))
    k.cylinder(d / 2 - 0.002, w - 0.004, (0, h, 0), axis="x", sections=24)
    for x in (-w / 2 + 0.06, w / 2 - 0.06):
        k.box((0.04, h + d / 2 + 0.02, d + 0.02), (x, (h + d / 2) / 2 + 0.005, 0), role="accent")
    k.box((0.07, 0.09, 0.02), (0, h, d / 2 + 0.01), role="accent")


def sword(k: Kit) -> None:
    blade, width = k.u(0.7, 0.95), k.u(0.04, 0.06)
    grip = k.u(0.15, 0.22)
    y0 = grip + 0.03
    k.hull([(-width / 2, y0, -0.004), (width / 2, y0, -0.004), (-width / 2, y0, 0.004),
            (width / 2, y0, 0.004), (-width / 2 * 0.9, y0 + blade * 0.85, 0),
            (width / 2 * 0.9, y0 + blade * 0.85, 0), (0, y0 + blade, 0),
            (0, y0 + blade * 0.5, 0.008), (0, y0 + blade * 0.5, -0.008)])  # fmt: skip
    k.box((k.u(0.16, 0.24), 0.03, 0.035), (0, grip + 0.015, 0), role="accent")
    k.cylinder(0.016, grip, (0, grip / 2, 0), role="accent", sections=12)
    k.sphere(0.025, (0, 0, 0), role="accent")


def axe(k: Kit) -> None:
    length = k.u(0.6, 0.9)
    k.cylinder(0.018, length, (0, length / 2, 0), role="accent", sections=12)
    top = length - 0.08
    k.hull([(-0.03, top - 0.05, -0.015), (-0.03, top + 0.05, -0.015), (-0.03, top - 0.05, 0.015),
            (-0.03, top + 0.05, 0.015), (0.16, top - 0.11, 0), (0.16, top + 0.1, 0),
            (0.15, top - 0.11, 0.003), (0.15, top + 0.1, -0.003)])  # fmt: skip


def hammer(k: Kit) -> None:
    length = k.u(0.28, 0.38)
    k.cylinder(0.014, length, (0, length / 2, 0), role="accent", sections=12)
    head = k.u(0.1, 0.14)
    k.box((head, 0.035, 0.035), (0, length, 0))
    k.cylinder(0.02, 0.03, (head / 2 + 0.01, length, 0), axis="x", sections=16)


def shield(k: Kit) -> None:
    r = k.u(0.3, 0.4)
    k.cylinder(r, 0.03, (0, r, 0), axis="z", sections=40)
    k.torus(r, 0.02, (0, r, 0), axis="z", role="accent")
    k.sphere(r * 0.22, (0, r, 0.015), scale=(1, 1, 0.5), role="accent")


def trophy(k: Kit) -> None:
    h = k.u(0.25, 0.35)
    k.box((0.12, 0.05, 0.12), (0, 0.025, 0), role="accent")
    k.lathe([(0.012, 0.05), (0.012, h * 0.45), (h * 0.25, h), (h * 0.25 - 0.004, h),
             (0.01, h * 0.5)], sections=40)  # fmt: skip
    for s in (-1, 1):
        k.torus(h * 0.12, 0.006, (s * h * 0.26, h * 0.78, 0), axis="z")


def candle(k: Kit) -> None:
    r, h = k.u(0.025, 0.04), k.u(0.12, 0.25)
    k.cylinder(r, h, (0, h / 2, 0), sections=24)
    k.cylinder(0.002, 0.015, (0, h + 0.007, 0), role="accent", sections=8)
    k.sphere(0.008, (0, h + 0.02, 0), scale=(1, 2, 1), role="accent")


def donut(k: Kit) -> None:
    r = k.u(0.045, 0.06)
    k.torus(r, r * k.u(0.45, 0.55), (0, r * 0.5, 0))


def ball(k: Kit) -> None:
    r = k.u(0.1, 0.15)
    k.sphere(r, (0, r, 0), subdivisions=3)
