"""Failures injected into the Web API for tests: rate limits, server errors, slow answers, resets.

Each rule answers the next `times` calls of its method (or of every method, "*") and is then used up.
A rule with ``after`` lets the call take effect first and only then fails it: the client sees an error
for a message that was posted, the case that tempts a client into posting it twice.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import threading
from dataclasses import dataclass

from aiohttp import web

_METHOD = re.compile(r"^(\*|[a-z]+(\.[a-zA-Z]+)+)$")
# Slack's error strings for the server-side statuses a client may see.
_STATUS_ERRORS = {
    429: "ratelimited",
    500: "internal_error",
    503: "service_unavailable",
    504: "request_timeout",
}


@dataclass
class Fault:
    method: str
    remaining: int
    status: int | None = None  # None: answer normally (after the delay)
    retry_after: int | None = None
    delay: float = 0.0
    reset: bool = False
    after: bool = False  # the call takes effect, then the client sees the failure


class Faults:
    """The rules in force; the first rule matching a call's method applies, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self.injected: list[tuple[str, str]] = []  # (method, what was done), in order

    def fail(
        self,
        method: str,
        status: int = 429,
        *,
        retry_after: int = 1,
        times: int = 1,
        delay: float = 0.0,
        after: bool = False,
    ) -> None:
        """The next `times` calls of `method` answer `status` (429 with Retry-After, or a 5xx); with
        `after` (5xx only: a 429 means Slack did nothing), once the call has taken effect."""
        if status != 429 and not 500 <= status <= 599:
            raise ValueError(f"status must be 429 or 5xx, got {status}")
        if retry_after < 0:
            raise ValueError(f"retry_after must not be negative, got {retry_after}")
        if after and status == 429:
            raise ValueError("a 429 means the call was not carried out: it cannot come after")
        self._add(
            Fault(
                method,
                times,
                status=status,
                retry_after=retry_after if status == 429 else None,
                delay=delay,
                after=after,
            )
        )

    def slow(self, method: str, delay: float, *, times: int = 1) -> None:
        """The next `times` calls of `method` answer normally, `delay` seconds late."""
        self._add(Fault(method, times, delay=delay))

    def reset(self, method: str, *, times: int = 1, after: bool = False) -> None:
        """The next `times` calls of `method` get their connection reset, with no answer (with `after`:
        once the call has taken effect)."""
        self._add(Fault(method, times, reset=True, after=after))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def _add(self, fault: Fault) -> None:
        if not _METHOD.match(fault.method):
            raise ValueError(
                f"method must be a Web API method such as 'chat.postMessage' or '*', got {fault.method!r}"
            )
        if fault.remaining < 1:
            raise ValueError(f"times must be at least 1, got {fault.remaining}")
        if fault.delay < 0:
            raise ValueError(f"delay must not be negative, got {fault.delay}")
        with self._lock:
            self._rules.append(fault)

    def take(self, method: str) -> Fault | None:
        """The rule that applies to this call (used up by one), or None."""
        with self._lock:
            for fault in self._rules:
                if fault.method in (method, "*"):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._rules.remove(fault)
                    return fault
            return None

    async def apply(self, fault: Fault, method: str, request: web.Request) -> web.Response | None:
        """The faulty answer for this call, or None to answer it normally."""
        what = "reset" if fault.reset else str(fault.status) if fault.status else f"delay {fault.delay}"
        self.injected.append((method, what + (" after" if fault.after else "")))
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.reset:
            _reset_connection(request)
            raise asyncio.CancelledError  # nothing more is written on the dead connection
        if fault.status is None:
            return None
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        error = _STATUS_ERRORS.get(fault.status, "fatal_error")
        return web.json_response({"ok": False, "error": error}, status=fault.status, headers=headers)


def _reset_connection(request: web.Request) -> None:
    """Closes the socket with SO_LINGER 0, so the client sees a TCP reset rather than a clean close."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
