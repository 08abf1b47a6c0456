"""Live updates for the playground: which channels changed, pushed to each open page as server-sent events.

The workspace calls its watchers from whatever thread changed it; changes are marked on the event loop
and coalesced per page, so a storm of alerts costs a page one refetch per wake-up, not one per message."""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from bot.local.emulator.state import Workspace

HEARTBEAT = 15.0  # seconds: a comment line keeps proxies and the browser from closing an idle stream


class _Page:
    def __init__(self) -> None:
        self.dirty: set[str] = set()
        self.wake = asyncio.Event()


class LiveChanges:
    def __init__(self, workspace: Workspace, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pages: set[_Page] = set()
        self._closing = False
        workspace.watchers.append(self._changed)

    def _changed(self, channel: str) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is watching any more
            self._loop.call_soon_threadsafe(self._mark, channel)

    def _mark(self, channel: str) -> None:
        for page in self._pages:
            page.dirty.add(channel)
            page.wake.set()

    async def close(self) -> None:
        """Ends every stream (on shutdown: the server would otherwise wait for them)."""
        self._closing = True
        for page in self._pages:
            page.wake.set()

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """GET …/events: `event: change` with `{"channels": [ids]}` whenever something in them changed."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        page = _Page()
        self._pages.add(page)
        try:
            await response.write(b"retry: 1000\nevent: hello\ndata: {}\n\n")
            while not self._closing:
                try:
                    await asyncio.wait_for(page.wake.wait(), HEARTBEAT)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                page.wake.clear()
                if self._closing:
                    break
                channels, page.dirty = sorted(page.dirty), set()
                await response.write(
                    f"event: change\ndata: {json.dumps({'channels': channels})}\n\n".encode()
                )
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the page went away
        finally:
            self._pages.discard(page)
        return response
