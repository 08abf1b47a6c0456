"""`oncall serve`: the bot (bot/runner.py), with its start-up errors said in one sentence."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import sys

from bot.cli.common import (
    DB_URL_HELP,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_model_path_arg,
    redacted,
    sentence,
)
from bot.ops import redact
from bot.settings import ConfigError


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.runner import serve
    from bot.settings import load_settings

    try:
        settings = load_settings(
            port=args.port,
            host=args.host,
            model_path=args.model_path,
            db_url=args.db_url,
            channels=tuple(args.channel) or None,
        )
        asyncio.run(serve(settings))
    except ConfigError as exc:  # it may quote a setting's value, and the value may hold a secret
        print(f"error: {redact.redact(str(exc), redact.configured_secrets(os.environ))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # an unreachable database, a port in use: one line (traceback at DEBUG)
        logging.getLogger("oncall").debug("the bot stopped", exc_info=True)
        print(f"error: the bot stopped: {_serve_error(exc)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _serve_error(exc: BaseException) -> str:
    """Why `oncall serve` stopped, and what to do when the cause is a common one."""
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return (
            f"the address is in use ({exc.strerror}): stop what listens there, or choose another port with "
            "--port or $ONCALL_PORT (for /metrics, $ONCALL_METRICS_ADDR)"
        )
    if isinstance(exc, OSError) and exc.errno is not None:
        return sentence(exc)
    return redacted(f"{type(exc).__name__}: {exc}")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the Slack bot (the local Slack emulator when no tokens are set)")
    p.add_argument("--port", type=int, help="HTTP port (default $ONCALL_PORT or 3000)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--db-url", help=DB_URL_HELP)
    p.add_argument("--channel", action="append", default=[], help="channel ID or name to watch (repeatable)")
    add_model_path_arg(p)
    p.set_defaults(func=cmd_serve)
