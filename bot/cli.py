"""The `oncall` command: thin argument parsing over the functions the bot and the tests call."""

from __future__ import annotations

import argparse
import asyncio
import errno
import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot import logs, redact
from bot.config import ConfigError, Runtime, check_model_key, check_model_path, default_db_url, load_runtime

if TYPE_CHECKING:
    from engine.decision import AIDecisionEngine
    from engine.ml_service import MLService
    from engine.registry import ModelRegistry

# Exit statuses (README: "The `oncall` command"): distinct, so that a script can tell them apart.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 4
DB_URL_HELP = "feedback store (default $ONCALL_DB_URL, else data/oncall.db in $ONCALL_DATA_DIR or data)"
TRAIN_SAMPLES = 6000  # `oncall train --samples`: as many as the built-in model (train.BUILTIN_SAMPLES)
LABELED_DATA_HELP = "a labeled JSONL file (the schema: LABELED_DATA.md)"


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


class _Parser(argparse.ArgumentParser):
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


def _sentence(exc: BaseException) -> str:
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
    return _redacted(text)


def _unreadable(flag: str, paths: Sequence[Path]) -> str | None:
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


def _version() -> str:
    try:
        return metadata.version("oncall-agent")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _model_path_arg(parser: argparse.ArgumentParser) -> None:
    # A string, made a Path in main(): Path("") would be ".", and an empty flag would train into the
    # current directory.
    parser.add_argument(
        "--model-path", default=None, help="model directory (default: $ML_MODEL_PATH or models)"
    )


def _model_path(args: argparse.Namespace) -> Path:
    from engine.ml_service import default_model_path

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
    from engine.quality import measured

    sets = measured({"metrics": metrics, "data": data})
    if not sets:
        print("  no held-out rows: quality not measured")
    for m in sets:
        print(f"  on {m.describe()}:")
        _print_metrics(m.metrics, indent="    ")


# -- commands -------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from engine.registry import RegistryError
    from training.train import GateRefused, TrainConfig, TrainingError, ValidationFailed, train

    unreadable = _unreadable("--data", args.data) or _unreadable("--gate-data", args.gate_data)
    if unreadable:
        print(f"error: {unreadable}", file=sys.stderr)
        return EXIT_USAGE
    extra, held_out, rejected = [], [], []
    if args.with_feedback:
        from training.feedback import split_feedback

        try:
            pairs = _feedback(_db_url(args))  # oldest first
        except StoreFailed as exc:
            print(f"error: cannot read the feedback store: {exc}", file=sys.stderr)
            return EXIT_FAILED
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
        keep_versions=args.keep if args.keep is not None else args.runtime.keep_versions,
        gate_data=args.gate_data,
    )
    try:
        result = train(config, _model_path(args), activate=not args.no_activate)
    except ValidationFailed as exc:
        print(f"refused by the quality floor: {exc}", file=sys.stderr)
        print(
            "what to do: train on more or cleaner data (a larger --samples, --data with your labeled "
            "history), or lower the floor with --min-macro-f1 / --min-action-top3",
            file=sys.stderr,
        )
        print("  all held-out rows pooled (what the floor checks):")
        _print_metrics(exc.metrics, indent="    ")
        _print_quality(exc.metrics, {})
        return EXIT_REFUSED
    except GateRefused as exc:
        print(
            f"refused by the promotion gate: version {exc.version_id} is saved but not active: "
            f"{'; '.join(exc.gate.reasons) or exc}.",
            file=sys.stderr,
        )
        print(f"what to do: {_gate_advice(args, exc.version_id)}", file=sys.stderr)
        return EXIT_REFUSED
    except TrainingError as exc:  # the data given cannot train a model: fix the flags or the files
        print(f"error: {_sentence(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (RegistryError, OSError) as exc:
        print(f"error: {_sentence(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"trained version {result.version} in {result.seconds:.1f}s "
        f"({result.metrics.get('train_rows')} training rows, "
        f"{result.metrics.get('validation_rows')} held out)"
    )
    _print_quality(result.metrics, result.data)
    print(f"saved to {result.path}" + ("" if args.no_activate else " (active)"))
    return EXIT_OK


def _gate_advice(args: argparse.Namespace, version: str) -> str:
    """What a person whose `oncall train` the gate refused can do next: give the new model what the active
    one had (more incidents, their own history to be judged on), or activate it anyway."""
    anyway = f"`oncall models promote {version} --force` makes this version active anyway"
    if args.no_synthetic and not args.gate_data:
        more = (
            "it was trained on your --data alone but judged on synthetic text: give --gate-data with "
            "held-out rows of your history"
        )
    elif not args.no_synthetic and args.samples < TRAIN_SAMPLES:
        more = f"train with more incidents (--samples {TRAIN_SAMPLES}, the default, or more)"
    else:
        more = f"train on more data (--samples above {args.samples}, --data with your labeled history)"
    return f"{more}; or {anyway}."


def _ml(args: argparse.Namespace, **options: Any) -> MLService:
    """The model service as the settings say (ML_AUTO_TRAIN, ML_KEEP_VERSIONS), ``options`` over them."""
    from engine.ml_service import MLService

    runtime: Runtime = args.runtime
    kwargs = {"auto_train": runtime.auto_train, "keep_versions": runtime.keep_versions} | options
    return MLService(_model_path(args), **kwargs)


def _engine(args: argparse.Namespace) -> AIDecisionEngine:
    """Raises ConfigError when the built-in model would have to be trained where it cannot be."""
    from engine.decision import AIDecisionEngine

    ml = _ml(args)
    check_model_path(ml.model_path, train_models=ml.auto_train)
    engine = AIDecisionEngine(ml, uncertain_below=args.runtime.uncertain_below)
    asyncio.run(engine.start())
    return engine


def cmd_predict(args: argparse.Namespace) -> int:
    from engine.incident import IncidentCreate

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

    unreadable = _unreadable("--data", args.data)
    if unreadable:
        print(f"error: {unreadable}", file=sys.stderr)
        return EXIT_USAGE
    registry = ModelRegistry(_model_path(args))
    try:
        models = load_model_set(registry.active())
    except Exception as exc:
        print(f"error: cannot load the active model: {_sentence(exc)}", file=sys.stderr)
        return EXIT_FAILED
    report, bad = evaluate_files(models.scorer, args.data)
    for line in bad:
        print(f"skipped {line}", file=sys.stderr)
    report["model_version"] = models.version
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"model {models.version} on {report['rows']} rows ({len(bad)} bad lines skipped)")
        _print_metrics(report)
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from engine.doctor import run_checks

    checks = run_checks(_model_path(args))
    failed = [c for c in checks if not c.ok]
    warned = [c for c in checks if c.ok and c.warning]
    if failed:
        verdict = f"NOT healthy ({failed[0].name}): fix the first failure above"
    elif warned:  # never a bare "healthy" beside an implausible prediction
        verdict = (
            f"healthy, the bot can serve this model, but with {len(warned)} warning(s) above: "
            + ", ".join(c.name for c in warned)
        )
    else:
        verdict = "healthy, the bot can serve this model"
    if args.json:
        report = {
            "healthy": not failed,
            "verdict": verdict,
            "warnings": [c.name for c in warned],
            "model_path": str(_model_path(args)),
            "checks": [
                {"name": c.name, "ok": c.ok, "warning": c.warning, "detail": c.detail} for c in checks
            ],
        }
        print(json.dumps(report, indent=2))
    else:
        for c in checks:
            mark = "FAIL" if not c.ok else ("WARN" if c.warning else " ok ")
            print(f"[{mark}] {c.name}: {c.detail}")
        print("verdict: " + verdict)
    return EXIT_OK if not failed else EXIT_FAILED


class UsageError(Exception):
    """The command was asked for something that does not exist: exit status 2, nothing done."""


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

    registry = ModelRegistry(_model_path(args), keep=args.runtime.keep_versions)
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
            ml = _ml(args, auto_train=False)
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
            unreadable = _unreadable("--gate-data", args.gate_data)
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
                compared = _compare(_db_url(args), args.version, args.other)
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
        print(f"error: {_sentence(exc)}", file=sys.stderr)
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
    unreadable = _unreadable("--gate-data", args.gate_data)
    if unreadable:
        raise UsageError(unreadable)
    trust = args.trust_pickles or args.runtime.trust_pickles
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
    trust = args.trust_pickles or args.runtime.trust_pickles
    key = model_key(registry.root)
    active = registry.active_id()
    for version in versions:
        convert_version(registry, version, trust, key)
        # A bot that met no servable version trained the built-in one, which is active now.
        again = "" if version == active else f"; `oncall models promote {version}` makes it active"
        print(f"converted {version}: serving.npz written from its joblib files, it predicts as it did{again}")
    return EXIT_OK


def _feedback(db_url: str) -> list[Any]:
    """The rated decisions in the feedback store at ``db_url``."""
    from bot.store import open_store

    async def read() -> list[Any]:
        store = await open_store(db_url)
        try:
            return await store.feedback()
        finally:
            await store.close()

    return _run_store(read)


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

    return _run_store(read)


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


def _run_store(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(work())`` against the store, the pool's retries quiet; StoreFailed when it fails."""
    pool = logging.getLogger("psycopg.pool")
    seen, propagate = _LastConnectionError(), pool.propagate
    pool.addHandler(seen)
    pool.propagate = False
    try:
        return asyncio.run(work())
    except Exception as exc:
        why = seen.last or (_sentence(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}")
        raise StoreFailed(
            f"{_redacted(why)}; check that the store --db-url (or $ONCALL_DB_URL) names is up and reachable"
        ) from exc
    finally:
        pool.removeHandler(seen)
        pool.propagate = propagate


def _redacted(exc: BaseException | str) -> str:
    """An error for stderr, with the configured secrets and anything shaped like one masked."""
    return redact.redact(str(exc), redact.configured_secrets(os.environ))


def _db_url(args: argparse.Namespace) -> str:
    return args.db_url or os.environ.get("ONCALL_DB_URL") or default_db_url(os.environ)


def cmd_feedback(args: argparse.Namespace) -> int:
    """``export``: the ratings as labeled JSONL (the data, on stdout or in --out; the count on stderr, as
    JSON with --json). ``list``: the rated decisions and their votes, for people (--json: for scripts)."""
    from training.feedback import export_line

    try:
        pairs = _feedback(_db_url(args))
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
    unreadable = _unreadable("--data", args.data)
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
        store = await open_store(_db_url(args))
        try:
            for incident in incidents:
                await store.import_incident(incident)
        finally:
            await store.close()

    try:
        _run_store(write)
    except StoreFailed as exc:
        print(f"error: cannot write to the feedback store: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for reason in skipped:
        print(f"skipped {reason}", file=sys.stderr)
    distinct = len({i.id for i in incidents})
    print(f"{distinct} past incidents imported into the memory, {len(skipped)} lines skipped")
    return EXIT_OK


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
        return _sentence(exc)
    return _redacted(f"{type(exc).__name__}: {exc}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oncall",
        description="AI on-call agent for Slack",
        epilog="exit status: 0 done, 1 failed at run time, 2 usage error (a bad flag or setting), "
        "4 refused by the promotion gate or the quality floor",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"oncall {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train a new model version (synthetic + --data files)")
    p.add_argument("--data", action="append", default=[], type=Path, help="labeled JSONL file (repeatable)")
    p.add_argument(
        "--samples",
        type=int,
        default=TRAIN_SAMPLES,
        help="synthetic incidents to generate (fewer train faster but may be refused by the promotion gate)",
    )
    p.add_argument("--seed", type=int, default=42, help="random seed: the same seed and data, the same model")
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
    p.add_argument("--keep", type=int, help="versions kept (default $ML_KEEP_VERSIONS or 5)")
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
    p.add_argument("text", nargs="+", help="the alert or incident text (the description with --title)")
    p.add_argument("--title", help="the title, when TEXT is the description (default: TEXT is the title)")
    p.add_argument("--service", help="the service it concerns (default: none)")
    p.add_argument("--json", action="store_true", help="the decision as JSON instead of text")
    _model_path_arg(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="score the active model on labeled JSONL files")
    p.add_argument(
        "--data", action="append", required=True, type=Path, help="labeled JSONL file (repeatable)"
    )
    p.add_argument("--json", action="store_true", help="the report as JSON instead of text")
    _model_path_arg(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("doctor", help="check the model directory end to end")
    p.add_argument("--json", action="store_true", help="the checks and the verdict as JSON")
    _model_path_arg(p)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("serve", help="run the Slack bot (the local Slack emulator when no tokens are set)")
    p.add_argument("--port", type=int, help="HTTP port (default $ONCALL_PORT or 3000)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--db-url", help=DB_URL_HELP)
    p.add_argument("--channel", action="append", default=[], help="channel ID or name to watch (repeatable)")
    _model_path_arg(p)
    p.set_defaults(func=cmd_serve)

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
    _model_path_arg(p)
    p.set_defaults(func=cmd_models)
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
            check_model_key(_model_path(args))
        except ConfigError as exc:
            print(f"error: {redact.redact(str(exc), secrets)}", file=sys.stderr)
            return EXIT_USAGE
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `oncall models list | head -1`: the reader has what it wanted, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
