"""The two implementations of the hot path, for tests that run against both: the C extension
(``engine._native``) and the same code in NumPy (``engine._native_py``), whichever ONCALL_NATIVE says."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest

import engine.features
import engine.scorer
from engine import _native_py

try:
    from engine import _native as C
except ImportError:  # an install without a compiler: the C half skips, except in CI
    C = None


class _NotBuilt:
    """Stands for the extension in CI when it is not built: any use fails, saying why."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError("engine._native is not built: CI tests the C extension as well as NumPy")


IMPLS = [
    pytest.param(
        C if C is not None else _NotBuilt(),
        id="c",
        marks=pytest.mark.skipif(
            C is None and not os.environ.get("CI"), reason="engine._native is not built (no C compiler)"
        ),
    ),
    pytest.param(_native_py, id="numpy"),
]


@contextmanager
def implementation(impl: ModuleType) -> Iterator[ModuleType]:
    """engine.features and engine.scorer served by ``impl`` while the block runs: the feature pipeline's
    analyzers and magnitudes, and every featurizer compiled meanwhile (a compiled one keeps its own)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.features, "_native", impl)
        patch.setattr(engine.scorer, "_native", impl)
        yield impl
