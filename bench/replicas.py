"""Replicas through version changes at a storm's rate: --replicas `oncall serve` processes (default 3)
behind a round-robin proxy share one model directory and one store (--db-url, default a SQLite file)
while the active version changes ten times and is rolled back once; the harness of
tests/integration/test_replicas.py, which runs it at 40 alerts a second for 30 s.

Prints the alerts posted, the replies lost and doubled, the event deliveries Slack saw fail (no ack
within 3 s: Slack then re-delivers, which adds load), and the alert-to-reply time (p50/p99).

    python bench/replicas.py [--rate 100] [--seconds 60] [--db-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from e2e import percentile  # bench/ is the script's directory

from training.train import TrainConfig, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for its tests package
from tests.integration import test_replicas


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=100, help="alerts a second")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--replicas", type=int, default=test_replicas.REPLICAS)
    parser.add_argument("--db-url", help="a store the replicas share (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        for seed in (7, 8):  # two versions to switch between, as the test's fixture trains them
            train(TrainConfig(samples=1500, seed=seed, progress=False), models)
        db_url = args.db_url or f"sqlite:///{Path(tmp) / 'shared.db'}"
        run = asyncio.run(test_replicas.replay(models, db_url, args.rate, args.seconds, args.replicas))
    at = {ts: t for _, ts, t in run.posted}
    waits = [calls[0].at - at[ts] for (_, ts), calls in run.replies.items() if ts in at]
    store = db_url.split(":", 1)[0]
    print(f"{args.replicas} replicas, {args.rate} alerts/s for {args.seconds} s, store {store}")
    print(f"  alerts posted              {len(run.posted)}")
    print(f"  replies lost / doubled     {len(run.missing)} / {len(run.doubled)}")
    print(f"  event deliveries failed    {len(run.failed_deliveries)}")
    print(f"  alert to reply p50 / p99   {percentile(waits, 0.5):.2f} s / {percentile(waits, 0.99):.2f} s")


if __name__ == "__main__":
    main()
