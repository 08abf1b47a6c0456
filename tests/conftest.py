"""Shared fixtures: small real models trained once per session, copied per test that changes them; a fresh
feedback store on each backend (SQLite, and PostgreSQL when ONCALL_TEST_POSTGRES_URL names a server)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import pytest_asyncio
from psycopg import sql

from bot.local.emulator import SlackEmulator
from bot.runner import OncallBot
from bot.settings import Settings
from engine.ml_service import MLService
from tests.harness import SECRET, TOKEN, Running, start_bot
from training.train import TrainConfig, TrainResult, train

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
POSTGRES_URL_VAR = "ONCALL_TEST_POSTGRES_URL"
# For parametrize: the PostgreSQL case carries the `postgres` marker (`make test-fast` leaves it out).
BACKEND_PARAMS = (pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres))
# A test that needs the session's two trained models is slow: the first on each worker trains them (about a
# minute on two busy cores). Through fixtures, so a new test that uses them is marked without being told.
SLOW_FIXTURES = {"registry_two_versions"}
# And one that runs the whole bot against the emulator is e2e.
E2E_FIXTURES = {"running", "local_bot"}
# Modules that train the built-in model or fit on real rows: marked here, not in the module, for now.
SLOW_MODULES = {"test_plain_language.py", "test_real_rows.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & SLOW_FIXTURES or item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if used & E2E_FIXTURES:
            item.add_marker(pytest.mark.e2e)
        if "postgres_server" in used:
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The skips counted by reason (-ra lists each one): what this run did not check, and why."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple | list) and len(longrepr) == 3 else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    if reasons:
        terminalreporter.write_sep("=", f"{sum(reasons.values())} skipped, by reason")
        for reason, count in reasons.most_common():
            terminalreporter.write_line(f"{count:4d}  {reason}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def small_config(seed: int = 7, samples: int = 1500, **kwargs: object) -> TrainConfig:
    """A model that trains in a few seconds but is a real one (same pipeline, same calibration); 400
    samples where only the registry's bookkeeping is under test (the smallest run that passes the floor).
    Without the bundled alerting rules unless asked (``bundled=True``): 807 more rows in every fit would
    make each several times slower, and the tests of the bundled rules train with them on purpose."""
    options = {"bundled": False, **kwargs}
    return TrainConfig(samples=samples, seed=seed, progress=False, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def registry_two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainResult, TrainResult]:
    """A model directory with two versions: A (seed 7) then B (seed 8, active)."""
    root = tmp_path_factory.mktemp("models")
    first = train(small_config(7), root)
    second = train(small_config(8), root)
    return root, first, second


@pytest.fixture
def models_dir(registry_two_versions: tuple[Path, TrainResult, TrainResult], tmp_path: Path) -> Path:
    """A private copy of the two-version directory that a test may change."""
    target = tmp_path / "models"
    shutil.copytree(registry_two_versions[0], target)
    return target


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("real-data tests need ../shared/data/real (absent in a fresh clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """A PostgreSQL server whose role may create databases (.ci/run starts one and sets the variable)."""
    url = os.environ.get(POSTGRES_URL_VAR)
    if not url:
        if os.environ.get("CI"):  # CI must not pass by skipping the PostgreSQL half
            pytest.fail(f"{POSTGRES_URL_VAR} is not set in CI: .ci/run starts PostgreSQL and sets it")
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VAR} (a server; docs/testing.md)")
    return url


@contextmanager
def fresh_postgres_database(server: str) -> Iterator[str]:
    """The URL of a new, empty database on the server, dropped afterwards."""
    name = f"oncall_test_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlsplit(server)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def fresh_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store of one backend, as the URL the bot is configured with."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'oncall.db'}"
    else:
        with fresh_postgres_database(request.getfixturevalue("postgres_server")) as url:
            yield url


@pytest.fixture(params=BACKEND_PARAMS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store on each backend in turn."""
    with fresh_db_url(request.param, request, tmp_path) as url:
        yield url


@pytest_asyncio.fixture
async def local_bot(models_dir: Path, tmp_path: Path) -> AsyncIterator[OncallBot]:
    """`oncall serve` with no Slack tokens, in this process: the built-in emulator and the playground, on
    a free port of 127.0.0.1, SQLite, the two-version model directory."""
    settings = Settings(
        port=0,
        model_path=models_dir,
        db_url=f"sqlite:///{tmp_path / 'playground.db'}",
        data_dir=tmp_path / "data",
    )
    bot = OncallBot(settings, ml=MLService(models_dir, auto_train=False))
    await bot.start()
    try:
        await bot.wait_ready(timeout=30)
        yield bot
    finally:
        if bot.emulator is not None:
            await bot.emulator.settle()
        await bot.stop()


@pytest_asyncio.fixture
async def running(models_dir: Path, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Running]:
    """The bot and the emulator; on SQLite, or on the backend a test names (``on_both_stores``)."""
    emulator = SlackEmulator(SECRET, TOKEN, ack_timeout=3.0, retry_delays=(0.2, 0.4, 0.6))
    await emulator.start()
    with fresh_db_url(getattr(request, "param", "sqlite"), request, tmp_path) as db_url:
        bot = await start_bot(emulator, models_dir, db_url, tmp_path / "data")
        emulator.bot_url = bot.events_url
        running = Running(emulator, bot, models_dir)
        try:
            yield running
        finally:
            await emulator.settle()
            await running.bot.stop()  # a test that restarts the bot leaves its new one here
            await emulator.stop()
