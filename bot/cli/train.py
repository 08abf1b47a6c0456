"""`oncall train`: a new model version from synthetic incidents, the bundled rules and labeled files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.cli.common import (
    DB_URL_HELP,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    StoreFailed,
    add_model_path_arg,
    db_url_of,
    model_path_of,
    print_metrics,
    print_quality,
    sentence,
    unreadable_files,
)
from bot.cli.feedback import _feedback

TRAIN_SAMPLES = 12_000  # `oncall train --samples`: as many as the built-in model (train.BUILTIN_SAMPLES)


# -- commands -------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from engine.registry import RegistryError
    from training.train import GateRefused, TrainConfig, TrainingError, ValidationFailed, train

    unreadable = unreadable_files("--data", args.data) or unreadable_files("--gate-data", args.gate_data)
    if unreadable:
        print(f"error: {unreadable}", file=sys.stderr)
        return EXIT_USAGE
    extra, held_out, rejected = [], [], []
    if args.with_feedback:
        from training.feedback import split_feedback

        try:
            pairs = _feedback(db_url_of(args))  # oldest first
        except StoreFailed as exc:
            print(f"error: cannot read the feedback store: {exc}", file=sys.stderr)
            return EXIT_FAILED
        extra, held_out, rejected = split_feedback(pairs)
        print(
            f"{len(pairs)} rated decisions in {db_url_of(args)}: {len(extra)} labeled incidents to train on, "
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
        keep_versions=args.keep if args.keep is not None else args.runtime.engine.keep_versions,
        gate_data=args.gate_data,
    )
    try:
        result = train(config, model_path_of(args), activate=not args.no_activate)
    except ValidationFailed as exc:
        print(f"refused by the quality floor: {exc}", file=sys.stderr)
        print(
            "what to do: train on more or cleaner data (a larger --samples, --data with your labeled "
            "history), or lower the floor with --min-macro-f1 / --min-action-top3",
            file=sys.stderr,
        )
        print("  all held-out rows pooled (what the floor checks):")
        print_metrics(exc.metrics, indent="    ")
        print_quality(exc.metrics, {})
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
        print(f"error: {sentence(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (RegistryError, OSError) as exc:
        print(f"error: {sentence(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"trained version {result.version} in {result.seconds:.1f}s "
        f"({result.metrics.get('train_rows')} training rows, "
        f"{result.metrics.get('validation_rows')} held out)"
    )
    print_quality(result.metrics, result.data)
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


def add_parsers(sub: argparse._SubParsersAction) -> None:
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
    add_model_path_arg(p)
    p.set_defaults(func=cmd_train)
