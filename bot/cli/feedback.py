"""`oncall feedback` and `oncall history`: the ratings out as labeled data, past incidents in."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from bot.cli.common import (
    DB_URL_HELP,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    LABELED_DATA_HELP,
    StoreFailed,
    _os_reason,
    db_url_of,
    run_store,
    unreadable_files,
)
from bot.cli.models import _local_time


def _feedback(db_url: str) -> list[Any]:
    """The rated decisions in the feedback store at ``db_url``."""
    from bot.store import open_store

    async def read() -> list[Any]:
        store = await open_store(db_url)
        try:
            return await store.feedback()
        finally:
            await store.close()

    return run_store(read)


def cmd_feedback(args: argparse.Namespace) -> int:
    """``export``: the ratings as labeled JSONL (the data, on stdout or in --out; the count on stderr, as
    JSON with --json). ``list``: the rated decisions and their votes, for people (--json: for scripts)."""
    from training.feedback import export_line

    try:
        pairs = _feedback(db_url_of(args))
    except StoreFailed as exc:
        print(f"error: cannot read the feedback store: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.action == "list":
        _list_feedback(pairs, args.json)
        return EXIT_OK
    try:
        out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    except OSError as exc:
        print(f"error: --out {args.out}: {_os_reason(exc)}; name a file that can be written", file=sys.stderr)
        return EXIT_USAGE
    try:
        for decision, votes in pairs:
            out.write(json.dumps(export_line(decision, votes), ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.json:
        summary = {"exported": len(pairs), "out": str(args.out) if args.out else None}
        print(json.dumps(summary), file=sys.stderr)
    else:
        print(f"{len(pairs)} rated decisions exported", file=sys.stderr)
    return EXIT_OK


def _list_feedback(pairs: list[Any], as_json: bool) -> None:
    if as_json:
        rows = [
            {
                "channel": d.channel,
                "reply_ts": d.reply_ts,
                "alert_ts": d.alert_ts,
                "created_at": d.created_at,
                "source": d.source,
                "model_version": d.model_version,
                "severity": d.severity,
                "category": d.category,
                "votes": [
                    {"user": user, "kind": kind, "via": via, "value": value, "at": at}
                    for user, kind, via, value, at in votes
                ],
            }
            for d, votes in pairs
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not pairs:
        print("no rated decisions yet")
    for d, votes in pairs:
        said = "; ".join(f"{user} {kind} {value} ({_local_time(at)})" for user, kind, _, value, at in votes)
        print(
            f"{_local_time(d.created_at)}  {d.channel}/{d.reply_ts}  {d.model_version}  "
            f"{d.severity}/{d.category}  {said}"
        )


def cmd_history(args: argparse.Namespace) -> int:
    """Seed the similar-incident memory with a team's history: labeled JSONL rows into the store."""
    from bot.store import PastIncident, open_store
    from training.dataset import BadLine, iter_jsonl

    incidents: list[PastIncident] = []
    skipped: list[str] = []
    unreadable = unreadable_files("--data", args.data)
    if unreadable:
        print(f"error: {unreadable}", file=sys.stderr)
        return EXIT_USAGE
    for path in args.data:
        try:
            lines = list(iter_jsonl(path))
        except OSError as exc:
            print(f"error: --data {path}: {_os_reason(exc)}; name {LABELED_DATA_HELP}", file=sys.stderr)
            return EXIT_USAGE
        for _, row in lines:
            if isinstance(row, BadLine):
                skipped.append(str(row))
                continue
            title = row.title or row.description.split("\n", 1)[0]
            # Without an id the text is the identity: importing the same file again changes nothing.
            key = row.id or "sha256:" + hashlib.sha256(row.text.encode()).hexdigest()[:24]
            incidents.append(
                PastIncident(
                    id=key,
                    title=title,
                    incident_text=row.text,
                    severity=row.severity,
                    category=row.category,
                    actions=row.actions or (),
                    link=row.link,
                )
            )

    async def write() -> None:
        store = await open_store(db_url_of(args))
        try:
            for incident in incidents:
                await store.import_incident(incident)
        finally:
            await store.close()

    try:
        run_store(write)
    except StoreFailed as exc:
        print(f"error: cannot write to the feedback store: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for reason in skipped:
        print(f"skipped {reason}", file=sys.stderr)
    distinct = len({i.id for i in incidents})
    print(f"{distinct} past incidents imported into the memory, {len(skipped)} lines skipped")
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "feedback", help="export ratings and corrections as labeled JSONL, or list the rated decisions"
    )
    p.add_argument("action", choices=["export", "list"], help="export the ratings, or list them")
    p.add_argument("--json", action="store_true", help="list: JSON; export: the summary on stderr as JSON")
    p.add_argument("--jsonl", action="store_true", help="JSONL in the labeled-data schema (the only format)")
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    p.add_argument("--db-url", help=DB_URL_HELP)
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("history", help="import a team's past incidents for the similar-incident memory")
    p.add_argument("action", choices=["import"], help="import the --data files into the memory")
    p.add_argument("--data", action="append", required=True, type=Path, help="labeled JSONL (repeatable)")
    p.add_argument("--db-url", help=DB_URL_HELP)
    p.set_defaults(func=cmd_history)
