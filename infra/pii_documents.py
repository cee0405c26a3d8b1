"""PDF text extraction for redaction: the caller runs the text engine over `PdfText.text` and sends
only the redacted text upstream (never the PDF itself, whose images, forms, attachments and
metadata are not redacted).

Everything the client sends that cannot be read fully is refused with `DocumentRejected`
(corrupt, password-protected, too large, too long): a partially read document is never passed
on as if it were whole, except for the explicit `max_pages` cut, which `PdfText` reports.

Blocking and CPU-bound (pypdf is pure Python; a hostile PDF can make text extraction slow):
run it in a worker thread, ideally with a request-level deadline.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from dataclasses import dataclass

from pypdf import PasswordType, PdfReader

MAX_PDF_BYTES = 20 * 1024 * 1024
MAX_PDF_PAGES = 500  # documents with more pages are refused outright (max_pages cuts below this)
MAX_TEXT_CHARS = 1_000_000  # extracted text beyond this is refused, not truncated
_PDF_MAGIC = b"%PDF-"
_MAGIC_WINDOW = 1024  # the header may follow some junk bytes (the spec tolerates up to 1 KiB)


class DocumentRejected(ValueError):
    """The client's document cannot be used. `reason` is short and safe to show to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PdfText:
    text: str  # pages joined by a blank line (form feed free)
    pages: int  # pages read (== total_pages unless max_pages cut the document)
    total_pages: int


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
    data: bytes, *, max_pages: int | None, max_chars: int = MAX_TEXT_CHARS
) -> PdfText:
    """Text of the first `max_pages` pages (all when None). Raises DocumentRejected."""
    if max_pages is not None and max_pages < 1:
        raise ValueError("max_pages must be at least 1")
    if len(data) > MAX_PDF_BYTES:
        raise DocumentRejected("document too large")
    if _PDF_MAGIC not in data[:_MAGIC_WINDOW]:
        raise DocumentRejected("not a PDF")
    try:
        return _extract(data, max_pages, max_chars)
    except DocumentRejected:
        raise
    except RecursionError:
        raise DocumentRejected("corrupt PDF") from None
    except Exception:
        # pypdf raises many types on malformed input (PdfReadError, KeyError, ValueError,
        # TypeError, AttributeError, ...): all of them mean "cannot read this document".
        raise DocumentRejected("corrupt PDF") from None


def _extract(data: bytes, max_pages: int | None, max_chars: int) -> PdfText:
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
    length = 0
    for index in range(wanted):
        page_text = reader.pages[index].extract_text() or ""
        page_text = page_text.replace("\x0c", "\n").strip()
        length += len(page_text) + 2
        if length > max_chars:
            raise DocumentRejected("document text too long")
        texts.append(page_text)
    return PdfText(text="\n\n".join(texts), pages=wanted, total_pages=total)
