"""`oncall doctor`: the model directory checked end to end."""

from __future__ import annotations

import argparse
import json

from bot.cli.common import EXIT_FAILED, EXIT_OK, add_model_path_arg, model_path_of


def cmd_doctor(args: argparse.Namespace) -> int:
    from engine.doctor import run_checks

    checks = run_checks(model_path_of(args))
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
            "model_path": str(model_path_of(args)),
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


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check the model directory end to end")
    p.add_argument("--json", action="store_true", help="the checks and the verdict as JSON")
    add_model_path_arg(p)
    p.set_defaults(func=cmd_doctor)
