"""Privacy: the PII the user asked us to remove never reaches the upstream model.

Per request, a plan is resolved from the request's controls (and their aliases), then the
account's defaults, then ours. The whole upstream body is walked (`domain.upstream_body`):
every string that is not an allowlisted identifier is redacted like message text (tools and
their schemas, response_format, prediction, user, metadata, names, arguments, …), images
(data URLs: OCR'd words blacked out, faces blurred), PDFs (as `pdfs` or as `file` /
`input_file` content parts; scanned pages OCR'd) and fetched URLs are redacted — or, in
`pseudonymize` mode, replaced by stable placeholders that are put back into the answer.
Only entity types and counts leave this module; never the values.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.errors import ErrorKind, PryvError
from domain.upstream_body import (
    FieldRefused,
    FilePart,
    ImagePart,
    UpstreamFields,
    classify,
    sanitize_name,
)
from infra.pii_documents import DocumentRejected, PdfText, decode_base64_pdf, extract_pdf_text
from infra.pii_images import (
    ImageRedaction,
    ImageRedactionFailed,
    ImageRejected,
    ocr_text,
    parse_data_url,
    redact_image,
    to_data_url,
)
from infra.pii_text import (
    PseudonymVault,
    TextPiiEngine,
    default_engine,
)
from infra.pii_text import run_off_loop as run_pii
from infra.safe_fetch import FetchRejected, fetch_body, fetch_text
from privacy.controls import PdfInput
from privacy.plan import PrivacyPlan

MAX_CONTEXT_CHARS = 400_000


@dataclass
class Prepared:
    body: dict[str, Any]  # the upstream body, rewritten
    vault: PseudonymVault | None
    counts: Counter[str] = field(default_factory=Counter)


class PrivacyFilter:
    """Builds the text engine once (spaCy loads in ~2 s, off the event loop) and applies plans."""

    def __init__(self) -> None:
        self._engine: TextPiiEngine | None = None
        self._lock = asyncio.Lock()
        self.fetch_options: dict[str, Any] = {}  # tests: resolver/allow_addresses
        self.texts_analysed = 0
        self.images_redacted = 0
        self.documents_read = 0

    def work_done(self) -> tuple[int, int, int]:
        """(texts analysed, images redacted, documents read) so far, for /metrics: a refused
        request must leave all three unchanged."""
        return self.texts_analysed, self.images_redacted, self.documents_read

    def ner_batches(self) -> tuple[int, int]:
        """(NER batches, texts) so far; (0, 0) before the engine is built."""
        return self._engine.ner_batches if self._engine is not None else (0, 0)

    async def engine(self) -> TextPiiEngine:
        async with self._lock:
            if self._engine is None:
                self._engine = await asyncio.to_thread(default_engine)
            return self._engine

    async def redact_texts(
        self,
        texts: Sequence[str],
        plan: PrivacyPlan,
        vault: PseudonymVault | None,
        threshold: float | None = None,
    ) -> list[tuple[str, dict[str, int]]]:
        """Each text rewritten under the plan (one trip to the PII threads for all of them)."""
        engine = await self.engine()
        limit = plan.config.text.threshold if threshold is None else threshold
        self.texts_analysed += len(texts)

        def run() -> list[tuple[str, dict[str, int]]]:
            out = []
            for text in texts:
                result = (
                    engine.pseudonymize(text, vault, plan.entities, limit)
                    if vault is not None
                    else engine.redact(text, plan.entities, limit)
                )
                out.append((result.text, result.counts))
            return out

        try:
            return await run_pii(run)
        except ValueError as exc:  # e.g. PERSON asked for while NER is disabled here
            raise _invalid("invalid_params", str(exc), param="piiEntities") from exc

    async def redact_image_url(
        self, url: str, plan: PrivacyPlan, *, param: str = "messages"
    ) -> ImageRedaction:
        """OCR'd words of each finding blacked out, faces blurred, re-encoded; errors as API
        errors (a bad image is the client's 400; OCR unavailable is 503: nothing is sent)."""
        engine = await self.engine()
        self.images_redacted += 1
        try:
            _mime, data = parse_data_url(url)
            return await asyncio.to_thread(
                redact_image,
                data,
                engine,
                entities=plan.entities,
                threshold=plan.config.image.threshold,
                ocr=plan.config.image.ocr,
                blur=plan.config.image.faces.blur,
            )
        except ImageRejected as exc:
            raise _invalid("invalid_image", f"image rejected: {exc.reason}", param=param) from exc
        except ImageRedactionFailed as exc:
            raise _unavailable("image redaction is unavailable; nothing was sent") from exc

    async def pdf_text(self, pdf: str | PdfInput, plan: PrivacyPlan) -> tuple[str, str]:
        """(name, text) of a `pdfs` entry: fetched or decoded, text layer read, scanned pages
        OCR'd."""
        if isinstance(pdf, PdfInput) and pdf.url:
            data = await self._fetch_pdf(pdf.url, "pdfs")
            name = pdf.filename or pdf.url
        else:
            raw = pdf.data if isinstance(pdf, PdfInput) else pdf
            data = self._decode_pdf(raw or "", "pdfs")
            name = (pdf.filename if isinstance(pdf, PdfInput) else None) or "document.pdf"
        return name, (await self._read_pdf(data, plan, "pdfs")).text

    async def _fetch_pdf(self, url: str, param: str) -> bytes:
        self.documents_read += 1
        try:
            fetched = await fetch_body(
                url,
                content_types={"application/pdf"},
                max_bytes=20_000_000,
                timeout=20.0,
                **self.fetch_options,
            )
        except FetchRejected as exc:
            raise _invalid(
                "url_fetch_failed", f"PDF not fetched: {exc.reason}", param=param
            ) from exc
        return fetched.body

    def _decode_pdf(self, data: str, param: str) -> bytes:
        self.documents_read += 1
        try:
            return decode_base64_pdf(data)
        except DocumentRejected as exc:
            raise _invalid("invalid_pdf", f"PDF rejected: {exc.reason}", param=param) from exc

    async def _read_pdf(self, data: bytes, plan: PrivacyPlan, param: str) -> PdfText:
        """The PDF's text; pages without a text layer are OCR'd unless OCR is turned off."""
        reader = ocr_text if plan.config.image.ocr else None
        try:
            return await asyncio.to_thread(
                extract_pdf_text, data, max_pages=plan.config.pdf.pages, ocr=reader
            )
        except DocumentRejected as exc:
            raise _invalid("invalid_pdf", f"PDF rejected: {exc.reason}", param=param) from exc
        except ImageRedactionFailed as exc:
            raise _unavailable("OCR of scanned PDF pages is unavailable; nothing was sent") from exc

    async def url_text(self, url: str) -> tuple[str, str]:
        self.documents_read += 1
        try:
            page = await fetch_text(url, **self.fetch_options)
        except FetchRejected as exc:
            raise _invalid(
                "url_fetch_failed", f"{url} not fetched: {exc.reason}", param="urls"
            ) from exc
        return url, page.text

    async def prepare(
        self,
        body: dict[str, Any],
        plan: PrivacyPlan,
        *,
        pdfs: Sequence[str | PdfInput] = (),
        urls: Sequence[str] = (),
    ) -> Prepared:
        """Rewrite `body` (an upstream body the caller owns) so that nothing the plan redacts
        leaves; documents from `pdfs` and `urls` become a system message."""
        vault = PseudonymVault() if plan.pseudonymize and not plan.skip_text else None
        prepared = Prepared(body, vault)
        try:
            fields = classify(body, plan.redacting)
        except FieldRefused as exc:
            raise _invalid(exc.code, exc.message, param=exc.param) from exc
        await self._check_field_names(fields, plan)
        for image in fields.images:
            await self._image_part(image, plan, prepared.counts)
        for file in fields.files:
            await self._file_part(file, plan, vault, prepared.counts)
        if fields.texts:
            rewritten = await self.redact_texts([slot.text for slot in fields.texts], plan, vault)
            for slot, (text, counts) in zip(fields.texts, rewritten, strict=True):
                if slot.name and text != slot.text:
                    text = sanitize_name(text)
                slot.replace(text)
                prepared.counts.update(counts)
        documents = await self._documents(plan, vault, pdfs, urls, prepared.counts)
        if documents:
            messages: list[dict[str, Any]] = body["messages"]
            at = next(
                (i for i, m in enumerate(messages) if m.get("role") not in ("system", "developer")),
                len(messages),
            )
            messages.insert(at, {"role": "system", "content": documents})
        return prepared

    async def _check_field_names(self, fields: UpstreamFields, plan: PrivacyPlan) -> None:
        """Caller-chosen keys (schema properties, metadata keys) cannot be rewritten without
        changing the caller's schema: one that contains PII is refused."""
        if not fields.names:
            return
        unique = sorted({f.name for f in fields.names})
        redacted = await self.redact_texts(unique, plan, None)
        flagged = {name for name, (text, _) in zip(unique, redacted, strict=True) if text != name}
        for found in fields.names:
            if found.name in flagged:
                raise _invalid(
                    "pii_in_field_name",
                    f"{found.param}: this key contains personal data; rename it (keys are "
                    "forwarded as they are, so Pryv cannot redact them)",
                    param=found.param,
                )

    async def _image_part(self, image: ImagePart, plan: PrivacyPlan, counts: Counter[str]) -> None:
        if not image.url.startswith("data:"):
            raise _invalid(
                "unsupported_image_url",
                "with image redaction on, send images as data: URLs (or set "
                "skip_pii_redaction: {image: true})",
                param=f"{image.param}.image_url.url",
            )
        redacted = await self.redact_image_url(image.url, plan, param=image.param)
        image.part["image_url"]["url"] = to_data_url(redacted.mime, redacted.data)
        counts.update(redacted.counts)

    async def _file_part(
        self,
        file: FilePart,
        plan: PrivacyPlan,
        vault: PseudonymVault | None,
        counts: Counter[str],
    ) -> None:
        """A PDF content part becomes a text part with its redacted text (the filename
        included): the PDF itself, with its images, forms and metadata, never leaves."""
        if file.url is not None:
            data = await self._fetch_pdf(file.url, file.param)
        else:
            data = self._decode_pdf(file.data or "", file.param)
        extracted = await self._read_pdf(data, plan, file.param)
        name = file.filename or file.url or "document.pdf"
        block = await self._document(
            "Document", name, extracted.text, plan, vault, plan.config.pdf.threshold, counts
        )
        file.replace({"type": "text", "text": block})

    async def _document(
        self,
        title: str,
        name: str,
        text: str,
        plan: PrivacyPlan,
        vault: PseudonymVault | None,
        threshold: float,
        counts: Counter[str],
    ) -> str:
        """`[title: name]` and the text, both redacted: a filename or URL carries PII too.
        A filename's extension is kept apart while redacting (`jane@x.com.pdf` is no e-mail
        address to a recognizer that checks the top-level domain)."""
        stem, extension = _split_extension(name)
        [(stem, in_name), (text, in_text)] = await self.redact_texts(
            [stem, text], plan, vault, threshold
        )
        counts.update(in_name)
        counts.update(in_text)
        return f"[{title}: {stem}{extension}]\n{text}"

    async def _documents(
        self,
        plan: PrivacyPlan,
        vault: PseudonymVault | None,
        pdfs: Sequence[str | PdfInput],
        urls: Sequence[str],
        counts: Counter[str],
    ) -> str:
        sources: list[tuple[str, str, bool, float]] = []  # name, text, redact?, threshold
        for pdf in pdfs:
            name, text = await self.pdf_text(pdf, plan)
            sources.append((name, text, not plan.skip_pdf, plan.config.pdf.threshold))
        for url in urls:
            name, text = await self.url_text(url)
            sources.append((name, text, not plan.skip_urls, plan.config.text.threshold))
        blocks = []
        for number, (name, text, redact, threshold) in enumerate(sources, start=1):
            title = f"Document {number}"
            if redact:
                blocks.append(
                    await self._document(title, name, text, plan, vault, threshold, counts)
                )
            else:
                blocks.append(f"[{title}: {name}]\n{text}")
        context = "\n\n".join(blocks)
        if len(context) > MAX_CONTEXT_CHARS:
            raise _invalid(
                "context_length_exceeded",
                "documents are too long",
                param="pdfs" if pdfs else "urls",
            )
        return "Documents provided with this request:\n\n" + context if blocks else ""


def _split_extension(name: str) -> tuple[str, str]:
    match = re.search(r"\.[A-Za-z0-9]{1,5}$", name)
    return (name[: match.start()], match.group()) if match else (name, "")


def _invalid(code: str, message: str, param: str | None = None) -> PryvError:
    """The client's input cannot be made safe to send: refused, nothing leaves."""
    return PryvError(message, code=code, param=param)


def _unavailable(message: str) -> PryvError:
    """A redaction step (OCR) cannot run here: fail closed, nothing leaves."""
    return PryvError(message, code="pii_unavailable", kind=ErrorKind.UNAVAILABLE)
