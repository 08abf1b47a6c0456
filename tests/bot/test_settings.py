"""Every setting the program reads, from any module, is checked in one place (bot/settings.py: ENVIRONMENT)
and listed in one table (docs/configuration.md's); no code names a setting that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.settings import ENVIRONMENT, ConfigError, load_settings, watches

REPO = Path(__file__).resolve().parents[2]
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


def configuration_table() -> set[str]:
    """The names in docs/configuration.md's settings table: its rows' first cells."""
    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
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
    table = configuration_table()
    assert set(ENVIRONMENT) <= table, f"not in docs/configuration.md's table: {set(ENVIRONMENT) - table}"
    assert table <= set(ENVIRONMENT), f"in that table but read nowhere: {table - set(ENVIRONMENT)}"


def test_no_code_names_a_setting_that_does_not_exist() -> None:
    """A log line once told operators about ONCALL_HOST, which nothing reads (the address is --host)."""
    named = {
        (name, str(path.relative_to(REPO)))
        for path, text in sources().items()
        for name in NAMED.findall(text)
        if name not in ENVIRONMENT
    }
    assert not named, f"names no setting the program reads: {sorted(named)}"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_APP_TOKEN": "xapp-1"}, "SLACK_BOT_TOKEN"),
        ({"ONCALL_PORT": "eighty"}, "ONCALL_PORT"),
        ({"ONCALL_PORT": "70000"}, "ONCALL_PORT"),
        ({"ONCALL_ADMINS": "alice"}, "ONCALL_ADMINS"),
        ({"ONCALL_CHANNELS": "Bad Channel!"}, "ONCALL_CHANNELS"),
        ({"ONCALL_DB_URL": "mysql://x"}, "ONCALL_DB_URL"),
        ({"ONCALL_DB_URL": "sqlite:///"}, "ONCALL_DB_URL"),
        ({"ONCALL_DB_URL": "postgresql://oncall:pw@db:port/oncall"}, "ONCALL_DB_URL"),
        ({"ONCALL_DB_URL": "postgresql://oncall:pw@db:5432/"}, "ONCALL_DB_URL"),
        ({"SLACK_API_URL": "not a url"}, "SLACK_API_URL"),
        ({"ONCALL_RUNBOOKS": "/nonexistent/runbooks.yml"}, "ONCALL_RUNBOOKS"),
        ({"ONCALL_METRICS_ADDR": "9100"}, "ONCALL_METRICS_ADDR"),
        ({"ONCALL_METRICS_ADDR": "0.0.0.0:metrics"}, "ONCALL_METRICS_ADDR"),
        ({"ONCALL_METRICS_ADDR": "127.0.0.1:70000"}, "ONCALL_METRICS_ADDR"),
        ({"ONCALL_GROUP_WINDOW": "ten minutes"}, "ONCALL_GROUP_WINDOW"),
        ({"ONCALL_GROUP_QUIET": "-1"}, "ONCALL_GROUP_QUIET"),
        ({"ONCALL_GROUP_QUIET": "nan"}, "ONCALL_GROUP_QUIET"),
        ({"ONCALL_GROUP_SIMILARITY": "inf"}, "ONCALL_GROUP_SIMILARITY"),
    ],
)
def test_a_bad_setting_is_one_sentence_naming_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    message = str(err.value)
    assert named in message and message.endswith(".") and "\n" not in message


def test_settings_modes_and_watched_channels() -> None:
    local = load_settings({})
    assert local.local and not local.socket_mode and local.port == 3000
    http = load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "ONCALL_PORT": "8080"})
    assert not http.local and http.port == 8080
    assert load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}).socket_mode
    assert watches(local, "C1", "inc-2041-checkout") and watches(local, "C1", "alerts-prod")
    assert not watches(local, "C1", "general") and not watches(local, "C1", None)
    chosen = load_settings({"ONCALL_CHANNELS": "C0123ABC, #war-room"})
    assert watches(chosen, "C0123ABC", None) and watches(chosen, "C9", "war-room")
    assert not watches(chosen, "C9", "incidents")
    assert load_settings({"ONCALL_METRICS_ADDR": "0.0.0.0:9100"}).metrics_addr == ("0.0.0.0", 9100)
    assert load_settings({"ONCALL_METRICS_ADDR": "[::1]:9100"}).metrics_addr == ("::1", 9100)
    assert local.metrics_addr is None
    postgres = "postgresql://oncall:secret@db.internal:5432/oncall"
    assert load_settings({"ONCALL_DB_URL": postgres}).db_url == postgres


def test_a_bad_store_url_does_not_show_its_password() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"ONCALL_DB_URL": "postgresql://oncall:hunter2@db:port/oncall"})
    assert "hunter2" not in str(err.value) and "oncall:***@db" in str(err.value)
