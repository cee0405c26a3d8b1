"""PDF text extraction with pypdf on PDFs written by hand in the test (no PDF writer needed for
text: a page is a content stream of `BT ... Tj ET` operators with a standard Type1 font)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import pytest
from pypdf import PdfReader, PdfWriter

from infra.pii_documents import (
    MAX_PDF_BYTES,
    MAX_PDF_PAGES,
    DocumentRejected,
    PdfText,
    decode_base64_pdf,
    extract_pdf_text,
)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: Sequence[Sequence[str]]) -> bytes:
    """A valid PDF 1.4: one page per entry, each line of text drawn in Helvetica 12."""
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % pid for pid in page_ids)
        + b"] /Count %d >>" % len(pages),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for pid, lines in zip(page_ids, pages, strict=True):
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            ops += [f"({_escape(line)}) Tj", "T*"]
        ops.append("ET")
        content = "\n".join(ops).encode("latin-1")
        objects[pid] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (pid + 1)
        )
        objects[pid + 1] = b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def encrypted(pdf: bytes, *, user_password: str, algorithm: str = "AES-128") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


THREE_PAGES = [
    ["Invoice for Jane Doe", "Email: jane.doe@example.com"],
    ["Page two (with parentheses)", "Phone 415-555-0100"],
    ["Page three"],
]


def test_text_of_every_page_in_order() -> None:
    result = extract_pdf_text(make_pdf(THREE_PAGES), max_pages=None)
    assert (result.pages, result.total_pages) == (3, 3)
    assert result.text.index("Jane Doe") < result.text.index("415-555-0100")
    assert result.text.index("415-555-0100") < result.text.index("Page three")
    for line in (line for page in THREE_PAGES for line in page):
        assert line in result.text
    assert "\n\n" in result.text  # pages are separated by a blank line


def test_max_pages_is_honoured_and_reported() -> None:
    result = extract_pdf_text(make_pdf(THREE_PAGES), max_pages=1)
    assert result == PdfText(
        text="Invoice for Jane Doe\nEmail: jane.doe@example.com", pages=1, total_pages=3
    )
    assert extract_pdf_text(make_pdf(THREE_PAGES), max_pages=10).pages == 3
    with pytest.raises(ValueError):
        extract_pdf_text(make_pdf(THREE_PAGES), max_pages=0)


def test_pdf_without_any_readable_text_is_refused_not_sent_empty() -> None:
    with pytest.raises(DocumentRejected, match="no text could be read"):
        extract_pdf_text(make_pdf([[]]), max_pages=None)


def test_owner_password_only_pdf_opens() -> None:
    # Encrypted with an empty user password (only permissions restricted): readable by anyone.
    for algorithm in ("RC4-128", "AES-128", "AES-256"):
        pdf = encrypted(make_pdf(THREE_PAGES), user_password="", algorithm=algorithm)
        assert PdfReader(io.BytesIO(pdf)).is_encrypted
        assert "Jane Doe" in extract_pdf_text(pdf, max_pages=None).text


def test_password_protected_pdf_is_refused() -> None:
    for algorithm in ("RC4-128", "AES-128", "AES-256"):
        pdf = encrypted(make_pdf(THREE_PAGES), user_password="s3cret", algorithm=algorithm)
        with pytest.raises(DocumentRejected, match="password"):
            extract_pdf_text(pdf, max_pages=None)


def test_corrupt_and_non_pdf_input_is_refused() -> None:
    pdf = make_pdf(THREE_PAGES)
    cases = {
        b"": "not a PDF",
        b"hello world": "not a PDF",
        b"x" * 2000 + pdf: "not a PDF",  # no header in the first KiB
        b"%PDF-1.7\n": "corrupt",
        b"%PDF-1.4\n" + b"\x00garbage" * 100: "corrupt",
        pdf[: len(pdf) // 2]: "corrupt",  # truncated: no xref, no trailer, objects cut
        pdf[:-40]: "corrupt",  # truncated trailer
        pdf.replace(b"/Type /Catalog", b"/Type /Catalox").replace(
            b"/Root 1", b"/Root 9"
        ): "corrupt",
        pdf.replace(b"/Type /Pages", b"/Type /Pagez").replace(b"/Kids [", b"/Kidz ["): "no pages",
    }
    for data, reason in cases.items():
        with pytest.raises(DocumentRejected, match=reason):
            extract_pdf_text(data, max_pages=None)


def test_small_defects_are_repaired() -> None:
    pdf = make_pdf(THREE_PAGES)
    # A few junk bytes before the header (tolerated by readers within the first KiB)...
    assert "Jane Doe" in extract_pdf_text(b"junk\n" + pdf, max_pages=None).text
    # ...and a wrong /Root reference: pypdf finds the catalog by scanning.
    assert "Jane Doe" in extract_pdf_text(pdf.replace(b"/Root 1", b"/Root 9"), max_pages=None).text


def test_oversized_input_is_refused() -> None:
    with pytest.raises(DocumentRejected, match="too large"):
        extract_pdf_text(b"%PDF-1.4\n" + b" " * MAX_PDF_BYTES, max_pages=None)
    with pytest.raises(DocumentRejected, match="too many pages"):
        extract_pdf_text(make_pdf([["x"]] * (MAX_PDF_PAGES + 1)), max_pages=1)
    with pytest.raises(DocumentRejected, match="too long"):
        extract_pdf_text(make_pdf(THREE_PAGES), max_pages=None, max_chars=50)


def test_decode_base64_pdf() -> None:
    pdf = make_pdf(THREE_PAGES)
    raw = base64.b64encode(pdf).decode()
    assert decode_base64_pdf(raw) == pdf
    assert decode_base64_pdf(f"data:application/pdf;base64,{raw}") == pdf
    assert decode_base64_pdf(f"  DATA:Application/PDF;name=x.pdf;base64,{raw}\n") == pdf
    wrapped = "\n".join(raw[i : i + 76] for i in range(0, len(raw), 76))
    assert decode_base64_pdf(wrapped) == pdf
    assert decode_base64_pdf(raw.rstrip("=")) == pdf

    bad = {
        base64.b64encode(b"not a pdf at all").decode(): "not a PDF",
        "@@@": "invalid base64",
        f"data:image/png;base64,{raw}": "application/pdf",
        f"data:application/pdf,{raw}": "application/pdf",  # not base64-encoded
        "A" * ((MAX_PDF_BYTES // 3 + 2) * 4): "too large",
    }
    for candidate, reason in bad.items():
        with pytest.raises(DocumentRejected, match=reason):
            decode_base64_pdf(candidate)
