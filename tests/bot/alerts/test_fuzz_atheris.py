"""The coverage-guided fuzz harness (fuzz/fuzz_alerts.py) runs for a bounded time without a crash: any
exception or broken property in the parsers or the renderer fails the test with libFuzzer's report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a 12 s fuzzing run

FUZZ = Path(__file__).resolve().parents[3] / "fuzz"
SECONDS = 12  # ~12k inputs in CI; a few minutes by hand: python fuzz/fuzz_alerts.py -max_total_time=300


def test_the_fuzz_harness_finds_no_crash(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (a dev extra, Linux wheels only)")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            str(FUZZ / "fuzz_alerts.py"),
            str(corpus),
            f"-max_total_time={SECONDS}",
            "-timeout=10",  # one input taking 10 s is a hang: the parsers are bounded
            "-rss_limit_mb=2048",
            f"-dict={FUZZ / 'slack.dict'}",
        ],
        cwd=tmp_path,  # a crash leaves its input here (crash-<sha1>)
        capture_output=True,
        text=True,
        errors="replace",
        timeout=SECONDS + 60,
    )
    done = re.search(r"Done (\d+) runs in (\d+) second", run.stderr)
    assert run.returncode == 0 and done, run.stderr[-4_000:]
    runs = int(done.group(1))
    print(f"atheris: {runs} inputs in {done.group(2)} s, corpus {len(list(corpus.iterdir()))} inputs")
    assert runs > 1_000, "the harness runs, not just starts"
