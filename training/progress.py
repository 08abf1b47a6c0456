"""Progress for long steps: a bar on a terminal, plain log lines when output goes to a file or CI."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("oncall.training")


class Progress:
    """Named steps of a known count; ``enabled=False`` keeps library use and tests quiet."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled
        self._bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="step", file=sys.stderr, leave=False)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        if self._bar is not None:
            self._bar.set_description(name)
        yield
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif self.enabled:
            log.info("[%d/%d] %s (%.1fs)", self.done, self.total, name, time.perf_counter() - started)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
