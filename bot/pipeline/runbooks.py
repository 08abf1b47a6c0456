"""Runbook links by category and action, from ONCALL_RUNBOOKS (YAML or JSON):

categories: {database: https://wiki/runbooks/db}
actions: {rollback_deploy: https://wiki/runbooks/rollback}
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from bot.settings import ConfigError
from engine.taxonomy import ACTIONS, CATEGORIES

Runbooks = dict[str, dict[str, str]]


def load_runbooks(path: Path | None) -> Runbooks:
    """The links, checked: unknown keys and non-http links are configuration mistakes, named as such."""
    if path is None:
        return {"categories": {}, "actions": {}}
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"ONCALL_RUNBOOKS ({path}) is not valid {path.suffix[1:] or 'YAML'}: {exc}."
        ) from exc
    data = data or {}
    if not isinstance(data, dict) or set(data) - {"categories", "actions"}:
        raise ConfigError(f"ONCALL_RUNBOOKS ({path}) must map 'categories' and 'actions' to links.")
    out: Runbooks = {"categories": {}, "actions": {}}
    for section, known in (("categories", CATEGORIES), ("actions", ACTIONS)):
        entries = data.get(section) or {}
        if not isinstance(entries, dict):
            raise ConfigError(f"ONCALL_RUNBOOKS ({path}): '{section}' must map names to links.")
        for name, link in entries.items():
            if name not in known:
                raise ConfigError(f"ONCALL_RUNBOOKS ({path}): unknown {section[:-1]} {name!r}.")
            if not isinstance(link, str) or not link.startswith(("https://", "http://")):
                raise ConfigError(f"ONCALL_RUNBOOKS ({path}): the link for {name!r} must be an http(s) URL.")
            out[section][name] = link
    return out
