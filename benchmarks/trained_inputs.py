"""Seeded, realistic inputs for the trained models: rendered text lines and scenes.

Each sample is rendered with Pillow, then preprocessed exactly as the model's own wheel does it
(cited per function), so the arrays are what the model sees in use. A seed gives the same samples
on every machine with the same Pillow and DejaVu fonts.
"""

from __future__ import annotations

import math
import string
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from trained_models import TrainedModel, photos

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansCondensed.ttf",
)
# DejaVu has no CJK glyphs, so strings are drawn from the characters of the wheel's own charset
# that DejaVu draws: ASCII letters and digits (the captcha alphabet) and, for PP-OCR, a few marks.
PUNCT = "-.:/%()"


def alphabet(charset: list[str], punct: bool) -> str:
    wanted = string.ascii_letters + string.digits + (PUNCT if punct else "")
    have = set(charset)
    return "".join(c for c in wanted if c in have)


def _font(rng: np.random.Generator, size: int) -> Any:
    return ImageFont.truetype(str(FONT_DIR / FONTS[int(rng.integers(len(FONTS)))]), size)


def _word(rng: np.random.Generator, chars: str, lo: int, hi: int) -> str:
    return "".join(
        chars[int(i)] for i in rng.integers(len(chars), size=int(rng.integers(lo, hi + 1)))
    )


def _background(rng: np.random.Generator, w: int, h: int, light: bool = True) -> Image.Image:
    """A flat, gradient or noisy background with some clutter (lines, blobs)."""
    base = rng.integers(170, 256, 3) if light else rng.integers(0, 256, 3)
    other = rng.integers(120, 256, 3) if light else rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, w)[None, :, None] if rng.random() < 0.5 else np.zeros((1, 1, 1))
    img = base[None, None, :] * (1 - t) + other[None, None, :] * t
    img = np.broadcast_to(img, (h, w, 3)) + rng.normal(0, rng.uniform(0, 12), (h, w, 3))
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(0, 6))):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, [w, h, w, h]))
        colour = tuple(int(v) for v in rng.integers(90, 230, 3))
        if rng.random() < 0.5:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(1, 3)))
        else:
            box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            draw.ellipse(box, outline=colour)
    return pil


def _ink(rng: np.random.Generator) -> tuple[int, int, int]:
    return (int(rng.integers(0, 90)), int(rng.integers(0, 90)), int(rng.integers(0, 110)))


def _bgr_chw(img: Image.Image) -> np.ndarray:
    """cv2 reads BGR; the wheels feed cv2 images, so our RGB renders are flipped to match."""
    return np.asarray(img.convert("RGB"), dtype=np.float32)[:, :, ::-1].transpose(2, 0, 1)


def ddddocr_rec(rng: np.random.Generator, chars: str, w: int, h: int) -> tuple[np.ndarray, str]:
    """A 4-6 character captcha-like line; ddddocr OCREngine._preprocess_image: resize to
    height 64 keeping the aspect (the identity here), convert('L'), /255, [1, 1, 64, W]."""
    text = _word(rng, chars, 4, 6)
    img = _background(rng, w, h)
    size = int(rng.integers(30, 44))
    font = _font(rng, size)
    while font.getbbox(text)[2] > w - 8 and size > 16:
        size -= 2
        font = _font(rng, size)
    x0, y0, x1, y1 = font.getbbox(text)
    x = int(rng.integers(2, max(3, w - (x1 - x0) - 2))) - x0
    y = int(rng.integers(0, max(1, h - (y1 - y0)))) - y0
    ImageDraw.Draw(img).text((x, y), text, font=font, fill=_ink(rng))
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    return gray[None], text


def ppocr_rec(rng: np.random.Generator, chars: str, w: int, h: int) -> tuple[np.ndarray, str]:
    """A 5-14 character text line, cropped as a detector would; rapidocr
    TextRecognizer.resize_norm_img: resize to height 48 (width ceil(48 * ratio), at most 320),
    /255, (x - 0.5) / 0.5, zero-padded on the right to 320."""
    words = [_word(rng, chars, 2, 7) for _ in range(int(rng.integers(1, 3)))]
    text = " ".join(words)
    font = _font(rng, int(rng.integers(24, 40)))
    x0, y0, x1, y1 = font.getbbox(text)
    pad = int(rng.integers(2, 8))
    img = _background(rng, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad)
    ImageDraw.Draw(img).text((pad - x0, pad - y0), text, font=font, fill=_ink(rng))
    resized_w = min(w, math.ceil(h * img.width / img.height))
    img = img.resize((resized_w, h), Image.Resampling.BILINEAR)  # cv2.resize's default
    out = np.zeros((3, h, w), dtype=np.float32)
    out[:, :, :resized_w] = (_bgr_chw(img) / 255.0 - 0.5) / 0.5
    # CTCLabelDecode never emits two spaces in a row from one; ground truth as drawn.
    return out, text


def ppocr_det(rng: np.random.Generator, chars: str, w: int, h: int) -> np.ndarray:
    """A page of 3-8 text lines on a varied background; rapidocr DetPreProcess: /255,
    (x - 0.5) / 0.5 per channel (mean = std = 0.5), CHW."""
    img = _background(rng, w, h)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 9))):
        text = " ".join(_word(rng, chars, 2, 8) for _ in range(int(rng.integers(1, 4))))
        font = _font(rng, int(rng.integers(14, 36)))
        x, y = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 20))
        draw.text((x, y), text, font=font, fill=_ink(rng))
    return (_bgr_chw(img) / 255.0 - 0.5) / 0.5


def ddddocr_det(rng: np.random.Generator, chars: str, w: int, h: int) -> np.ndarray:
    """A click-captcha-like scene: 3-7 large single characters, rotated, on a cluttered
    background; DetectionEngine.preproc: BGR pixel values 0..255 as float, CHW (the 416x416
    scene needs no resize or 114-padding)."""
    img = _background(rng, w, h, light=rng.random() < 0.7)
    for _ in range(int(rng.integers(3, 8))):
        size = int(rng.integers(28, 56))
        glyph = Image.new("RGBA", (size * 2, size * 2), (0, 0, 0, 0))
        fill = (*(int(v) for v in rng.integers(0, 256, 3)), 255)
        font = _font(rng, size)
        ImageDraw.Draw(glyph).text(
            (size // 2, size // 3), chars[int(rng.integers(len(chars)))], font=font, fill=fill
        )
        glyph = glyph.rotate(float(rng.uniform(-35, 35)), resample=Image.Resampling.BILINEAR)
        img.paste(
            glyph, (int(rng.integers(0, w - 2 * size)), int(rng.integers(0, h - 2 * size))), glyph
        )
    return _bgr_chw(img)


def _shaded_oval(img: Image.Image, box: tuple[float, ...], colour: tuple[int, ...]) -> None:
    """An oval filled with a radial shade (lit centre, darker rim), so it reads as a solid form."""
    x0, y0, x1, y1 = (int(v) for v in box)
    w, h = x1 - x0, y1 - y0
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.hypot((xx - 0.45 * w) / (0.5 * w), (yy - 0.4 * h) / (0.5 * h))
    shade = np.clip(1.08 - 0.35 * d**2, 0.55, 1.1)[:, :, None] * np.array(colour)[None, None, :]
    tile = Image.fromarray(np.clip(shade, 0, 255).astype(np.uint8))
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, w - 1, h - 1), fill=255)
    img.paste(tile, (x0, y0), mask.filter(ImageFilter.GaussianBlur(1.5)))


def _person(img: Image.Image, rng: np.random.Generator, cx: int, cy: int, r: int) -> None:
    """A frontal face and shoulders: shaded skin oval, hair, eyes, brows, nose, lips, shirt."""
    draw = ImageDraw.Draw(img)
    # Natural tones: one skin hue at varied brightness; black, brown or blond hair.
    skin = tuple(
        int(v) for v in np.clip(np.array([232, 184, 152]) * rng.uniform(0.45, 1.05), 0, 255)
    )
    hair_tones = ((25, 20, 18), (70, 45, 30), (120, 80, 45), (200, 160, 100), (50, 40, 35))
    hair = hair_tones[int(rng.integers(len(hair_tones)))]
    shirt = tuple(int(v) for v in rng.integers(0, 256, 3))
    draw.ellipse((cx - 2.2 * r, cy + 1.1 * r, cx + 2.2 * r, cy + 4 * r), fill=shirt)  # shoulders
    draw.rectangle((cx - 0.38 * r, cy + 0.7 * r, cx + 0.38 * r, cy + 1.4 * r), fill=skin)  # neck
    long_hair = rng.random() < 0.5
    if long_hair:
        draw.ellipse((cx - 1.15 * r, cy - 1.3 * r, cx + 1.15 * r, cy + 1.9 * r), fill=hair)
    for side in (-1, 1):  # ears
        draw.ellipse(
            (
                cx + side * 0.8 * r - 0.13 * r,
                cy - 0.2 * r,
                cx + side * 0.8 * r + 0.13 * r,
                cy + 0.25 * r,
            ),
            fill=skin,
        )
    _shaded_oval(img, (cx - 0.8 * r, cy - 1.1 * r, cx + 0.8 * r, cy + 1.0 * r), skin)
    draw.chord((cx - 0.88 * r, cy - 1.25 * r, cx + 0.88 * r, cy + 0.1 * r), 180, 360, fill=hair)
    for side in (-1, 1):
        ex, ey = cx + side * 0.33 * r, cy - 0.02 * r
        draw.ellipse(
            (ex - 0.16 * r, ey - 0.08 * r, ex + 0.16 * r, ey + 0.08 * r), fill=(245, 240, 235)
        )
        draw.ellipse(
            (ex - 0.07 * r, ey - 0.07 * r, ex + 0.07 * r, ey + 0.07 * r), fill=(50, 35, 25)
        )
        draw.line(
            (ex - 0.2 * r, ey - 0.2 * r, ex + 0.2 * r, ey - 0.24 * r),
            fill=hair,
            width=max(1, r // 12),
        )
    draw.line(
        (cx, cy + 0.05 * r, cx - 0.08 * r, cy + 0.35 * r),
        fill=(150, 100, 80),
        width=max(1, r // 15),
    )
    lips = (180, 60, 70) if long_hair else (150, 90, 80)
    draw.chord((cx - 0.28 * r, cy + 0.42 * r, cx + 0.28 * r, cy + 0.68 * r), 0, 180, fill=lips)


def nudenet_scene(rng: np.random.Generator, w: int, h: int, photos: dict[str, Path]) -> np.ndarray:
    """1-2 photos of people (scikit-image's astronaut and cameraman: random crop, scale, flip,
    brightness) and sometimes a drawn person, on a texture or a varied background; nudenet
    _read_image: cv2.dnn.blobFromImage(scale 1/255, swapRB=True), i.e. RGB in 0..1, CHW (the
    square 320x320 scene needs no padding or resize)."""
    if rng.random() < 0.5:
        tex = Image.open(
            photos[("grass.png", "gravel.png", "brick.png")[int(rng.integers(3))]]
        ).convert("RGB")
        x0, y0 = int(rng.integers(0, tex.width - w)), int(rng.integers(0, tex.height - h))
        img = tex.crop((x0, y0, x0 + w, y0 + h))
    else:
        img = _background(rng, w, h, light=rng.random() < 0.6)
    for _ in range(int(rng.integers(1, 3))):
        photo = Image.open(photos[("astronaut.png", "camera.png")[int(rng.integers(2))]]).convert(
            "RGB"
        )
        crop = rng.uniform(0.75, 1.0)
        cw = int(photo.width * crop)
        cx, cy = (
            int(rng.integers(0, photo.width - cw + 1)),
            int(rng.integers(0, photo.height - cw + 1)),
        )
        photo = photo.crop((cx, cy, cx + cw, cy + cw))
        side = int(w * rng.uniform(0.55, 1.0))
        photo = photo.resize((side, side), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        gain = float(rng.uniform(0.75, 1.2))
        photo = Image.eval(photo, lambda v: min(255, int(v * gain)))  # noqa: B023 (used at once)
        img.paste(
            photo,
            (
                int(rng.integers(-side // 4, w - side // 2)),
                int(rng.integers(-side // 4, h - side // 2)),
            ),
        )
    if rng.random() < 0.3:
        r = int(rng.integers(30, 50))
        _person(img, rng, int(rng.integers(r, w - r)), int(rng.integers(r, h - 2 * r)), r)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    return np.asarray(img.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0


def samples(
    model: TrainedModel, charset: list[str] | None, n: int, seed: int
) -> tuple[np.ndarray, list[str]]:
    """n preprocessed inputs stacked along the batch axis, and the ground-truth strings (rec)."""
    rng = np.random.default_rng(seed)
    _, _, h, w = model.shape
    chars = (
        alphabet(charset, punct=model.key == "ppocr-rec")
        if charset
        else string.ascii_letters + string.digits
    )
    arrays: list[np.ndarray] = []
    texts: list[str] = []
    for _ in range(n):
        if model.key == "ddddocr-rec":
            x, t = ddddocr_rec(rng, chars, w, h)
            texts.append(t)
        elif model.key == "ppocr-rec":
            x, t = ppocr_rec(rng, chars, w, h)
            texts.append(t)
        elif model.key == "ppocr-det":
            x = ppocr_det(rng, chars, w, h)
        elif model.key == "ddddocr-det":
            x = ddddocr_det(rng, chars, w, h)
        else:
            x = nudenet_scene(rng, w, h, photos())
        arrays.append(x)
    return np.stack(arrays).astype(np.float32), texts
