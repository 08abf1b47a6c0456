"""Whether the models are loaded: what /readyz reports and what alerts and commands wait for."""

from __future__ import annotations

import asyncio


class Readiness:
    def __init__(self) -> None:
        self._ready = asyncio.Event()
        self.load_error: str | None = None  # why no model set could be loaded at all (start-up is retrying)
        self.load_failures = 0  # start-ups that ended with no model set at all (and were tried again)

    def is_set(self) -> bool:
        return self._ready.is_set()

    async def wait(self) -> None:
        await self._ready.wait()

    def failed(self, error: str) -> None:
        self.load_error = error
        self.load_failures += 1

    def loaded(self) -> None:
        self.load_error = None

    def set(self) -> None:
        """Ready: the models are loaded and the bot knows who it is."""
        self._ready.set()
