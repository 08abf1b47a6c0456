"""What every `oncall` command shares: the help format, errors as one sentence, the model directory and
the store."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
from collections.abc import Callable, Coroutine, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot.ops import redact
from bot.settings import check_model_path, default_db_url
from engine.settings import EngineSettings

if TYPE_CHECKING:
    from engine.decision import AIDecisionEngine
    from engine.ml_service import MLService


# Exit statuses (README: "The `oncall` command"): distinct, so that a script can tell them apart.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 4


DB_URL_HELP = "feedback store (default $ONCALL_DB_URL, else data/oncall.db in $ONCALL_DATA_DIR or data)"


LABELED_DATA_HELP = "a labeled JSONL file (the schema: docs/labeled-data.md)"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows every option's default, "(default: 6000)"; not for an option whose help says its
    default already (an environment variable, say), a flag (off unless given) or one with none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """A subcommand's parser: its `--help` shows the defaults too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


# -- errors: one sentence each, saying what to do -------------------------------------------------------
_OS_REASONS = {
    errno.ENOENT: "no such file or directory",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "is a directory, not a file",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EEXIST: "already exists",
    errno.ENOSPC: "no space left on device",
    errno.EROFS: "read-only file system",
}


# What to do about a write that failed, for an error whose cause is one of these.
_OS_ADVICE = {
    errno.ENOSPC: "free some space and try again",
    errno.EDQUOT: "free some space and try again",
    errno.EACCES: "make the directory writable by this user, or choose another --model-path",
    errno.EPERM: "make the directory writable by this user, or choose another --model-path",
    errno.EROFS: "mount it read-write, or choose another --model-path",
    errno.EEXIST: "--model-path must name a directory, not a file",
    errno.ENOTDIR: "--model-path must name a directory, not a file",
}


def _os_reason(exc: OSError) -> str:
    """An OSError in a few plain words, without Python's "[Errno 2]" and quotes."""
    if exc.errno in _OS_REASONS:
        return _OS_REASONS[exc.errno]
    reason = exc.strerror or str(exc) or type(exc).__name__
    return reason[:1].lower() + reason[1:]


def sentence(exc: BaseException) -> str:
    """An exception as one line for `error: ...`: an OSError as "PATH: reason", anything else as its message
    without a Python ``None`` in it, and the configured secrets (and anything shaped like one) masked."""
    if isinstance(exc, OSError) and exc.errno is not None:
        where = exc.filename
        text = f"{where}: {_os_reason(exc)}" if where is not None else _os_reason(exc)
    else:
        text = " ".join((str(exc) or type(exc).__name__).split())
        cause = exc.__cause__
        if isinstance(cause, OSError) and cause.errno in _OS_ADVICE:
            text = f"{text.rstrip('.')}: {_OS_ADVICE[cause.errno]}"
    return redacted(text)


def unreadable_files(flag: str, paths: Sequence[Path]) -> str | None:
    """The first of ``paths`` that cannot be read, as the `error:` sentence saying so; None when all can."""
    for path in paths:
        if path.is_dir():
            reason = "is a directory"
        else:
            try:
                with open(path, "rb"):
                    continue
            except OSError as exc:
                reason = "no such file" if exc.errno == errno.ENOENT else _os_reason(exc)
        return f"{flag} {path}: {reason}; name {LABELED_DATA_HELP}"
    return None


def package_version() -> str:
    try:
        return metadata.version("oncall-agent")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def add_model_path_arg(parser: argparse.ArgumentParser) -> None:
    # A string, made a Path in main(): Path("") would be ".", and an empty flag would train into the
    # current directory.
    parser.add_argument(
        "--model-path", default=None, help="model directory (default: $ML_MODEL_PATH or models)"
    )


def model_path_of(args: argparse.Namespace) -> Path:
    return args.model_path if args.model_path is not None else args.runtime.engine.model_path


def print_metrics(metrics: dict[str, Any], indent: str = "  ") -> None:
    for label in ("severity", "category"):
        m = metrics.get(label) or {}
        if m.get("n"):
            print(
                f"{indent}{label:<9} n={m['n']:<5} accuracy={m['accuracy']:.3f} "
                f"macro-F1={m['macro_f1']:.3f} ECE={m['ece']:.3f}"
            )
            for cls, pc in m.get("per_class", {}).items():
                print(
                    f"{indent}  {cls:<20} precision={pc['precision']:.3f} recall={pc['recall']:.3f} "
                    f"n={pc['support']}"
                )
            for name, sub in m.get("by_provider", {}).items():
                print(
                    f"{indent}  [{name}] n={sub['n']} accuracy={sub['accuracy']:.3f} "
                    f"macro-F1={sub['macro_f1']:.3f}"
                )
    a = metrics.get("actions") or {}
    if a.get("n"):
        print(f"{indent}actions   n={a['n']:<5} top-1={a['top1']:.3f} top-3={a['top3']:.3f}")


def print_quality(metrics: dict[str, Any], data: dict[str, Any]) -> None:
    """A version's held-out numbers by the rows they were measured on: real labeled rows first, synthetic
    ones labeled as such (engine.quality)."""
    from engine.quality import measured

    sets = measured({"metrics": metrics, "data": data})
    if not sets:
        print("  no held-out rows: quality not measured")
    for m in sets:
        print(f"  on {m.describe()}:")
        print_metrics(m.metrics, indent="    ")


def ml_service(args: argparse.Namespace, **options: Any) -> MLService:
    """The model service as the settings say (ML_AUTO_TRAIN, ML_KEEP_VERSIONS), ``options`` over them."""
    from engine.ml_service import MLService

    engine: EngineSettings = args.runtime.engine
    kwargs = {"auto_train": engine.auto_train, "keep_versions": engine.keep_versions} | options
    return MLService(model_path_of(args), **kwargs)


def decision_engine(args: argparse.Namespace) -> AIDecisionEngine:
    """Raises ConfigError when the built-in model would have to be trained where it cannot be."""
    from engine.decision import AIDecisionEngine

    ml = ml_service(args)
    check_model_path(ml.model_path, train_models=ml.auto_train)
    engine = AIDecisionEngine(ml, uncertain_below=args.runtime.engine.uncertain_below)
    asyncio.run(engine.start())
    return engine


class UsageError(Exception):
    """The command was asked for something that does not exist: exit status 2, nothing done."""


class StoreFailed(Exception):
    """The feedback store could not be used; the message says why and what to check."""


class _LastConnectionError(logging.Handler):
    """The connection pool's retries, each a multi-line warning, kept for the one error line instead."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().strip().splitlines()
        if message:  # "error connecting in 'oncall-store': connection failed: connection to server at ..."
            self.last = message[0].split("connection failed: ", 1)[-1]


T = TypeVar("T")


def run_store(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(work())`` against the store, the pool's retries quiet; StoreFailed when it fails."""
    pool = logging.getLogger("psycopg.pool")
    seen, propagate = _LastConnectionError(), pool.propagate
    pool.addHandler(seen)
    pool.propagate = False
    try:
        return asyncio.run(work())
    except Exception as exc:
        why = seen.last or (sentence(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}")
        raise StoreFailed(
            f"{redacted(why)}; check that the store --db-url (or $ONCALL_DB_URL) names is up and reachable"
        ) from exc
    finally:
        pool.removeHandler(seen)
        pool.propagate = propagate


def redacted(exc: BaseException | str) -> str:
    """An error for stderr, with the configured secrets and anything shaped like one masked."""
    return redact.redact(str(exc), redact.configured_secrets(os.environ))


def db_url_of(args: argparse.Namespace) -> str:
    return args.db_url or os.environ.get("ONCALL_DB_URL") or default_db_url(os.environ)
