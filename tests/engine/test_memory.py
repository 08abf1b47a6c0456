"""The similar-incident index (engine/memory.py) and the final labels it shows (engine/labels.py): real
synthetic incidents, searched and checked against an exact brute-force cosine."""

from __future__ import annotations

import math
import sys
import threading

import numpy as np
import pytest

from engine.labels import final_labels
from engine.memory import IncidentMemory, features
from training.synthetic import generate_incidents

HISTORY = {
    "a": "Primary PostgreSQL orders-db replication lag 40 minutes, replica failover stuck",
    "b": "TLS certificate expired on api-gateway, clients fail handshake",
    "c": "Kafka consumer lag on payments.events topic growing, consumers rebalancing",
    "d": "Deploy v2.31 of checkout broke cart totals, rollback started",
}


def memory(**kw: float) -> IncidentMemory:
    m = IncidentMemory(**kw)
    m.add_many((key, text, key.upper()) for key, text in HISTORY.items())
    return m


def test_the_incident_with_the_same_cause_comes_first_with_its_payload() -> None:
    hits = memory().search("orders-db replica lag climbing, replication to the replica stuck")
    assert hits and hits[0].id == "a" and hits[0].payload == "A"
    assert hits == sorted(hits, key=lambda h: -h.score)
    assert memory().search("certificate expired for api-gateway")[0].id == "b"


def test_nothing_unrelated_is_shown_and_nothing_from_nothing() -> None:
    assert memory().search("the office coffee machine is out of beans") == []
    assert memory().search("") == []
    assert IncidentMemory().search("orders-db replication lag") == []
    # Without the minimum, the ranking alone still returns its best guesses.
    assert memory(min_similarity=0.0).search("replica lag and kafka consumers", k=2)


def test_exclude_k_and_a_re_added_id_replaces_its_text() -> None:
    m = memory()
    assert [h.id for h in m.search(HISTORY["c"], exclude=["c"], k=3)] == []
    m.add("e", "Kafka consumer lag on orders topic, consumers restarting", "E")
    assert [h.id for h in m.search(HISTORY["c"], k=1)] == ["c"]
    assert [h.id for h in m.search(HISTORY["c"], exclude=["c"])] == ["e"]
    m.add("c", "Disk full on build agents", "C2")  # the same id, another incident
    assert len(m) == 5 and "c" in m
    assert [h.id for h in m.search(HISTORY["c"])] == ["e"]
    assert m.search("disk full on the build agents")[0].payload == "C2"
    assert m.update("c", "C3") and m.payload("c") == "C3" and not m.update("zz", "?")


def brute_force(texts: list[str], query: str) -> list[float]:
    """Exact cosine of sublinear-tf idf vectors over the same hashed terms, computed from scratch."""
    docs = [features(t) for t in texts]
    df: dict[int, int] = {}
    for d in docs:
        for t in d:
            df[t] = df.get(t, 0) + 1
    n = len(docs)

    def vec(counts: dict[int, int]) -> dict[int, float]:
        v = {t: (1 + math.log(c)) * (math.log((1 + n) / (1 + df.get(t, 0))) + 1) for t, c in counts.items()}
        norm = math.sqrt(sum(x * x for x in v.values()))
        return {t: x / norm for t, x in v.items()}

    q = vec(features(query))
    return [sum(q.get(t, 0.0) * w for t, w in vec(d).items()) for d in docs]


@pytest.mark.slow
def test_scores_are_the_exact_cosine_and_the_best_one_is_found() -> None:
    rows = generate_incidents(600, seed=3)
    texts = [r.text for r in rows[:500]]
    m = IncidentMemory(min_similarity=0.0)
    m.add_many((i, t, None) for i, t in enumerate(texts))
    for r in rows[500:530]:
        exact = brute_force(texts, r.text)
        hits = m.search(r.text, k=3)
        best = int(np.argmax(exact))
        assert hits[0].score >= exact[best] - 1e-3  # the true nearest (or a tie) is found
        for h in hits:
            assert abs(h.score - exact[h.id]) < 1e-3


def test_searches_while_one_writer_adds_never_fail() -> None:
    """Readers search without pause while a writer adds (as the store refresh does, in a thread); the
    threads switch every microsecond so that a search leaving a postings array exported fails the add."""
    rows = generate_incidents(1500, seed=5)
    m = IncidentMemory()
    m.add_many((i, r.text, r.category) for i, r in enumerate(rows[:200]))
    errors: list[BaseException] = []
    writing = threading.Event()
    writing.set()

    def read() -> None:
        try:
            while writing.is_set():
                for r in rows[:50]:
                    for hit in m.search(r.text):
                        assert hit.payload == rows[hit.id].category
        except BaseException as exc:  # any failure in a reader fails the test
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in readers:
            t.start()
        m.add_many((i, r.text, r.category) for i, r in enumerate(rows[200:], start=200))
    finally:
        writing.clear()
        for t in readers:
            t.join()
        sys.setswitchinterval(interval)
    assert not errors and len(m) == 1500


def test_final_labels_correction_outranks_confirmation_and_a_reject_leaves_it_unknown() -> None:
    votes = [
        ("U1", "verdict", "+1", "confirm", 1.0),
        ("U2", "category", "correct_category", "database", 3.0),
        ("U3", "category", "correct_category", "network", 2.0),  # older: the latest correction wins
        ("U2", "action", "fixed_other", "failover", 4.0),
        ("U3", "action", "two", "failover", 5.0),
    ]
    final = final_labels("high", "hardware", votes)
    assert (final.severity, final.category, final.actions, final.rejected) == (
        "high",
        "database",
        ("failover",),
        {},
    )
    rejected = final_labels("high", "hardware", [("U1", "verdict", "-1", "reject", 1.0)])
    assert (rejected.severity, rejected.category) == (None, None)
    assert rejected.rejected == {"severity": "high", "category": "hardware"}
    assert final_labels("low", "network", []).severity is None
