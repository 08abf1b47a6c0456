"""Similar past incidents: the index's build time, memory and search latency over 100,000 synthetic
incidents, and its quality on the cloud post-mortems (leave-one-out: does the nearest past incident share
the category?) against a random neighbour and the majority category.

Run by hand: ``python bench/similar.py [--incidents 100000] [--queries 2000] [--json]``. The quality part
needs ``../shared/data/real`` and is skipped without it.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from engine.memory import IncidentMemory
from training.dataset import load_jsonl
from training.synthetic import generate_incidents

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
ISSRE = REAL / "cloud_postmortems_issre22.dev.jsonl"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speed(n: int, queries: int, seed: int) -> dict[str, Any]:
    rows = generate_incidents(n + queries, seed=seed)
    past, asked = rows[:n], rows[n:]
    before = _rss_mb()
    memory = IncidentMemory()
    start = time.perf_counter()
    memory.add_many((i, r.text, r.category) for i, r in enumerate(past))
    build = time.perf_counter() - start
    grown = _rss_mb() - before
    latencies, found = [], 0
    for r in asked:
        t = time.perf_counter()
        found += bool(memory.search(r.text, k=3))
        latencies.append((time.perf_counter() - t) * 1000)
    latencies.sort()
    return {
        "incidents": n,
        "build_s": round(build, 2),
        "index_mb": round(memory.memory_bytes() / 2**20, 1),
        "rss_growth_mb": round(grown, 1),
        "queries": queries,
        "query_chars_mean": round(statistics.mean(len(r.text) for r in asked)),
        "search_p50_ms": round(latencies[len(latencies) // 2], 3),
        "search_p99_ms": round(latencies[int(0.99 * len(latencies))], 3),
        "queries_with_a_neighbour": round(found / queries, 3),
    }


def quality(seed: int) -> dict[str, Any] | None:
    if not ISSRE.is_file():
        return None
    rows = [r for r in load_jsonl(ISSRE).rows if r.category]
    memory = IncidentMemory(min_similarity=0.0)  # quality of the ranking itself; the threshold below
    memory.add_many((i, r.text, r.category) for i, r in enumerate(rows))
    gated = IncidentMemory()
    gated.add_many((i, r.text, r.category) for i, r in enumerate(rows))
    top1 = top3 = shown = shown_right = 0
    for i, r in enumerate(rows):
        near = memory.search(r.text, k=3, exclude=[i])
        top1 += bool(near) and near[0].payload == r.category
        top3 += any(n.payload == r.category for n in near)
        kept = gated.search(r.text, k=1, exclude=[i])
        shown += bool(kept)
        shown_right += bool(kept) and kept[0].payload == r.category
    n = len(rows)
    counts = Counter(r.category for r in rows)
    # A random other incident shares the category with probability sum c(c-1) / n(n-1).
    random_top1 = sum(c * (c - 1) for c in counts.values()) / (n * (n - 1))
    rng = random.Random(seed)
    random_top3 = statistics.mean(
        any(rows[j].category == r.category for j in rng.sample([j for j in range(n) if j != i], 3))
        for i, r in enumerate(rows)
    )
    majority = counts.most_common(1)[0][1] / n
    return {
        "rows": n,
        "top1_same_category": round(top1 / n, 3),
        "top3_any_same_category": round(top3 / n, 3),
        "random_neighbour_top1": round(random_top1, 3),
        "random_neighbours_top3": round(random_top3, 3),
        "majority_category": round(majority, 3),
        f"shown_at_min_similarity_{gated.min_similarity}": round(shown / n, 3),
        "top1_same_category_when_shown": round(shown_right / shown, 3) if shown else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {"speed": speed(args.incidents, args.queries, args.seed), "issre22": quality(args.seed)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for part, numbers in result.items():
        print(f"{part}:")
        if numbers is None:
            print(f"  skipped: {ISSRE} is not present")
            continue
        for key, value in numbers.items():
            print(f"  {key:<36} {value}")


if __name__ == "__main__":
    main()
