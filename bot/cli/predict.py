"""`oncall predict` and `oncall evaluate`: the active model on one text, or on labeled files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_model_path_arg,
    decision_engine,
    model_path_of,
    print_metrics,
    sentence,
    unreadable_files,
)
from bot.settings import ConfigError


def cmd_predict(args: argparse.Namespace) -> int:
    from engine.incident import IncidentCreate

    text = " ".join(args.text)
    incident = IncidentCreate(
        title=args.title if args.title is not None else text,
        description=text if args.title is not None else "",
        service=args.service,
    )
    try:
        engine = decision_engine(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    decision = engine.analyze(incident)
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2))
        return EXIT_OK
    sev_flag = " (uncertain)" if decision.severity_uncertain else ""
    cat_flag = " (uncertain)" if decision.category_uncertain else ""
    print(f"severity: {decision.severity} ({decision.severity_confidence:.0%}){sev_flag}")
    print(f"category: {decision.category} ({decision.category_confidence:.0%}){cat_flag}")
    for i, a in enumerate(decision.actions, 1):
        print(f"action {i}: {a.action} ({a.confidence:.0%})")
    if decision.explanation:
        print("because:  " + ", ".join(repr(t) for t in decision.explanation))
    print(f"model:    {decision.model_version}" + (" (rule-based fallback)" if decision.fallback else ""))
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.ml_service import load_model_set
    from engine.registry import ModelRegistry
    from training.evaluate import evaluate_files

    unreadable = unreadable_files("--data", args.data)
    if unreadable:
        print(f"error: {unreadable}", file=sys.stderr)
        return EXIT_USAGE
    registry = ModelRegistry(model_path_of(args))
    try:
        models = load_model_set(registry.active())
    except Exception as exc:
        print(f"error: cannot load the active model: {sentence(exc)}", file=sys.stderr)
        return EXIT_FAILED
    report, bad = evaluate_files(models.scorer, args.data)
    for line in bad:
        print(f"skipped {line}", file=sys.stderr)
    report["model_version"] = models.version
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"model {models.version} on {report['rows']} rows ({len(bad)} bad lines skipped)")
        print_metrics(report)
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="decide on one incident text")
    p.add_argument("text", nargs="+", help="the alert or incident text (the description with --title)")
    p.add_argument("--title", help="the title, when TEXT is the description (default: TEXT is the title)")
    p.add_argument("--service", help="the service it concerns (default: none)")
    p.add_argument("--json", action="store_true", help="the decision as JSON instead of text")
    add_model_path_arg(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="score the active model on labeled JSONL files")
    p.add_argument(
        "--data", action="append", required=True, type=Path, help="labeled JSONL file (repeatable)"
    )
    p.add_argument("--json", action="store_true", help="the report as JSON instead of text")
    add_model_path_arg(p)
    p.set_defaults(func=cmd_evaluate)
