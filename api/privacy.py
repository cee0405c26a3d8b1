"""Privacy: the PII the user asked us to remove never reaches the upstream model.

Per request, a plan is resolved from the request's controls (and their aliases), then the
account's defaults, then ours. Text (every message, every role, tool-call arguments), images
(data URLs: OCR'd words blacked out, faces blurred), PDFs and fetched URLs are redacted — or,
in `pseudonymize` mode, replaced by stable placeholders that are put back into the answer.
Only entity types and counts leave this module; never the values.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from api.chat_schemas import PII_ENTITY_TYPES, PdfInput, PiiConfig, SkipRedaction
from api.errors import ApiError
from infra.pii_documents import DocumentRejected, decode_base64_pdf, extract_pdf_text
from infra.pii_images import (
    ImageRedaction,
    ImageRedactionFailed,
    ImageRejected,
    parse_data_url,
    redact_image,
    to_data_url,
)
from infra.pii_text import PseudonymVault, StreamingRestorer, TextPiiEngine, default_engine
from infra.pii_text import run_off_loop as run_pii
from infra.safe_fetch import FetchRejected, fetch_body, fetch_text

Mode = Literal["redact", "pseudonymize", "off"]
# Not redacted unless asked for: too noisy with the small NER model (ORGANIZATION, NRP),
# or usually wanted by the model (URL, DATE_TIME).
DEFAULT_ENTITIES = tuple(sorted(PII_ENTITY_TYPES - {"ORGANIZATION", "NRP", "URL", "DATE_TIME"}))
MAX_CONTEXT_CHARS = 400_000


@dataclass(frozen=True)
class PrivacyPlan:
    mode: Mode
    entities: tuple[str, ...]
    config: PiiConfig
    skip_text: bool = False
    skip_image: bool = False
    skip_pdf: bool = False
    skip_urls: bool = False

    @property
    def pseudonymize(self) -> bool:
        return self.mode == "pseudonymize"


def resolve_plan(
    *,
    mode: Mode | None,
    entities: Sequence[str] | None,
    config: PiiConfig | None,
    skip: bool | SkipRedaction | None,
    account: dict[str, Any],
) -> PrivacyPlan:
    """Request controls first, then the account's saved defaults, then ours."""
    saved = account.get("privacy") or {}
    chosen: Mode = mode or saved.get("mode") or "redact"
    wanted = tuple(entities or saved.get("piiEntities") or DEFAULT_ENTITIES)
    pii_config = config or PiiConfig.model_validate(saved.get("piiConfig") or {})
    if chosen == "off" or skip is True:
        return PrivacyPlan(chosen, wanted, pii_config, True, True, True, True)
    parts = skip if isinstance(skip, SkipRedaction) else SkipRedaction()
    return PrivacyPlan(chosen, wanted, pii_config, parts.text, parts.image, parts.pdf, parts.urls)


@dataclass
class Prepared:
    messages: list[dict[str, Any]]
    vault: PseudonymVault | None
    counts: Counter[str] = field(default_factory=Counter)


class PrivacyFilter:
    """Builds the text engine once (spaCy loads in ~2 s, off the event loop) and applies plans."""

    def __init__(self) -> None:
        self._engine: TextPiiEngine | None = None
        self._lock = asyncio.Lock()
        self.fetch_options: dict[str, Any] = {}  # tests: resolver/allow_addresses

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
            raise ApiError(400, "invalid_params", str(exc), param="piiEntities") from exc

    async def redact_image_url(
        self, url: str, plan: PrivacyPlan, *, param: str = "messages"
    ) -> ImageRedaction:
        """OCR'd words of each finding blacked out, faces blurred, re-encoded; errors as API
        errors (a bad image is the client's 400; OCR unavailable is 503: nothing is sent)."""
        engine = await self.engine()
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
            raise ApiError(
                400, "invalid_image", f"image rejected: {exc.reason}", param=param
            ) from exc
        except ImageRedactionFailed as exc:
            raise ApiError(
                503, "pii_unavailable", "image redaction is unavailable; nothing was sent"
            ) from exc

    async def pdf_text(self, pdf: str | PdfInput, plan: PrivacyPlan) -> tuple[str, str]:
        try:
            if isinstance(pdf, PdfInput) and pdf.url:
                fetched = await fetch_body(
                    pdf.url,
                    content_types={"application/pdf"},
                    max_bytes=20_000_000,
                    timeout=20.0,
                    **self.fetch_options,
                )
                data, name = fetched.body, pdf.filename or pdf.url
            else:
                raw = pdf.data if isinstance(pdf, PdfInput) else pdf
                data = decode_base64_pdf(raw or "")
                name = (pdf.filename if isinstance(pdf, PdfInput) else None) or "document.pdf"
            extracted = await asyncio.to_thread(
                extract_pdf_text, data, max_pages=plan.config.pdf.pages
            )
        except DocumentRejected as exc:
            raise ApiError(400, "invalid_pdf", f"PDF rejected: {exc.reason}", param="pdfs") from exc
        except FetchRejected as exc:
            raise ApiError(
                400, "url_fetch_failed", f"PDF not fetched: {exc.reason}", param="pdfs"
            ) from exc
        return name, extracted.text

    async def url_text(self, url: str) -> tuple[str, str]:
        try:
            page = await fetch_text(url, **self.fetch_options)
        except FetchRejected as exc:
            raise ApiError(
                400, "url_fetch_failed", f"{url} not fetched: {exc.reason}", param="urls"
            ) from exc
        return url, page.text

    async def prepare(
        self,
        messages: list[dict[str, Any]],
        plan: PrivacyPlan,
        *,
        pdfs: Sequence[str | PdfInput] = (),
        urls: Sequence[str] = (),
    ) -> Prepared:
        vault = PseudonymVault() if plan.pseudonymize and not plan.skip_text else None
        prepared = Prepared([dict(m) for m in messages], vault)
        # Text of every message, in every role, and tool-call arguments.
        slots: list[tuple[dict[str, Any], str, str]] = []  # (holder, field, text)
        for message in prepared.messages:
            content = message.get("content")
            if isinstance(content, str):
                slots.append((message, "content", content))
            elif isinstance(content, list):
                message["content"] = parts = [dict(p) for p in content]
                for part in parts:
                    if part.get("type") == "text" and isinstance(part.get("text"), str):
                        slots.append((part, "text", part["text"]))
                    elif part.get("type") == "image_url":
                        await self._image_part(part, plan, prepared.counts)
            if message.get("tool_calls"):
                message["tool_calls"] = calls = [dict(c) for c in message["tool_calls"]]
                for call in calls:
                    function = dict(call.get("function") or {})
                    call["function"] = function
                    if isinstance(function.get("arguments"), str):
                        slots.append((function, "arguments", function["arguments"]))
        if not plan.skip_text and slots:
            rewritten = await self.redact_texts([text for _, _, text in slots], plan, vault)
            for (holder, name, _), (text, counts) in zip(slots, rewritten, strict=True):
                holder[name] = text
                prepared.counts.update(counts)
        documents = await self._documents(plan, vault, pdfs, urls, prepared.counts)
        if documents:
            at = next(
                (
                    i
                    for i, m in enumerate(prepared.messages)
                    if m.get("role") not in ("system", "developer")
                ),
                len(prepared.messages),
            )
            prepared.messages.insert(at, {"role": "system", "content": documents})
        return prepared

    async def _image_part(
        self, part: dict[str, Any], plan: PrivacyPlan, counts: Counter[str]
    ) -> None:
        image = dict(part.get("image_url") or {})
        url = str(image.get("url") or "")
        if plan.skip_image:
            return
        if not url.startswith("data:"):
            raise ApiError(
                400,
                "unsupported_image_url",
                "with image redaction on, send images as data: URLs (or set "
                "skip_pii_redaction: {image: true})",
                param="messages",
            )
        redacted = await self.redact_image_url(url, plan)
        image["url"] = to_data_url(redacted.mime, redacted.data)
        part["image_url"] = image
        counts.update(redacted.counts)

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
            if redact:
                [(text, found)] = await self.redact_texts([text], plan, vault, threshold)
                counts.update(found)
            blocks.append(f"[Document {number}: {name}]\n{text}")
        context = "\n\n".join(blocks)
        if len(context) > MAX_CONTEXT_CHARS:
            raise ApiError(
                400,
                "context_length_exceeded",
                "documents are too long",
                param="pdfs" if pdfs else "urls",
            )
        return "Documents provided with this request:\n\n" + context if blocks else ""


def restore_answer(answer: dict[str, Any], vault: PseudonymVault) -> None:
    """Put the originals back into a JSON chat completion (content and tool-call arguments)."""
    for choice in answer.get("choices") or []:
        message = choice.get("message") or {}
        if isinstance(message.get("content"), str):
            message["content"] = vault.restore(message["content"])
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            if isinstance(function.get("arguments"), str):
                function["arguments"] = vault.restore(function["arguments"])


class StreamRestorers:
    """One StreamingRestorer per choice of an SSE answer (placeholders may straddle chunks)."""

    def __init__(self, vault: PseudonymVault) -> None:
        self._vault = vault
        self._by_index: dict[int, StreamingRestorer] = {}

    def chunk(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or []:
            restorer = self._by_index.setdefault(
                int(choice.get("index", 0)), StreamingRestorer(self._vault)
            )
            delta = choice.get("delta") or {}
            text = restorer.feed(str(delta.get("content") or ""))
            if choice.get("finish_reason") is not None:
                text += restorer.flush()
            if "content" in delta or text:
                delta["content"] = text
                choice["delta"] = delta

    def leftovers(self) -> dict[int, str]:
        """Held-back text per choice at the end of the stream (normally empty)."""
        return {i: r.flush() for i, r in self._by_index.items() if r.pending}


class AccountSettingsCache:
    """Account privacy defaults, re-read at most every `ttl` seconds per account (a settings
    change reaches every API process within that time)."""

    def __init__(self, read: Callable[[str], Awaitable[dict[str, Any]]], ttl: float = 5.0):
        self._read = read
        self._ttl = ttl
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    async def get(self, account_id: str) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._entries.get(account_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        value = await self._read(account_id)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[account_id] = (now, value)
        return value


def counts_header(counts: Counter[str] | dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(dict(counts).items())) or "none"
