"""Draw a person from COCO-17 keypoints: limbs as tapered capsules, torso and pelvis as polygons
following the skeleton, a head with hair, clothing colours and patterns.

Everything is drawn in image pixels with OpenCV's anti-aliased sub-pixel polygon fill. Parts are
drawn far-to-near using the depth of their joints, so an arm swung behind the body disappears
behind it and a kick comes out in front. A label image records which person owns each pixel;
the scene uses it to measure occlusion.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import cv2
import numpy as np

from .appearance import Appearance, Garment

SHIFT = 4  # sub-pixel bits for cv2 polygon fill
ONE = 1 << SHIFT

Pattern = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (along m, across m, along frac) -> use color2


@dataclass(frozen=True)
class PersonView:
    """A posed person as seen in one image."""

    keypoints: np.ndarray  # (17, 2) x, y in image pixels
    depth: np.ndarray  # (17,) metres towards the camera, orders the limbs
    scale: float  # image pixels per metre at this person
    yaw: float  # 0 = facing the camera, pi = back to the camera
    look: Appearance

    def transformed(self, offset: np.ndarray, factor: float) -> "PersonView":
        """The same person after the image is shifted by -offset and scaled by factor (a crop)."""
        return replace(self, keypoints=(self.keypoints - offset) * factor, scale=self.scale * factor)


@dataclass
class Shape:
    """One filled part of a person, in the pixels of the view it was made from."""

    poly: np.ndarray  # (N, 2) float pixels
    color: tuple
    depth: float
    pattern: Pattern | None = None
    color2: tuple = (0, 0, 0)
    origin: np.ndarray | None = None  # pattern frame: origin, unit along, unit across, length px
    along: np.ndarray | None = None
    across: np.ndarray | None = None
    length: float = 1.0
    labelled: bool = True


def _unit(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    n = float(np.hypot(*v))
    return v / n if n > 1e-6 else fallback


def _perp(v: np.ndarray) -> np.ndarray:
    return np.array([-v[1], v[0]])


_HALF = np.linspace(-np.pi / 2, np.pi / 2, 7)
_HALF_COS, _HALF_SIN = np.cos(_HALF), np.sin(_HALF)


def _capsule(p0: np.ndarray, p1: np.ndarray, r0: float, r1: float) -> np.ndarray:
    """Outline of a tapered capsule: half circles of radius r0 around p0 and r1 around p1."""
    d = p1 - p0
    n = float(np.hypot(d[0], d[1]))
    c, s = (d[0] / n, d[1] / n) if n > 1e-6 else (1.0, 0.0)
    # Half circle turned to face along d (around p1) and against d (around p0).
    hx, hy = c * _HALF_COS - s * _HALF_SIN, s * _HALF_COS + c * _HALF_SIN
    out = np.empty((14, 2))
    out[:7, 0], out[:7, 1] = p1[0] + r1 * hx, p1[1] + r1 * hy
    out[7:, 0], out[7:, 1] = p0[0] - r0 * hx, p0[1] - r0 * hy
    return out


def _ellipse(c: np.ndarray, up: np.ndarray, rx: float, ry: float, n: int = 20) -> np.ndarray:
    phi = np.linspace(0, 2 * np.pi, n, endpoint=False)
    right = -_perp(up)
    return c + np.outer(rx * np.cos(phi), right) + np.outer(ry * np.sin(phi), up)


def _clip(poly: np.ndarray, normal: np.ndarray, centre: np.ndarray, t: float) -> np.ndarray:
    """Keep the part of a convex polygon where (p - centre) . normal >= t (Sutherland-Hodgman)."""
    out = []
    dist = (poly - centre) @ normal - t
    for i in range(len(poly)):
        j = (i + 1) % len(poly)
        if dist[i] >= 0:
            out.append(poly[i])
        if (dist[i] >= 0) != (dist[j] >= 0):
            out.append(poly[i] + (poly[j] - poly[i]) * dist[i] / (dist[i] - dist[j]))
    return np.array(out).reshape(-1, 2)


def _shade(color: tuple, factor: float) -> tuple:
    return tuple(float(min(255.0, c * factor)) for c in color)


def _fixed(poly: np.ndarray) -> np.ndarray:
    return np.round(poly * ONE).astype(np.int32)


def _draw(image: np.ndarray, labels: np.ndarray | None, shape: Shape, label: int, offset: np.ndarray,
          factor: float, px_per_metre: float) -> None:
    if len(shape.poly) < 3:
        return
    poly = (shape.poly - offset) * factor
    fixed = [_fixed(poly)]
    if labels is not None and shape.labelled:
        cv2.fillPoly(labels, fixed, label, cv2.LINE_8, SHIFT)
    if shape.pattern is None:
        cv2.fillPoly(image, fixed, shape.color, cv2.LINE_AA, SHIFT)
        return
    h, w = image.shape[:2]
    x0, y0 = np.maximum(np.floor(poly.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(poly.max(0)).astype(int) + 2, (w, h))
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [_fixed(poly - (x0, y0))], 255, cv2.LINE_AA, SHIFT)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    origin = (shape.origin - offset) * factor
    rel = np.stack([xs + 0.5 - origin[0], ys + 0.5 - origin[1]], -1)
    along = rel @ shape.along
    use2 = shape.pattern(along / px_per_metre, (rel @ shape.across) / px_per_metre, along / max(shape.length * factor, 1e-6))
    color = np.where(use2[..., None], np.array(shape.color2), np.array(shape.color))
    alpha = mask[..., None].astype(np.float32) / 255.0
    patch = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = np.round(patch * (1 - alpha) + color * alpha).astype(np.uint8)


def _garment_pattern(g: Garment, facing: float, part: str) -> Pattern | None:
    """The pattern function of garment `g` on a body part, or None when the part is plain."""
    p = g.period
    if g.kind == "jacket" and part == "torso":
        # An open jacket shows the shirt underneath down the middle, from the front only.
        if facing <= 0.2:
            return None
        return lambda a, c, f: np.abs(c) < 0.05 * facing
    if g.pattern == "hstripes":
        return lambda a, c, f: np.floor(a / p) % 2 == 1
    if g.pattern == "vstripes" and part == "torso":
        return lambda a, c, f: np.floor(c / p + 100.5) % 2 == 1
    if g.pattern == "checks":
        return lambda a, c, f: (np.floor(a / p) + np.floor(c / p + 100.5)) % 2 == 1
    if g.pattern == "split" and part == "torso":
        return lambda a, c, f: c > 0  # two-tone: the wearer's left half in the second colour
    if g.pattern == "halves" and part == "torso":
        return lambda a, c, f: f > 0.5
    if g.pattern == "emblem" and part == "torso" and facing > 0.25:
        # A print on the chest, foreshortened as the wearer turns; the back is plain.
        return lambda a, c, f: ((a - 0.17) / 0.07) ** 2 + (c / (0.07 * facing)) ** 2 < 1
    if g.pattern == "stripe" and part == "leg":
        return lambda a, c, f: np.abs(c) < 0.014  # a stripe down the trouser leg
    if g.pattern == "stripe" and part == "skirt":
        return lambda a, c, f: f > 0.8  # a hem band
    return None


def _length(v: np.ndarray) -> float:
    return float(np.hypot(v[0], v[1]))


class _Outline:
    """Builds the shapes of one posed person; one method per body region."""

    def __init__(self, view: PersonView) -> None:
        self.k, self.z, self.s, self.look = view.keypoints.astype(np.float64), view.depth, view.scale, view.look
        self.build = self.look.body.build
        self.facing, self.side = float(np.cos(view.yaw)), float(np.sin(view.yaw))
        self.neck, self.pelvis = (self.k[5] + self.k[6]) / 2, (self.k[11] + self.k[12]) / 2
        self.torso_z = float(self.z[[5, 6, 11, 12]].mean())
        self.axis = _unit(self.pelvis - self.neck, np.array([0.0, 1.0]))  # down the spine
        # The wearer's left in the image. Seen from the side the shoulders collapse, so fall back
        # to where the left would be (image-right when facing the camera).
        self.left = _unit(self.k[5] - self.k[6], _perp(self.axis) * (1 if self.facing >= 0 else -1))
        self.shapes: list[Shape] = []

    def shade(self, depth: float) -> float:
        """Parts turned away from the camera (behind the torso) are a little darker."""
        return float(np.clip(1.0 + 1.5 * (depth - self.torso_z), 0.78, 1.0))

    def plain(self, poly: np.ndarray, color: tuple, depth: float, shade: float = 1.0, labelled: bool = True) -> None:
        self.shapes.append(Shape(poly, _shade(color, shade), depth, labelled=labelled))

    def cloth(self, poly: np.ndarray, g: Garment, part: str, depth: float, origin: np.ndarray, along: np.ndarray,
              length: float, shade: float = 1.0, color: tuple | None = None) -> None:
        """A garment part; its pattern is laid out along `along` and across towards the wearer's
        left, so a two-tone shirt keeps its halves on the right sides when the wearer turns."""
        across = self.left - along * float(self.left @ along)
        self.shapes.append(Shape(
            poly=poly, color=_shade(g.color if color is None else color, shade), depth=depth,
            pattern=_garment_pattern(g, self.facing, part), color2=_shade(g.color2, shade),
            origin=origin, along=along, across=_unit(across, _perp(along)), length=length,
        ))

    def limb_cloth(self, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float, g: Garment, part: str, depth: float,
                   shade: float, color: tuple | None = None, full: np.ndarray | None = None) -> None:
        """A garment tube from p0 to p1; patterns are laid out along p0 -> `full` (the whole limb)."""
        full = p1 if full is None else full
        along = _unit(full - p0, self.axis)
        self.cloth(_capsule(p0, p1, r0, r1), g, part, depth, p0, along, _length(full - p0), shade, color)

    def arms(self) -> None:
        k, z, s, top = self.k, self.z, self.s, self.look.top
        ua0, ua1, fa1 = 0.048 * self.build * s, 0.040 * self.build * s, 0.032 * self.build * s
        right_sleeve = top.color2 if top.pattern == "split" else top.color
        for sh, el, wr, sleeve in ((5, 7, 9, top.color), (6, 8, 10, right_sleeve)):
            zu, zf = (z[sh] + z[el]) / 2 + 0.02, (z[el] + z[wr]) / 2 + 0.025
            su, sf = self.shade(zu), self.shade(zf)
            if top.kind in ("long", "jacket"):
                self.limb_cloth(k[sh], k[el], ua0, ua1, top, "arm", zu, su, sleeve)
                self.limb_cloth(k[el], k[wr], ua1, fa1, top, "arm", zf, sf, sleeve)
            else:
                self.plain(_capsule(k[sh], k[el], ua0 * 0.9, ua1 * 0.9), self.look.skin, zu, su)
                self.plain(_capsule(k[el], k[wr], ua1 * 0.9, fa1 * 0.9), self.look.skin, zf, sf)
                if top.kind == "tee":
                    cuff = k[sh] + (k[el] - k[sh]) * 0.45
                    self.limb_cloth(k[sh], cuff, ua0 * 1.15, ua0 * 1.1, top, "arm", zu + 0.001, su, sleeve, full=k[el])
            hand = k[wr] + _unit(k[wr] - k[el], self.axis) * 0.03 * s
            self.plain(_capsule(k[wr], hand, fa1 * 1.1, 0.045 * s), self.look.skin, zf + 0.002, sf)

    def legs(self) -> None:
        """Legs sit slightly behind the pelvis unless they kick forward."""
        k, z, s, bottom = self.k, self.z, self.s, self.look.bottom
        th0, th1, sh1 = 0.085 * self.build * s, 0.058 * self.build * s, 0.040 * self.build * s
        for hp, kn, an in ((11, 13, 15), (12, 14, 16)):
            zt, zs = (z[hp] + z[kn]) / 2 - 0.06, (z[kn] + z[an]) / 2 - 0.06
            st, ss = self.shade(zt + 0.06), self.shade(zs + 0.06)
            if bottom.kind == "trousers":
                self.limb_cloth(k[hp], k[kn], th0, th1, bottom, "leg", zt, st)
                self.limb_cloth(k[kn], k[an], th1, sh1 * 1.1, bottom, "leg", zs, ss)
            else:
                self.plain(_capsule(k[hp], k[kn], th0 * 0.92, th1 * 0.92), self.look.skin, zt, st)
                self.plain(_capsule(k[kn], k[an], th1 * 0.92, sh1), self.look.skin, zs, ss)
                if bottom.kind == "shorts":
                    hem = k[hp] + (k[kn] - k[hp]) * 0.55
                    self.limb_cloth(k[hp], hem, th0 * 1.08, th0 * 1.02, bottom, "leg", zt + 0.001, st, full=k[kn])
            toe = k[an] + np.array([self.side * 0.12, 0.04]) * s  # the foot points where the body faces
            self.plain(_capsule(k[an], toe, 0.042 * s, 0.045 * s), self.look.shoes, zs + 0.001, ss)

    def torso(self) -> None:
        """Shirt from the shoulders to the waist, the bottom garment from the waist to the crotch,
        and a skirt over the thighs."""
        k, s, top, bottom = self.k, self.s, self.look.top, self.look.bottom
        neck, pelvis, axis, left = self.neck, self.pelvis, self.axis, self.left
        depth_half = 0.095 * self.build * s  # a body is never thinner than this, even from the side
        sw = max(_length((k[5] - k[6]) / 2), depth_half) + 0.015 * self.build * s
        if top.kind == "tank":
            sw *= 0.9
        hw = max(_length((k[11] - k[12]) / 2) + 0.06 * self.build * s, depth_half * 1.05)
        s_left, h_left = _unit(k[5] - k[6], left), _unit(k[11] - k[12], left)
        lift = -axis * 0.025 * s
        waist = neck + (pelvis - neck) * 0.62
        ww = 0.5 * (sw + hw) * 0.9
        wl, wr = waist + left * ww, waist - left * ww
        upper = np.array([
            neck + s_left * sw * 0.55 + lift * 1.2, neck + s_left * sw + lift * 0.3, neck + s_left * sw + axis * 0.06 * s,
            wl, wr,
            neck - s_left * sw + axis * 0.06 * s, neck - s_left * sw + lift * 0.3, neck - s_left * sw * 0.55 + lift * 1.2,
        ])
        crotch = pelvis + axis * 0.09 * s
        drop = axis * 0.06 * s
        lower = np.array([wl, pelvis + h_left * hw, pelvis + h_left * hw + drop, crotch,
                          pelvis - h_left * hw + drop, pelvis - h_left * hw, wr])
        self.cloth(upper, top, "torso", self.torso_z + 0.001, neck, axis, _length(waist - neck))
        self.cloth(lower, bottom, "pelvis", self.torso_z, waist, axis, _length(crotch - waist))
        if bottom.kind == "skirt":
            hem = pelvis + ((k[13] + k[14]) / 2 - pelvis) * 0.55
            flare = max(hw * 1.35, _length((k[13] - k[14]) / 2) * 0.9 + 0.05 * s)
            skirt = np.array([wl, wr, hem - h_left * flare, hem + h_left * flare])
            self.cloth(skirt, bottom, "skirt", self.torso_z + 0.002, waist, _unit(hem - waist, axis), _length(hem - waist))

    def head(self) -> None:
        """Neck, face (eyes only when the face is towards the camera) and hair; long hair, ponytails
        and buns hang behind the body from the front and over it from the back."""
        k, s, hair = self.k, self.s, self.look.hair
        centre = (k[3] + k[4]) / 2
        up = _unit(centre - self.neck, -self.axis)
        right = -_perp(up)
        rh = self.look.body.head_radius * s
        head_z = self.torso_z + 0.05
        neck_r = 0.045 * self.build * s
        self.plain(_capsule(self.neck, self.neck + (centre - self.neck) * 0.7, neck_r, neck_r * 0.9), self.look.skin,
                   self.torso_z - 0.01, 0.92)
        self.plain(_ellipse(centre, up, rh * 0.88, rh * 1.05), self.look.skin, head_z)
        if self.facing > 0.35:
            for eye in (1, 2):
                self.plain(_ellipse(k[eye], up, 0.11 * rh, 0.11 * rh, 8), (35, 28, 28), head_z + 0.001, labelled=False)
        back = np.array([-self.side, 0.0])  # where the back of the head is, in the image
        behind = self.torso_z - 0.05 if self.facing > -0.2 else head_z + 0.01
        if hair.style == "long":
            low = centre - up * (rh + 0.3 * s) + back * 0.3 * rh
            top_c = centre + back * 0.3 * rh
            panel = np.array([top_c + right * rh, low + right * rh * 1.05, low - right * rh * 1.05, top_c - right * rh])
            self.plain(panel, hair.color, behind)
        elif hair.style == "ponytail":
            root = centre + up * 0.4 * rh + back * 0.9 * rh
            self.plain(_capsule(root, root - up * 1.9 * rh + back * 0.3 * rh, 0.33 * rh, 0.2 * rh), hair.color, behind)
        elif hair.style == "bun":
            self.plain(_ellipse(centre + up * 0.95 * rh + back * 0.5 * rh, up, 0.42 * rh, 0.42 * rh, 12), hair.color, behind)
        # The hairline: across the forehead from the front, the whole head from the back.
        hairline = rh * (0.3 - 1.4 * max(0.0, -self.facing))
        cap = _clip(_ellipse(centre, up, rh * 0.95, rh * 1.1), _unit(up + back, up), centre, hairline)
        self.plain(cap, hair.color, head_z + 0.002)
        if hair.style == "cap":
            self.plain(_clip(_ellipse(centre, up, rh * 1.0, rh * 1.13), up, centre, rh * 0.2), hair.hat, head_z + 0.003)
            band = centre + up * 0.22 * rh
            if abs(self.facing) > 0.5:
                brim = _capsule(band - right * rh, band + right * rh, 0.13 * rh, 0.13 * rh)
            else:  # seen from the side the peak sticks out the way the face looks
                brim = _capsule(band, band + np.array([np.sign(self.side), 0.0]) * 1.6 * rh, 0.12 * rh, 0.1 * rh)
            self.plain(brim, hair.hat, head_z + 0.004, 0.8)


def person_shapes(view: PersonView) -> list[Shape]:
    """All parts of one person as shapes in the view's pixels, sorted far to near."""
    outline = _Outline(view)
    outline.arms()
    outline.legs()
    outline.torso()
    outline.head()
    return sorted(outline.shapes, key=lambda shape: shape.depth)


def draw_shapes(image: np.ndarray, shapes: list[Shape], px_per_metre: float, offset: np.ndarray | None = None,
                factor: float = 1.0, labels: np.ndarray | None = None, label: int = 1) -> None:
    """Paint shapes made by `person_shapes` onto `image` (H, W, 3 uint8, in place) after moving them
    by -offset and scaling by factor (a crop); mark their pixels `label` in `labels`.
    `px_per_metre` is the person's scale in the shapes' own pixels."""
    offset = np.zeros(2) if offset is None else np.asarray(offset, dtype=np.float64)
    for shape in shapes:
        _draw(image, labels, shape, label, offset, factor, px_per_metre * factor)


def draw_person(image: np.ndarray, view: PersonView, labels: np.ndarray | None = None, label: int = 1) -> None:
    """Paint `view` onto `image` (H, W, 3 uint8, in place); mark its pixels `label` in `labels`."""
    draw_shapes(image, person_shapes(view), view.scale, labels=labels, label=label)
