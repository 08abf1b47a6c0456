"""Vectorized character n-gram counting for the fused scorer.

``CharNgrams`` builds every n-gram as a Python string; for a 500-character alert that is ~1,500 strings and
most of a prediction's time. Here the text becomes one array of code points, the n-grams become 64-bit
polynomial hashes computed a whole column at a time, and an open-addressing table built from the fitted
vocabulary maps hashes to feature columns. The result equals the vectorizer's counts (checked against
scikit-learn on the probe set before the scorer serves).
"""

from __future__ import annotations

import numpy as np

# Array arithmetic on uint64 wraps silently (mod 2**64), which is what a rolling hash wants.
_MULT = np.uint64(0x100000001B3)
_SEED = np.uint64(0xCBF29CE484222325)
_SEED_TIMES_MULT = np.uint64((0xCBF29CE484222325 * 0x100000001B3) % (1 << 64))
_SPACE = 32
_EMPTY = np.empty(0, dtype=np.intp)


def _mix(h: np.ndarray) -> np.ndarray:
    """A multiply-xorshift finalizer: the rolling hash of short strings leaves its high bits poorly mixed."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    return h ^ (h >> np.uint64(33))


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


def _hash_terms(terms: list[str]) -> np.ndarray:
    """The rolling hash of each term, equal to what :meth:`NgramTable.counts` computes for it."""
    out = np.empty(len(terms), dtype=np.uint64)
    by_length: dict[int, list[int]] = {}
    for i, term in enumerate(terms):
        by_length.setdefault(len(term), []).append(i)
    for length, idx in by_length.items():
        cp = _code_points("".join(terms[i] for i in idx)).reshape(len(idx), length)
        h = np.full(len(idx), _SEED, dtype=np.uint64)
        for k in range(length):
            h = h * _MULT + cp[:, k]
        out[idx] = _mix(h)
    return out


class NgramTable:
    """Hash -> vocabulary column for the padded-word character n-grams of one vectorizer."""

    def __init__(self, vocabulary: dict[str, int], min_n: int, max_n: int) -> None:
        if min_n < 2:
            raise ValueError("n-grams shorter than 2 characters are not supported")
        terms = list(vocabulary)
        keys = _hash_terms(terms)
        if len(np.unique(keys)) != len(keys):
            raise ValueError("two vocabulary terms share a hash")
        bits = max(8, int(np.ceil(np.log2(max(len(keys), 1) * 8))))  # load <= 1/8: probing is rare
        self._shift = np.uint64(64 - bits)
        self._mask = (1 << bits) - 1
        self._keys = np.zeros(1 << bits, dtype=np.uint64)
        self._cols = np.full(1 << bits, -1, dtype=np.intp)
        cols = np.array([vocabulary[t] for t in terms], dtype=np.intp)
        slots = (keys >> self._shift).astype(np.intp)
        pending = np.arange(len(keys))
        self._probes = 0
        while pending.size:  # linear probing, placed a round at a time
            free = self._cols[slots[pending]] == -1
            cand = pending[free]
            _, first = np.unique(slots[cand], return_index=True)
            placed = cand[first]
            self._keys[slots[placed]] = keys[placed]
            self._cols[slots[placed]] = cols[placed]
            pending = np.setdiff1d(pending, placed, assume_unique=True)
            slots[pending] = (slots[pending] + 1) & self._mask
            if pending.size:
                self._probes += 1
        self.min_n = min_n
        self.max_n = max_n

    def _lookup(self, h: np.ndarray) -> np.ndarray:
        """Vocabulary column of each hash, -1 where it is not in the vocabulary."""
        slot = (h >> self._shift).view(np.int64)
        found = self._cols[slot]
        miss = self._keys[slot] != h
        found[miss] = -1
        # Only a query that met another key in an occupied slot probes further: few do at load 1/8.
        rest = np.flatnonzero(miss & (self._cols[slot] >= 0))
        for _ in range(self._probes):
            if not rest.size:
                break
            slot_r = (slot[rest] + 1) & self._mask
            slot[rest] = slot_r
            cols_r = self._cols[slot_r]
            hit_r = self._keys[slot_r] == h[rest]
            found[rest[hit_r]] = cols_r[hit_r]
            rest = rest[~hit_r & (cols_r >= 0)]
        return found

    def counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(vocabulary columns, counts) of the lowercased padded-word n-grams of ``text``."""
        joined = " " + " ".join(text.lower().split()) + " "
        cp = _code_points(joined)
        spaces = np.cumsum(cp == _SPACE)
        size = cp.size
        found = []
        h = cp + _SEED_TIMES_MULT
        for n in range(2, self.max_n + 1):
            m = size - n + 1
            if m <= 0:
                break
            h = h[:m] * _MULT + cp[n - 1 : n - 1 + m]
            if n < self.min_n:
                continue
            # A window lies inside one padded word when no space sits strictly inside it.
            inside = spaces[n - 2 : n - 2 + m] == spaces[:m]
            found.append(h[inside])
        if not found:
            return _EMPTY, _EMPTY
        hashes, counts = np.unique(_mix(np.concatenate(found)), return_counts=True)
        cols = self._lookup(hashes)  # distinct hashes: distinct columns
        keep = cols >= 0
        return cols[keep], counts[keep]
