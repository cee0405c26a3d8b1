"""What of a chat request may leave for the upstream model, field by field.

Everything Pryv forwards is one of three things (docs/gateway-api.md, "What reaches the
upstream"):

(a) **text**, passed through the same PII redaction as message text: every string that is not
    allowlisted below, wherever it sits — message content and names, tool-call and legacy
    function-call arguments, refusals, tool descriptions and parameter schemas (descriptions,
    defaults, enums, examples), `response_format` schemas, `prediction`, `user`, `metadata`,
    `stop`, and any parameter Pryv does not know. Object keys of free-form JSON (schema property
    names, metadata keys) are checked too; a key that contains PII is refused, because renaming
    it would silently change the caller's schema;
(b) **refused** with 400 naming the field — content Pryv cannot redact: audio, unknown
    content-part types, files referenced by an upstream file id, non-PDF files — unless the
    request turned redaction off for that modality;
(c) **allowlisted** as carrying no user text: numbers, booleans and null, and the identifiers
    listed in `_IDENTIFIER_FIELDS` and below (roles, tool and function names, tool-call ids,
    enum values such as `tool_choice: "auto"`), which must match `IDENTIFIER`.

Media is routed rather than read here: `image_url` parts go to the image redactor, PDF file
parts (`file`, `input_file`) to the PDF path. Pure: this module only walks a JSON document and
names what is where; the caller rewrites the slots.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from domain.errors import PryvError

IDENTIFIER = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")

# Top-level parameters whose value is a number, boolean or null (validated as such).
_SCALAR_FIELDS = frozenset(
    {
        "frequency_penalty",
        "presence_penalty",
        "logprobs",
        "top_logprobs",
        "max_tokens",
        "n",
        "parallel_tool_calls",
        "seed",
        "store",
        "stream",
        "temperature",
        "top_p",
    }
)
# Top-level parameters whose value is an enum-like identifier.
_IDENTIFIER_FIELDS = frozenset({"service_tier", "reasoning_effort", "verbosity"})
# Content-part types whose content Pryv redacts; any other type is refused unless redaction is
# off altogether (Pryv cannot tell what an unknown part carries).
TEXT_PART_TYPES = frozenset({"text", "input_text", "refusal"})
# JSON Schema's own vocabulary: keys that are grammar, not caller-chosen names.
_SCHEMA_KEYWORDS = frozenset(
    {
        "$schema", "$id", "$ref", "$defs", "$anchor", "$comment", "definitions", "type",
        "properties", "patternProperties", "additionalProperties", "items", "prefixItems",
        "required", "enum", "const", "default", "description", "title", "examples", "format",
        "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "minProperties",
        "maxProperties", "anyOf", "oneOf", "allOf", "not", "if", "then", "else",
        "dependentRequired", "dependentSchemas", "contains", "nullable", "strict", "name",
        "parameters", "contentEncoding", "contentMediaType", "deprecated", "readOnly",
        "writeOnly", "unevaluatedProperties", "unevaluatedItems", "propertyNames",
    }
)  # fmt: skip


class FieldRefused(PryvError, ValueError):
    """A field Pryv will not forward as sent. `param` is the dotted path of the field."""

    def __init__(self, code: str, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}", code=code, param=param)


@dataclass(frozen=True)
class Redacting:
    """Which modalities the request's privacy plan redacts."""

    text: bool = True
    image: bool = True
    pdf: bool = True

    @property
    def anything(self) -> bool:
        return self.text or self.image or self.pdf


@dataclass(frozen=True)
class TextSlot:
    """`holder[key]` is a string to redact. A `name` slot (a message's `name`) must keep
    OpenAI's name alphabet after redaction."""

    holder: dict[str, Any] | list[Any]
    key: str | int
    param: str
    name: bool = False

    @property
    def text(self) -> str:
        value = self.holder[self.key]  # type: ignore[index]
        assert isinstance(value, str)
        return value

    def replace(self, text: str) -> None:
        self.holder[self.key] = text  # type: ignore[index]


@dataclass(frozen=True)
class FieldName:
    """A caller-chosen key of free-form JSON (a schema property, a metadata key)."""

    name: str
    param: str


@dataclass(frozen=True)
class ImagePart:
    part: dict[str, Any]
    url: str
    param: str


@dataclass(frozen=True)
class FilePart:
    """A PDF sent as a content part; it is replaced by a text part with the redacted text."""

    content: list[Any]
    index: int
    data: str | None  # base64 or a data: URL
    url: str | None
    filename: str | None
    param: str

    def replace(self, part: dict[str, Any]) -> None:
        self.content[self.index] = part


@dataclass
class UpstreamFields:
    texts: list[TextSlot] = field(default_factory=list)
    names: list[FieldName] = field(default_factory=list)
    images: list[ImagePart] = field(default_factory=list)
    files: list[FilePart] = field(default_factory=list)


def classify(body: dict[str, Any], redacting: Redacting) -> UpstreamFields:
    """Every redactable place in the upstream `body` (which the caller will rewrite in place),
    after refusing what cannot be forwarded. `model` is the caller's to set."""
    walker = _Walker(redacting)
    for name in body:
        if name != "model":
            walker.top_level(body, name)
    return walker.found


def sanitize_name(text: str) -> str:
    """A redacted participant name in OpenAI's name alphabet (`<PERSON_1>` -> `PERSON_1`)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")
    return (cleaned or "redacted")[:64]


class _Walker:
    def __init__(self, redacting: Redacting) -> None:
        self.redacting = redacting
        self.found = UpstreamFields()

    # --- values by kind ---------------------------------------------------------------------

    def text(self, holder: dict[str, Any] | list[Any], key: str | int, param: str) -> None:
        value = holder[key]  # type: ignore[index]
        if value is None:
            return
        if not isinstance(value, str):
            raise FieldRefused("invalid_params", param, "expected a string")
        if self.redacting.text and value:
            self.found.texts.append(TextSlot(holder, key, param))

    def identifier(self, value: Any, param: str) -> None:
        """An allowlisted identifier: checked to be one, so no prose hides in it."""
        if value is None or not self.redacting.text:
            return
        if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
            raise FieldRefused(
                "invalid_params",
                param,
                "expected an identifier (1-128 characters of A-Z a-z 0-9 _ . : -)",
            )

    def scalar(self, value: Any, param: str) -> None:
        if self.redacting.text and isinstance(value, str | dict | list):
            raise FieldRefused("invalid_params", param, "expected a number, boolean or null")

    def free_form(self, holder: dict[str, Any] | list[Any], key: str | int, param: str) -> None:
        """Arbitrary JSON: every string is text, every non-keyword key a caller-chosen name."""
        value = holder[key]  # type: ignore[index]
        if isinstance(value, str):
            self.text(holder, key, param)
        elif isinstance(value, list):
            for index in range(len(value)):
                self.free_form(value, index, f"{param}.{index}")
        elif isinstance(value, dict):
            for name in list(value):
                if self.redacting.text and name not in _SCHEMA_KEYWORDS:
                    self.found.names.append(FieldName(name, f"{param}.{name}"))
                self.free_form(value, name, f"{param}.{name}")

    def obj(self, value: Any, param: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise FieldRefused("invalid_params", param, "expected an object")
        return value

    def array(self, value: Any, param: str) -> list[Any]:
        if not isinstance(value, list):
            raise FieldRefused("invalid_params", param, "expected an array")
        return value

    def rest(self, holder: dict[str, Any], handled: frozenset[str], param: str) -> None:
        """Keys of `holder` not handled by name are free-form (their strings are text)."""
        for name in holder:
            if name not in handled:
                self.free_form(holder, name, f"{param}.{name}" if param else name)

    # --- the request ------------------------------------------------------------------------

    def top_level(self, body: dict[str, Any], name: str) -> None:
        value = body[name]
        if name in _SCALAR_FIELDS:
            self.scalar(value, name)
        elif name in _IDENTIFIER_FIELDS:
            self.identifier(value, name)
        elif name == "messages":
            for index, message in enumerate(self.array(value, name)):
                self.message(self.obj(message, f"messages.{index}"), f"messages.{index}")
        elif name == "stream_options":
            for option, flag in self.obj(value, name).items():
                self.identifier(option, f"{name}.{option}")
                self.scalar(flag, f"{name}.{option}")
        elif name == "logit_bias":
            for token, bias in self.obj(value, name).items():
                if self.redacting.text and not token.isdigit():
                    raise FieldRefused("invalid_params", f"{name}.{token}", "expected a token id")
                self.scalar(bias, f"{name}.{token}")
        elif name == "modalities":
            for index, modality in enumerate(self.array(value, name)):
                self.identifier(modality, f"{name}.{index}")
        elif name in ("tool_choice", "function_call"):
            self.choice(value, name)
        elif name == "audio":
            for option, setting in self.obj(value, name).items():
                self.identifier(setting, f"{name}.{option}")
        elif name == "tools":
            for index, tool in enumerate(self.array(value, name)):
                self.tool(self.obj(tool, f"tools.{index}"), f"tools.{index}")
        elif name == "functions":  # the legacy form of tools
            for index, function in enumerate(self.array(value, name)):
                param = f"functions.{index}"
                self.function(self.obj(function, param), param)
        elif name == "response_format":
            self.response_format(self.obj(value, name), name)
        else:  # user, metadata, stop, prediction, safety_identifier, unknown parameters
            self.free_form(body, name, name)

    def choice(self, value: Any, param: str) -> None:
        """`"auto"`, or `{"type": "function", "function": {"name": …}}` (legacy: `{"name": …}`)."""
        if isinstance(value, str):
            self.identifier(value, param)
            return
        choice = self.obj(value, param)
        self.identifier(choice.get("type"), f"{param}.type")
        self.identifier(choice.get("name"), f"{param}.name")
        for kind in ("function", "custom"):
            if kind in choice:
                chosen = self.obj(choice[kind], f"{param}.{kind}")
                self.identifier(chosen.get("name"), f"{param}.{kind}.name")
                self.rest(chosen, frozenset({"name"}), f"{param}.{kind}")
        self.rest(choice, frozenset({"type", "name", "function", "custom"}), param)

    def tool(self, tool: dict[str, Any], param: str) -> None:
        self.identifier(tool.get("type"), f"{param}.type")
        if "function" in tool:
            self.function(self.obj(tool["function"], f"{param}.function"), f"{param}.function")
        if "custom" in tool:
            custom = self.obj(tool["custom"], f"{param}.custom")
            self.identifier(custom.get("name"), f"{param}.custom.name")
            self.rest(custom, frozenset({"name"}), f"{param}.custom")
        self.rest(tool, frozenset({"type", "function", "custom"}), param)

    def function(self, function: dict[str, Any], param: str) -> None:
        self.identifier(function.get("name"), f"{param}.name")
        if "strict" in function:
            self.scalar(function["strict"], f"{param}.strict")
        self.rest(function, frozenset({"name", "strict"}), param)

    def response_format(self, value: dict[str, Any], param: str) -> None:
        self.identifier(value.get("type"), f"{param}.type")
        if "json_schema" in value:
            schema = self.obj(value["json_schema"], f"{param}.json_schema")
            self.identifier(schema.get("name"), f"{param}.json_schema.name")
            if "strict" in schema:
                self.scalar(schema["strict"], f"{param}.json_schema.strict")
            self.rest(schema, frozenset({"name", "strict"}), f"{param}.json_schema")
        self.rest(value, frozenset({"type", "json_schema"}), param)

    # --- messages ---------------------------------------------------------------------------

    def message(self, message: dict[str, Any], param: str) -> None:
        for name in message:
            at = f"{param}.{name}"
            if name == "role":
                self.identifier(message[name], at)
            elif name == "content":
                content = message[name]
                if isinstance(content, list):
                    for index in range(len(content)):
                        self.part(content, index, f"{at}.{index}")
                else:
                    self.text(message, name, at)
            elif name == "name":
                self.text(message, name, at)
                if self.found.texts and self.found.texts[-1].param == at:
                    self.found.texts[-1] = TextSlot(message, name, at, name=True)
            elif name == "tool_call_id":
                self.identifier(message[name], at)
            elif name == "tool_calls":
                for index, call in enumerate(self.array(message[name], at)):
                    self.tool_call(self.obj(call, f"{at}.{index}"), f"{at}.{index}")
            elif name == "function_call":
                self.call_body(self.obj(message[name], at), "arguments", at)
            elif name == "audio":
                audio = self.obj(message[name], at)
                self.identifier(audio.get("id"), f"{at}.id")
                self.rest(audio, frozenset({"id"}), at)
            else:  # refusal, reasoning_content, and whatever else: text
                self.free_form(message, name, at)

    def tool_call(self, call: dict[str, Any], param: str) -> None:
        self.identifier(call.get("id"), f"{param}.id")
        self.identifier(call.get("type"), f"{param}.type")
        if "function" in call:
            self.call_body(self.obj(call["function"], f"{param}.function"), "arguments",
                           f"{param}.function")  # fmt: skip
        if "custom" in call:
            self.call_body(self.obj(call["custom"], f"{param}.custom"), "input", f"{param}.custom")
        self.rest(call, frozenset({"id", "type", "function", "custom"}), param)

    def call_body(self, body: dict[str, Any], argument: str, param: str) -> None:
        self.identifier(body.get("name"), f"{param}.name")
        if argument in body:
            self.text(body, argument, f"{param}.{argument}")
        self.rest(body, frozenset({"name", argument}), param)

    def part(self, content: list[Any], index: int, param: str) -> None:
        part = self.obj(content[index], param)
        kind = part.get("type")
        if kind in TEXT_PART_TYPES:
            text_key = "refusal" if kind == "refusal" else "text"
            self.text(part, text_key, f"{param}.{text_key}")
            self.rest(part, frozenset({"type", text_key}), param)
        elif kind == "image_url":
            self.image_part(part, param)
        elif kind in ("file", "input_file"):
            self.file_part(content, index, part, param)
        elif self.redacting.anything:
            raise FieldRefused(
                "unsupported_content_part",
                f"{param}.type",
                f"content part type {kind!r} cannot be redacted; Pryv forwards text, "
                "image_url and PDF file parts (or turn redaction off for this request)",
            )

    def image_part(self, part: dict[str, Any], param: str) -> None:
        if not self.redacting.image:
            return
        image = part.get("image_url")
        if isinstance(image, str):  # a common shorthand; normalized to OpenAI's object form
            image = part["image_url"] = {"url": image}
        image = self.obj(image, f"{param}.image_url")
        url = image.get("url")
        if not isinstance(url, str):
            raise FieldRefused("invalid_params", f"{param}.image_url.url", "expected a string")
        self.identifier(image.get("detail"), f"{param}.image_url.detail")
        unknown = set(image) - {"url", "detail"}
        if unknown:
            raise FieldRefused(
                "invalid_params", f"{param}.image_url.{sorted(unknown)[0]}", "unknown field"
            )
        self.found.images.append(ImagePart(part, url, param))
        self.rest(part, frozenset({"type", "image_url"}), param)

    def file_part(self, content: list[Any], index: int, part: dict[str, Any], param: str) -> None:
        if not self.redacting.pdf:
            return
        # OpenAI's chat form nests the file ({"type": "file", "file": {...}}); the Responses
        # form (`input_file`) has the same fields on the part itself.
        if part.get("type") == "file":
            file = self.obj(part.get("file"), f"{param}.file")
            at = f"{param}.file"
            self.rest(part, frozenset({"type", "file"}), param)
        else:
            file, at = part, param
        if file.get("file_id") is not None:
            raise FieldRefused(
                "unsupported_content_part",
                f"{at}.file_id",
                "a file stored upstream cannot be redacted; send its content as file_data "
                "(or set skip_pii_redaction: {pdf: true})",
            )
        data, url, filename = file.get("file_data"), file.get("file_url"), file.get("filename")
        for name, value in (("file_data", data), ("file_url", url), ("filename", filename)):
            if value is not None and not isinstance(value, str):
                raise FieldRefused("invalid_params", f"{at}.{name}", "expected a string")
        if (data is None) == (url is None):
            raise FieldRefused(
                "invalid_params", at, "give exactly one of file_data or file_url (a PDF)"
            )
        unknown = set(file) - {"type", "file_data", "file_url", "filename", "file_id"}
        if unknown:
            raise FieldRefused("invalid_params", f"{at}.{sorted(unknown)[0]}", "unknown field")
        self.found.files.append(FilePart(content, index, data, url, filename, param))


def iter_strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included (for size estimates)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from iter_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from iter_strings(item)
