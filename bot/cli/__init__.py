"""The `oncall` command: thin argument parsing over the functions the bot and the tests call; one
module per command group."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.cli import doctor, feedback, models, predict, serve, train
from bot.cli.common import EXIT_FAILED, EXIT_USAGE, HelpFormatter, Parser, model_path_of, package_version
from bot.ops import logs, redact
from bot.settings import ConfigError, check_model_key, load_runtime


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oncall",
        description="AI on-call agent for Slack",
        epilog="exit status: 0 done, 1 failed at run time, 2 usage error (a bad flag or setting), "
        "4 refused by the promotion gate or the quality floor",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"oncall {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train.add_parsers(sub)
    predict.add_parsers(sub)
    doctor.add_parsers(sub)
    serve.add_parsers(sub)
    feedback.add_parsers(sub)
    models.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 done, 1 failed at run time (a model that does not load, a store that is down, a
    check that found a problem), 2 a usage error (a bad flag or setting: nothing was done), 4 refused by
    the promotion gate or the quality floor (the new version is not active)."""
    secrets = redact.configured_secrets(os.environ)
    try:
        runtime = load_runtime()
    except ConfigError as exc:
        print(f"error: {redact.redact(str(exc), secrets)}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure(runtime.log_level, runtime.log_format, secrets)
    args = build_parser().parse_args(argv)
    args.runtime = runtime
    if hasattr(args, "model_path"):
        if args.model_path is not None:
            if not args.model_path.strip():
                print(
                    "error: --model-path is empty: name the model directory (or leave the flag out).",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            args.model_path = Path(args.model_path)
        try:
            check_model_key(model_path_of(args))
        except ConfigError as exc:
            print(f"error: {redact.redact(str(exc), secrets)}", file=sys.stderr)
            return EXIT_USAGE
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `oncall models list | head -1`: the reader has what it wanted, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return EXIT_FAILED
