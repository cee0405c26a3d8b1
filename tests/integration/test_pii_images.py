"""Image redaction against real Tesseract and the real OpenCV Haar cascade.

The analyzer is a tiny regex stand-in (emails, phone numbers, a fixed list of names) so these
tests do not depend on the production text engine.

tests/fixtures/synthetic_face.png is a cartoon face drawn by `synthetic_face()` below (no real
person). The Haar cascade fires on it because it has the contrasts the cascade's features look
for: dark brows and irises over light eye whites, a bright skin oval on a darker background,
a darker nose and mouth on the vertical axis.
"""

from __future__ import annotations

import io
import re
import shutil
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytesseract
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from domain.pii import Finding
from infra.pii_images import (
    FACE_LABEL,
    MAX_IMAGE_BYTES,
    ImageRedaction,
    ImageRejected,
    parse_data_url,
    redact_image,
    to_data_url,
)

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract missing")

FIXTURE_FACE = Path(__file__).resolve().parent.parent / "fixtures" / "synthetic_face.png"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
NAMES = ("Jane Doe", "John Smith")


class RegexAnalyzer:
    """A TextAnalyzer good enough for tests: emails, phone numbers, a fixed list of names."""

    PATTERNS: Sequence[tuple[str, re.Pattern[str], float]] = (
        ("EMAIL_ADDRESS", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), 1.0),
        ("PHONE_NUMBER", re.compile(r"\+?\d[\d -]{7,}\d"), 0.75),
        *(
            ("PERSON", re.compile(r"\s+".join(map(re.escape, name.split()))), 0.85)
            for name in NAMES
        ),
    )

    def __init__(self) -> None:
        self.texts: list[str] = []

    def analyze(self, text: str, entities: Sequence[str] | None, threshold: float) -> list[Finding]:
        self.texts.append(text)
        found = [
            Finding(kind, m.start(), m.end(), score)
            for kind, pattern, score in self.PATTERNS
            if (entities is None or kind in entities) and score >= threshold
            for m in pattern.finditer(text)
        ]
        found.sort(key=lambda f: (-f.score, -(f.end - f.start)))
        kept: list[Finding] = []
        for f in found:
            if all(f.end <= k.start or f.start >= k.end for k in kept):
                kept.append(f)
        return sorted(kept, key=lambda f: f.start)


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if DEJAVU.exists():
        return ImageFont.truetype(str(DEJAVU), size)
    return ImageFont.load_default(size=size)


def text_image(lines: Sequence[str], *, size: int = 40, mode: str = "RGB") -> Image.Image:
    width = max(len(line) for line in lines) * size * 2 // 3 + 80
    height = 60 + len(lines) * size * 8 // 5
    background = (255, 255, 255, 0) if mode == "RGBA" else "white"
    image = Image.new(mode, (width, height), background)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((30, 30 + i * size * 8 // 5), line, fill="black", font=font(size))
    return image


def encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def ocr(data: bytes) -> str:
    return str(pytesseract.image_to_string(Image.open(io.BytesIO(data))))


def word_boxes(data: bytes) -> dict[str, tuple[int, int, int, int]]:
    """Tesseract's word boxes (left, top, right, bottom) in an image."""
    found = pytesseract.image_to_data(
        Image.open(io.BytesIO(data)), output_type=pytesseract.Output.DICT
    )
    return {
        str(word): (left, top, left + width, top + height)
        for word, left, top, width, height in zip(
            found["text"], found["left"], found["top"], found["width"], found["height"], strict=True
        )
        if str(word).strip()
    }


def pixels(data: bytes, box: tuple[int, int, int, int]) -> np.ndarray:
    image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    left, top, right, bottom = box
    return image[top:bottom, left:right]


def redact(data: bytes, **kw: object) -> ImageRedaction:
    args: dict[str, object] = {"entities": None, "threshold": 0.5, **kw}
    return redact_image(data, RegexAnalyzer(), **args)  # type: ignore[arg-type]


# --- text ------------------------------------------------------------------------------------


def test_email_in_an_image_is_blacked_out_and_other_words_survive() -> None:
    original = encode(text_image(["Contact: jane.doe@example.com", "Thanks"]), "PNG")
    assert "jane.doe@example.com" in ocr(original)

    result = redact(original, blur="none")

    assert result.mime == "image/png"
    assert Image.open(io.BytesIO(result.data)).format == "PNG"
    assert result.counts == {"EMAIL_ADDRESS": 1}
    assert [f.entity_type for f in result.findings] == ["EMAIL_ADDRESS"]
    after = ocr(result.data)
    assert "jane" not in after and "example" not in after and "@" not in after
    assert "Thanks" in after
    # Words outside findings are untouched pixel for pixel (OCR may misread "Contact:" next to
    # the black bar: Tesseract, not the redaction); the email's box is solid black.
    boxes = word_boxes(original)
    for word in ("Contact:", "Thanks"):
        assert np.array_equal(pixels(original, boxes[word]), pixels(result.data, boxes[word]))
    assert not pixels(result.data, boxes["jane.doe@example.com"]).any()


def test_names_over_several_words_and_lines_and_phones() -> None:
    lines = [
        "Signed by Jane Doe today",
        "Reviewer: John",
        "Smith approved it",
        "Call 415-555-0100 now",
    ]
    original = encode(text_image(lines), "PNG")
    before = ocr(original)
    assert "Jane Doe" in before and "415-555-0100" in before

    analyzer = RegexAnalyzer()
    result = redact_image(original, analyzer, entities=None, threshold=0.5, blur="none")

    # The OCR text keeps lines apart but contiguous, so "John\nSmith" is one finding.
    assert result.counts == {"PERSON": 2, "PHONE_NUMBER": 1}
    (text,) = analyzer.texts  # level text on a plain background: read once
    spans = {" ".join(text[f.start : f.end].split()) for f in result.findings}
    assert spans == {"Jane Doe", "John Smith", "415-555-0100"}
    after = ocr(result.data)
    for gone in ("Jane", "Doe", "John", "Smith", "415", "0100"):
        assert gone not in after
    for kept in ("Signed", "today", "Reviewer", "approved", "Call", "now"):
        assert kept in after


def test_entity_filter_and_threshold_are_passed_to_the_analyzer() -> None:
    original = encode(text_image(["jane.doe@example.com", "Call 415-555-0100"]), "PNG")

    only_email = redact(original, entities=["EMAIL_ADDRESS"], blur="none")
    assert only_email.counts == {"EMAIL_ADDRESS": 1}
    assert "415-555-0100" in ocr(only_email.data)

    strict = redact(original, threshold=0.9, blur="none")
    assert strict.counts == {"EMAIL_ADDRESS": 1}

    no_ocr = redact(original, ocr=False, blur="none")
    assert no_ocr.findings == [] and no_ocr.counts == {}
    assert "jane.doe@example.com" in ocr(no_ocr.data)


@pytest.mark.parametrize(
    ("fmt", "mime", "kw"),
    [
        ("PNG", "image/png", {}),
        ("JPEG", "image/jpeg", {"quality": 95}),
        ("WEBP", "image/webp", {"quality": 95}),
        ("GIF", "image/gif", {}),
    ],
)
def test_format_is_preserved(fmt: str, mime: str, kw: dict[str, object]) -> None:
    original = encode(text_image(["Mail jane.doe@example.com"]), fmt, **kw)
    result = redact(original, blur="none")
    out = Image.open(io.BytesIO(result.data))
    assert (out.format, result.mime) == (fmt, mime)
    assert out.size == Image.open(io.BytesIO(original)).size
    assert result.counts == {"EMAIL_ADDRESS": 1}
    assert "example" not in ocr(result.data)


def test_transparent_png_is_read_on_white_and_stays_transparent() -> None:
    original = encode(text_image(["Mail jane.doe@example.com"], mode="RGBA"), "PNG")
    result = redact(original, blur="none")
    out = Image.open(io.BytesIO(result.data))
    assert out.mode == "RGBA"
    assert result.counts == {"EMAIL_ADDRESS": 1}
    flattened = Image.new("RGB", out.size, "white")
    flattened.paste(out, mask=out.getchannel("A"))
    assert "example" not in str(pytesseract.image_to_string(flattened))


def test_metadata_is_dropped() -> None:
    image = text_image(["Hello"])
    exif = Image.Exif()
    exif[0x010E] = "Photo of Jane Doe"  # ImageDescription
    exif[0x8825] = {2: (48.0, 51.0, 24.0)}  # GPSInfo: latitude
    original = encode(image, "JPEG", exif=exif.tobytes(), comment=b"jane@example.com")
    assert Image.open(io.BytesIO(original)).getexif()
    result = redact(original, blur="none")
    assert b"Jane Doe" not in result.data and b"jane@example.com" not in result.data
    out = Image.open(io.BytesIO(result.data))
    assert not out.getexif()
    assert "comment" not in out.info


# --- faces -----------------------------------------------------------------------------------


def synthetic_face(width: int = 320, height: int = 320) -> Image.Image:
    """How tests/fixtures/synthetic_face.png was drawn (Pillow only, deterministic)."""
    image = Image.new("RGB", (width, height), (52, 64, 84))
    face = Image.new("RGB", (200, 200), (0, 0, 0))
    mask = Image.new("L", (200, 200), 0)
    draw, draw_mask = ImageDraw.Draw(face), ImageDraw.Draw(mask)
    cx, cy, fw, fh = 100.0, 100.0, 124.0, 160.0
    oval = (cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2)
    draw.ellipse(oval, fill=(222, 184, 150))
    draw_mask.ellipse(oval, fill=255)
    draw.chord((cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh * 0.1), 180, 360, fill=(48, 34, 26))
    ey, ex = cy - fh * 0.08, fw * 0.22
    for side in (-1, 1):
        x = cx + side * ex
        draw.ellipse((x - fw * 0.13, ey - fh * 0.11, x + fw * 0.13, ey - fh * 0.07), (72, 52, 40))
        draw.ellipse((x - fw * 0.11, ey - fh * 0.035, x + fw * 0.11, ey + fh * 0.035), "#f5f5f0")
        draw.ellipse((x - fw * 0.045, ey - fh * 0.035, x + fw * 0.045, ey + fh * 0.035), "#281e19")
    nose = [(cx, ey), (cx - fw * 0.07, cy + fh * 0.17), (cx + fw * 0.07, cy + fh * 0.17)]
    draw.polygon(nose, fill=(196, 150, 120))
    draw.ellipse((cx - fw * 0.09, cy + fh * 0.14, cx + fw * 0.09, cy + fh * 0.2), (170, 120, 95))
    draw.ellipse((cx - fw * 0.18, cy + fh * 0.26, cx + fw * 0.18, cy + fh * 0.32), (150, 70, 70))
    face = face.filter(ImageFilter.GaussianBlur(3))
    mask = mask.filter(ImageFilter.GaussianBlur(3))
    image.paste(face, ((width - 200) // 2, (height - 200) // 2), mask)
    return image


def face_box(data: bytes) -> tuple[int, int, int, int]:
    import cv2
    import cv2.data

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    gray = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    assert len(found) == 1, found
    x, y, w, h = (int(v) for v in found[0])
    return x, y, w, h


def variance_in(data: bytes, box: tuple[int, int, int, int]) -> float:
    x, y, w, h = box
    gray = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float64)
    return float(gray[y : y + h, x : x + w].var())


def test_fixture_is_the_generated_face() -> None:
    stored = np.asarray(Image.open(FIXTURE_FACE).convert("RGB"), dtype=np.int16)
    drawn = np.asarray(synthetic_face(), dtype=np.int16)
    assert np.abs(stored - drawn).max() <= 2


def test_faces_are_blurred_strong_more_than_light_and_none_untouched() -> None:
    original = FIXTURE_FACE.read_bytes()
    box = face_box(original)
    before = variance_in(original, box)

    results = {blur: redact(original, blur=blur, ocr=False) for blur in ("none", "light", "strong")}

    assert results["none"].faces == 0 and results["none"].counts == {}
    assert variance_in(results["none"].data, box) == pytest.approx(before)
    for blur in ("light", "strong"):
        assert results[blur].faces == 1
        assert results[blur].counts == {FACE_LABEL: 1}
        assert results[blur].mime == "image/png"
    light = variance_in(results["light"].data, box)
    strong = variance_in(results["strong"].data, box)
    assert strong < 0.3 * before
    assert strong < light < before
    # Outside the (enlarged) face box nothing changes.
    corner = (0, 0, 40, 40)
    assert variance_in(results["strong"].data, corner) == variance_in(original, corner)


def test_face_in_a_jpeg_with_text_gets_both_treatments() -> None:
    canvas = Image.new("RGB", (900, 400), "white")
    canvas.paste(synthetic_face(), (20, 40))
    draw = ImageDraw.Draw(canvas)
    draw.text((380, 170), "jane.doe@example.com", fill="black", font=font(28))
    original = encode(canvas, "JPEG", quality=95)
    assert "jane.doe@example.com" in ocr(original)

    result = redact(original)

    assert result.mime == "image/jpeg"
    assert result.faces == 1
    assert result.counts == {"EMAIL_ADDRESS": 1, FACE_LABEL: 1}
    assert "example" not in ocr(result.data)


# --- refusals and data URLs ------------------------------------------------------------------


def test_corrupt_and_unsupported_input_is_rejected() -> None:
    png = encode(text_image(["Hello"]), "PNG")
    cases = [
        b"",
        b"definitely not an image",
        png[: len(png) // 2],  # truncated
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,  # magic, garbage header
        encode(text_image(["Hello"]), "BMP"),  # decodable but not supported
        encode(text_image(["Hello"]), "TIFF"),
    ]
    for data in cases:
        with pytest.raises(ImageRejected):
            redact(data)


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_pixel_bomb_and_oversized_input_are_rejected_before_decoding() -> None:
    bomb = encode(Image.new("1", (10_000, 5_000)), "PNG")  # 50 MP in a few KB
    assert len(bomb) < 100_000
    with pytest.raises(ImageRejected, match="too many pixels"):
        redact(bomb)
    # A header claiming 10 gigapixels and no pixel data at all (Pillow's own bomb check fires).
    with pytest.raises(ImageRejected, match="too many pixels"):
        redact(png_header_only(100_000, 100_000))
    with pytest.raises(ImageRejected, match="too large"):
        redact(b"\x89PNG\r\n\x1a\n" + b"\x00" * MAX_IMAGE_BYTES)


def test_data_urls() -> None:
    png = encode(text_image(["Hello"]), "PNG")
    url = to_data_url("image/png", png)
    assert url.startswith("data:image/png;base64,")
    assert parse_data_url(url) == ("image/png", png)
    assert parse_data_url(url.replace("image/png", "IMAGE/JPG")) == ("image/jpeg", png)
    assert parse_data_url("data:image/png;charset=x;base64," + url.split(",", 1)[1])[1] == png

    bad = [
        "https://example.com/cat.png",
        "data:text/plain;base64,aGVsbG8=",
        "data:image/svg+xml;base64,PHN2Zy8+",
        "data:application/pdf;base64,JVBERi0=",
        "data:image/png,rawbytes",  # not base64
        "data:image/png;base64,@@@notbase64@@@",
        "data:image/png;base64,",
        "data:;base64,aGVsbG8=",
    ]
    for candidate in bad:
        with pytest.raises(ImageRejected):
            parse_data_url(candidate)

    mime, data = parse_data_url("data:image/png;base64,aGVsbG8=")  # valid URL, not a PNG
    assert mime == "image/png"
    with pytest.raises(ImageRejected):
        redact(data)


@pytest.mark.parametrize("condition", ["rotated", "photo", "dark", "bubble"])
def test_text_tesseract_misreads_in_one_pass_is_still_hidden(condition: str) -> None:
    """Skewed text, text on a busy photo, light text on dark or coloured backgrounds: the
    image is also read binarised, inverted and levelled (bench/pii_images.py measures it)."""
    import random

    from bench.pii_images import hidden, make_sample
    from infra.pii_text import DEFAULT_ENTITIES, TextPiiEngine

    engine = TextPiiEngine(ner_model=None)
    rng = random.Random(f"{condition}-7")
    samples = [make_sample(rng, condition) for _ in range(3)]
    masks = hits = 0
    for sample in samples:
        result = redact_image(
            sample.image, engine, entities=list(DEFAULT_ENTITIES), threshold=0.35, blur="none"
        )
        for _value, mask in sample.masks:
            masks += 1
            hits += hidden(result.data, mask)
    assert hits >= masks - 1, f"{hits}/{masks} planted values hidden"
