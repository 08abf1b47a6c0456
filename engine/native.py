"""Which implementation of the hot path serves: the C extension, or the same code in NumPy.

``engine/_native.c`` (built by the install) is an accelerator, not a requirement: ``engine/_native_py.py``
is the same featurizer and scorer in Python and NumPy, with the same results, and serves and trains
whenever the extension cannot be imported (an install without a C compiler) or ``ONCALL_NATIVE=0`` asks
for it. Its first use logs one WARNING saying so. ``ONCALL_NATIVE=1`` requires the extension (an
ImportError without it); unset, the extension serves when it is there; any other value is ignored with a
warning here (``bot/settings.py`` refuses it before the bot starts).
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

from engine import _native_py

ENV = "ONCALL_NATIVE"


def select(setting: str | None) -> tuple[ModuleType, str | None]:
    """(the implementation, why the slow one if it is the slow one) for a value of ONCALL_NATIVE."""
    value = (setting or "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"{ENV} must be 0 (the NumPy implementation) or 1 (the C extension), not {value!r}")
    if value == "0":
        return _native_py, f"{ENV}=0"
    try:
        from engine import _native
    except ImportError as exc:
        if value == "1":
            raise
        return _native_py, f"engine._native cannot be imported: {exc}"
    return _native, None


try:
    impl, reason = select(os.environ.get(ENV))
except ValueError as exc:  # imported by the CLI before it checks its settings: it then says so and exits
    logging.getLogger("engine.native").warning("%s: ignored", exc)
    impl, reason = select(None)
NATIVE = reason is None  # the C extension serves
if reason is not None:
    _native_py.slow_path(reason)
