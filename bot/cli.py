"""The `oncall` command: thin argument parsing over the functions the bot and the tests call."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot import redact
from bot.config import ConfigError, check_model_path, default_db_url
from engine.decision import AIDecisionEngine
from engine.doctor import run_checks
from engine.incident import IncidentCreate
from engine.ml_service import MLService, default_model_path, load_model_set
from engine.quality import headline, measured
from engine.registry import ModelRegistry, RegistryError, model_key, trust_from_env

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DB_URL_HELP = "feedback store (default $ONCALL_DB_URL, else data/oncall.db in $ONCALL_DATA_DIR or data)"


def _model_path_arg(parser: argparse.ArgumentParser) -> None:
    # A string, made a Path in main(): Path("") would be ".", and an empty flag would train into the
    # current directory.
    parser.add_argument(
        "--model-path", default=None, help="model directory (default: $ML_MODEL_PATH or models)"
    )


def _model_path(args: argparse.Namespace) -> Path:
    return args.model_path if args.model_path is not None else default_model_path()


def _print_metrics(metrics: dict[str, Any], indent: str = "  ") -> None:
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


def _print_quality(metrics: dict[str, Any], data: dict[str, Any]) -> None:
    """A version's held-out numbers by the rows they were measured on: real labeled rows first, synthetic
    ones labeled as such (engine.quality)."""
    sets = measured({"metrics": metrics, "data": data})
    if not sets:
        print("  no held-out rows: quality not measured")
    for m in sets:
        print(f"  on {m.describe()}:")
        _print_metrics(m.metrics, indent="    ")


# -- commands -------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from training.train import GateRefused, TrainConfig, TrainingError, ValidationFailed, train

    extra, held_out, rejected = [], [], []
    if args.with_feedback:
        from training.feedback import split_feedback

        pairs = _feedback(_db_url(args))  # oldest first
        extra, held_out, rejected = split_feedback(pairs)
        print(
            f"{len(pairs)} rated decisions in {_db_url(args)}: {len(extra)} labeled incidents to train on, "
            f"the newest {len(pairs) // 5} held out for the promotion gate",
            file=sys.stderr,
        )
    config = TrainConfig(
        extra_rows=extra,
        gate_rows=held_out,
        gate_rejected=rejected,
        samples=args.samples,
        seed=args.seed,
        data_files=args.data,
        synthetic=not args.no_synthetic,
        bundled=not (args.no_synthetic or args.no_bundled),
        label_noise=args.label_noise,
        min_macro_f1=args.min_macro_f1,
        min_action_top3=args.min_action_top3,
        keep_versions=args.keep,
        gate_data=args.gate_data,
    )
    try:
        result = train(config, _model_path(args), activate=not args.no_activate)
    except ValidationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("  all held-out rows pooled (what the floor checks):")
        _print_metrics(exc.metrics, indent="    ")
        _print_quality(exc.metrics, {})
        return 3
    except GateRefused as exc:
        print(f"refused by the promotion gate: {exc}", file=sys.stderr)
        return 4
    except (TrainingError, RegistryError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"trained version {result.version} in {result.seconds:.1f}s "
        f"({result.metrics.get('train_rows')} training rows, "
        f"{result.metrics.get('validation_rows')} held out)"
    )
    _print_quality(result.metrics, result.data)
    print(f"saved to {result.path}" + ("" if args.no_activate else " (active)"))
    return 0


def _engine(args: argparse.Namespace) -> AIDecisionEngine:
    """Raises ConfigError when the built-in model would have to be trained where it cannot be."""
    ml = MLService(_model_path(args))
    check_model_path(ml.model_path, train_models=ml.auto_train)
    engine = AIDecisionEngine(ml)
    asyncio.run(engine.start())
    return engine


def cmd_predict(args: argparse.Namespace) -> int:
    text = " ".join(args.text)
    incident = IncidentCreate(
        title=args.title if args.title is not None else text,
        description=text if args.title is not None else "",
        service=args.service,
    )
    try:
        engine = _engine(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    decision = engine.analyze(incident)
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2))
        return 0
    sev_flag = " (uncertain)" if decision.severity_uncertain else ""
    cat_flag = " (uncertain)" if decision.category_uncertain else ""
    print(f"severity: {decision.severity} ({decision.severity_confidence:.0%}){sev_flag}")
    print(f"category: {decision.category} ({decision.category_confidence:.0%}){cat_flag}")
    for i, a in enumerate(decision.actions, 1):
        print(f"action {i}: {a.action} ({a.confidence:.0%})")
    if decision.explanation:
        print("because:  " + ", ".join(repr(t) for t in decision.explanation))
    print(f"model:    {decision.model_version}" + (" (rule-based fallback)" if decision.fallback else ""))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_files

    registry = ModelRegistry(_model_path(args))
    try:
        models = load_model_set(registry.active())
    except Exception as exc:
        print(f"error: cannot load the active model: {exc}", file=sys.stderr)
        return 2
    missing = [p for p in args.data if not Path(p).is_file()]
    if missing:
        print(f"error: no such file: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    report, bad = evaluate_files(models.scorer, args.data)
    for line in bad:
        print(f"skipped {line}", file=sys.stderr)
    report["model_version"] = models.version
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"model {models.version} on {report['rows']} rows ({len(bad)} bad lines skipped)")
        _print_metrics(report)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    checks = run_checks(_model_path(args))
    for c in checks:
        mark = "FAIL" if not c.ok else ("WARN" if c.warning else " ok ")
        print(f"[{mark}] {c.name}: {c.detail}")
    failed = [c for c in checks if not c.ok]
    print(
        "verdict: "
        + (
            "healthy, the bot can serve this model"
            if not failed
            else f"NOT healthy ({failed[0].name}): fix the first failure above"
        )
    )
    return 0 if not failed else 1


def cmd_models(args: argparse.Namespace) -> int:
    registry = ModelRegistry(_model_path(args))
    try:
        if args.action == "list":
            active = registry.active_id()
            versions = registry.list_versions()
            if not versions and active is None:
                print(f"no versions in {registry.root}: run `oncall train`")
            for v in versions:
                mark = "*" if v.id == active else " "
                line = f"{mark} {v.id}  trained {v.trained_at}  {headline(v.metadata)}"
                if v.legacy():
                    line += f"  (cannot serve: `oncall models convert {v.id} --trust-pickles`)"
                print(line)
            if active == "flat":
                print(
                    f"* flat (joblib files straight in {registry.root}, which cannot serve: `oncall models "
                    f"import {registry.root} --trust-pickles` makes a version of them)"
                )
            return 0
        if args.action == "import":
            return _import(registry, args)
        if args.action == "convert":
            return _convert(registry, args)
        if args.action == "verify":
            checks = registry.check_all(model_key(registry.root))
            for c in checks:
                print(f"{c.verdict:<8} {c.name}: {c.detail}")
            bad = [c for c in checks if c.verdict == "BAD"]
            print(f"{len(bad)} problem(s) in {registry.root}" if bad else f"{registry.root} verifies")
            return 1 if bad else 0
        if args.action == "status":
            ml = MLService(_model_path(args), auto_train=False)
            asyncio.run(ml.initialize())
            print(json.dumps(ml.health(), indent=2, default=str))
            return 0 if ml.health()["status"] == "ok" else 1
        if args.action == "promote":
            from training.train import GateRefused, promote

            if not args.version:
                print("error: promote needs a VERSION (see `oncall models list`)", file=sys.stderr)
                return 2
            load_model_set(registry.get(args.version))  # never activate what cannot serve
            try:
                verdict = promote(registry, args.version, args.gate_data, force=args.force)
            except GateRefused as exc:
                print(f"refused by the promotion gate: {exc}", file=sys.stderr)
                return 4
            forced = " (forced past the gate: " + "; ".join(verdict.reasons) + ")" if verdict.reasons else ""
            print(f"active version is now {args.version}{forced}")
            return 0
        if args.action == "rollback":
            version = registry.rollback()
            print(f"rolled back: active version is now {version.id}")
            return 0
        if args.action in ("shadow", "canary"):
            if not args.version:
                print(f"error: {args.action} needs a VERSION", file=sys.stderr)
                return 2
            load_model_set(registry.get(args.version))  # never trial what cannot serve
            trial = registry.start_trial(args.version, args.action, args.share)
            print(f"trial started: {json.dumps(trial)} (every bot sharing {registry.root} follows it)")
            return 0
        if args.action == "end-trial":
            registry.end_trial()
            print("trial ended")
            return 0
        if args.action == "compare":
            if not args.version or not args.other:
                print(
                    "error: compare needs two versions: A (the active one then) and B (on trial)",
                    file=sys.stderr,
                )
                return 2
            print(json.dumps(_compare(_db_url(args), args.version, args.other), indent=2))
            return 0
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 2


def _import(registry: ModelRegistry, args: argparse.Namespace) -> int:
    """A flat folder of joblib files (the guide's models/) as a new version, promoted through the gate."""
    from engine.convert import import_flat
    from training.train import GateRefused, promote

    if not args.version:
        print("error: import needs the DIR that holds the joblib files", file=sys.stderr)
        return 2
    trust = args.trust_pickles or trust_from_env()
    version = import_flat(registry, Path(args.version), trust, model_key(registry.root))
    print(f"imported {args.version} as version {version.id} (serving.npz written beside its joblib files)")
    if args.no_activate:
        return 0
    try:
        promote(registry, version.id, args.gate_data, force=args.force)
    except GateRefused as exc:
        print(f"refused by the promotion gate: {exc}", file=sys.stderr)
        return 4
    print(f"active version is now {version.id}")
    return 0


def _convert(registry: ModelRegistry, args: argparse.Namespace) -> int:
    """Versions saved before serving artifacts (VERSION, else all of them) get theirs from their pickles."""
    from engine.convert import convert_version

    versions = [args.version] if args.version else [v.id for v in registry.list_versions() if v.legacy()]
    if not versions:
        print(f"every version in {registry.root} has its serving artifact")
    trust = args.trust_pickles or trust_from_env()
    key = model_key(registry.root)
    active = registry.active_id()
    for version in versions:
        convert_version(registry, version, trust, key)
        # A bot that met no servable version trained the built-in one, which is active now.
        again = "" if version == active else f"; `oncall models promote {version}` makes it active"
        print(f"converted {version}: serving.npz written from its joblib files, it predicts as it did{again}")
    return 0


def _feedback(db_url: str) -> list[Any]:
    """The rated decisions in the feedback store at ``db_url``."""
    from bot.store import open_store

    async def read() -> list[Any]:
        store = await open_store(db_url)
        try:
            return await store.feedback()
        finally:
            await store.close()

    return asyncio.run(read())


def _compare(db_url: str, a: str, b: str) -> dict[str, Any]:
    """B's trial beside A (agreement, latency) and the ratings of each one's posted decisions."""
    from bot.store import open_store

    async def read() -> dict[str, Any]:
        store = await open_store(db_url)
        try:
            return {
                "trial": {"version": b, "against": a, **await store.trial_stats(b, against=a)},
                "ratings": {a: await store.rating_counts(a), b: await store.rating_counts(b)},
            }
        finally:
            await store.close()

    return asyncio.run(read())


def _db_url(args: argparse.Namespace) -> str:
    return args.db_url or os.environ.get("ONCALL_DB_URL") or default_db_url(os.environ)


def cmd_feedback(args: argparse.Namespace) -> int:
    from training.feedback import export_line

    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    try:
        pairs = _feedback(_db_url(args))
        for decision, votes in pairs:
            out.write(json.dumps(export_line(decision, votes), ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{len(pairs)} rated decisions exported", file=sys.stderr)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """Seed the similar-incident memory with a team's history: labeled JSONL rows into the store."""
    from bot.store import PastIncident, open_store
    from training.dataset import BadLine, iter_jsonl

    incidents: list[PastIncident] = []
    skipped: list[str] = []
    for path in args.data:
        try:
            lines = list(iter_jsonl(path))
        except OSError as exc:
            print(f"error: {path}: {exc.strerror or exc}", file=sys.stderr)
            return 2
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
        store = await open_store(_db_url(args))
        try:
            for incident in incidents:
                await store.import_incident(incident)
        finally:
            await store.close()

    try:
        asyncio.run(write())
    except Exception as exc:
        print(
            f"error: {redact.redact(f'{type(exc).__name__}: {exc}', redact.configured_secrets(os.environ))}",
            file=sys.stderr,
        )
        return 2
    for reason in skipped:
        print(f"skipped {reason}", file=sys.stderr)
    distinct = len({i.id for i in incidents})
    print(f"{distinct} past incidents imported into the memory, {len(skipped)} lines skipped")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.config import load_settings
    from bot.runner import serve

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
        return 2
    except Exception as exc:  # an unreachable database, a port in use: one line (traceback at DEBUG)
        logging.getLogger("oncall").debug("the bot stopped", exc_info=True)
        why = redact.redact(f"{type(exc).__name__}: {exc}", redact.configured_secrets(os.environ))
        print(f"error: the bot stopped: {why}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oncall", description="AI on-call agent for Slack")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a new model version (synthetic + --data files)")
    p.add_argument("--data", action="append", default=[], type=Path, help="labeled JSONL file (repeatable)")
    p.add_argument("--samples", type=int, default=6000, help="synthetic incidents to generate")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--no-synthetic",
        action="store_true",
        help="train on --data files alone (no synthetic incidents, no bundled alert rules)",
    )
    p.add_argument(
        "--no-bundled",
        action="store_true",
        help="leave out the real alerting rules shipped in the package (training/data)",
    )
    p.add_argument("--label-noise", type=float, default=0.03, help="share of synthetic labels flipped")
    p.add_argument(
        "--min-macro-f1", type=float, default=0.4, help="refuse a model below this held-out macro-F1"
    )
    p.add_argument(
        "--min-action-top3", type=float, default=0.4, help="refuse a model below this top-3 hit rate"
    )
    p.add_argument(
        "--keep", type=int, default=int(os.environ.get("ML_KEEP_VERSIONS") or 5), help="versions kept"
    )
    p.add_argument("--no-activate", action="store_true", help="save the version without making it active")
    p.add_argument(
        "--with-feedback", action="store_true", help="add the ratings and corrections from the feedback store"
    )
    p.add_argument("--db-url", help=DB_URL_HELP)
    p.add_argument(
        "--gate-data", action="append", default=[], type=Path, help="labeled JSONL for the promotion gate"
    )
    _model_path_arg(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="decide on one incident text")
    p.add_argument("text", nargs="+")
    p.add_argument("--title")
    p.add_argument("--service")
    p.add_argument("--json", action="store_true")
    _model_path_arg(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="score the active model on labeled JSONL files")
    p.add_argument("--data", action="append", required=True, type=Path)
    p.add_argument("--json", action="store_true")
    _model_path_arg(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("doctor", help="check the model directory end to end")
    _model_path_arg(p)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("serve", help="run the Slack bot (the local Slack emulator when no tokens are set)")
    p.add_argument("--port", type=int, help="HTTP port (default $ONCALL_PORT or 3000)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--db-url", help=DB_URL_HELP)
    p.add_argument("--channel", action="append", default=[], help="channel ID or name to watch (repeatable)")
    _model_path_arg(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("feedback", help="export ratings and corrections as labeled JSONL")
    p.add_argument("action", choices=["export"])
    p.add_argument("--jsonl", action="store_true", help="JSONL in the labeled-data schema (the only format)")
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    p.add_argument("--db-url", help=DB_URL_HELP)
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("history", help="import a team's past incidents for the similar-incident memory")
    p.add_argument("action", choices=["import"])
    p.add_argument("--data", action="append", required=True, type=Path, help="labeled JSONL (repeatable)")
    p.add_argument("--db-url", help=DB_URL_HELP)
    p.set_defaults(func=cmd_history)

    p = sub.add_parser(
        "models",
        help="list | status | verify | promote VERSION | rollback | shadow|canary VERSION | end-trial | "
        "compare A B | import DIR | convert [VERSION]",
    )
    p.add_argument(
        "action",
        choices=[
            "list",
            "status",
            "verify",
            "promote",
            "rollback",
            "shadow",
            "canary",
            "end-trial",
            "compare",
            "import",
            "convert",
        ],
    )
    p.add_argument("version", nargs="?", help="a version id (import: the DIR holding the joblib files)")
    p.add_argument("other", nargs="?", help="compare: the version on trial")
    p.add_argument("--share", type=float, default=0.1, help="canary: the share of alerts it answers (0.1)")
    p.add_argument("--db-url", help="compare: the feedback store (default $ONCALL_DB_URL)")
    p.add_argument("--force", action="store_true", help="promote even if the gate refuses (recorded)")
    p.add_argument(
        "--gate-data", action="append", default=[], type=Path, help="labeled JSONL for the promotion gate"
    )
    p.add_argument(
        "--trust-pickles",
        action="store_true",
        help="import, convert: unpickle the joblib files, which runs any code they hold: only files you "
        "trust (or ML_TRUST_PICKLES=1)",
    )
    p.add_argument("--no-activate", action="store_true", help="import: save the version without promoting it")
    _model_path_arg(p)
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    level = (os.environ.get("ONCALL_LOG_LEVEL") or "INFO").strip().upper()
    if level not in LOG_LEVELS:
        print(
            f"error: ONCALL_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}.", file=sys.stderr
        )
        return 2
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    redact.install(redact.configured_secrets(os.environ))
    args = build_parser().parse_args(argv)
    if getattr(args, "model_path", None) is not None:
        if not args.model_path.strip():
            print(
                "error: --model-path is empty: name the model directory (or leave the flag out).",
                file=sys.stderr,
            )
            return 2
        args.model_path = Path(args.model_path)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
