"""Model files decide what the bot answers: permissions, `oncall models verify`, and a full disk, a read-only
directory or a `kill -9` during `oncall train` / `oncall models promote` (real subprocesses, real mounts)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sklearn

from engine.doctor import run_checks
from engine.ml_service import MLService
from engine.registry import ModelRegistry, RegistryError, UnsafePermissions, dump_artifact
from tests.conftest import small_config
from training.train import train

REPO = Path(__file__).resolve().parents[2]
TRAIN = ["train", "--samples", "400", "--seed", "5", "--no-bundled"]  # the smallest run that passes the floor


def oncall(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with a single ``error:`` line and no traceback; returns that line."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def assert_active_serves(root: Path, version: str) -> None:
    """The registry still names ``version``, it verifies, and a fresh MLService serves it."""
    registry = ModelRegistry(root)
    assert registry.active_id() == version
    assert not list(registry.versions_dir.glob(".staging-*")), "a half-written version was left behind"
    verify = oncall("models", "verify", "--model-path", root)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    ml = MLService(root, auto_train=False)
    asyncio.run(ml.initialize())
    assert ml.health()["status"] == "ok" and ml.models.version == version
    assert ml.predict("checkout 5xx at 40% for 10m service:checkout").model_version == version


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]).returncode:
        pytest.skip("a full disk needs a tmpfs mount: run as root (or with CAP_SYS_ADMIN)")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """A read-only bind mount as root (chmod cannot stop root); chmod a-w for anyone else."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")] if p.is_dir()}
        for p in modes:
            p.chmod(0o555)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if subprocess.run(["mount", "--bind", str(path), str(path)]).returncode:
        pytest.skip("root without CAP_SYS_ADMIN cannot make a directory read-only")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def fill(disk: Path, leave: int = 0) -> None:
    """Fill the filesystem until only ``leave`` bytes (rounded to pages) are free."""
    with (disk / "filler").open("wb") as fh:
        chunk = b"\0" * 65536
        try:
            while True:
                free = shutil.disk_usage(disk).free - leave
                if free <= 0:
                    break
                fh.write(chunk[: min(len(chunk), free)])
                fh.flush()
        except OSError:
            pass  # ENOSPC: full


# -- permissions ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["root", "versions", "version", "artifact", "metadata"])
@pytest.mark.parametrize("mode_bits", [0o002, 0o020])
def test_a_model_path_writable_by_others_is_refused_with_the_fix(
    models_dir: Path, where: str, mode_bits: int
) -> None:
    version = ModelRegistry(models_dir).active()
    target = {
        "root": models_dir,
        "versions": models_dir / "versions",
        "version": version.path,
        "artifact": version.path / "serving.npz",
        "metadata": version.path / "metadata.json",
    }[where]
    target.chmod(target.stat().st_mode | mode_bits)
    with pytest.raises(UnsafePermissions) as info:
        version.serving_bytes()
    message = str(info.value)
    assert str(target) in message and f"chmod go-w {target}" in message
    assert ("everyone" if mode_bits == 0o002 else "its group") in message


def test_unsafe_permissions_reach_the_bot_doctor_and_the_cli(models_dir: Path) -> None:
    registry = ModelRegistry(models_dir)
    active = registry.active()
    (active.path / "incident_classifier.joblib").chmod(0o666)
    ml = MLService(models_dir, auto_train=False)
    asyncio.run(ml.initialize())  # the other version's files are fine: it serves that one and says why
    health = ml.health()
    assert health["status"] == "degraded" and health["serving_version"] != active.id
    assert "writable by everyone" in health["last_error"] and "chmod go-w" in health["last_error"]
    (models_dir / "versions").chmod(0o777)  # now no version is trusted: the labeled fallback
    ml = MLService(models_dir, auto_train=False)
    asyncio.run(ml.initialize())
    assert ml.health()["status"] == "fallback" and "chmod go-w" in ml.health()["last_error"]
    failed = [c for c in run_checks(models_dir) if not c.ok]
    assert [c.name for c in failed] == ["permissions"] and "chmod go-w" in failed[0].detail
    status = oncall("models", "status", "--json", "--model-path", models_dir)
    assert status.returncode == 1 and json.loads(status.stdout)["status"] == "fallback"
    doctor = oncall("doctor", "--model-path", models_dir)
    assert doctor.returncode == 1 and "[FAIL] permissions" in doctor.stdout


def test_a_model_file_owned_by_another_user_is_refused(models_dir: Path) -> None:
    version = ModelRegistry(models_dir).active()
    target = version.path / "action_recommender.joblib"
    try:
        os.chown(target, 4242, -1)
    except PermissionError:
        pytest.skip("only root can give a file to another user")
    if os.geteuid() == 4242:
        pytest.skip("this test's foreign uid is ours")
    with pytest.raises(UnsafePermissions, match=f"belongs to user id 4242.*chown {os.geteuid()} {target}"):
        version.serving_bytes()


# -- oncall models verify ---------------------------------------------------------------------------------
def test_verify_passes_a_good_registry_and_names_every_broken_version(
    models_dir: Path, registry_two_versions
):
    _, first, second = registry_two_versions
    good = oncall("models", "verify", "--model-path", models_dir)
    assert good.returncode == 0, good.stdout
    lines = good.stdout.splitlines()
    assert lines[0].startswith(f"ok       {first.version}:") and lines[1].startswith(
        f"ok       {second.version}:"
    )
    assert f"active version {second.version}" in lines[2]

    registry = ModelRegistry(models_dir)
    versions = registry.versions_dir
    shutil.copytree(versions / first.version, versions / "truncated")
    shutil.copytree(versions / first.version, versions / "foreign")
    shutil.copytree(versions / first.version, versions / "old-sklearn")
    shutil.copytree(versions / first.version, versions / "no-metadata")
    vec = versions / "truncated" / "text_vectorizer.joblib"
    vec.write_bytes(vec.read_bytes()[:1000])
    (versions / "foreign" / "action_recommender.joblib").write_bytes(dump_artifact({"not": "a model"}))
    meta_path = versions / "old-sklearn" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["versions"]["scikit-learn"] = f"{int(sklearn.__version__.split('.')[0]) - 1}.24.2"
    meta_path.write_text(json.dumps(meta))
    (versions / "no-metadata" / "metadata.json").unlink()
    crashed = versions / f".staging-20990101T000000Z-abcdef@{socket.gethostname()}:{dead_pid()}@x1"
    crashed.mkdir()  # a crashed save: harmless
    registry.start_trial("foreign", "shadow")
    bad = oncall("models", "verify", "--model-path", models_dir)
    assert bad.returncode == 1
    verdicts = {line.split()[1].rstrip(":"): line for line in bad.stdout.splitlines()[:-1]}
    assert (
        verdicts["truncated"].startswith("BAD") and "text_vectorizer.joblib checksum mismatch" in bad.stdout
    )
    assert (
        verdicts["foreign"].startswith("BAD") and "action_recommender.joblib checksum mismatch" in bad.stdout
    )
    # Only the joblib files depend on scikit-learn, and serving reads none of them: a note, not a failure.
    assert (
        verdicts["old-sklearn"].startswith("ok") and "serving does not read them" in verdicts["old-sklearn"]
    )
    assert verdicts["no-metadata"].startswith("BAD") and "no checksums" in verdicts["no-metadata"]
    assert verdicts[crashed.name].startswith("leftover")
    assert verdicts[first.version].startswith("ok") and verdicts["active.json"].startswith("ok")
    assert (
        verdicts["trial.json"].startswith("BAD") and "foreign is missing or broken" in verdicts["trial.json"]
    )
    assert bad.stdout.splitlines()[-1] == f"4 problem(s) in {models_dir}"

    registry.end_trial()
    registry.promote("truncated")
    pointer_mode = (models_dir / "active.json").stat().st_mode & 0o777
    assert pointer_mode == 0o644, "a bot running as another user than the trainer must read the pointer"
    pointed = oncall("models", "verify", "--model-path", models_dir)
    assert pointed.returncode == 1 and "BAD      active.json: the active version truncated" in pointed.stdout
    (models_dir / "active.json").write_text("{not json")
    assert "BAD      active.json" in oncall("models", "verify", "--model-path", models_dir).stdout


@pytest.mark.slow
def test_verify_an_empty_or_missing_directory_fails(tmp_path: Path) -> None:
    missing = oncall("models", "verify", "--model-path", tmp_path / "nope")
    assert missing.returncode == 1 and "no such model directory" in missing.stdout
    (tmp_path / "empty").mkdir()
    empty = oncall("models", "verify", "--model-path", tmp_path / "empty")
    assert empty.returncode == 1 and "no active version" in empty.stdout


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_prune_removes_only_staging_folders_whose_save_is_over(models_dir: Path) -> None:
    """Two runs may save into one directory (replicas auto-training on first start): one run's prune must
    not delete the folder another is still writing."""
    versions = models_dir / "versions"
    host = socket.gethostname()
    crashed = versions / f".staging-v1@{host}:{dead_pid()}@a"
    running = versions / f".staging-v2@{host}:{os.getpid()}@b"
    elsewhere = versions / ".staging-v3@another-host:1@c"
    for path in (crashed, running, elsewhere):
        path.mkdir()
    ModelRegistry(models_dir).prune()
    assert not crashed.exists() and running.exists() and elsewhere.exists()
    day_old = time.time() - 25 * 3600
    os.utime(elsewhere, (day_old, day_old))
    ModelRegistry(models_dir).prune()
    assert running.exists() and not elsewhere.exists()


# -- disk faults ------------------------------------------------------------------------------------------
def test_a_full_disk_during_training_and_promotion_changes_nothing(
    registry_two_versions, tmp_path: Path
) -> None:
    source, first, second = registry_two_versions
    with tmpfs(tmp_path / "disk", "24m") as disk:
        root = disk / "models"
        shutil.copytree(source, root)
        fill(disk, leave=256 * 1024)  # room for the pointer, not for a version
        trained = oncall(*TRAIN, "--model-path", root)
        line = one_line_error(trained)
        assert "No space left on device" in line and f"the active version is still {second.version}" in line
        assert_active_serves(root, second.version)
        assert len(ModelRegistry(root).list_versions()) == 2

        fill(disk)  # not a byte left: the promotion's record and pointer writes fail
        promoted = oncall("models", "promote", first.version, "--force", "--model-path", root)
        line = one_line_error(promoted)
        assert "No space left on device" in line and f"active version is still {second.version}" in line
        assert not list(root.rglob(".active.json.*")) and not list(root.rglob(".metadata.json.*"))
        (disk / "filler").unlink()
        assert_active_serves(root, second.version)
        promotions = ModelRegistry(root).get(first.version).metadata.get("promotions", [])
        assert all(p.get("replaced") != second.version for p in promotions), "a promotion that did not happen"


def test_a_disk_that_fills_between_saving_and_promoting_leaves_no_orphan_version(
    registry_two_versions, tmp_path: Path
) -> None:
    """Room for the version's files, not for recording its promotion: the saved version is removed again."""
    first = registry_two_versions[1]  # small_config(7): the run below writes the same artifacts
    page = os.sysconf("SC_PAGE_SIZE")
    if page > 4096:
        pytest.skip("the margin below assumes 4 KiB pages: metadata.json must span several tmpfs pages")
    needed = sum(-(-f.stat().st_size // page) * page for f in first.path.iterdir())
    with tmpfs(tmp_path / "disk", "16m") as disk:
        fill(disk, leave=needed + 3 * page)  # metadata.json with its promotion record takes ~6 pages
        with pytest.raises(RegistryError, match=r"cannot record the promotion of .*No space left on device"):
            train(small_config(7), disk / "models")
        registry = ModelRegistry(disk / "models")
        assert registry.list_versions() == [] and registry.active_id() is None
        assert list(registry.versions_dir.iterdir()) == []


def test_a_read_only_model_directory_during_training_and_promotion_changes_nothing(
    models_dir: Path, registry_two_versions
) -> None:
    _, first, second = registry_two_versions
    with read_only(models_dir):
        started = time.monotonic()
        line = one_line_error(oncall(*TRAIN, "--model-path", models_dir))
        assert "Read-only file system" in line or "Permission denied" in line
        assert time.monotonic() - started < 30, "it should refuse before training, not after"
        line = one_line_error(
            oncall("models", "promote", first.version, "--force", "--model-path", models_dir)
        )
        assert "Read-only file system" in line or "Permission denied" in line
        assert f"the active version is still {second.version}" in line
        assert_active_serves(models_dir, second.version)
    assert_active_serves(models_dir, second.version)


# -- kill -9 ----------------------------------------------------------------------------------------------
def test_kill_9_in_the_middle_of_saving_a_version_leaves_the_active_one_intact(
    models_dir: Path, registry_two_versions
) -> None:
    """SIGKILL once the staging folder holds a first artifact (polled), i.e. while the version is written."""
    second = registry_two_versions[2]
    versions = models_dir / "versions"
    written: list[str] = []
    for _attempt in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *TRAIN, "--model-path", str(models_dir)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and not written:
            for staging in versions.glob(".staging-*"):
                try:
                    written = os.listdir(staging)
                except FileNotFoundError:
                    continue  # renamed into place meanwhile: too late this time
                if written:
                    proc.send_signal(signal.SIGKILL)
        proc.wait()
        if written:
            break
        ModelRegistry(models_dir).promote(second.version)  # it finished: undo, and try again
    assert written, "never caught the save in progress in 3 attempts"
    assert proc.returncode == -signal.SIGKILL
    assert len(ModelRegistry(models_dir).list_versions()) == 2, "the killed run added no version"
    verify = oncall("models", "verify", "--model-path", models_dir)
    assert verify.returncode == 0, verify.stdout
    assert [line.split()[0] for line in verify.stdout.splitlines()[:-1]].count("leftover") == 1
    ml = MLService(models_dir, auto_train=False)
    asyncio.run(ml.initialize())
    assert ml.models.version == second.version and ml.health()["status"] == "ok"

    after = oncall(*TRAIN, "--no-activate", "--model-path", models_dir)  # the next run saves, and cleans up
    assert after.returncode == 0, after.stderr
    assert len(ModelRegistry(models_dir).list_versions()) == 3
    assert_active_serves(models_dir, second.version)
