"""The `oncall` command's conventions: `--version`; text for people (times in the local time zone, ISO
8601) and `--json` for scripts on `models list`, `models status`, `doctor` and `feedback`; distinct exit
statuses: 0 done, 1 failed at run time, 2 usage error, 4 refused by the gate or the quality floor."""

from __future__ import annotations

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
from tests.test_feedback import ACTIONS, record

REPO = Path(__file__).resolve().parents[1]
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


def test_a_run_time_failure_exits_1_and_a_refusal_exits_4(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text("")
    empty = str(tmp_path / "empty")
    failed = oncall("evaluate", "--data", str(tmp_path / "rows.jsonl"), "--model-path", empty)
    assert failed.returncode == 1 and "cannot load the active model" in failed.stderr
    status = oncall("models", "status", "--model-path", empty)  # nothing to serve: the fallback
    assert status.returncode == 1 and "status:           fallback" in status.stdout
    store = oncall("feedback", "list", "--db-url", "postgresql://nobody@127.0.0.1:1/oncall")
    assert store.returncode == 1 and "cannot read the feedback store" in store.stderr
    floor = oncall(
        "train", "--samples", "300", "--no-bundled", "--min-macro-f1", "0.999", "--model-path", empty
    )
    assert floor.returncode == 4 and "refused by the quality floor" in floor.stderr
    assert not (tmp_path / "empty" / "versions").is_dir() or not any(
        (tmp_path / "empty" / "versions").iterdir()
    )
