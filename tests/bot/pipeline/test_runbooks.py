"""Runbook links (bot/pipeline/runbooks.py): the file is checked when it is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.pipeline.runbooks import load_runbooks
from bot.settings import ConfigError


def test_runbooks_are_checked(tmp_path: Path) -> None:
    good = tmp_path / "runbooks.yml"
    good.write_text(
        "categories:\n  database: https://wiki/db\nactions:\n  rollback_deploy: https://wiki/rb\n"
    )
    assert load_runbooks(good)["actions"]["rollback_deploy"] == "https://wiki/rb"
    bad = tmp_path / "bad.yml"
    bad.write_text("actions:\n  reboot_the_world: https://wiki/x\n")
    with pytest.raises(ConfigError, match="unknown action 'reboot_the_world'"):
        load_runbooks(bad)
    bad.write_text("categories:\n  database: javascript:alert(1)\n")
    with pytest.raises(ConfigError, match="http"):
        load_runbooks(bad)
