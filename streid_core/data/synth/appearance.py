"""Who a dancer is: body proportions, skin, hair and outfit, stable over the whole video.

Identity lives only here. The hard cases are made here too:
- outfit twins: a dancer of another video wears (almost) the same clothes, and only hair, skin
  and build tell them apart;
- themed videos: a group dressed in one or two shared colours, told apart by cut, pattern,
  hair and build.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .skeleton import Body

Color = tuple[int, int, int]

# Common clothing colours (RGB) and how often they are worn; black, white and denim dominate.
CLOTHING = {
    "black": ((25, 25, 28), 3.0), "white": ((235, 235, 230), 2.5), "grey": ((128, 128, 130), 1.5),
    "charcoal": ((60, 60, 66), 1.0), "navy": ((30, 40, 85), 1.5), "denim": ((70, 95, 140), 1.5),
    "light_blue": ((150, 185, 220), 1.0), "red": ((180, 30, 35), 1.0), "burgundy": ((110, 25, 40), 0.7),
    "pink": ((235, 150, 180), 0.8), "beige": ((210, 190, 160), 1.0), "khaki": ((170, 150, 100), 0.7),
    "olive": ((95, 100, 50), 0.6), "green": ((40, 130, 70), 0.6), "teal": ((30, 130, 130), 0.5),
    "yellow": ((235, 200, 40), 0.6), "orange": ((230, 120, 30), 0.5), "purple": ((100, 50, 140), 0.6),
    "brown": ((110, 70, 40), 0.6), "lavender": ((180, 160, 215), 0.5),
}
SKIN = ((245, 215, 190), (232, 192, 160), (212, 168, 128), (182, 132, 96), (140, 96, 66), (98, 64, 44))
HAIR_COLORS = {
    "black": ((22, 20, 20), 4.0), "dark_brown": ((52, 36, 26), 2.0), "brown": ((98, 66, 40), 1.0),
    "blonde": ((205, 172, 110), 0.8), "red": ((145, 62, 30), 0.4), "pink": ((232, 142, 172), 0.4),
    "blue": ((60, 92, 172), 0.3), "silver": ((192, 192, 202), 0.5), "ash": ((150, 140, 128), 0.3),
}
HAIR_STYLES = {"short": 3.0, "long": 2.5, "ponytail": 1.5, "bun": 1.0, "cap": 0.8}
TOP_KINDS = {"tee": 3.0, "long": 2.0, "tank": 1.0, "jacket": 1.5}
TOP_PATTERNS = {"solid": 4.0, "hstripes": 1.2, "vstripes": 0.6, "split": 0.8, "halves": 0.8, "emblem": 1.2, "checks": 0.5}
BOTTOM_KINDS = {"trousers": 3.0, "shorts": 1.2, "skirt": 1.0}
BOTTOM_PATTERNS = {"solid": 4.0, "stripe": 1.0, "checks": 0.4}


@dataclass(frozen=True)
class Garment:
    kind: str
    color: Color
    color2: Color  # second colour of the pattern (stripes, inner shirt of a jacket, tights)
    pattern: str
    period: float  # stripe or check period in metres


@dataclass(frozen=True)
class Hair:
    style: str
    color: Color
    hat: Color  # colour of the cap for style "cap"


@dataclass(frozen=True)
class Appearance:
    body: Body
    skin: Color
    hair: Hair
    top: Garment
    bottom: Garment
    shoes: Color


@dataclass(frozen=True)
class Theme:
    """Colours a whole group agreed to wear."""

    tops: tuple[Color, ...]
    bottoms: tuple[Color, ...]


def _pick(rng: np.random.Generator, table: dict) -> str:
    names = list(table)
    weights = np.array([v[1] if isinstance(v, tuple) else v for v in table.values()], dtype=np.float64)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def _jitter(rng: np.random.Generator, color: Color, amount: float) -> Color:
    return tuple(int(np.clip(c + rng.normal(0, amount), 0, 255)) for c in color)  # type: ignore[return-value]


def _cloth(rng: np.random.Generator) -> Color:
    return _jitter(rng, CLOTHING[_pick(rng, CLOTHING)][0], 12)


def _contrast(rng: np.random.Generator, color: Color) -> Color:
    """A clothing colour clearly different from `color` (for stripes and two-tone cuts)."""
    for _ in range(20):
        other = _cloth(rng)
        if np.abs(np.subtract(other, color)).sum() > 150:
            return other
    return (235, 235, 230) if sum(color) < 380 else (25, 25, 28)


def sample_body(rng: np.random.Generator) -> Body:
    h = float(np.clip(rng.normal(1.70, 0.08), 1.52, 1.92))
    leg = h * rng.uniform(0.45, 0.50)
    return Body(
        height=h,
        shoulder_half=h * rng.uniform(0.100, 0.125),
        hip_half=h * rng.uniform(0.048, 0.060),
        torso=h * rng.uniform(0.285, 0.31),
        thigh=leg * 0.5,
        shin=leg * 0.5,
        upper_arm=h * rng.uniform(0.165, 0.185),
        forearm=h * rng.uniform(0.14, 0.155),
        head_radius=h * rng.uniform(0.060, 0.072),
        neck=h * 0.035,
        build=float(rng.uniform(0.85, 1.3)),
    )


def sample_hair(rng: np.random.Generator) -> Hair:
    return Hair(style=_pick(rng, HAIR_STYLES), color=_jitter(rng, HAIR_COLORS[_pick(rng, HAIR_COLORS)][0], 8), hat=_cloth(rng))


def sample_theme(rng: np.random.Generator) -> Theme:
    tops = tuple(_cloth(rng) for _ in range(int(rng.integers(1, 3))))
    bottoms = ((25, 25, 28),) if rng.random() < 0.5 else (_cloth(rng),)
    return Theme(tops=tops, bottoms=bottoms)


def sample_appearance(rng: np.random.Generator, theme: Theme | None = None) -> Appearance:
    if theme is None:
        top_color, bottom_color = _cloth(rng), _cloth(rng)
    else:
        top_color = _jitter(rng, theme.tops[int(rng.integers(len(theme.tops)))], 8)
        bottom_color = _jitter(rng, theme.bottoms[int(rng.integers(len(theme.bottoms)))], 8)
    top = Garment(_pick(rng, TOP_KINDS), top_color, _contrast(rng, top_color), _pick(rng, TOP_PATTERNS), float(rng.uniform(0.05, 0.11)))
    bottom = Garment(
        _pick(rng, BOTTOM_KINDS), bottom_color, _contrast(rng, bottom_color), _pick(rng, BOTTOM_PATTERNS), float(rng.uniform(0.06, 0.12))
    )
    return Appearance(
        body=sample_body(rng),
        skin=_jitter(rng, SKIN[int(rng.integers(len(SKIN)))], 6),
        hair=sample_hair(rng),
        top=top,
        bottom=bottom,
        shoes=(240, 240, 240) if rng.random() < 0.4 else _cloth(rng),
    )


def outfit_twin(rng: np.random.Generator, source: Appearance) -> Appearance:
    """Someone else in nearly the same clothes: the outfit is copied with a slight colour shift,
    while body, skin and hair are drawn anew (forced to differ, so a person can still tell)."""

    def shifted(g: Garment) -> Garment:
        return replace(g, color=_jitter(rng, g.color, 6), color2=_jitter(rng, g.color2, 6))

    def far(a: Color, b: Color, amount: int) -> bool:
        return int(np.abs(np.subtract(a, b)).sum()) >= amount

    # Redraw until the head tells them apart: a different hair colour, or a different hairstyle
    # on a different skin tone.
    while True:
        hair, skin = sample_hair(rng), _jitter(rng, SKIN[int(rng.integers(len(SKIN)))], 6)
        if far(hair.color, source.hair.color, 90) or (hair.style != source.hair.style and far(skin, source.skin, 60)):
            break
    return Appearance(
        body=sample_body(rng),
        skin=skin,
        hair=hair,
        top=shifted(source.top),
        bottom=shifted(source.bottom),
        shoes=_jitter(rng, source.shoes, 6),
    )
