"""Named materials and colours that prompts can mention, as PBR metallic-roughness values.

Each material has an sRGB base colour, metallic and roughness factors, a procedural
pattern (see `procedural.py`) and the words that name it. Colours are plain sRGB triples.
The tables are the whole vocabulary: a word that is not here is not understood.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Material:
    name: str
    color: RGB
    metallic: float
    roughness: float
    pattern: str
    words: tuple[str, ...] = ()


def _rgb(hex_code: str) -> RGB:
    value = int(hex_code.lstrip("#"), 16)
    return ((value >> 16 & 255) / 255.0, (value >> 8 & 255) / 255.0, (value & 255) / 255.0)


# fmt: off
_MATERIALS = [
    # name, colour, metallic, roughness, pattern, words
    ("wood", "#9a6a3f", 0.0, 0.7, "wood",
     "wood, wooden, timber, oak wood, walnut, mahogany, plywood, bamboo, teak"),
    ("metal", "#a8abb0", 1.0, 0.35, "brushed",
     "metal, metallic, iron, aluminium, aluminum, tin, titanium, alloy"),
    ("steel", "#b4b8bd", 1.0, 0.3, "brushed", "steel, stainless, stainless steel"),
    ("chrome", "#dadde0", 1.0, 0.08, "flat", "chrome, chromed, mirror, mirrored"),
    ("gold", "#e0b94f", 1.0, 0.25, "flat", "gold, golden, gilded"),
    ("silver", "#c9cbcf", 1.0, 0.2, "flat", "silver"),
    ("copper", "#c47a4c", 1.0, 0.3, "brushed", "copper"),
    ("bronze", "#a97142", 1.0, 0.4, "brushed", "bronze"),
    ("brass", "#c9a94f", 1.0, 0.35, "brushed", "brass"),
    ("rust", "#8a8d91", 1.0, 0.45, "rust", "rust, rusty, rusted, corroded, oxidized, oxidised"),
    ("plastic", "#d9d9d9", 0.0, 0.45, "flat", "plastic, vinyl, acrylic, toy"),
    ("rubber", "#2a2a2a", 0.0, 0.9, "flat", "rubber, tyre, tire"),
    ("glass", "#cfe3ea", 0.0, 0.05, "flat", "glass, crystal glass, transparent, clear"),
    ("stone", "#8d8a84", 0.0, 0.85, "stone", "stone, granite, rocky, cobblestone, slate"),
    ("concrete", "#a3a19c", 0.0, 0.9, "stone", "concrete, cement"),
    ("marble", "#ecebe7", 0.0, 0.25, "marble", "marble"),
    ("ceramic", "#f1eee8", 0.0, 0.3, "flat", "ceramic, porcelain, china, enamel, glazed"),
    ("terracotta", "#c46a3f", 0.0, 0.85, "stone", "terracotta, clay, earthenware, pottery"),
    ("fabric", "#8c8f9c", 0.0, 0.95, "fabric",
     "fabric, cloth, cotton, wool, woolen, woollen, linen, velvet, knitted, upholstered"),
    ("denim", "#3b5478", 0.0, 0.95, "fabric", "denim, jeans"),
    ("leather", "#6b4028", 0.0, 0.6, "leather", "leather, suede"),
    ("paint", "#b3261e", 0.3, 0.35, "flat", "painted, paint, lacquered, lacquer, enamelled"),
    ("paint_red", "#c0392b", 0.2, 0.4, "flat", ""),
    ("paint_white", "#ecedea", 0.1, 0.35, "flat", ""),
    ("rubber_red", "#c8372d", 0.0, 0.75, "flat", ""),
    ("brick", "#a4533c", 0.0, 0.9, "brick", "brick, bricks"),
    ("roof", "#5a3a2e", 0.0, 0.8, "stone", "tiles, shingles, thatched"),
    ("foliage", "#3f7d2c", 0.0, 0.8, "foliage", "leafy, leaves, grass, mossy, moss"),
    ("bark", "#5b4030", 0.0, 0.95, "wood", "bark"),
    ("fur", "#8b6a48", 0.0, 0.95, "fur", "fur, furry, fluffy, hairy"),
    ("feathers", "#7d8a96", 0.0, 0.9, "fur", "feathers, feathered, feathery"),
    ("scales", "#e07b2a", 0.2, 0.4, "scales", "scales, scaly, reptile"),
    ("beak", "#e8a23a", 0.0, 0.5, "flat", ""),
    ("wax", "#f3ead3", 0.0, 0.5, "flat", "wax, waxy"),
    ("pastry", "#c98b4e", 0.0, 0.75, "stone", "bread, pastry, dough, baked, cake"),
    ("snow", "#f4f7fb", 0.0, 0.7, "stone", "snow, snowy, icy, frost"),
    ("cap", "#c0392b", 0.0, 0.5, "flat", ""),
    ("stem", "#efe6d2", 0.0, 0.7, "flat", ""),
    ("petal", "#e75480", 0.0, 0.6, "flat", "petals"),
    ("dark", "#23211f", 0.0, 0.7, "flat", ""),
    ("paper", "#efe9dc", 0.0, 0.9, "fabric", "paper, cardboard, carton"),
]
MATERIALS: dict[str, Material] = {
    name: Material(name, _rgb(color), metallic, rough, pattern,
                   tuple(w.strip() for w in words.split(",") if w.strip()))
    for name, color, metallic, rough, pattern, words in _MATERIALS
}

COLOURS: dict[str, RGB] = {name: _rgb(code) for name, code in {
    "red": "#c0392b", "crimson": "#a4161a", "scarlet": "#d62d20", "maroon": "#6d1a1a",
    "burgundy": "#6e1423", "pink": "#e87ea1", "hot pink": "#ff4fa0", "magenta": "#c2185b",
    "orange": "#e67e22", "amber": "#f0a030", "yellow": "#f1c40f", "lemon": "#f7e04b",
    "cream": "#f2e8cf", "beige": "#d8c8a8", "tan": "#c2a078", "khaki": "#b5a46a",
    "brown": "#7b4a2a", "chocolate": "#5a3420", "olive": "#6b7a2a", "lime": "#8bc34a",
    "green": "#2e8b3e", "emerald": "#1f9d60", "mint": "#98d8b0", "teal": "#168a83",
    "turquoise": "#2ec4b6", "cyan": "#22b8d6", "aqua": "#3ccfe0", "sky blue": "#74b9e8",
    "blue": "#2462b8", "navy": "#1b2a4a", "navy blue": "#1b2a4a", "cobalt": "#1f4fa0",
    "indigo": "#3f3d9a", "purple": "#7d3c98", "violet": "#8e5ec9", "lavender": "#b8a4dc",
    "lilac": "#c4a3d9", "white": "#f2f2f0", "ivory": "#f3efe2", "black": "#1c1c1e",
    "grey": "#808285", "gray": "#808285", "charcoal": "#36393d", "silver": "#c9cbcf",
    "gold": "#e0b94f", "golden": "#e0b94f", "bronze": "#a97142", "copper": "#c47a4c",
}.items()}
# fmt: on

COLOUR_MODIFIERS = {
    "light": ("mix_white", 0.4),
    "pale": ("mix_white", 0.5),
    "pastel": ("mix_white", 0.45),
    "dark": ("darken", 0.55),
    "deep": ("darken", 0.7),
    "bright": ("saturate", 1.25),
    "vivid": ("saturate", 1.3),
}

FINISHES = {
    # word: (roughness multiplier, roughness floor, roughness ceiling)
    "shiny": (0.35, 0.04, 1.0),
    "glossy": (0.35, 0.04, 1.0),
    "polished": (0.3, 0.04, 1.0),
    "sleek": (0.5, 0.05, 1.0),
    "smooth": (0.7, 0.05, 1.0),
    "matte": (1.0, 0.75, 1.0),
    "matt": (1.0, 0.75, 1.0),
    "dull": (1.0, 0.7, 1.0),
    "rough": (1.0, 0.85, 1.0),
    "brushed": (1.0, 0.4, 0.55),
    "satin": (1.0, 0.35, 0.5),
}
WEAR = ("old", "worn", "weathered", "dirty", "aged", "ancient", "battered", "grimy")


def apply_modifier(color: RGB, modifier: str) -> RGB:
    kind, amount = COLOUR_MODIFIERS[modifier]
    r, g, b = color
    if kind == "mix_white":
        return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)
    if kind == "darken":
        return (r * amount, g * amount, b * amount)
    mean = (r + g + b) / 3.0
    return tuple(min(1.0, max(0.0, mean + (c - mean) * amount)) for c in (r, g, b))  # type: ignore[return-value]
