"""Every setting the program reads, from any module, is checked in one place (bot/settings.py: ENVIRONMENT)
and listed in one table (README's settings table); no code names a setting that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from bot.settings import ENVIRONMENT

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "engine", "training")
# A setting's name as code reads it: os.environ.get("X"), env.get("X"), get("X"), X_VAR = "X".
READ = re.compile(r"""["']((?:ONCALL|ML|SLACK)_[A-Z][A-Z0-9_]*)["']""")
# Any mention of one, in code, messages and comments alike.
NAMED = re.compile(r"\b((?:ONCALL|ML)_[A-Z][A-Z0-9_]*[A-Z0-9])\b")
TABLE_ROW = re.compile(r"^\| (`[A-Z][A-Z0-9_]*`.*?) \|", re.M)


def sources() -> dict[Path, str]:
    return {
        path: path.read_text(encoding="utf-8")
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
    }


def readme_table() -> set[str]:
    """The names in README's settings table: its rows' first cells."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("| Setting | Meaning (default) |")
    table = text[start : text.index("\n\n", start)]
    names: set[str] = set()
    for cell in TABLE_ROW.findall(table):
        names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", cell))
    return names


def test_every_variable_read_anywhere_is_in_the_one_list_and_the_one_table() -> None:
    read = {name: path for path, text in sources().items() for name in READ.findall(text)}
    unknown = {name: str(path.relative_to(REPO)) for name, path in read.items() if name not in ENVIRONMENT}
    assert not unknown, f"read but not checked in bot/settings.py (ENVIRONMENT): {unknown}"
    table = readme_table()
    assert set(ENVIRONMENT) <= table, f"not in README's settings table: {set(ENVIRONMENT) - table}"
    assert table <= set(ENVIRONMENT), f"in README's table but read nowhere: {table - set(ENVIRONMENT)}"


def test_no_code_names_a_setting_that_does_not_exist() -> None:
    """A log line once told operators about ONCALL_HOST, which nothing reads (the address is --host)."""
    named = {
        (name, str(path.relative_to(REPO)))
        for path, text in sources().items()
        for name in NAMED.findall(text)
        if name not in ENVIRONMENT
    }
    assert not named, f"names no setting the program reads: {sorted(named)}"
