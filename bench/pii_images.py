"""Image redaction quality: planted PII values hidden on a generated image set, per condition
(plain, rotated up to ±15°, photo-like background, dark mode, chat bubble, small font).

    uv run python -m bench.pii_images                # 120 images, fixed seed
    uv run python -m bench.pii_images --count 40     # fewer

A value counts as hidden when at least 90% of its glyph pixels (known exactly: each value is
drawn a second time on a mask with the same transform) are black after redaction. Prints
numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import pii_values as v  # noqa: E402

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
CONDITIONS = ("plain", "rotated", "photo", "dark", "bubble", "small")
SEED = 424242


@dataclass
class Sample:
    condition: str
    image: bytes
    masks: list[tuple[str, np.ndarray]]  # (value, boolean glyph mask)


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT, size)


def _lines(rng: random.Random) -> list[list[tuple[str, bool]]]:
    """Lines of (segment, is_pii) pieces."""
    name = v.person(rng, "en")
    choices = [
        [("Contact: ", False), (v.email(rng, name), True)],
        [("Call ", False), (name, True), (" on ", False), (v.phone(rng, "en"), True)],
        [("Card ", False), (v.card(rng), True)],
        [("IBAN ", False), (v.iban(rng, "DE"), True)],
        [("Ship to ", False), (v.street_address(rng, "en"), True)],
        [("Hi ", False), (name, True), (", your order shipped", False)],
    ]
    return rng.sample(choices, 2)


def _background(rng: random.Random, condition: str, size: tuple[int, int]) -> Image.Image:
    width, height = size
    if condition == "dark":
        return Image.new("RGB", size, (18 + rng.randrange(20), 18 + rng.randrange(20), 28))
    if condition == "photo":
        base = np.zeros((height, width, 3), dtype=np.float32)
        for channel in range(3):
            gradient = np.linspace(rng.randrange(60, 200), rng.randrange(60, 200), width)
            base[:, :, channel] = gradient[None, :]
        image = Image.fromarray(base.clip(0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(8):
            x, y = rng.randrange(width), rng.randrange(height)
            r = rng.randrange(20, 120)
            color = tuple(rng.randrange(40, 220) for _ in range(3))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
        image = image.filter(ImageFilter.GaussianBlur(6))
        noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 10, (height, width, 3))
        return Image.fromarray((np.asarray(image) + noise).clip(0, 255).astype(np.uint8))
    return Image.new("RGB", size, "white")


def make_sample(rng: random.Random, condition: str) -> Sample:
    size = 14 if condition == "small" else rng.choice([24, 30, 36])
    font = _font(size)
    lines = _lines(rng)
    width = max(int(font.getlength("".join(p for p, _ in line))) for line in lines) + 80
    height = 40 + len(lines) * int(size * 1.8)
    text_layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(text_layer)
    masks: list[tuple[str, Image.Image]] = []
    y = 20
    for line in lines:
        x = 30
        for piece, is_pii in line:
            draw.text((x, y), piece, fill=255, font=font)
            if is_pii:
                mask = Image.new("L", (width, height), 0)
                ImageDraw.Draw(mask).text((x, y), piece, fill=255, font=font)
                masks.append((piece, mask))
            x += int(font.getlength(piece))
        y += int(size * 1.8)
    angle = rng.choice([-15, -10, -5, 5, 10, 15]) if condition == "rotated" else 0
    if angle:
        text_layer = text_layer.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
        masks = [
            (p, m.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)) for p, m in masks
        ]
    canvas = _background(rng, condition, text_layer.size)
    if condition == "bubble":
        bubble = Image.new(
            "RGB", text_layer.size, (0, 132, 255) if rng.random() < 0.5 else (37, 211, 102)
        )
        canvas.paste(bubble, mask=Image.new("L", text_layer.size, 255))
        ink = (255, 255, 255)
    elif condition == "dark":
        ink = (235, 235, 235)
    else:
        ink = (20, 20, 20) if condition != "photo" else rng.choice([(10, 10, 10), (250, 250, 250)])
    canvas.paste(Image.new("RGB", text_layer.size, ink), mask=text_layer)
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return Sample(condition, out.getvalue(), [(p, np.asarray(m) > 128) for p, m in masks])


def hidden(redacted: bytes, mask: np.ndarray) -> bool:
    pixels = np.asarray(Image.open(io.BytesIO(redacted)).convert("RGB"))
    if pixels.shape[:2] != mask.shape or not mask.any():
        return False
    black = (pixels.max(axis=2) <= 8)[mask]
    return float(black.mean()) >= 0.9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=120)
    args = parser.parse_args(argv)
    from infra.pii_images import redact_image
    from infra.pii_text import DEFAULT_ENTITIES, TextPiiEngine

    engine = TextPiiEngine()
    rng = random.Random(SEED)
    samples = [make_sample(rng, CONDITIONS[i % len(CONDITIONS)]) for i in range(args.count)]
    planted: Counter[str] = Counter()
    gone: Counter[str] = Counter()
    seconds: dict[str, list[float]] = defaultdict(list)
    misses: list[tuple[str, str]] = []
    for sample in samples:
        started = time.process_time()
        wall = time.perf_counter()
        result = redact_image(
            sample.image, engine, entities=list(DEFAULT_ENTITIES), threshold=0.35, blur="none"
        )
        seconds[sample.condition].append(time.perf_counter() - wall)
        del started
        for value, mask in sample.masks:
            planted[sample.condition] += 1
            if hidden(result.data, mask):
                gone[sample.condition] += 1
            else:
                misses.append((sample.condition, value))
    print(f"{args.count} images, {sum(planted.values())} planted values\n")
    print(f"{'condition':<10} {'hidden':>8} {'values':>7} {'median s/image':>15}")
    for condition in CONDITIONS:
        if planted[condition]:
            print(f"{condition:<10} {gone[condition] / planted[condition]:>8.3f} "
                  f"{planted[condition]:>7} {statistics.median(seconds[condition]):>15.2f}")  # fmt: skip
    total = sum(planted.values())
    print(f"{'all':<10} {sum(gone.values()) / total:>8.3f} {total:>7}")
    if misses:
        print("\nstill readable (first 12): " + "; ".join(f"{c}: {v!r}" for c, v in misses[:12]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
