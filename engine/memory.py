"""Nearest past incidents by their text, with no fitted model: it works on a fresh install, grows one
incident at a time, and does not change when the model version does.

An incident is its hashed words, word bigrams and hyphenated names (``db-prod-3``) of its first 4,000
characters, weighted by sublinear tf times an idf kept up to date as incidents arrive; similarity is the
cosine of those vectors. A search scores candidates through an inverted index over the query's rarest
terms only (a bounded number of postings, so 100,000 incidents take milliseconds), then scores the best
candidates exactly with the current idf and keeps those above a minimum: an unrelated incident is worse
than none.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import zlib
from array import array
from collections import Counter
from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

N_FEATURES = 1 << 20
MAX_CHARS = 4000
MIN_SIMILARITY = 0.3  # below this a neighbour shares words, not a cause (bench/similar.py)
POSTINGS_BUDGET = 200_000  # postings read per search, rarest query terms first
CANDIDATES = 64  # scored exactly
_WORD = re.compile(r"[a-z][a-z0-9]+")
_NAME = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)+")


def features(text: str) -> Counter[int]:
    """Hashed term counts of a text: words of two characters or more, adjacent word pairs, and names
    joined by ``-``, ``_`` or ``.`` kept whole (a host or a service is one term as well as its parts)."""
    lower = text[:MAX_CHARS].lower()
    words = _WORD.findall(lower)
    terms = [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words)), *_NAME.findall(lower)]
    return Counter(zlib.crc32(t.encode()) & (N_FEATURES - 1) for t in terms)


def _tf(counts: np.ndarray) -> np.ndarray:
    """Sublinear term frequency: the tenth mention of a word is not ten times the first."""
    return (1.0 + np.log(counts.astype(np.float32))).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Neighbour:
    id: Hashable
    score: float
    payload: Any


class IncidentMemory:
    """Add incidents (one writer: the asyncio loop or one thread building it), search from any thread.
    Re-adding an id replaces its text and payload."""

    def __init__(self, min_similarity: float = MIN_SIMILARITY) -> None:
        self.min_similarity = min_similarity
        self._lock = threading.Lock()
        self._df = np.zeros(N_FEATURES, dtype=np.int32)
        self._postings: dict[int, array[int]] = {}  # feature -> documents (their tf is in the document)
        # Every document's sorted feature ids and their counts (capped at 255), end to end: document i
        # is [_starts[i], _starts[i + 1]). One array each, not two per document: a third of the memory.
        self._terms = array("i")
        self._counts = array("B")
        self._starts = array("q", [0])
        self._norms = array("f")  # per document: its norm under the idf when it was added
        self._ids: list[Hashable] = []
        self._payloads: list[Any] = []
        self._alive = bytearray()
        self._slot: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, id: Hashable) -> bool:
        return id in self._slot

    def _idf(self, terms: np.ndarray) -> np.ndarray:
        n = len(self._slot)
        return (np.log((1.0 + n) / (1.0 + self._df[terms])) + 1.0).astype(np.float32)

    def add(self, id: Hashable, text: str, payload: Any = None) -> None:
        self.add_many([(id, text, payload)])

    def add_many(self, items: Iterable[tuple[Hashable, str, Any]]) -> None:
        for id, text, payload in items:
            counts = features(text)
            terms = np.fromiter(sorted(counts), dtype=np.int32, count=len(counts))
            capped = np.array([min(counts[int(t)], 255) for t in terms], dtype=np.uint8)
            with self._lock:
                self._remove(id)
                doc = len(self._ids)
                self._df[terms] += 1
                self._slot[id] = doc
                self._ids.append(id)
                self._payloads.append(payload)
                self._alive.append(1)
                self._terms.frombytes(terms.tobytes())
                self._counts.frombytes(capped.tobytes())
                self._starts.append(len(self._terms))
                self._norms.append(float(np.linalg.norm(_tf(capped) * self._idf(terms))) or 1.0)
                for t in terms.tolist():
                    post = self._postings.get(t)
                    if post is None:
                        post = self._postings[t] = array("i")
                    post.append(doc)

    def _remove(self, id: Hashable) -> None:
        doc = self._slot.pop(id, None)
        if doc is not None:  # its postings stay, dead; its terms no longer count
            self._alive[doc] = 0
            self._df[self._document(doc)[0]] -= 1

    def _document(self, doc: int) -> tuple[np.ndarray, np.ndarray]:
        """A document's feature ids and counts (copies: the arrays behind them keep growing)."""
        start, end = self._starts[doc], self._starts[doc + 1]
        return (
            np.frombuffer(self._terms[start:end], dtype=np.int32),
            np.frombuffer(self._counts[start:end], dtype=np.uint8),
        )

    def update(self, id: Hashable, payload: Any) -> bool:
        """Replace an incident's payload (its labels changed, not its text); False if it is unknown."""
        with self._lock:
            doc = self._slot.get(id)
            if doc is not None:
                self._payloads[doc] = payload
            return doc is not None

    def payload(self, id: Hashable) -> Any:
        with self._lock:
            return self._payloads[self._slot[id]]

    def search(self, text: str, k: int = 3, exclude: Collection[Hashable] = ()) -> list[Neighbour]:
        """The ``k`` most similar incidents at or above the minimum similarity, most similar first."""
        counts = features(text)
        if not counts:
            return []
        terms = np.fromiter(sorted(counts), dtype=np.int32, count=len(counts))
        with self._lock:
            if not self._slot:
                return []
            idf = self._idf(terms)
            q = np.array([1.0 + math.log(counts[int(t)]) for t in terms], dtype=np.float32) * idf
            q /= np.linalg.norm(q)
            candidates = self._candidates(terms, q * idf, exclude)
            if not len(candidates):
                return []
            exact = self._cosines(candidates, terms, q)
            keep = np.flatnonzero(exact >= self.min_similarity)
            best = sorted(zip((-exact[keep]).tolist(), candidates[keep].tolist(), strict=True))[:k]
            return [Neighbour(self._ids[doc], round(-s, 4), self._payloads[doc]) for s, doc in best]

    def _candidates(
        self, terms: np.ndarray, weights: np.ndarray, exclude: Collection[Hashable]
    ) -> np.ndarray:
        """The documents worth scoring exactly: the postings of the query's rarest terms, up to the budget,
        scored as if every document's tf were 1 (close enough to rank them). Holding the lock; the views
        of the growing arrays end with this call (a viewed array cannot grow)."""
        df = self._df[terms]
        postings, picked, lengths = [], [], []
        read = 0
        for i in np.argsort(df, kind="stable").tolist():
            if df[i] == 0:
                continue
            if read and read + df[i] > POSTINGS_BUDGET:
                break
            docs = self._postings[int(terms[i])]
            postings.append(np.frombuffer(docs, dtype=np.int32))
            picked.append(i)
            lengths.append(len(docs))
            read += len(docs)
        if not postings:
            return np.zeros(0, dtype=np.int64)
        n_docs = len(self._ids)
        # Indices as intp and weights as float64: bincount converts anything else slowly (4x the time).
        scores = np.bincount(
            np.concatenate(postings, dtype=np.intp),
            np.repeat(weights[picked].astype(np.float64), lengths),
            minlength=n_docs,
        )
        scores /= np.frombuffer(self._norms, dtype=np.float32)
        scores *= np.frombuffer(self._alive, dtype=np.uint8)
        for id in exclude:
            if id in self._slot:
                scores[self._slot[id]] = 0.0
        top = min(CANDIDATES, n_docs)
        candidates = np.argpartition(-scores, top - 1)[:top]
        return candidates[scores[candidates] > 0]

    def _cosines(self, docs: np.ndarray, terms: np.ndarray, q: np.ndarray) -> np.ndarray:
        """The exact cosine of each document with the query ``q`` (over ``terms``, sorted) under the
        current idf: all documents' terms end to end, one vectorised pass. Holding the lock."""
        starts = np.frombuffer(self._starts, dtype=np.int64)
        begin, end = starts[docs], starts[docs + 1]
        lengths = end - begin
        # Positions of every document's terms in the shared arrays, and which document each belongs to.
        owner = np.repeat(np.arange(len(docs)), lengths)
        at = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + begin[owner]
        d_terms = np.frombuffer(self._terms, dtype=np.int32)[at]
        d = _tf(np.frombuffer(self._counts, dtype=np.uint8)[at]) * self._idf(d_terms)
        norms = np.sqrt(np.bincount(owner, d * d, minlength=len(docs)))
        match = np.searchsorted(terms, d_terms).clip(max=len(terms) - 1)
        shared = terms[match] == d_terms
        dots = np.bincount(owner[shared], d[shared] * q[match[shared]], minlength=len(docs))
        return dots / norms

    def memory_bytes(self) -> int:
        """The index's own arrays (postings, documents, df), not the payloads."""
        postings = sum(d.itemsize * len(d) for d in self._postings.values())
        docs = len(self._terms) * 5 + len(self._starts) * 8
        return postings + docs + self._df.nbytes + len(self._norms) * 4
