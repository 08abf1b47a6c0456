"""Every setting the program reads from the environment is read and checked here (flags override): every
problem is one sentence naming the setting, raised before anything starts (`oncall` exits 2). ``Runtime``
holds what every command reads (logging, and the ML core's settings: engine/ reads its own defaults when used
as a library, and the bot passes these values in where it builds engine objects); ``Settings`` adds what
`oncall serve` reads. ``ENVIRONMENT`` names them all: README's settings table lists exactly these."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from bot.slack.ids import CHANNEL_ID, USER_ID
from engine.settings import DEFAULT_MODEL_PATH, EngineSettings, SettingError, getter, number

DEFAULT_PORT = 3000
# What the bot writes (the SQLite store by default, the outbox journal) lives here, not in the working
# directory: a checkout stays clean (.gitignore covers data/), and one volume holds it all in a container.
DEFAULT_DATA_DIR = Path("data")
DEFAULT_DB_URL = f"sqlite:///{DEFAULT_DATA_DIR / 'oncall.db'}"
# Channels watched when ONCALL_CHANNELS is not set: the names incident channels are usually given.
DEFAULT_CHANNEL_PREFIXES = ("inc", "incident", "alert")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
# Every environment variable the program reads, in README's settings table's order.
ENVIRONMENT = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "ONCALL_PORT",
    "ML_MODEL_PATH",
    "ONCALL_CHANNELS",
    "ONCALL_ADMINS",
    "ONCALL_DB_URL",
    "ONCALL_DATA_DIR",
    "ONCALL_RUNBOOKS",
    "ONCALL_UNCERTAIN_BELOW",
    "ONCALL_GROUP_WINDOW",
    "ONCALL_GROUP_QUIET",
    "ONCALL_GROUP_SIMILARITY",
    "ONCALL_METRICS_ADDR",
    "ONCALL_LOG_LEVEL",
    "ONCALL_LOG_FORMAT",
    "ML_AUTO_TRAIN",
    "ML_FOLLOW_SECONDS",
    "ML_KEEP_VERSIONS",
    "ML_TRUST_PICKLES",
    "ONCALL_MODEL_KEY",
    "ONCALL_MODEL_KEY_FILE",
    "ONCALL_NATIVE",
    "SLACK_BOT_URL",  # the stand-alone emulator's (python -m bot.local.emulator) only: a default for its flag
)


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one sentence that names it."""


@dataclass(frozen=True, slots=True)
class GroupingSettings:
    """ONCALL_GROUP_WINDOW, ONCALL_GROUP_QUIET (seconds; 0 turns grouping off), ONCALL_GROUP_SIMILARITY
    (0-1; above 1 only duplicates and the same service group)."""

    window: float = 600.0  # a related alert joins a group seen this recently
    quiet: float = 1800.0  # a group with no new alert for this long is closed
    similarity: float = 0.5  # the share of an alert's words its group uses, from which they are related

    @property
    def on(self) -> bool:
        return self.quiet > 0


@dataclass(frozen=True, slots=True)
class Runtime:
    """What every `oncall` command reads: ONCALL_LOG_LEVEL, ONCALL_LOG_FORMAT, and the ML core's settings
    (engine/settings.py: ML_MODEL_PATH, ML_AUTO_TRAIN, ML_FOLLOW_SECONDS, ML_KEEP_VERSIONS,
    ONCALL_UNCERTAIN_BELOW, ML_TRUST_PICKLES; and ONCALL_NATIVE, which only engine/native.py reads, when it
    is imported)."""

    log_level: str = "INFO"
    log_format: str = "text"  # or json: one object per line
    engine: EngineSettings = field(default_factory=EngineSettings)


@dataclass(frozen=True, slots=True)
class Settings:
    bot_token: str | None = None
    signing_secret: str | None = None
    app_token: str | None = None  # Socket Mode when set
    api_url: str | None = None  # the Web API base URL (an emulator or a proxy); None: Slack's
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    model_path: Path = DEFAULT_MODEL_PATH
    channels: tuple[str, ...] = ()  # IDs or names; empty: names starting with DEFAULT_CHANNEL_PREFIXES
    admins: frozenset[str] = field(default_factory=frozenset)
    db_url: str = DEFAULT_DB_URL
    data_dir: Path = DEFAULT_DATA_DIR  # the default SQLite file and the outbox journal
    runbooks: Path | None = None
    metrics_addr: tuple[str, int] | None = None  # a separate listener for /metrics (and the probes)
    grouping: GroupingSettings = field(default_factory=GroupingSettings)
    runtime: Runtime = field(default_factory=Runtime)

    @property
    def local(self) -> bool:
        """No Slack credentials: run against the built-in emulator."""
        return not (self.bot_token or self.app_token)

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)


def db_backend(db_url: str) -> Literal["sqlite", "postgresql"]:
    """Which store a URL names, once its shape is checked: ``sqlite:///path`` or
    ``postgresql://user:password@host:port/database``."""
    if db_url.startswith("sqlite:"):
        sqlite_path(db_url)
        return "sqlite"
    if not db_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            f"ONCALL_DB_URL must be a sqlite:///path or postgresql://user:password@host:port/database URL, "
            f"got {_redacted(db_url)!r}."
        )
    url = urlsplit(db_url)
    try:
        url.port  # noqa: B018 - raises ValueError on a port that is no number
    except ValueError:
        raise ConfigError(f"ONCALL_DB_URL has an invalid port: {_redacted(db_url)!r}.") from None
    if not re.fullmatch(r"/[^/\s]+", url.path):
        raise ConfigError(
            f"ONCALL_DB_URL names no database: use postgresql://user:password@host:port/database, "
            f"got {_redacted(db_url)!r}."
        )
    return "postgresql"


def _redacted(db_url: str) -> str:
    """The URL without its password, fit for an error message."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", db_url)


def sqlite_path(db_url: str) -> Path:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    if not db_url.startswith("sqlite:///"):
        raise ConfigError(f"ONCALL_DB_URL must be a sqlite:///path URL for SQLite, got {db_url!r}.")
    path = db_url.removeprefix("sqlite:///")
    if not path:
        raise ConfigError(
            "ONCALL_DB_URL names no file: use sqlite:///data/oncall.db or sqlite:////abs/path.db."
        )
    return Path(path)


def default_db_url(env: Mapping[str, str]) -> str:
    """The SQLite file in the data directory (ONCALL_DATA_DIR, default ``data``)."""
    data_dir = (env.get("ONCALL_DATA_DIR") or "").strip()
    return f"sqlite:///{Path(data_dir) / 'oncall.db'}" if data_dir else DEFAULT_DB_URL


def _split(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.replace(";", ",").split(",") if p.strip())


def load_runtime(env: Mapping[str, str] | None = None) -> Runtime:
    """What every command reads, from ``env`` (default os.environ); ConfigError for a value that cannot
    work. An empty value is an unset one."""
    get = getter(os.environ if env is None else env)
    level = (get("ONCALL_LOG_LEVEL") or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"ONCALL_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}.")
    log_format = (get("ONCALL_LOG_FORMAT") or "text").lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"ONCALL_LOG_FORMAT must be text or json, got {get('ONCALL_LOG_FORMAT')!r}.")
    native = get("ONCALL_NATIVE")  # engine/native.py reads it when first imported: checked here too
    if native not in (None, "0", "1"):
        raise ConfigError(
            f"ONCALL_NATIVE must be 0 (the NumPy scorer) or 1 (the C extension, required), got {native!r}."
        )
    try:
        engine = EngineSettings.from_env(env)
    except SettingError as exc:
        raise ConfigError(str(exc)) from None
    return Runtime(log_level=level, log_format=log_format, engine=engine)


def check_model_key(model_path: Path, env: Mapping[str, str] | None = None) -> None:
    """ONCALL_MODEL_KEY (or the file ONCALL_MODEL_KEY_FILE names) must be usable when set: long enough, the
    file readable, private and outside the model directory. The engine reads it itself when it signs or
    verifies; this refuses a bad one before anything starts."""
    from engine.registry import RegistryError, model_key  # here: it imports scikit-learn

    try:
        model_key(model_path, os.environ if env is None else env)
    except RegistryError as exc:
        raise ConfigError(f"{exc}.") from None


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from ``env`` (default os.environ), then ``overrides`` (flags) where they are not None."""
    env = os.environ if env is None else env
    get = getter(env)

    bot_token = get("SLACK_BOT_TOKEN")
    signing_secret = get("SLACK_SIGNING_SECRET")
    app_token = get("SLACK_APP_TOKEN")
    port_text = get("ONCALL_PORT")
    runtime = load_runtime(env)
    values: dict[str, object] = {
        "bot_token": bot_token,
        "signing_secret": signing_secret,
        "app_token": app_token,
        "api_url": get("SLACK_API_URL"),
        "model_path": runtime.engine.model_path,
        "channels": _split(get("ONCALL_CHANNELS") or ""),
        "admins": frozenset(_split(get("ONCALL_ADMINS") or "")),
        "db_url": get("ONCALL_DB_URL") or default_db_url(env),
        "data_dir": Path(get("ONCALL_DATA_DIR") or DEFAULT_DATA_DIR),
        "runbooks": Path(r) if (r := get("ONCALL_RUNBOOKS")) else None,
        "runtime": runtime,
    }
    grouping = {}
    for name, key in (("ONCALL_GROUP_WINDOW", "window"), ("ONCALL_GROUP_QUIET", "quiet"),
                      ("ONCALL_GROUP_SIMILARITY", "similarity")):  # fmt: skip
        if (raw := get(name)) is not None:
            try:
                grouping[key] = number(get, name, 0.0)  # "nan" and "inf" are floats, not settings
            except SettingError as exc:
                raise ConfigError(str(exc)) from None
            if grouping[key] < 0:
                raise ConfigError(f"{name} must not be negative, got {raw!r}.")
    values["grouping"] = GroupingSettings(**grouping)
    if (metrics := get("ONCALL_METRICS_ADDR")) is not None:
        values["metrics_addr"] = _host_port(metrics)
    if port_text is not None:
        if not port_text.isdigit():
            raise ConfigError(f"ONCALL_PORT must be a port number (1-65535), got {port_text!r}.")
        values["port"] = int(port_text)
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(**values)  # type: ignore[arg-type]
    validate(settings)
    check_model_key(settings.model_path, env)
    return settings


def _host_port(value: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) for ONCALL_METRICS_ADDR."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"ONCALL_METRICS_ADDR must be host:port, like 127.0.0.1:9100, got {value!r}.")
    return host, int(port)


def validate(s: Settings) -> None:
    """Raise ConfigError for the first thing wrong, in the order an operator would fix them."""
    if s.bot_token and not s.bot_token.startswith("xoxb-"):
        raise ConfigError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-.")
    if s.app_token and not s.app_token.startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp- (Socket Mode).")
    if s.app_token and not s.bot_token:
        raise ConfigError("SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: Socket Mode needs both.")
    if s.bot_token and not s.app_token and not s.signing_secret:
        raise ConfigError("SLACK_SIGNING_SECRET is required in HTTP mode, to verify Slack's requests.")
    if s.api_url and not re.match(r"^https?://[^/\s]+(/\S*)?$", s.api_url):
        raise ConfigError(f"SLACK_API_URL must be an http(s) URL, got {s.api_url!r}.")
    if not 1 <= s.port <= 65535:
        raise ConfigError(f"ONCALL_PORT must be a port number (1-65535), got {s.port}.")
    for admin in s.admins:
        if not USER_ID.match(admin):
            raise ConfigError(f"ONCALL_ADMINS must list Slack user IDs (like U024BE7LH), got {admin!r}.")
    for channel in s.channels:
        name = channel.removeprefix("#")
        if not (CHANNEL_ID.match(channel) or re.match(r"^[a-z0-9][a-z0-9_-]{0,79}$", name)):
            raise ConfigError(f"ONCALL_CHANNELS must list channel IDs or names, got {channel!r}.")
    db_backend(s.db_url)
    if s.runbooks is not None and not s.runbooks.is_file():
        raise ConfigError(f"ONCALL_RUNBOOKS names {str(s.runbooks)!r}, which is not a readable file.")


def check_paths(settings: Settings, model_path: Path, train_models: bool) -> None:
    """Raise ConfigError unless the bot can write where it must, before it starts: the model directory
    when the built-in model is to be trained into it (``train_models``: auto-training on), the data
    directory (the outbox journal) and the SQLite file's directory. Probed by writing, since root's access()
    says yes even on a read-only file system."""
    check_model_path(model_path, train_models)
    writable_dir("ONCALL_DATA_DIR", settings.data_dir)
    if db_backend(settings.db_url) == "sqlite":
        db = sqlite_path(settings.db_url)
        writable_dir("ONCALL_DB_URL", db.parent)
        if db.exists():
            try:
                with db.open("r+b"):
                    pass
            except OSError as exc:
                raise ConfigError(
                    f"ONCALL_DB_URL names {str(db)!r}, which the bot cannot write: {_why(exc)}."
                ) from None


def check_model_path(path: Path, train_models: bool) -> None:
    """The model directory must be one, and writable when the built-in model will be trained into it."""
    from engine.registry import ModelRegistry, NoModels, RegistryError  # here: it imports scikit-learn

    setting = "ML_MODEL_PATH (--model-path)"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{setting} names {str(path)!r}, which is not a directory.")
    if not train_models:
        return
    try:
        ModelRegistry(path).active()
    except NoModels:
        writable_dir(setting, path, "the built-in model would be trained into it")
    except RegistryError:
        return  # a version that does not load is reported by the model service, and the bot still serves


def writable_dir(setting: str, path: Path, because: str = "") -> None:
    """Create ``path`` if needed and write a file in it; ConfigError naming ``setting`` otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        why = f" ({because})" if because else ""
        raise ConfigError(
            f"{setting} names {str(path)!r}, where the bot cannot write{why}: {_why(exc)}."
        ) from None


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def watches(settings: Settings, channel_id: str, channel_name: str | None) -> bool:
    """Is this channel an incident channel the bot answers in?"""
    if settings.channels:
        wanted = {c.removeprefix("#") for c in settings.channels}
        return channel_id in wanted or (channel_name is not None and channel_name in wanted)
    return channel_name is not None and channel_name.startswith(DEFAULT_CHANNEL_PREFIXES)
