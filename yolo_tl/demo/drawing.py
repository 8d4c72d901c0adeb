"""Drawing the synthetic sample: noisy backgrounds, eight filled shapes, tight boxes, JPEG bytes."""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

JPEG_QUALITY = 80
SIDES = (256, 288, 320)

XYXY = tuple[int, int, int, int]



def _hsv(rng: random.Random, s: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
    h = rng.random()
    sat = rng.uniform(*s)
    val = rng.uniform(*v)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = val * (1 - sat), val * (1 - f * sat), val * (1 - (1 - f) * sat)
    rgb = [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][i]
    return np.array(rgb, dtype=np.float64) * 255.0


def _background(rng: random.Random, nrng: np.random.RandomState, w: int, h: int) -> np.ndarray:
    """A float RGB background of one of five kinds, with mild grain."""
    kind = rng.randrange(5)
    c1 = _hsv(rng, (0.0, 0.6), (0.2, 0.95))
    c2 = _hsv(rng, (0.0, 0.6), (0.2, 0.95))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind == 0:  # linear gradient at a random angle
        a = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(a) + yy * math.sin(a))
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
        img = c1 + t[..., None] * (c2 - c1)
    elif kind == 1:  # smooth colour noise: a coarse random grid, upscaled bicubically
        cell = rng.choice((24, 32, 48))
        grid = nrng.rand(h // cell + 2, w // cell + 2, 3)
        small = Image.fromarray((grid * 255).astype(np.uint8))
        big = np.asarray(small.resize((w, h), Image.BICUBIC), dtype=np.float64) / 255.0
        img = c1 + (big - 0.5) * rng.uniform(80, 160)
    elif kind == 2:  # soft stripes at a random angle
        a = rng.uniform(0, math.pi)
        period = rng.uniform(10, 40)
        t = (np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / period) + 1) / 2
        img = c1 + t[..., None] * (c2 - c1) * rng.uniform(0.3, 0.7)
    elif kind == 3:  # low-contrast checks
        cell = rng.choice((16, 24, 32))
        t = ((xx // cell + yy // cell) % 2)
        img = c1 + t[..., None] * (c2 - c1) * rng.uniform(0.2, 0.5)
    else:  # flat colour
        img = np.broadcast_to(c1, (h, w, 3)).copy()
    img = img + nrng.normal(0.0, rng.uniform(1.5, 6.0), size=(h, w, 3))
    return np.clip(img, 0, 255)


def _regular(cx: float, cy: float, r: float, n: int, start: float) -> list[tuple[float, float]]:
    return [
        (cx + r * math.cos(start + 2 * math.pi * k / n), cy + r * math.sin(start + 2 * math.pi * k / n))
        for k in range(n)
    ]


def _star(cx: float, cy: float, r: float, start: float, inner: float = 0.45) -> list[tuple[float, float]]:
    pts = []
    for k in range(10):
        rr = r if k % 2 == 0 else r * inner
        a = start + math.pi * k / 5
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return pts


def _rotated(points: Sequence[tuple[float, float]], cx: float, cy: float, a: float) -> list[tuple[float, float]]:
    ca, sa = math.cos(a), math.sin(a)
    return [(cx + (x - cx) * ca - (y - cy) * sa, cy + (x - cx) * sa + (y - cy) * ca) for x, y in points]


ShapeFn = Callable[[ImageDraw.ImageDraw, random.Random, float, float, float], None]


def _draw_circle(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    rx, ry = r, r * rng.uniform(0.85, 1.0)
    if rng.random() < 0.5:
        rx, ry = ry, rx
    d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)


def _draw_square(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    d.polygon(_regular(cx, cy, r, 4, math.pi / 4 + math.radians(rng.uniform(-20, 20))), fill=255)


def _draw_triangle(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    d.polygon(_regular(cx, cy, r, 3, rng.uniform(0, 2 * math.pi)), fill=255)


def _draw_star(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    d.polygon(_star(cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=255)


def _draw_cross(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    a, t = rng.uniform(0, math.pi / 2), r * rng.uniform(0.25, 0.4)
    for pts in (
        [(cx - r, cy - t), (cx + r, cy - t), (cx + r, cy + t), (cx - r, cy + t)],
        [(cx - t, cy - r), (cx + t, cy - r), (cx + t, cy + r), (cx - t, cy + r)],
    ):
        d.polygon(_rotated(pts, cx, cy, a), fill=255)


def _draw_ring(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    ri = r * rng.uniform(0.5, 0.65)
    d.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=0)


def _draw_hexagon(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    d.polygon(_regular(cx, cy, r, 6, rng.uniform(0, math.pi / 3)), fill=255)


def _draw_crescent(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, r: float) -> None:
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    a, off = rng.uniform(0, 2 * math.pi), r * rng.uniform(0.45, 0.6)
    ox, oy = cx + off * math.cos(a), cy + off * math.sin(a)
    d.ellipse([ox - r * 0.9, oy - r * 0.9, ox + r * 0.9, oy + r * 0.9], fill=0)


SHAPES: dict[str, ShapeFn] = {
    "circle": _draw_circle,
    "square": _draw_square,
    "triangle": _draw_triangle,
    "star": _draw_star,
    "cross": _draw_cross,
    "ring": _draw_ring,
    "hexagon": _draw_hexagon,
    "crescent": _draw_crescent,
}


def _overlaps(box: XYXY, others: Sequence[XYXY], limit: float = 0.1) -> bool:
    """True when ``box`` covers more than ``limit`` of itself or of another box."""
    x1, y1, x2, y2 = box
    area = (x2 - x1) * (y2 - y1)
    for ox1, oy1, ox2, oy2 in others:
        iw, ih = min(x2, ox2) - max(x1, ox1), min(y2, oy2) - max(y1, oy1)
        if iw > 0 and ih > 0:
            inter = iw * ih
            if inter > limit * area or inter > limit * (ox2 - ox1) * (oy2 - oy1):
                return True
    return False


def draw_image(
    rng: random.Random, nrng: np.random.RandomState, classes: Sequence[str], *, empty: bool
) -> tuple[Image.Image, list[tuple[str, XYXY]]]:
    """One image and its tight boxes ``(label, (x1, y1, x2, y2))`` in continuous 0-based pixels."""
    w, h = rng.choice(SIDES), rng.choice(SIDES)
    img = _background(rng, nrng, w, h)
    # A few thin distractor lines, so that "edge" alone does not mean "object".
    canvas = Image.fromarray(img.astype(np.uint8))
    d = ImageDraw.Draw(canvas)
    for _ in range(rng.choice((0, 0, 1, 2, 3))):
        col = tuple(int(c) for c in _hsv(rng, (0.0, 0.5), (0.1, 0.9)))
        d.line([(rng.uniform(0, w), rng.uniform(0, h)), (rng.uniform(0, w), rng.uniform(0, h))],
               fill=col, width=rng.choice((1, 2)))
    img = np.asarray(canvas, dtype=np.float64).copy()

    objects: list[tuple[str, XYXY]] = []
    n = 0 if empty else rng.choice((1, 1, 2, 2, 3, 3, 4, 5))
    side = min(w, h)
    for _ in range(n):
        label = rng.choice(list(classes))
        for _attempt in range(40):
            r = rng.uniform(0.06, 0.2) * side  # radius: boxes of about 15-130 px
            cx, cy = rng.uniform(r + 3, w - r - 3), rng.uniform(r + 3, h - r - 3)
            mask = Image.new("L", (w, h), 0)
            SHAPES[label](ImageDraw.Draw(mask), rng, cx, cy, r)
            bbox = mask.getbbox()  # (left, top, right, bottom), right/bottom exclusive
            if bbox is None or _overlaps(bbox, [b for _, b in objects]):
                continue
            m = np.asarray(mask, dtype=np.float64)[..., None] / 255.0
            x1, y1, x2, y2 = bbox
            under = img[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0)
            colour = _hsv(rng, (0.55, 1.0), (0.45, 1.0))
            for _c in range(10):  # keep the object visible against what lies under it
                if np.abs(colour - under).sum() >= 150:
                    break
                colour = _hsv(rng, (0.55, 1.0), (0.45, 1.0))
            shade = colour * (1.0 - nrng.rand(h, w, 1) * 0.12)  # a little texture on the object
            img = img * (1 - m) + shade * m
            objects.append((label, (x1, y1, x2, y2)))
            break
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)), objects


def encode_jpeg(image: Image.Image) -> bytes:
    """Fixed JPEG settings: same pixels in, same bytes out (for one Pillow build)."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False,
               subsampling="4:2:0")
    return buf.getvalue()
