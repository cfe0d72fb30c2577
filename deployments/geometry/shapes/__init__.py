"""The parametric shape catalogue: families, their vocabulary and default materials.

A family is a builder over `Kit` primitives plus the words that name it. Matching a
prompt against these words (see `deployments.geometry.prompt`) is a transparent lookup,
not generation: the result is always one of these hand-written shapes, with seeded
proportions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from deployments.geometry.shapes import figures, furniture, objects, outdoor
from deployments.geometry.shapes.kit import Kit


@dataclass(frozen=True)
class Family:
    name: str
    builder: Callable[[Kit], None]
    words: tuple[str, ...]
    primary: str  # default material of the primary parts (a key of materials.MATERIALS)
    accent: str  # default material of the accent parts


@dataclass(frozen=True)
class Shape:
    family: str
    vertices: np.ndarray
    faces: np.ndarray
    roles: np.ndarray  # per face: 0 primary, 1 accent


# fmt: off
_TABLE: list[tuple[str, Callable[[Kit], None], str, str, str]] = [
    # name, builder, words (comma separated; phrases allowed), primary, accent
    ("chair", furniture.chair, "chair, armchair, seat, dining chair, office chair", "wood", "wood"),
    ("table", furniture.table, "table, dining table, coffee table, desk, workbench", "wood",
     "wood"),
    ("stool", furniture.stool, "stool, bar stool, footstool", "wood", "metal"),
    ("bench", furniture.bench, "bench, park bench, pew", "wood", "metal"),
    ("bed", furniture.bed, "bed, mattress, bunk, cot", "fabric", "wood"),
    ("sofa", furniture.sofa, "sofa, couch, settee, loveseat", "fabric", "wood"),
    ("bookshelf", furniture.bookshelf, "bookshelf, bookcase, shelf, shelving, library",
     "wood", "leather"),
    ("lamp", furniture.lamp, "lamp, floor lamp, lampshade, standing lamp", "metal", "fabric"),
    ("desk_lamp", furniture.desk_lamp, "desk lamp, reading lamp, task lamp", "metal", "plastic"),
    ("cabinet", furniture.cabinet, "cabinet, dresser, drawers, cupboard, nightstand, wardrobe",
     "wood", "metal"),
    ("mug", objects.mug, "mug, coffee mug, tankard, stein", "ceramic", "ceramic"),
    ("cup", objects.cup, "cup, teacup, coffee cup, saucer", "ceramic", "ceramic"),
    ("vase", objects.vase, "vase, urn, amphora, jug, pot", "ceramic", "ceramic"),
    ("bottle", objects.bottle, "bottle, flask, wine bottle, beer bottle, potion", "glass", "metal"),
    ("bowl", objects.bowl, "bowl, basin, dish", "ceramic", "ceramic"),
    ("wine_glass", objects.wine_glass, "wine glass, goblet, chalice, glass, champagne",
     "glass", "glass"),
    ("teapot", objects.teapot, "teapot, kettle, tea pot", "ceramic", "ceramic"),
    ("barrel", objects.barrel, "barrel, cask, keg", "wood", "metal"),
    ("crate", objects.crate, "crate, box, cube, block, package", "wood", "wood"),
    ("chest", objects.chest, "chest, treasure chest, trunk, coffer", "wood", "brass"),
    ("sword", objects.sword, "sword, blade, katana, sabre, saber, longsword, dagger, knife",
     "steel", "leather"),
    ("axe", objects.axe, "axe, hatchet, battleaxe, tomahawk", "steel", "wood"),
    ("hammer", objects.hammer, "hammer, mallet, warhammer, sledgehammer", "steel", "wood"),
    ("shield", objects.shield, "shield, buckler, round shield", "wood", "metal"),
    ("trophy", objects.trophy, "trophy, cup trophy, award, prize", "gold", "marble"),
    ("candle", objects.candle, "candle, taper, candlestick", "wax", "dark"),
    ("donut", objects.donut, "donut, doughnut, ring, torus, bagel", "pastry", "pastry"),
    ("ball", objects.ball, "ball, sphere, orb, globe, football, basketball", "rubber_red",
     "rubber"),
    ("tree", outdoor.tree, "tree, oak, maple, birch, bush, shrub, plant", "foliage", "bark"),
    ("pine_tree", outdoor.pine_tree, "pine tree, pine, fir, spruce, conifer, christmas tree",
     "foliage", "bark"),
    ("cactus", outdoor.cactus, "cactus, saguaro, succulent", "foliage", "terracotta"),
    ("mushroom", outdoor.mushroom, "mushroom, toadstool, fungus", "cap", "stem"),
    ("rock", outdoor.rock, "rock, stone, boulder, pebble, crystal, asteroid", "stone", "stone"),
    ("flower", outdoor.flower, "flower, rose, tulip, daisy, blossom, sunflower", "petal",
     "foliage"),
    ("snowman", outdoor.snowman, "snowman, snow man, frosty", "snow", "dark"),
    ("house", outdoor.house, "house, home, cottage, cabin, hut, building, barn", "brick",
     "roof"),
    ("tower", outdoor.tower, "tower, castle, fortress, keep, turret", "stone", "wood"),
    ("lighthouse", outdoor.lighthouse, "lighthouse, beacon", "paint_white", "paint_red"),
    ("car", outdoor.car, "car, sports car, automobile, sedan, vehicle, taxi, coupe, racecar",
     "paint", "rubber"),
    ("truck", outdoor.truck, "truck, lorry, van, bus, pickup", "paint", "rubber"),
    ("airplane", outdoor.airplane, "airplane, aeroplane, plane, jet, aircraft, airliner",
     "paint_white", "metal"),
    ("rocket", outdoor.rocket, "rocket, spaceship, missile, spacecraft, space ship", "paint_white",
     "paint_red"),
    ("boat", outdoor.boat, "boat, ship, sailboat, yacht, sailing boat, vessel", "wood",
     "fabric"),
    ("person", figures.person, "person, human, man, woman, character, figure, boy, girl, "
     "people, soldier, knight, wizard", "fabric", "denim"),
    ("robot", figures.robot, "robot, android, mech, droid, cyborg", "metal", "paint"),
    ("quadruped", figures.quadruped, "dog, cat, horse, cow, animal, puppy, wolf, fox, deer, "
     "pig, sheep, goat, lion, tiger, bear, pet", "fur", "dark"),
    ("fish", figures.fish, "fish, goldfish, salmon, trout, shark", "scales", "scales"),
    ("bird", figures.bird, "bird, duck, chicken, parrot, pigeon, eagle, owl, sparrow, crow",
     "feathers", "beak"),
]
# fmt: on

FAMILIES: dict[str, Family] = {
    name: Family(name, builder, tuple(w.strip() for w in words.split(",")), primary, accent)
    for name, builder, words, primary, accent in _TABLE
}
FALLBACK_FAMILY = "rock"


def build_shape(family: str, seed: int) -> Shape:
    """The family's shape with proportions drawn from `seed` (same seed, same mesh)."""
    kit = Kit(np.random.default_rng(seed))
    FAMILIES[family].builder(kit)
    vertices, faces, roles = kit.build()
    return Shape(family, vertices, faces, roles)
