"""Image redaction: OCR'd text that the analyzer flags is painted black, faces are blurred.

The promise is that the upstream model never sees what the user asked to remove, so everything
here fails closed: an image that cannot be decoded, is too big, or cannot be OCR'd is refused
(`ImageRejected` for the client's input, `ImageRedactionFailed` for our side); it is never
passed on unredacted.

Pipeline (`redact_image`):
1. Sniff the format from the bytes (PNG, JPEG, WebP, GIF: first frame only), check the byte and
   pixel limits *before* decoding (decompression bombs), then decode, apply the EXIF orientation
   and drop all metadata (EXIF GPS, PNG text chunks, comments) by re-encoding.
2. Faces: OpenCV Haar cascade `haarcascade_frontalface_default.xml` (opencv-python-headless <5:
   5.x no longer ships the cascades), each box blurred with a Gaussian whose kernel is relative
   to the face size.
3. Text: Tesseract (`pytesseract.image_to_data`) gives word boxes; the page text is rebuilt with
   each word's offsets, the analyzer runs on it, and every word a finding touches is filled with
   solid black (plus a margin). A finding spanning several words on one line becomes one bar.
   Tesseract reads dark, level text on a plain background; screenshots and photos are often
   not that, so the image is read more than once (`_ocr_passes`): as it is, then binarised with
   OpenCV's adaptive threshold (text on photos and coloured chat bubbles), with light text
   turned dark (dark mode), and turned level when the text is skewed (a projection-profile
   search over ±15°). Each pass's boxes are mapped back to the original image and all of them
   are filled.
4. Re-encode in the input's format.

CPU-bound and blocking (Tesseract is a subprocess): call it from a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import cv2.data
import numpy as np
import pytesseract
from PIL import Image, ImageOps

from domain.errors import ErrorKind, PryvError
from domain.pii import Finding, TextAnalyzer, entity_counts

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # encoded size
MAX_IMAGE_PIXELS = 40_000_000  # width * height, checked before decoding
OCR_TIMEOUT_SECONDS = 30.0  # Tesseract is killed after this; the image is then refused
BOX_MARGIN_PX = 3  # black fill extends this far around a word, plus a share of the word height
_MARGIN_X_PERCENT = 6  # of the word height, left and right (less: the gap to the next word)
_MARGIN_Y_PERCENT = 15  # of the word height, above and below
FACE_LABEL = "FACE"  # the key faces are counted under in ImageRedaction.counts

Blur = Literal["none", "light", "strong"]

# Pillow format name -> (MIME type, save arguments). Everything else is refused.
_FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    "PNG": ("image/png", {"compress_level": 3}),  # level 6 is 4x slower on photos, 10% smaller
    "JPEG": ("image/jpeg", {"quality": 90}),
    "WEBP": ("image/webp", {"quality": 90}),
    "GIF": ("image/gif", {}),
}
SUPPORTED_MIME_TYPES = frozenset(mime for mime, _ in _FORMATS.values()) | {"image/jpg"}

# Tesseract parallelises with OpenMP; with several OCR processes at once (or a busy CPU) the
# threads thrash: measured 6x slower on 2 cores. One thread per process, unless the operator set
# it. (pytesseract passes os.environ to the subprocess; there is no per-call environment.)
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

# Face detection runs on a copy scaled down to at most this many pixels on the long side.
_FACE_DETECT_MAX_SIDE = 1600
# 1.15 rather than OpenCV's usual 1.1: ~40% faster on text-dense screenshots (where the cascade
# is slowest), same detections on the test faces.
_FACE_SCALE_STEP = 1.15
_FACE_MARGIN = 0.12  # the blurred box grows by this fraction of the face size on each side


class ImageRejected(PryvError, ValueError):
    """The client's image cannot be accepted (unsupported, corrupt, too large, bad data URL).
    `reason` is short and safe to show to the client."""

    code = "invalid_image"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImageRedactionFailed(PryvError):
    """Redaction could not run on our side (Tesseract missing, crashed or timed out). The image
    must not be forwarded: fail closed (a 5xx, or refuse the request)."""

    kind, code = ErrorKind.UNAVAILABLE, "pii_unavailable"


@dataclass(frozen=True)
class ImageRedaction:
    data: bytes  # re-encoded in the input's format, metadata stripped
    mime: str
    findings: list[Finding]  # spans refer to the OCR text (which is not kept)
    faces: int
    counts: dict[str, int]  # entity type -> count, faces under FACE_LABEL; safe to log


@dataclass(frozen=True)
class _Word:
    start: int
    end: int
    line: tuple[int, int, int, int]  # (page, block, paragraph, line) as Tesseract numbers them
    left: int
    top: int
    width: int
    height: int


# --- data URLs -------------------------------------------------------------------------------

_DATA_URL = re.compile(r"data:(?P<mime>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<payload>.*)", re.S)


def parse_data_url(url: str) -> tuple[str, bytes]:
    """`data:image/png;base64,...` -> ("image/png", bytes). Only base64 image data URLs of the
    supported types are accepted; the declared type is not trusted further (redact_image sniffs
    the real format and reports its MIME type)."""
    match = _DATA_URL.fullmatch(url.strip())
    if match is None:
        raise ImageRejected("not a data URL")
    mime = match["mime"].strip().lower()
    if mime not in SUPPORTED_MIME_TYPES:
        raise ImageRejected("unsupported image type (PNG, JPEG, WebP or GIF)")
    params = [p.strip().lower() for p in match["params"].split(";") if p.strip()]
    if "base64" not in params:
        raise ImageRejected("image data URL must be base64-encoded")
    payload = re.sub(r"\s+", "", match["payload"])
    if len(payload) > (MAX_IMAGE_BYTES // 3 + 1) * 4:
        raise ImageRejected("image too large")
    try:
        data = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ImageRejected("invalid base64 in image data URL") from None
    if not data:
        raise ImageRejected("empty image")
    return ("image/jpeg" if mime == "image/jpg" else mime), data


def to_data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# --- redaction -------------------------------------------------------------------------------


def redact_image(
    data: bytes,
    analyzer: TextAnalyzer,
    *,
    entities: Sequence[str] | None,
    threshold: float,
    ocr: bool = True,
    blur: Blur = "strong",
) -> ImageRedaction:
    """Redact `data` (PNG, JPEG, WebP, or GIF: first frame only, animation is dropped).
    Raises ImageRejected for bad input, ImageRedactionFailed when OCR cannot run."""
    if blur not in ("none", "light", "strong"):
        raise ValueError(f"blur must be none, light or strong, not {blur!r}")
    image, fmt = _decode(data)
    mime, save_args = _FORMATS[fmt]

    faces = 0
    if blur != "none":
        face_boxes = _detect_faces(image)
        faces = len(face_boxes)
        if face_boxes:
            image = _blur_faces(image, face_boxes, blur)

    findings: list[Finding] = []
    if ocr:
        boxes: list[Box] = []
        for text, words, to_original in _ocr_passes(image):
            found = (
                sorted(analyzer.analyze(text, entities, threshold), key=lambda f: (f.start, f.end))
                if text
                else []
            )
            if found:
                boxes.extend(to_original(box) for box in _boxes_for(found, words))
            if len(found) > len(findings):  # report the pass that read the most
                findings = found
        if boxes:
            image = _black_out(image, boxes)

    counts = entity_counts(findings)
    if faces:
        counts[FACE_LABEL] = faces
    return ImageRedaction(
        data=_encode(image, fmt, save_args),
        mime=mime,
        findings=findings,
        faces=faces,
        counts=dict(sorted(counts.items())),
    )


def _decode(data: bytes) -> tuple[Image.Image, str]:
    """Decoded RGB/RGBA image and its Pillow format name; limits checked before decoding."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRejected("image too large")
    if not data:
        raise ImageRejected("empty image")
    try:
        opened = Image.open(io.BytesIO(data), formats=list(_FORMATS))
    except Image.DecompressionBombError:
        raise ImageRejected("image has too many pixels") from None
    except Exception:  # Pillow raises many types for bad headers (UnidentifiedImageError, ...)
        raise ImageRejected("not a supported image (PNG, JPEG, WebP or GIF)") from None
    with opened:
        fmt = opened.format or ""
        width, height = opened.size
        if fmt not in _FORMATS:
            raise ImageRejected("not a supported image (PNG, JPEG, WebP or GIF)")
        if width <= 0 or height <= 0 or width * height > MAX_IMAGE_PIXELS:
            raise ImageRejected("image has too many pixels")
        try:
            opened.seek(0)  # GIF/WebP: the first frame only
            opened.load()
            image = ImageOps.exif_transpose(opened)
            has_alpha = "A" in image.getbands() or "transparency" in image.info
            image = image.convert("RGBA" if has_alpha else "RGB")
            image.info.clear()  # Pillow would write e.g. a JPEG comment back out on save
        except Image.DecompressionBombError:
            raise ImageRejected("image has too many pixels") from None
        except Exception:  # truncated/corrupt data: OSError, SyntaxError, ValueError, ...
            raise ImageRejected("corrupt image") from None
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise ImageRejected("image has too many pixels")
    return image, fmt


def _encode(image: Image.Image, fmt: str, save_args: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG" and image.mode != "RGB":
        image = _flatten(image)
    # No exif/pnginfo/comment arguments: metadata from the input is not carried over.
    image.save(out, format=fmt, **save_args)
    return out.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """RGB on a white background (transparent pixels may hide anything in their RGB values)."""
    if image.mode == "RGB":
        return image
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


# --- OCR -------------------------------------------------------------------------------------


def _ocr_words(image: Image.Image) -> tuple[str, list[_Word]]:
    """The page text as Tesseract reads it, and every word with its [start, end) in that text.
    Words on a line are joined by a space, lines by a newline, blocks/paragraphs by a blank
    line, so multi-word entities (names, addresses) are contiguous for the analyzer."""
    rgb = _flatten(image)
    scale = _ocr_scale(rgb)
    if scale != 1:
        rgb = rgb.resize((rgb.width * scale, rgb.height * scale), Image.Resampling.LANCZOS)
    try:
        result = pytesseract.image_to_data(
            rgb,
            output_type=pytesseract.Output.DICT,
            config="--psm 3",
            timeout=OCR_TIMEOUT_SECONDS,
        )
    except pytesseract.TesseractNotFoundError:
        raise ImageRedactionFailed("tesseract is not installed") from None
    except (pytesseract.TesseractError, RuntimeError, OSError) as exc:
        # pytesseract raises RuntimeError("Tesseract process timeout") on timeout.
        raise ImageRedactionFailed(f"OCR failed: {type(exc).__name__}") from None
    data: dict[str, list[Any]] = result

    parts: list[str] = []
    words: list[_Word] = []
    length = 0
    previous: tuple[int, int, int, int] | None = None
    for i, raw in enumerate(data.get("text", [])):
        if int(data["level"][i]) != 5:
            continue
        token = " ".join(str(raw).split())
        if not token:
            continue
        line = (
            int(data["page_num"][i]),
            int(data["block_num"][i]),
            int(data["par_num"][i]),
            int(data["line_num"][i]),
        )
        if previous is not None:
            if line == previous:
                separator = " "
            elif line[:3] == previous[:3]:
                separator = "\n"
            else:
                separator = "\n\n"
            parts.append(separator)
            length += len(separator)
        words.append(
            _Word(
                start=length,
                end=length + len(token),
                line=line,
                left=int(data["left"][i]) // scale,
                top=int(data["top"][i]) // scale,
                width=-(-int(data["width"][i]) // scale),
                height=-(-int(data["height"][i]) // scale),
            )
        )
        parts.append(token)
        length += len(token)
        previous = line
    return "".join(parts), words


Box = tuple[int, ...]
_MIN_SKEW_DEGREES = 2.0
_MAX_SKEW_DEGREES = 15


def _ocr_passes(
    image: Image.Image,
) -> list[tuple[str, list[_Word], Callable[[Box], Box]]]:
    """(text, words, box mapper to the original image) for each reading of the image: as it
    is, binarised with dark text, and level if the text is skewed."""
    passes: list[tuple[str, list[_Word], Callable[[Box], Box]]] = []
    text, words = _ocr_words(image)
    passes.append((text, words, _identity))
    gray = cv2.cvtColor(np.asarray(_flatten(image)), cv2.COLOR_RGB2GRAY)
    binaries = _binarised(gray)
    angles = [_skew_angle(binary) for binary in binaries]
    if _clean(gray) and all(abs(a) < _MIN_SKEW_DEGREES for a in angles):
        return passes  # level text on a plain background: Tesseract read it the first time
    for binary, angle in zip(binaries, angles, strict=True):
        level: np.ndarray = binary
        to_original: Callable[[Box], Box] = _identity
        if abs(angle) >= _MIN_SKEW_DEGREES:
            level, to_original = _rotated(binary, angle)
        text, words = _ocr_words(Image.fromarray(level).convert("RGB"))
        passes.append((text, words, to_original))
    return passes


def _clean(gray: np.ndarray) -> bool:
    """Two flat colours (text and a plain background, light or dark): nearly every pixel is
    close to one of the two Otsu classes' means. Photos and gradients are not."""
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    low, high = gray[gray <= threshold], gray[gray > threshold]
    if not low.size or not high.size:
        return True
    near = (np.abs(low.astype(np.int16) - int(low.mean())) <= 24).sum() + (
        np.abs(high.astype(np.int16) - int(high.mean())) <= 24
    ).sum()
    return bool(near / gray.size >= 0.93)  # photos measured 0.79-0.89, screenshots 0.95+


def _identity(box: Box) -> Box:
    return box


def _binarised(gray: np.ndarray) -> list[np.ndarray]:
    """Dark text on white: a median filter against sensor noise, adaptive thresholding for
    uneven backgrounds (photos, bubbles), an opening against leftover specks. Text lighter than
    its background (dark mode, white on blue) is inverted first; when the polarity is unclear
    (a photo: light text on one part, dark on another), both are returned."""
    smooth = cv2.medianBlur(gray, 3)
    block = max(15, (min(gray.shape) // 8) | 1)
    _threshold, otsu = cv2.threshold(smooth, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    light_share = float((otsu > 0).mean())
    sources = []
    if light_share >= 0.3:  # a light background: dark text
        sources.append(smooth)
    if light_share <= 0.7:  # a dark background: light text
        sources.append(255 - smooth)
    out = []
    for source in sources:
        binary = cv2.adaptiveThreshold(
            source, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block, 12
        )
        ink = cv2.morphologyEx(255 - binary, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
        out.append(255 - ink)
    return out


def _skew_angle(binary: np.ndarray) -> float:
    """The rotation that makes text lines level: the angle whose row sums of ink vary most
    (a projection-profile search), on a downscaled copy."""
    ink = (binary < 128).astype(np.uint8) * 255
    scale = min(1.0, 400 / max(ink.shape))
    small = cv2.resize(ink, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    height, width = small.shape
    center = (width / 2, height / 2)
    best, best_score = 0.0, -1.0
    for angle in range(-_MAX_SKEW_DEGREES, _MAX_SKEW_DEGREES + 1):
        matrix = cv2.getRotationMatrix2D(center, angle, 1.0)
        rotated = cv2.warpAffine(small, matrix, (width, height), flags=cv2.INTER_NEAREST)
        score = float(np.var(rotated.sum(axis=1, dtype=np.float64)))
        if score > best_score:
            best, best_score = float(angle), score
    return best


def _rotated(binary: np.ndarray, angle: float) -> tuple[np.ndarray, Callable[[Box], Box]]:
    """`binary` turned by `angle` degrees on a canvas large enough for all of it, and a mapper
    from a box in the turned image to the box around its corners in the original."""
    height, width = binary.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(height * sin + width * cos) + 2, int(height * cos + width * sin) + 2
    matrix[0, 2] += new_w / 2 - width / 2
    matrix[1, 2] += new_h / 2 - height / 2
    turned = cv2.warpAffine(binary, matrix, (new_w, new_h), borderValue=255)
    inverse = cv2.invertAffineTransform(matrix)

    def to_original(box: Box) -> Box:
        left, top, right, bottom = box
        corners = np.array([[left, top, 1], [right, top, 1], [left, bottom, 1], [right, bottom, 1]])
        mapped = corners @ inverse.T
        xs, ys = mapped[:, 0], mapped[:, 1]
        return (int(xs.min()), int(ys.min()), int(np.ceil(xs.max())), int(np.ceil(ys.max())))

    return turned, to_original


def ocr_text(image: Image.Image) -> str:
    """The text Tesseract reads in `image` (a scanned PDF page, say); ImageRedactionFailed
    when OCR is unavailable or fails."""
    return _ocr_words(image)[0]


def _ocr_scale(image: Image.Image) -> int:
    """Tesseract reads small screen text (x-height under ~10 px) badly: small images are
    upscaled 2x for OCR (boxes are mapped back)."""
    return 2 if max(image.size) <= 2000 and image.width * image.height <= 2_000_000 else 1


def _boxes_for(findings: Sequence[Finding], words: Sequence[_Word]) -> list[tuple[int, ...]]:
    """(left, top, right, bottom) rectangles to fill: for each finding, the union of the words it
    overlaps on each line (a partially covered word is covered whole)."""
    boxes: list[tuple[int, ...]] = []
    for finding in findings:
        per_line: dict[tuple[int, int, int, int], list[int]] = {}
        for word in words:
            if word.end <= finding.start or word.start >= finding.end:
                continue
            mx = BOX_MARGIN_PX + (word.height * _MARGIN_X_PERCENT) // 100
            my = BOX_MARGIN_PX + (word.height * _MARGIN_Y_PERCENT) // 100
            box = [
                word.left - mx,
                word.top - my,
                word.left + word.width + mx,
                word.top + word.height + my,
            ]
            current = per_line.get(word.line)
            if current is None:
                per_line[word.line] = box
            else:
                per_line[word.line] = [
                    min(current[0], box[0]),
                    min(current[1], box[1]),
                    max(current[2], box[2]),
                    max(current[3], box[3]),
                ]
        boxes.extend(tuple(b) for b in per_line.values())
    return boxes


def _black_out(image: Image.Image, boxes: Sequence[tuple[int, ...]]) -> Image.Image:
    pixels = np.array(image)
    height, width = pixels.shape[:2]
    fill = (0, 0, 0, 255) if image.mode == "RGBA" else (0, 0, 0)
    for left, top, right, bottom in boxes:
        x0, y0 = max(0, left), max(0, top)
        x1, y1 = min(width, right), min(height, bottom)
        if x1 > x0 and y1 > y0:
            pixels[y0:y1, x0:x1] = fill
    return Image.fromarray(pixels, mode=image.mode)


# --- faces -----------------------------------------------------------------------------------

_cascades = threading.local()  # CascadeClassifier is not documented as thread-safe: one per thread


def _face_cascade() -> Any:
    cascade = getattr(_cascades, "face", None)
    if cascade is None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise ImageRedactionFailed("face cascade missing (opencv-python-headless must be <5)")
        _cascades.face = cascade
    return cascade


def _detect_faces(image: Image.Image) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in image coordinates. The cascade runs on the grey image and on
    its histogram-equalized copy (each finds faces the other misses: equalization helps dim,
    low-contrast photos and hurts flat, high-contrast ones); overlapping hits are merged."""
    gray = np.array(image.convert("L"))
    scale = min(1.0, _FACE_DETECT_MAX_SIDE / max(gray.shape))
    if scale < 1.0:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    cascade = _face_cascade()
    found: list[tuple[int, int, int, int]] = []
    for variant in (gray, cv2.equalizeHist(gray)):
        hits = cascade.detectMultiScale(
            variant, scaleFactor=_FACE_SCALE_STEP, minNeighbors=5, minSize=(24, 24)
        )
        found.extend((int(x), int(y), int(w), int(h)) for (x, y, w, h) in hits)
    return [
        (round(x / scale), round(y / scale), round(w / scale), round(h / scale))
        for (x, y, w, h) in _merge_overlapping(found)
    ]


def _merge_overlapping(
    boxes: Sequence[tuple[int, int, int, int]],
) -> list[tuple[int, int, int, int]]:
    """Union of boxes that overlap (each face counted once, the blurred area covers both)."""
    merged: list[list[int]] = []
    for x, y, w, h in boxes:
        box = [x, y, x + w, y + h]
        for other in merged:
            if box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]:
                other[:] = [
                    min(box[0], other[0]),
                    min(box[1], other[1]),
                    max(box[2], other[2]),
                    max(box[3], other[3]),
                ]
                break
        else:
            merged.append(box)
    return [(b[0], b[1], b[2] - b[0], b[3] - b[1]) for b in merged]


def _blur_faces(
    image: Image.Image, boxes: Sequence[tuple[int, int, int, int]], blur: Blur
) -> Image.Image:
    """Gaussian blur over each (enlarged) face box. The kernel is relative to the face size:
    "light" keeps the outline of a face visible, "strong" leaves a smooth, unrecognizable blob."""
    pixels = np.array(image)
    height, width = pixels.shape[:2]
    for x, y, w, h in boxes:
        size = max(w, h)
        margin = round(size * _FACE_MARGIN)
        x0, y0 = max(0, x - margin), max(0, y - margin)
        x1, y1 = min(width, x + w + margin), min(height, y + h + margin)
        if x1 <= x0 or y1 <= y0:
            continue
        if blur == "strong":
            kernel, sigma, passes = size // 2, size / 6, 2
        else:
            kernel, sigma, passes = size // 6, size / 20, 1
        kernel = max(3, kernel | 1)  # odd, at least 3
        region = pixels[y0:y1, x0:x1]
        for _ in range(passes):
            region = cv2.GaussianBlur(
                region, (kernel, kernel), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE
            )
        pixels[y0:y1, x0:x1] = region
    return Image.fromarray(pixels, mode=image.mode)
