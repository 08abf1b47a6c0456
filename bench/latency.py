"""Speed of the ML core: synthetic data, training, loading, artifact size, per-alert latency and batch
throughput.

Run by hand (not part of the test suite): ``python bench/latency.py [--samples 50000] [--runs 5]``.
Prints a table of medians over ``--runs`` runs; the naive per-alert scikit-learn call is measured in the
same run, so the ratio holds whatever the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from engine.decision import AIDecisionEngine
from engine.incident import IncidentCreate
from engine.ml_service import MLService, load_model_set
from engine.registry import ACTIONS_FILE, CATEGORY_FILE, SEVERITY_FILE, VECTORIZER_FILE, ModelRegistry
from engine.scorer import SklearnScorer
from training.synthetic import generate_incidents
from training.train import TrainConfig, train


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=50_000, help="synthetic incidents to train on")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--alerts", type=int, default=2_000, help="alerts per latency run")
    parser.add_argument("--batch", type=int, default=20_000, help="alerts per throughput run")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []

    generations = []
    for run in range(args.runs):
        t = time.perf_counter()
        generate_incidents(5_000, seed=run)
        generations.append(time.perf_counter() - t)
    rows.append(("generating 5,000 synthetic incidents", f"{statistics.median(generations):.2f} s"))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "models"
        started = time.perf_counter()
        result = train(TrainConfig(samples=args.samples, progress=False), root)
        train_s = time.perf_counter() - started
        rows.append((f"training on {args.samples:,} synthetic incidents", f"{train_s:.1f} s"))

        version = ModelRegistry(root).active()
        size = sum(info["bytes"] for info in version.metadata["artifacts"].values())
        rows.append(("artifacts on disk (serving.npz and the four joblib files)", f"{size / 1e6:.1f} MB"))
        loads = []
        for _ in range(args.runs):
            t = time.perf_counter()
            load_model_set(version)
            loads.append(time.perf_counter() - t)
        rows.append(
            (
                "loading a version (verify, read serving.npz, check probes, compile)",
                f"{statistics.median(loads) * 1e3:.0f} ms",
            )
        )

        ml = MLService(root, auto_train=False)
        asyncio.run(ml.initialize())
        engine = AIDecisionEngine(ml)
        incidents = [
            IncidentCreate(r.title, r.description, r.service)
            for r in generate_incidents(args.alerts, seed=2024)
        ]
        mean_chars = statistics.mean(len(i.text) for i in incidents)
        with threadpool_limits(1):
            for incident in incidents[:200]:  # warm caches and lazy imports
                engine.analyze(incident)
            p50s, p99s = [], []
            for _ in range(args.runs):
                times = []
                for incident in incidents:
                    t = time.perf_counter_ns()
                    engine.analyze(incident)
                    times.append((time.perf_counter_ns() - t) / 1e3)
                p50s.append(percentile(times, 0.5))
                p99s.append(percentile(times, 0.99))
            objects, _ = version.load_pickles(trust=True)  # trained by this run, a moment ago
            naive = SklearnScorer(
                objects[VECTORIZER_FILE],
                objects[SEVERITY_FILE],
                objects.get(CATEGORY_FILE),
                objects[ACTIONS_FILE],
            )
            naive_times = []
            for incident in incidents[:500]:
                t = time.perf_counter_ns()
                naive.score(incident.text)
                naive_times.append((time.perf_counter_ns() - t) / 1e3)
            batch = [i for _ in range(args.batch // len(incidents) + 1) for i in incidents][: args.batch]
            rates = []
            for _ in range(args.runs):
                t = time.perf_counter()
                engine.analyze_many(batch)
                rates.append(len(batch) / (time.perf_counter() - t))
        p50, p99, naive_p50 = statistics.median(p50s), statistics.median(p99s), percentile(naive_times, 0.5)
        rows.append((f"analyze() one alert, p50 (mean {mean_chars:.0f} chars)", f"{p50:.0f} µs"))
        rows.append(("analyze() one alert, p99", f"{p99:.0f} µs"))
        rows.append(
            (
                "naive scikit-learn pipeline per alert, p50",
                f"{naive_p50:.0f} µs ({naive_p50 / p50:.1f}x slower)",
            )
        )
        cores = len(os.sched_getaffinity(0))
        rows.append(
            (
                f"analyze_many() batch throughput ({cores} cores)",
                f"{statistics.median(rates):,.0f} alerts/s",
            )
        )
        rows.append(("model version", result.version))

    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
