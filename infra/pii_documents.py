"""PDF text extraction for redaction: the caller runs the text engine over `PdfText.text` and sends
only the redacted text upstream (never the PDF itself, whose images, forms, attachments and
metadata are not redacted).

Everything the client sends that cannot be read fully is refused with `DocumentRejected`
(corrupt, password-protected, too large, too long): a partially read document is never passed
on as if it were whole, except for the explicit `max_pages` cut, which `PdfText` reports.

Pages without a text layer (scans, photographed documents) are rendered with PDFium
(pypdfium2) and read by Tesseract, so their text is redacted like any other instead of the page
silently becoming empty. OCR is slow (about a second a page), so at most `MAX_OCR_PAGES`
pages are read per document; a document with more scanned pages is refused, never half-read.

Blocking and CPU-bound (pypdf is pure Python; a hostile PDF can make text extraction slow):
run it in a worker thread, ideally with a request-level deadline.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pypdfium2
from PIL import Image
from pypdf import PasswordType, PdfReader

from domain.errors import PryvError

MAX_PDF_BYTES = 20 * 1024 * 1024
MAX_PDF_PAGES = 500  # documents with more pages are refused outright (max_pages cuts below this)
MAX_TEXT_CHARS = 1_000_000  # extracted text beyond this is refused, not truncated
MAX_OCR_PAGES = 30  # scanned pages read per document
SCANNED_PAGE_CHARS = 16  # a page whose text layer has fewer characters is read by OCR
OCR_DPI = 200
OCR_MAX_PIXELS = 12_000_000  # a rendered page never exceeds this (a hostile page size)
_PDFIUM_LOCK = threading.Lock()  # PDFium is not thread-safe (pypdfium2's documentation)
_PDF_MAGIC = b"%PDF-"
_MAGIC_WINDOW = 1024  # the header may follow some junk bytes (the spec tolerates up to 1 KiB)


class DocumentRejected(PryvError, ValueError):
    """The client's document cannot be used. `reason` is short and safe to show to the client."""

    code = "invalid_pdf"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PdfText:
    text: str  # pages joined by a blank line (form feed free)
    pages: int  # pages read (== total_pages unless max_pages cut the document)
    total_pages: int
    ocr_pages: int = 0  # pages whose text came from OCR (no text layer)


PageReader = Callable[[Image.Image], str]  # OCR: a rendered page's text


def decode_base64_pdf(data: str) -> bytes:
    """Raw base64 or a `data:application/pdf;base64,...` URL -> the PDF bytes (magic checked)."""
    payload = data.strip()
    if payload[:5].lower() == "data:":
        header, sep, payload = payload.partition(",")
        parts = [p.strip().lower() for p in header[5:].split(";")]
        if not sep or parts[0] != "application/pdf" or "base64" not in parts[1:]:
            raise DocumentRejected("expected a base64 data URL of type application/pdf")
    payload = re.sub(r"\s+", "", payload)
    if len(payload) > (MAX_PDF_BYTES // 3 + 1) * 4:
        raise DocumentRejected("document too large")
    try:
        pdf = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise DocumentRejected("invalid base64") from None
    if _PDF_MAGIC not in pdf[:_MAGIC_WINDOW]:
        raise DocumentRejected("not a PDF")
    return pdf


def extract_pdf_text(
    data: bytes,
    *,
    max_pages: int | None,
    max_chars: int = MAX_TEXT_CHARS,
    ocr: PageReader | None = None,
) -> PdfText:
    """Text of the first `max_pages` pages (all when None); pages without a text layer are
    read by `ocr` (when given). Raises DocumentRejected, and whatever `ocr` raises."""
    if max_pages is not None and max_pages < 1:
        raise ValueError("max_pages must be at least 1")
    if len(data) > MAX_PDF_BYTES:
        raise DocumentRejected("document too large")
    if _PDF_MAGIC not in data[:_MAGIC_WINDOW]:
        raise DocumentRejected("not a PDF")
    try:
        pages, total, scanned = _extract(data, max_pages, max_chars)
    except DocumentRejected:
        raise
    except RecursionError:
        raise DocumentRejected("corrupt PDF") from None
    except Exception:
        # pypdf raises many types on malformed input (PdfReadError, KeyError, ValueError,
        # TypeError, AttributeError, ...): all of them mean "cannot read this document".
        raise DocumentRejected("corrupt PDF") from None
    read_by_ocr = 0
    if scanned and ocr is not None:
        if len(scanned) > MAX_OCR_PAGES:
            raise DocumentRejected(
                f"{len(scanned)} pages are scanned images; at most {MAX_OCR_PAGES} are read "
                "per document (send fewer pages, or set piiConfig.pdf.pages)"
            )
        for index in scanned:
            pages[index] = ocr(render_page(data, index)).strip()
        read_by_ocr = len(scanned)
    text = "\n\n".join(pages)
    if len(text) > max_chars:
        raise DocumentRejected("document text too long")
    if not text.strip():
        raise DocumentRejected("no text could be read from this PDF")
    return PdfText(text, len(pages), total, ocr_pages=read_by_ocr)


def render_page(data: bytes, index: int) -> Image.Image:
    """Page `index` as an image at OCR_DPI, never above OCR_MAX_PIXELS."""
    try:
        with _PDFIUM_LOCK:
            document = pypdfium2.PdfDocument(data)
            try:
                page = document[index]
                width, height = page.get_size()  # points (1/72 inch)
                scale = OCR_DPI / 72
                if width * height * scale * scale > OCR_MAX_PIXELS:
                    scale = math.sqrt(OCR_MAX_PIXELS / max(width * height, 1))
                image: Image.Image = page.render(scale=scale).to_pil()
                page.close()
            finally:
                document.close()
    except pypdfium2.PdfiumError:
        raise DocumentRejected("corrupt PDF (a page could not be rendered)") from None
    return image.convert("RGB")


def _extract(
    data: bytes, max_pages: int | None, max_chars: int
) -> tuple[list[str], int, list[int]]:
    """Each wanted page's text layer, the document's page count, and the indexes of pages
    that have (almost) no text layer."""
    # strict=False: pypdf repairs the small defects common in real files (bad xref offsets, a
    # wrong /Root); what it cannot repair raises and is refused.
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        # Owner-password-only PDFs ("no printing" etc.) open with the empty user password.
        try:
            opened = reader.decrypt("")
        except Exception:  # unsupported algorithm, or the crypto library is missing
            raise DocumentRejected("encrypted PDF not supported") from None
        if opened == PasswordType.NOT_DECRYPTED:
            raise DocumentRejected("password-protected PDF")
    total = len(reader.pages)
    if total == 0:
        raise DocumentRejected("corrupt PDF (no pages)")
    if total > MAX_PDF_PAGES:
        raise DocumentRejected(f"too many pages (limit {MAX_PDF_PAGES})")
    wanted = total if max_pages is None else min(total, max_pages)
    texts: list[str] = []
    scanned: list[int] = []
    length = 0
    for index in range(wanted):
        page_text = reader.pages[index].extract_text() or ""
        page_text = page_text.replace("\x0c", "\n").strip()
        length += len(page_text) + 2
        if length > max_chars:
            raise DocumentRejected("document text too long")
        if len("".join(page_text.split())) < SCANNED_PAGE_CHARS:
            scanned.append(index)
        texts.append(page_text)
    return texts, total, scanned
