"""A start-up setting that cannot work stops `oncall` at once: one `error:` sentence on stderr naming the
setting, a non-zero exit, no traceback, nothing listening, nothing written where it should not be."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import DEFAULT_DATA_DIR, default_db_url, load_settings, sqlite_path
from tests.conftest import free_port

pytestmark = pytest.mark.e2e  # `oncall` as a subprocess, each start-up refused

REPO = Path(__file__).resolve().parents[2]


def oncall(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ONCALL_", "ML_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        env={**environment, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def refused(result: subprocess.CompletedProcess[str], *names: str) -> str:
    """The one line the command printed, once it is checked to be a refusal naming ``names``."""
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and "listening" not in result.stdout
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("command", [["serve"], ["predict", "disk full"], ["models", "list"]])
def test_a_bad_log_level_is_one_sentence_for_every_command(command: list[str], tmp_path: Path) -> None:
    refused(oncall(*command, cwd=tmp_path, ONCALL_LOG_LEVEL="LOUD"), "ONCALL_LOG_LEVEL", "'LOUD'")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", [["serve"], ["predict", "disk full"], ["doctor"], ["models", "list"]])
def test_an_empty_model_path_is_refused_and_nothing_is_trained_here_instead(
    command: list[str], tmp_path: Path
) -> None:
    refused(oncall(*command, "--model-path", "", cwd=tmp_path), "--model-path")
    assert not list(tmp_path.iterdir()), "something was written into the current directory"


def test_a_model_path_that_cannot_be_written_stops_serve_and_predict(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for command in (["serve", "--port", str(free_port())], ["predict", "disk full"]):
        result = oncall(*command, "--model-path", str(blocker / "models"), cwd=tmp_path)
        line = refused(result, "ML_MODEL_PATH")
        assert "cannot write" in line and "trained" in line
    line = refused(oncall("serve", "--model-path", str(blocker), cwd=tmp_path), "ML_MODEL_PATH")
    assert "not a directory" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_store_or_data_directory_that_cannot_be_written_stops_serve(
    registry_two_versions, tmp_path: Path
) -> None:
    models = str(registry_two_versions[0])
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    port = ["--port", str(free_port()), "--model-path", models]
    cases = {
        "ONCALL_DB_URL": {"ONCALL_DB_URL": f"sqlite:///{blocker}/oncall.db"},
        "ONCALL_DATA_DIR": {"ONCALL_DATA_DIR": str(blocker / "data")},
    }
    for name, env in cases.items():
        line = refused(oncall("serve", *port, cwd=tmp_path, **env), name)
        assert "cannot write" in line
    refused(oncall("serve", *port, cwd=tmp_path, ONCALL_DB_URL="sqlite:///"), "ONCALL_DB_URL")
    refused(oncall("serve", *port, cwd=tmp_path, ONCALL_DB_URL="mysql://db/oncall"), "ONCALL_DB_URL")


def test_the_default_store_lives_in_the_data_directory_git_ignores() -> None:
    assert sqlite_path(load_settings({}).db_url) == DEFAULT_DATA_DIR / "oncall.db"
    elsewhere = {"ONCALL_DATA_DIR": "/var/lib/oncall"}
    assert (
        load_settings(elsewhere).db_url == default_db_url(elsewhere) == "sqlite:////var/lib/oncall/oncall.db"
    )
    paths = ["data/oncall.db", "data/oncall.db-wal", "data/outbox.journal"]
    ignored = subprocess.run(["git", "check-ignore", *paths], cwd=REPO, capture_output=True, text=True)
    assert ignored.stdout.split() == paths, "data/ is not ignored by git"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ONCALL_LOG_FORMAT", "xml"),
        ("ML_AUTO_TRAIN", "maybe"),
        ("ML_TRUST_PICKLES", "please"),
        ("ML_FOLLOW_SECONDS", "0"),
        ("ML_FOLLOW_SECONDS", "soon"),
        ("ML_KEEP_VERSIONS", "0"),
        ("ML_KEEP_VERSIONS", "2.5"),
        ("ONCALL_UNCERTAIN_BELOW", "1.5"),
        ("ONCALL_UNCERTAIN_BELOW", "nan"),
        ("ONCALL_MODEL_KEY", "short"),
        ("ONCALL_NATIVE", "fast"),
    ],
)
def test_every_setting_the_program_reads_is_checked_before_anything_runs(
    name: str, value: str, tmp_path: Path
) -> None:
    """The ML core's settings too, read by engine/ wherever it is used: `oncall` checks them all first."""
    for command in (["serve", "--port", str(free_port())], ["models", "list"]):
        line = refused(oncall(*command, cwd=tmp_path, **{name: value}), name)
        assert value in line or name == "ONCALL_MODEL_KEY", line  # the key itself is never echoed
    assert not list(tmp_path.iterdir())


def test_a_key_file_others_can_read_stops_every_command(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k" * 32)
    key.chmod(0o644)
    line = refused(oncall("doctor", cwd=tmp_path, ONCALL_MODEL_KEY_FILE=str(key)), "ONCALL_MODEL_KEY_FILE")
    assert "chmod 600" in line
    assert "k" * 32 not in line


def test_checked_values_reach_the_engine_objects_the_bot_builds(tmp_path: Path) -> None:
    """bot/settings.py reads them once; the runner passes them to MLService, the engine and the follower."""
    from bot.runner import OncallBot
    from engine.settings import DEFAULT_UNCERTAIN_BELOW

    env = {
        "ML_AUTO_TRAIN": "off",
        "ML_KEEP_VERSIONS": "7",
        "ML_FOLLOW_SECONDS": "0.25",
        "ONCALL_UNCERTAIN_BELOW": "0.7",
        "ML_TRUST_PICKLES": "yes",
        "ONCALL_LOG_FORMAT": "JSON",
    }
    settings = load_settings(env, model_path=tmp_path / "models")
    runtime, engine = settings.runtime, settings.runtime.engine
    assert (engine.auto_train, engine.keep_versions, engine.follow_seconds) == (False, 7, 0.25)
    assert (engine.uncertain_below, engine.trust_pickles, runtime.log_format) == (0.7, True, "json")
    bot = OncallBot(settings)
    assert bot.ml.auto_train is False and bot.ml.registry.keep == 7
    defaults = load_settings({}).runtime
    assert defaults.engine.auto_train and defaults.engine.keep_versions == 5
    assert defaults.engine.follow_seconds == 1.0
    assert defaults.engine.uncertain_below == DEFAULT_UNCERTAIN_BELOW
    assert defaults.log_format == "text"
