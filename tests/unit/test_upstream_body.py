"""The upstream-body rule (domain/upstream_body.py): every forwarded string is found for
redaction, refused, or an allowlisted identifier."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from domain.upstream_body import FieldRefused, Redacting, classify, sanitize_name

SECRET = "jane.doe@example.com"


def body_with_everything() -> dict[str, Any]:
    return {
        "model": "m",
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "tool_choice": {"type": "function", "function": {"name": "lookup_user"}},
        "messages": [
            {"role": "system", "content": f"system {SECRET}"},
            {"role": "user", "name": SECRET, "content": [{"type": "text", "text": SECRET}]},
            {
                "role": "assistant",
                "content": None,
                "refusal": SECRET,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup_user", "arguments": json.dumps({"e": SECRET})},
                    }
                ],
                "function_call": {"name": "lookup_user", "arguments": SECRET},
            },
            {"role": "tool", "tool_call_id": "call_1", "content": SECRET},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup_user",
                    "description": f"Looks up {SECRET}",
                    "strict": True,
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "email": {
                                "type": "string",
                                "description": SECRET,
                                "default": SECRET,
                                "enum": [SECRET],
                            }
                        },
                        "required": ["email"],
                    },
                },
            }
        ],
        "functions": [{"name": "legacy", "description": SECRET, "parameters": {}}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "description": SECRET, "schema": {"default": SECRET}},
        },
        "prediction": {"type": "content", "content": SECRET},
        "user": SECRET,
        "metadata": {"customer": SECRET},
        "stop": [SECRET],
        "some_vendor_option": {"note": SECRET},
    }


def test_every_string_that_carries_text_is_a_slot_and_nothing_else_is() -> None:
    body = body_with_everything()
    found = classify(body, Redacting())
    for slot in found.texts:
        slot.replace(slot.text.replace(SECRET, "<EMAIL>"))
    sent = json.dumps(body)
    assert SECRET not in sent  # every occurrence was a slot
    # identifiers and settings are left alone (not slots)
    params = {slot.param for slot in found.texts}
    assert "messages.3.tool_call_id" not in params
    assert "tools.0.function.name" not in params and "tool_choice.function.name" not in params
    assert "stream_options.include_usage" not in params and "temperature" not in params
    [name] = [s for s in found.texts if s.param == "messages.1.name"]
    assert name.name  # a participant name: redacted, then kept in OpenAI's name alphabet


def test_caller_chosen_keys_are_reported_schema_keywords_are_not() -> None:
    body = body_with_everything()
    names = {f.name for f in classify(body, Redacting()).names}
    assert {"email", "customer", "note"} <= names
    assert not names & {"type", "properties", "description", "default", "required", "enum"}


@pytest.mark.parametrize(
    ("part", "code"),
    [
        ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "unsupported"),
        ({"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AA"}}, "unsupported"),
        ({"type": "file", "file": {"file_id": "file-abc"}}, "unsupported"),
        ({"type": "image_url", "image_url": 5}, "invalid_params"),
        ({"type": "image_url", "image_url": {"url": 5}}, "invalid_params"),
        ({"type": "text", "text": 5}, "invalid_params"),
    ],
)
def test_what_cannot_be_redacted_is_refused_naming_the_field(
    part: dict[str, Any], code: str
) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": [part]}]}
    with pytest.raises(FieldRefused) as refused:
        classify(body, Redacting())
    assert refused.value.code.startswith(code)
    assert refused.value.param.startswith("messages.0.content.0")


def test_unknown_parts_pass_only_when_nothing_is_redacted() -> None:
    part = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    body = {"model": "m", "messages": [{"role": "user", "content": [part]}]}
    found = classify(copy.deepcopy(body), Redacting(text=False, image=False, pdf=False))
    assert not found.texts and not found.files and not found.images


def test_identifier_fields_refuse_prose() -> None:
    with pytest.raises(FieldRefused) as refused:
        classify({"model": "m", "messages": [], "tool_choice": f"call {SECRET}"}, Redacting())
    assert refused.value.param == "tool_choice"
    with pytest.raises(FieldRefused):
        classify({"model": "m", "messages": [], "temperature": SECRET}, Redacting())


def test_pdf_file_parts_in_both_shapes_are_routed_to_the_pdf_path() -> None:
    body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "file", "file": {"file_data": "data:x", "filename": "a.pdf"}},
                    {"type": "input_file", "file_url": "https://example.com/a.pdf"},
                ],
            }
        ],
    }
    files = classify(body, Redacting()).files
    assert [(f.data, f.url, f.filename) for f in files] == [
        ("data:x", None, "a.pdf"),
        (None, "https://example.com/a.pdf", None),
    ]
    files[0].replace({"type": "text", "text": "redacted"})
    assert body["messages"][0]["content"][0] == {"type": "text", "text": "redacted"}


def test_skipping_pdf_redaction_forwards_file_parts_untouched() -> None:
    part = {"type": "file", "file": {"file_id": "file-abc"}}
    body = {"model": "m", "messages": [{"role": "user", "content": [part]}]}
    assert classify(body, Redacting(pdf=False)).files == []


def test_names_keep_openai_name_alphabet() -> None:
    assert sanitize_name("<PERSON_1>") == "PERSON_1"
    assert sanitize_name("<PERSON> <PERSON>") == "PERSON_PERSON"
    assert sanitize_name("<>") == "redacted"
