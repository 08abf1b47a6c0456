"""`oncall models`: the kept versions listed, checked, promoted, rolled back, put on trial, imported."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    StoreFailed,
    UsageError,
    add_model_path_arg,
    db_url_of,
    ml_service,
    model_path_of,
    run_store,
    sentence,
    unreadable_files,
)

if TYPE_CHECKING:
    from engine.registry import ModelRegistry


def _version_arg(registry: ModelRegistry, args: argparse.Namespace, what: str) -> str:
    """The VERSION argument, once it names a version in the registry."""
    from engine.registry import RegistryError

    if not args.version:
        raise UsageError(f"{what} needs a VERSION (see `oncall models list`)")
    try:
        registry.get(args.version)
    except RegistryError:
        if not any(v.id == args.version for v in registry.list_versions()):
            raise UsageError(f"no model version {args.version!r} in {registry.versions_dir}") from None
        raise
    return args.version


def _local_time(value: Any) -> str | None:
    """An epoch or an ISO 8601 time as ISO 8601 in this machine's time zone, to the second."""
    if value is None or value == "":
        return None
    try:
        when = (
            datetime.fromtimestamp(float(value), UTC)
            if isinstance(value, int | float)
            else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        )
    except (ValueError, OverflowError, OSError):
        return str(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone().isoformat(timespec="seconds")


def _list_models(registry: ModelRegistry, as_json: bool) -> int:
    from engine.quality import headline

    active = registry.active_id()
    versions = registry.list_versions()
    if as_json:
        rows = [
            {
                "version": v.id,
                "active": v.id == active,
                "trained_at": v.trained_at,
                "quality": headline(v.metadata),
                "can_serve": not v.legacy(),
            }
            for v in versions
        ]
        print(json.dumps({"model_path": str(registry.root), "active": active, "versions": rows}, indent=2))
        return EXIT_OK
    if not versions and active is None:
        print(f"no versions in {registry.root}: run `oncall train`")
    for v in versions:
        mark = "*" if v.id == active else " "
        line = f"{mark} {v.id}  trained {_local_time(v.trained_at)}  {headline(v.metadata)}"
        if v.legacy():
            line += f"  (cannot serve: `oncall models convert {v.id} --trust-pickles`)"
        print(line)
    if active == "flat":
        print(
            f"* flat (joblib files straight in {registry.root}, which cannot serve: `oncall models "
            f"import {registry.root} --trust-pickles` makes a version of them)"
        )
    return EXIT_OK


def _named(value: Any, none: str = "none") -> str:
    """A value for people: what ``None`` means instead of Python's "None"."""
    return none if value is None or value == "" else str(value)


def _print_status(health: dict[str, Any]) -> None:
    """`oncall models status` for people: what serves, why not the active version, and how good it is."""
    print(f"status:           {health['status']}")
    print(f"serving version:  {_named(health['serving_version'])} (scorer: {health['scorer']})")
    print(f"active version:   {_named(health['active_version'], 'none (`oncall train` makes one)')}")
    print(f"loaded at:        {_local_time(health['loaded_at'])} in {health['load_seconds']:.3f} s")
    if health["last_error"]:
        print(f"last error:       {health['last_error']}")
    reload = health["last_reload"]
    if reload:
        outcome = "ok" if reload["ok"] else f"failed: {reload['error']}"
        old, new = _named(reload["old_version"]), _named(reload["new_version"])
        print(f"last reload:      {old} -> {new} ({outcome})")
    failures = {stage: n for stage, n in health["load_failures"].items() if n}
    if failures:
        print("load failures:    " + ", ".join(f"{stage} {n}" for stage, n in sorted(failures.items())))
    for warning in health["warnings"]:
        print(f"warning:          {warning}")
    print("models:")
    for name, model in health["models"].items():
        state = "loaded" if model["loaded"] else "not loaded"
        accuracy = "" if model["accuracy"] is None else f", {model['accuracy']:.3f} on {model['measured_on']}"
        print(f"  {name:<20} {state}{accuracy}")
    trained = next(iter(health["models"].values()), {}).get("trained_at")
    if trained:
        print(f"trained at:       {_local_time(trained)}")
    if not health["quality"]:
        print("quality:          not measured (no held-out rows)")
    for quality in health["quality"]:
        print(f"quality on {quality['label']}:")
        for name, number in quality["numbers"].items():
            print(f"  {name:<24} {number['value']:.3f} (n={number['n']})")


def _print_compare(compared: dict[str, Any]) -> None:
    """`oncall models compare A B` for people: B's trial beside A, then the ratings each one earned."""
    t = compared["trial"]
    print(f"{t['version']} on trial beside {t['against']}: {t['alerts']} alerts, {t['answered']} answered")
    print(
        f"  agreement: severity {t['severity_agreement']:.0%}, category {t['category_agreement']:.0%}, "
        f"top action {t['action_agreement']:.0%}"
    )
    print(f"  latency:   p50 {t['latency_p50_ms']:.1f} ms, p99 {t['latency_p99_ms']:.1f} ms")
    for version, r in compared["ratings"].items():
        print(
            f"{version}: {r['decisions']} decisions; {r['confirm']} confirmed, {r['reject']} rejected, "
            f"{r['action']} actions confirmed, {r['corrected']} corrected"
        )


def cmd_models(args: argparse.Namespace) -> int:
    from engine.ml_service import load_model_set
    from engine.registry import ModelRegistry, model_key

    registry = ModelRegistry(model_path_of(args), keep=args.runtime.engine.keep_versions)
    try:
        if args.action == "list":
            return _list_models(registry, args.json)
        if args.action == "import":
            return _import(registry, args)
        if args.action == "convert":
            return _convert(registry, args)
        if args.action == "verify":
            checks = registry.check_all(model_key(registry.root))
            bad = [c for c in checks if c.verdict == "BAD"]
            if args.json:
                rows = [{"name": c.name, "verdict": c.verdict, "detail": c.detail} for c in checks]
                report = {"model_path": str(registry.root), "ok": not bad, "checks": rows}
                print(json.dumps(report, indent=2))
                return EXIT_FAILED if bad else EXIT_OK
            for c in checks:
                print(f"{c.verdict:<8} {c.name}: {c.detail}")
            print(f"{len(bad)} problem(s) in {registry.root}" if bad else f"{registry.root} verifies")
            return EXIT_FAILED if bad else EXIT_OK
        if args.action == "status":
            ml = ml_service(args, auto_train=False)
            asyncio.run(ml.initialize())
            health = ml.health()
            if args.json:
                print(json.dumps(health, indent=2, default=str))
            else:
                _print_status(health)
            return EXIT_OK if health["status"] == "ok" else EXIT_FAILED
        if args.action == "promote":
            from training.train import GateRefused, promote

            version = _version_arg(registry, args, "promote")
            unreadable = unreadable_files("--gate-data", args.gate_data)
            if unreadable:
                raise UsageError(unreadable)
            load_model_set(registry.get(version))  # never activate what cannot serve
            try:
                verdict = promote(registry, version, args.gate_data, force=args.force)
            except GateRefused as exc:
                print(f"refused by the promotion gate: {exc}", file=sys.stderr)
                return EXIT_REFUSED
            forced = " (forced past the gate: " + "; ".join(verdict.reasons) + ")" if verdict.reasons else ""
            print(f"active version is now {version}{forced}")
            return EXIT_OK
        if args.action == "rollback":
            rolled = registry.rollback()
            print(f"rolled back: active version is now {rolled.id}")
            return EXIT_OK
        if args.action in ("shadow", "canary"):
            version = _version_arg(registry, args, args.action)
            if not 0 < args.share <= 1:
                raise UsageError(f"--share must be above 0 and at most 1, got {args.share:g}")
            load_model_set(registry.get(version))  # never trial what cannot serve
            trial = registry.start_trial(version, args.action, args.share)
            canary = trial["mode"] == "canary"
            answers = f"answers {trial['share']:.0%} of the alerts" if canary else "answers none"
            print(
                f"trial started at {_local_time(trial['started_at'])}: {version} in {trial['mode']} "
                f"({answers}); every bot sharing {registry.root} follows it"
            )
            return EXIT_OK
        if args.action == "end-trial":
            registry.end_trial()
            print("trial ended")
            return EXIT_OK
        if args.action == "compare":
            if not args.version or not args.other:
                raise UsageError("compare needs two versions: A (the active one then) and B (on trial)")
            try:
                compared = _compare(db_url_of(args), args.version, args.other)
            except StoreFailed as exc:
                print(f"error: cannot read the feedback store: {exc}", file=sys.stderr)
                return EXIT_FAILED
            if args.json:
                print(json.dumps(compared, indent=2))
            else:
                _print_compare(compared)
            return EXIT_OK
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        raise  # main(): the reader of the output left
    except Exception as exc:
        print(f"error: {sentence(exc)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_USAGE


def _import(registry: ModelRegistry, args: argparse.Namespace) -> int:
    """A flat folder of joblib files (the guide's models/) as a new version, promoted through the gate."""
    from engine.convert import import_flat
    from engine.registry import model_key
    from training.train import GateRefused, promote

    if not args.version:
        raise UsageError("import needs the DIR that holds the joblib files")
    if not Path(args.version).is_dir():
        raise UsageError(f"import needs the DIR that holds the joblib files: {args.version} is no directory")
    unreadable = unreadable_files("--gate-data", args.gate_data)
    if unreadable:
        raise UsageError(unreadable)
    trust = args.trust_pickles or args.runtime.engine.trust_pickles
    version = import_flat(registry, Path(args.version), trust, model_key(registry.root))
    print(f"imported {args.version} as version {version.id} (serving.npz written beside its joblib files)")
    if args.no_activate:
        return EXIT_OK
    try:
        promote(registry, version.id, args.gate_data, force=args.force)
    except GateRefused as exc:
        print(f"refused by the promotion gate: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"active version is now {version.id}")
    return EXIT_OK


def _convert(registry: ModelRegistry, args: argparse.Namespace) -> int:
    """Versions saved before serving artifacts (VERSION, else all of them) get theirs from their pickles."""
    from engine.convert import convert_version
    from engine.registry import model_key

    versions = [args.version] if args.version else [v.id for v in registry.list_versions() if v.legacy()]
    if not versions:
        print(f"every version in {registry.root} has its serving artifact")
    trust = args.trust_pickles or args.runtime.engine.trust_pickles
    key = model_key(registry.root)
    active = registry.active_id()
    for version in versions:
        convert_version(registry, version, trust, key)
        # A bot that met no servable version trained the built-in one, which is active now.
        again = "" if version == active else f"; `oncall models promote {version}` makes it active"
        print(f"converted {version}: serving.npz written from its joblib files, it predicts as it did{again}")
    return EXIT_OK


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

    return run_store(read)


def add_parsers(sub: argparse._SubParsersAction) -> None:
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
        help="what to do (above)",
    )
    p.add_argument("version", nargs="?", help="a version id (import: the DIR holding the joblib files)")
    p.add_argument("other", nargs="?", help="compare: the version on trial")
    p.add_argument("--share", type=float, default=0.1, help="canary: the share of alerts it answers")
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
    p.add_argument("--json", action="store_true", help="list, status, verify, compare: JSON instead of text")
    add_model_path_arg(p)
    p.set_defaults(func=cmd_models)
