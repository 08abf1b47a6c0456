"""The one error the Web API answers with: Slack's `{"ok": false, "error": code}` (HTTP 200)."""

from __future__ import annotations

from typing import Any


class SlackApiError(Exception):
    """A Web API method refused the call: `code` is Slack's error string, `extra` more response fields,
    `detail` a hint for a person that stays out of the response."""

    def __init__(self, code: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.extra = extra

    def to_response(self) -> dict[str, Any]:
        return {"ok": False, "error": self.code, **self.extra}
