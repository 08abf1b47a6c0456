"""Slack's checks on message content, with its error codes: what a message may carry before it is stored."""

from __future__ import annotations

import json
from typing import Any

from bot.local.emulator.errors import SlackApiError

MAX_TEXT = 40_000
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3_000
MAX_HEADER_TEXT = 150
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2_000


def json_list(value: Any, error: str) -> list[dict[str, Any]] | None:
    """A list of objects given as JSON (a JSON body) or as a JSON string (a form); `error` if neither."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise SlackApiError(error) from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise SlackApiError(error)
    return value


def _block_problems(blocks: list[dict[str, Any]]) -> list[str]:
    if len(blocks) > MAX_BLOCKS:
        return [f"must be less than {MAX_BLOCKS + 1} items [json-pointer:/blocks]"]
    problems = []
    for i, block in enumerate(blocks):
        kind = block.get("type")
        text = block.get("text")
        text_value = text.get("text") if isinstance(text, dict) else None
        if not isinstance(kind, str):
            problems.append(f"missing required field: type [json-pointer:/blocks/{i}]")
        elif kind == "section":
            fields = block.get("fields") or []
            if text_value is None and not fields:
                problems.append(f"must provide text or fields [json-pointer:/blocks/{i}]")
            if isinstance(text_value, str) and len(text_value) > MAX_SECTION_TEXT:
                pointer = f"/blocks/{i}/text/text"
                problems.append(
                    f"must be less than {MAX_SECTION_TEXT + 1} characters [json-pointer:{pointer}]"
                )
            if len(fields) > MAX_SECTION_FIELDS:
                problems.append(
                    f"must be less than {MAX_SECTION_FIELDS + 1} items [json-pointer:/blocks/{i}/fields]"
                )
            for j, f in enumerate(fields):
                if isinstance(f, dict) and len(str(f.get("text", ""))) > MAX_FIELD_TEXT:
                    problems.append(
                        f"must be less than {MAX_FIELD_TEXT + 1} characters "
                        f"[json-pointer:/blocks/{i}/fields/{j}/text]"
                    )
        elif kind == "header":
            if not isinstance(text, dict) or text.get("type") != "plain_text":
                problems.append(f"must be a plain_text object [json-pointer:/blocks/{i}/text]")
            elif len(str(text_value)) > MAX_HEADER_TEXT:
                problems.append(
                    f"must be less than {MAX_HEADER_TEXT + 1} characters [json-pointer:/blocks/{i}/text/text]"
                )
    return problems


def check_content(text: Any, blocks: Any, attachments: Any) -> dict[str, Any]:
    """The message's content fields, parsed and checked; raises Slack's error for the first problem."""
    if text is not None and not isinstance(text, str):
        text = str(text)
    parsed_blocks = json_list(blocks, "invalid_blocks_format")
    parsed_attachments = json_list(attachments, "invalid_attachments")
    if not text and not parsed_blocks and not parsed_attachments:
        raise SlackApiError("no_text")
    if text and len(text) > MAX_TEXT:
        raise SlackApiError("msg_too_long")
    if parsed_blocks:
        problems = _block_problems(parsed_blocks)
        if problems:
            raise SlackApiError(
                "invalid_blocks",
                errors=problems,
                response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
            )
    fields: dict[str, Any] = {"text": text or ""}
    if parsed_blocks:
        fields["blocks"] = parsed_blocks
    if parsed_attachments:
        fields["attachments"] = [{"id": i + 1, **a} for i, a in enumerate(parsed_attachments)]
    return fields
