"""The `oncall` command's conventions: `--version`; text for people (times in the local time zone, ISO
8601) and `--json` for scripts on `models list`, `models status`, `doctor` and `feedback`; distinct exit
statuses: 0 done, 1 failed at run time, 2 usage error, 4 refused by the gate or the quality floor."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from bot.store import Rating, open_store, rating_for
from tests.training.test_feedback import ACTIONS, record

REPO = Path(__file__).resolve().parents[3]
KOLKATA = "Asia/Kolkata"  # +05:30 all year: a local time that cannot be mistaken for UTC
LOCAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+05:30")


def oncall(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ONCALL_", "ML_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=REPO,
        env={**environment, "ML_AUTO_TRAIN": "0", "TZ": KOLKATA, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_version() -> None:
    out = oncall("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"oncall {metadata.version('oncall-agent')}"


def test_models_list_and_status_are_text_for_people_and_json_for_scripts(registry_two_versions) -> None:
    root, first, second = registry_two_versions
    models = str(root)
    listing = oncall("models", "list", "--model-path", models)
    assert listing.returncode == 0
    (active,) = [line for line in listing.stdout.splitlines() if line.startswith("*")]
    assert second.version in active and LOCAL_TIME.search(active), active
    listed = json.loads(oncall("models", "list", "--json", "--model-path", models).stdout)
    assert [v["version"] for v in listed["versions"]] == [first.version, second.version]
    assert listed["active"] == second.version and [v["active"] for v in listed["versions"]] == [False, True]

    status = oncall("models", "status", "--model-path", models)
    assert status.returncode == 0 and "status:           ok" in status.stdout
    assert f"serving version:  {second.version}" in status.stdout
    assert re.search(r"loaded at: +" + LOCAL_TIME.pattern, status.stdout), status.stdout
    assert "quality on " in status.stdout and not status.stdout.lstrip().startswith("{")
    health = json.loads(oncall("models", "status", "--json", "--model-path", models).stdout)
    assert health["serving_version"] == second.version and isinstance(health["loaded_at"], float)


def test_doctor_json_and_its_exit_status(models_dir: Path) -> None:
    healthy = oncall("doctor", "--json", "--model-path", str(models_dir))
    report = json.loads(healthy.stdout)
    assert healthy.returncode == 0 and report["healthy"] is True and report["verdict"].startswith("healthy")
    assert all(set(c) == {"name", "ok", "warning", "detail"} for c in report["checks"])
    for victim in (models_dir / "versions").glob("*/serving.npz"):  # the active one among them
        victim.write_bytes(b"garbage")
    broken = oncall("doctor", "--json", "--model-path", str(models_dir))
    report = json.loads(broken.stdout)
    assert broken.returncode == 1 and report["healthy"] is False
    assert [c["name"] for c in report["checks"] if not c["ok"]], report


def test_feedback_list_for_people_and_for_scripts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'oncall.db'}"

    async def fill() -> None:
        store = await open_store(url)
        for ts in ("1700000000.0", "1700000100.0", "1700000200.0"):
            await store.record_decision(record(ts))
        await store.rate("C1", "1700000000.0", "U1", "+1", rating_for("+1", ACTIONS))
        await store.rate("C1", "1700000100.0", "U2", "correct_category", Rating("category", "database"))
        await store.close()

    asyncio.run(fill())
    text = oncall("feedback", "list", "--db-url", url)
    lines = text.stdout.splitlines()
    assert text.returncode == 0 and len(lines) == 2, text.stdout + text.stderr
    assert lines[0].startswith("2023-11-15T03:43:20+05:30  C1/1700000000.0  v1  medium/hardware  U1 verdict")
    assert "U2 category database" in lines[1] and LOCAL_TIME.search(lines[1])
    rows = json.loads(oncall("feedback", "list", "--json", "--db-url", url).stdout)
    assert [r["reply_ts"] for r in rows] == ["1700000000.0", "1700000100.0"]
    assert rows[1]["votes"][0]["user"] == "U2" and rows[1]["votes"][0]["value"] == "database"
    out = tmp_path / "export.jsonl"
    export = oncall("feedback", "export", "--jsonl", "--json", "--out", str(out), "--db-url", url)
    assert export.returncode == 0 and json.loads(export.stderr) == {"exported": 2, "out": str(out)}
    assert len(out.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    "args",
    [
        ["models", "promote", "no-such-version"],
        ["models", "shadow"],
        ["models", "explode"],  # argparse
        ["train", "--data", "missing.jsonl"],
        ["evaluate", "--data", "missing.jsonl"],
        ["train", "--no-synthetic"],  # no data to train on
    ],
)
def test_a_usage_error_exits_2(args: list[str], models_dir: Path) -> None:
    out = oncall(*args, "--model-path", str(models_dir))
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and out.stderr.strip()


@pytest.mark.slow
def test_a_run_time_failure_exits_1_and_a_refusal_exits_4(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text("")
    empty = str(tmp_path / "empty")
    failed = oncall("evaluate", "--data", str(tmp_path / "rows.jsonl"), "--model-path", empty)
    assert failed.returncode == 1 and "cannot load the active model" in failed.stderr
    status = oncall("models", "status", "--model-path", empty)  # nothing to serve: the fallback
    assert status.returncode == 1 and "status:           fallback" in status.stdout
    assert "active version:   none (`oncall train` makes one)" in status.stdout
    assert "None" not in status.stdout
    store = oncall("feedback", "list", "--db-url", "postgresql://nobody@127.0.0.1:1/oncall")
    assert store.returncode == 1 and "cannot read the feedback store" in store.stderr
    (line,) = store.stderr.strip().splitlines()  # the pool's retries are not printed: their reason is
    assert "Connection refused; check that the store --db-url (or $ONCALL_DB_URL) names is up" in line
    floor = oncall(
        "train", "--samples", "300", "--no-bundled", "--min-macro-f1", "0.999", "--model-path", empty
    )
    assert floor.returncode == 4 and "refused by the quality floor" in floor.stderr
    assert "what to do: train on more or cleaner data" in floor.stderr and "--min-macro-f1" in floor.stderr
    assert not (tmp_path / "empty" / "versions").is_dir() or not any(
        (tmp_path / "empty" / "versions").iterdir()
    )


# -- issue 21: help with defaults, errors that say what to do, a plausible doctor ---------------------------
def test_every_subcommands_help_explains_each_argument_and_shows_its_default() -> None:
    from bot.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) >= {"train", "predict", "evaluate", "doctor", "serve", "models", "feedback"}
    for name, sub in commands.choices.items():
        text = " ".join(sub.format_help().split())  # unwrapped
        assert "default: None" not in text and "default: False" not in text, name
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = "/".join(action.option_strings) or action.dest
            assert action.help, f"oncall {name} {flag} has no help"
            default = action.default
            if default is None or default is False or default == []:
                continue
            assert f"(default: {default})" in text or "default" in action.help, f"oncall {name} {flag}"
    train_help = " ".join(oncall("train", "--help").stdout.split())
    assert (
        "(default: 12000)" in train_help and "(default: 42)" in train_help and "(default: 0.4)" in train_help
    )


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    """The whole of stderr: one `error:` sentence, with nothing of Python's in it."""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    (line,) = lines
    assert line.startswith("error: "), line
    for raw in ("Errno", "Traceback", "None", "Error:", "'"):
        assert raw not in line, line
    return line


def test_errors_are_one_sentence_that_says_what_to_do(tmp_path: Path, models_dir: Path) -> None:
    missing = oncall("train", "--data", "nope.jsonl", "--model-path", str(tmp_path / "m"))
    assert missing.returncode == 2
    assert one_error_line(missing) == (
        "error: --data nope.jsonl: no such file; name a labeled JSONL file (the schema: docs/labeled-data.md)"
    )
    folder = oncall("evaluate", "--data", str(tmp_path), "--model-path", str(models_dir))
    assert folder.returncode == 2 and "is a directory; name a labeled JSONL file" in one_error_line(folder)
    gate = oncall("models", "promote", "x", "--gate-data", "gone.jsonl", "--model-path", str(models_dir))
    assert gate.returncode == 2  # no version x: said first
    history = oncall("history", "import", "--data", "gone.jsonl", "--db-url", f"sqlite:///{tmp_path}/o.db")
    assert history.returncode == 2 and "--data gone.jsonl: no such file" in one_error_line(history)

    # A model directory that is a file: nothing active yet, so no version "None" is named.
    (tmp_path / "a-file").write_text("")
    into_a_file = oncall("train", "--samples", "300", "--model-path", str(tmp_path / "a-file"))
    line = one_error_line(into_a_file)
    assert into_a_file.returncode == 1 and "nothing changed, no version is active" in line
    assert line.endswith("--model-path must name a directory, not a file"), line

    url = f"sqlite:///{tmp_path / 'oncall.db'}"
    out = oncall("feedback", "export", "--out", str(tmp_path / "no" / "such" / "x.jsonl"), "--db-url", url)
    assert out.returncode == 2
    assert one_error_line(out) == (
        f"error: --out {tmp_path / 'no' / 'such' / 'x.jsonl'}: no such file or directory; "
        "name a file that can be written"
    )


def test_cli_error_sentences_drop_errno_and_python_none() -> None:
    from bot.cli.common import sentence
    from engine.registry import RegistryError

    assert sentence(FileNotFoundError(2, "No such file or directory", "x.jsonl")) == (
        "x.jsonl: no such file or directory"
    )
    cause = OSError(28, "No space left on device")
    wrapped = RegistryError(
        "cannot save model versions: No space left on device (m); nothing changed, no version is active"
    )
    wrapped.__cause__ = cause
    assert sentence(wrapped) == (
        "cannot save model versions: No space left on device (m); nothing changed, no version is active: "
        "free some space and try again"
    )


class Says:
    """A scorer that gives each plausibility probe the severity it is written as, except ``wrong``."""

    def __init__(self, real: object, wrong: dict[str, str]) -> None:
        from engine.doctor import PLAUSIBILITY_PROBES

        self.severity_classes = list(real.severity_classes)  # type: ignore[attr-defined]
        self.says = {text: wrong.get(text, expected) for text, expected in PLAUSIBILITY_PROBES}

    def score(self, text: str) -> object:
        import numpy as np

        severity = np.full(len(self.severity_classes), 0.05)
        severity[self.severity_classes.index(self.says[text])] = 0.85
        return type("Scores", (), {"severity": severity})()


def doctor_with(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, models: Path, wrong: dict):
    from bot.cli import main
    from engine import doctor

    real = doctor.load_model_set

    def load(version: object) -> object:
        loaded = real(version)
        return type("Loaded", (), {"scorer": Says(loaded.scorer, wrong), "scorer_kind": loaded.scorer_kind})()

    monkeypatch.setattr(doctor, "load_model_set", load)
    status = main(["doctor", "--model-path", str(models)])
    text = capsys.readouterr().out
    assert main(["doctor", "--json", "--model-path", str(models)]) == status
    return status, text, json.loads(capsys.readouterr().out)


def test_doctor_warns_when_a_probe_written_as_critical_comes_out_low(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from engine.doctor import PLAUSIBILITY_PROBES

    status, text, report = doctor_with(monkeypatch, capsys, models_dir, {})
    assert status == 0 and "[ ok ] plausibility" in text and "WARN" not in text
    assert (
        text.strip().endswith("verdict: healthy, the bot can serve this model") and report["warnings"] == []
    )

    checkout = PLAUSIBILITY_PROBES[0][0]  # "[FIRING:1] HighErrorRate checkout error rate 12% for 10m"
    status, text, report = doctor_with(monkeypatch, capsys, models_dir, {checkout: "low"})
    assert status == 0, "one implausible probe is a warning: the model still serves"
    assert "[WARN] test prediction: " in text and "-> low (0.85), but it is written as critical" in text
    assert "[WARN] plausibility: 1 of 5 probe texts" in text and "oncall train" in text
    verdict = text.strip().splitlines()[-1]
    assert verdict.startswith("verdict: healthy") and "warning" in verdict and "plausibility" in verdict
    assert report["healthy"] and report["warnings"] == ["test prediction", "plausibility"]
    assert "warning" in report["verdict"]
    (plausible,) = [c for c in report["checks"] if c["name"] == "plausibility"]
    assert plausible["ok"] and plausible["warning"] and "written as critical" in plausible["detail"]


def test_doctor_fails_a_model_that_gets_most_obvious_severities_wrong(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from engine.doctor import PLAUSIBILITY_PROBES

    upside_down = {"critical": "low", "low": "critical"}
    wrong = {text: upside_down[expected] for text, expected in PLAUSIBILITY_PROBES}
    status, text, report = doctor_with(monkeypatch, capsys, models_dir, wrong)
    assert status == 1 and "[FAIL] plausibility: 5 of 5" in text and "healthy, the bot" not in text
    assert text.strip().splitlines()[-1].startswith("verdict: NOT healthy (plausibility)")
    assert report["healthy"] is False


def test_trials_and_comparisons_are_text_for_people_and_json_for_scripts(
    models_dir: Path, tmp_path: Path
) -> None:
    from engine.registry import ModelRegistry

    candidate = ModelRegistry(models_dir).history()[-1]
    started = oncall("models", "shadow", candidate, "--model-path", str(models_dir))
    assert started.returncode == 0 and LOCAL_TIME.search(started.stdout) and "{" not in started.stdout
    url = f"sqlite:///{tmp_path / 'oncall.db'}"
    active = ModelRegistry(models_dir).active_id()
    text = oncall("models", "compare", active, candidate, "--db-url", url, "--model-path", str(models_dir))
    assert text.returncode == 0 and f"{candidate} on trial beside {active}: 0 alerts" in text.stdout
    as_json = oncall(
        "models", "compare", active, candidate, "--json", "--db-url", url, "--model-path", str(models_dir)
    )
    assert json.loads(as_json.stdout)["trial"]["version"] == candidate
    verified = json.loads(oncall("models", "verify", "--json", "--model-path", str(models_dir)).stdout)
    assert verified["ok"] is True and {c["verdict"] for c in verified["checks"]} == {"ok"}
