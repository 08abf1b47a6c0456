"""The ML core's settings, read and checked in one place. Used as a library, ``MLService()`` and
``AIDecisionEngine()`` read them here; the bot composes them into its own settings (bot/settings.py) and
passes the values in. Every problem is one sentence naming the variable (``SettingError``)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_PATH = Path("models")
DEFAULT_UNCERTAIN_BELOW = 0.5
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class SettingError(ValueError):
    """A variable is invalid; the message is one sentence that names it."""


@dataclass(frozen=True, slots=True)
class EngineSettings:
    model_path: Path = DEFAULT_MODEL_PATH  # ML_MODEL_PATH
    auto_train: bool = True  # ML_AUTO_TRAIN: train the built-in model into an empty model directory
    follow_seconds: float = 1.0  # ML_FOLLOW_SECONDS: how often the active pointer is checked
    keep_versions: int = 5  # ML_KEEP_VERSIONS: the active one and its rollback target are always kept
    uncertain_below: float = DEFAULT_UNCERTAIN_BELOW  # ONCALL_UNCERTAIN_BELOW: a field under it is uncertain
    trust_pickles: bool = False  # ML_TRUST_PICKLES: as --trust-pickles on `oncall models import | convert`

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EngineSettings:
        """From ``env`` (default os.environ); an empty value is an unset one."""
        get = getter(os.environ if env is None else env)
        follow = number(get, "ML_FOLLOW_SECONDS", 1.0)
        if follow <= 0:
            raise SettingError(f"ML_FOLLOW_SECONDS must be a number of seconds above 0, got {follow:g}.")
        uncertain = number(get, "ONCALL_UNCERTAIN_BELOW", DEFAULT_UNCERTAIN_BELOW)
        if not 0 <= uncertain <= 1:
            raise SettingError(f"ONCALL_UNCERTAIN_BELOW must be a confidence from 0 to 1, got {uncertain:g}.")
        keep = get("ML_KEEP_VERSIONS") or "5"
        if not keep.isdigit() or int(keep) < 1:
            raise SettingError(
                f"ML_KEEP_VERSIONS must be a whole number of versions, 1 or more, got {keep!r}."
            )
        return cls(
            model_path=Path(get("ML_MODEL_PATH") or DEFAULT_MODEL_PATH),
            auto_train=flag(get, "ML_AUTO_TRAIN", True),
            follow_seconds=follow,
            keep_versions=int(keep),
            uncertain_below=uncertain,
            trust_pickles=flag(get, "ML_TRUST_PICKLES", False),
        )


def getter(env: Mapping[str, str]) -> Callable[[str], str | None]:
    """``get(name)``: the variable's value, stripped; None when it is unset or empty."""

    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value and value.strip() else None

    return get


def flag(get: Callable[[str], str | None], name: str, default: bool) -> bool:
    raw = get(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {raw!r}.")


def number(get: Callable[[str], str | None], name: str, default: float) -> float:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise SettingError(f"{name} must be a number, got {raw!r}.")
    return value
