"""The serving hot path of ``engine/_native.c`` in Python and NumPy, for an install without the compiler.

The same four names as the C extension, with the same arguments, checks and results: ``numeric_features``,
``char_wb``, ``split_identifiers`` and ``Featurizer`` (``row``, ``scores``, ``csr``). ``engine/native.py``
picks this module when ``engine._native`` cannot be imported or ``ONCALL_NATIVE=0``; training and serving
then run unchanged, only slower. ``tests/engine/test_native.py`` checks both implementations against
scikit-learn and the regular expressions, and ``tests/engine/test_native_fallback.py`` checks that they train
the same models and read each other's serving artifacts.

Results are the C code's to the last bit, not only to a tolerance: the terms of a block are counted in
the order C meets them (words: by start token, then length; characters: word by word, each word's
n-grams by start, then length), so the squares of a block's values are summed in the same order, and a
row's products with the weights are added in the row's order (``np.cumsum`` adds in sequence; a BLAS dot
product would not). The n-grams are looked up by their text in a dict rather than by their 64-bit hash;
the vocabulary is hashed as C hashes it (FNV-1a over code points, then murmur3's finalizer) so that a
vocabulary C refuses (two terms, one hash) is refused here too.
"""

from __future__ import annotations

import logging
import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

log = logging.getLogger("engine.native")

# -- saying once that the slow path serves ----------------------------------------------------------------
_reason: str | None = None  # engine.native sets it when it chose this module
_announced = False


def slow_path(reason: str) -> None:
    """Record why this module serves instead of the C extension; its first use logs it, once."""
    global _reason
    _reason = reason


def _announce() -> None:
    global _announced
    if _reason is not None and not _announced:
        _announced = True
        log.warning(
            "the C scorer is not in use (%s): features and scores are computed in Python and NumPy, with "
            "the same results, several times slower per alert",
            _reason,
        )


# -- the magnitude features: tests/engine/test_native.py's regular expressions, which C must equal ----------
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s?%")
_DURATION = re.compile(
    r"(\d+(?:\.\d+)?)\s?(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b", re.IGNORECASE
)
# Number rules 2: no duration from a number glued to a word ("k8s"; "6h43m" still counts) nor from HTTP
# status codes ("500s").
_DURATION_2 = re.compile(
    r"(?<!\d)(?:(?<![^\W\d])|(?<=\d[^\W\d]))(?![45]\d\ds\b)"
    r"(\d+(?:\.\d+)?)\s?(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b",
    re.IGNORECASE,
)
_RATIO = re.compile(r"\b(\d{1,4})\s?/\s?(\d{1,4})\b")
_NUMBER = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")
_SERVICE = re.compile(r"service:(\S+)\s*$")
_DIGIT = re.compile(r"\d")
# re.IGNORECASE matches these to ASCII letters, so the unit they spell is the ASCII one.
_FOLD = str.maketrans({"\u017f": "s", "\u0131": "i", "\u0130": "i", "\u212a": "k"})
_MAX_PHRASES = 64


def _unit_seconds(unit: str) -> float:
    u = unit.translate(_FOLD).lower()
    if u.startswith(("ms", "milli")):
        return 0.001
    if u.startswith("s"):
        return 1.0
    if u.startswith("m"):
        return 60.0
    return 3600.0


def _phrases(phrases: Any) -> tuple[str, ...]:
    if not isinstance(phrases, tuple) or len(phrases) > _MAX_PHRASES:
        raise ValueError("phrases must be a tuple of at most 64 str")
    for p in phrases:
        _text(p)
        if not p:
            raise ValueError("empty phrase")
    return phrases


def _text(o: Any) -> str:
    if not isinstance(o, str):
        raise TypeError(f"expected str, got {type(o).__name__}")
    return o


def _tier(text: str, tier_of: Callable[[str | None], int]) -> int:
    """The tier callable's answer for the name in ``service:(\\S+)\\s*$``, or for None without one."""
    match = _SERVICE.search(text)
    return operator.index(tier_of(match.group(1) if match else None))


def _rules(rules: Any) -> int:
    rules = operator.index(rules)
    if rules not in (1, 2):
        raise ValueError("number rules must be 1 or 2")
    return rules


def _magnitudes(text: str, lowered: str, tier: int, phrases: tuple[str, ...], rules: int) -> list[float]:
    if _DIGIT.search(text) is None:  # most of the scanning needs a digit
        max_pct = n_pct = max_dur = largest = 0.0
        min_ratio = 1.0
    else:
        percents = [v for v in map(float, _PERCENT.findall(text)) if v <= 100.0]
        max_pct, n_pct = max(percents, default=0.0), len(percents)
        durations = (_DURATION if rules == 1 else _DURATION_2).findall(text)
        max_dur = max((float(v) * _unit_seconds(u) for v, u in durations), default=0.0)
        min_ratio = min(
            (int(a) / int(b) for a, b in _RATIO.findall(text) if 0 < int(b) <= 1000 and int(a) <= int(b)),
            default=1.0,
        )
        largest = max((float(n.replace(",", "")) for n in _NUMBER.findall(text)), default=0.0)
    return [
        max_pct / 100.0,
        min(n_pct, 10) / 10.0,
        math.log1p(min(max_dur, 1e7)),
        min_ratio,
        math.log1p(min(largest, 1e9)),
        1.0 if tier == 1 else 0.0,
        1.0 if tier == 3 else 0.0,
        math.log1p(len(text)),
        math.log1p(text.count("\n")),
        math.log1p(len(text.split())),
        *(math.log1p(lowered.count(p)) for p in phrases),
    ]


def numeric_features(
    text: str, lowered: str, tier_of: Callable[[str | None], int], phrases: Any, number_rules: int = 1
) -> list[float]:
    """numeric_features(text, lowered, tier_of, phrases, number_rules=1) -> list[float], as
    ``engine._native``'s."""
    _announce()
    rules = _rules(number_rules)
    _text(text), _text(lowered)
    phrases = _phrases(phrases)
    return _magnitudes(text, lowered, _tier(text, tier_of), phrases, rules)


# -- analyzers ---------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's token pattern; C's runs of 2+ word characters


def char_wb(lowered: str, min_n: int, max_n: int) -> list[str]:
    """char_wb(lowered, min_n, max_n) -> list[str], in scikit-learn's order (all min_n-grams of a word,
    then the next length...)."""
    _announce()
    _text(lowered)
    min_n, max_n = operator.index(min_n), operator.index(max_n)
    if min_n < 1 or max_n < min_n:
        raise ValueError("need 1 <= min_n <= max_n")
    out: list[str] = []
    for word in lowered.split():
        w = f" {word} "
        size = len(w)
        for n in range(min_n, max_n + 1):
            if size <= n:  # a short word counts once, whole
                out.append(w)
                break
            out += [w[i : i + n] for i in range(size - n + 1)]
    return out


def _char_grams(w: str, min_n: int, max_n: int) -> list[str]:
    """The n-grams of a padded word by start, then length: char_wb's multiset in C's counting order."""
    size = len(w)
    if size <= min_n:
        return [w]
    return [w[s:e] for s in range(size - min_n + 1) for e in range(s + min_n, min(size, s + max_n) + 1)]


def _word_grams(tokens: list[str], min_n: int, max_n: int) -> list[str]:
    """Word n-grams by start token, then length (C's order; scikit-learn's is by length first)."""
    if min_n == 1 and max_n == 1:
        return tokens
    if min_n == 1 and max_n == 2:
        out: list[str] = []
        for a, b in pairwise(tokens):
            out += (a, f"{a} {b}")
        if tokens:
            out.append(tokens[-1])
        return out
    n = len(tokens)
    return [" ".join(tokens[s:e]) for s in range(n) for e in range(s + min_n, min(n, s + max_n) + 1)]


_ACRONYM_THEN_WORD = re.compile(r"([A-Z])([A-Z][a-z])")
_LOWER_THEN_UPPER = re.compile(r"([a-z0-9])([A-Z])")


def split_identifiers(text: str) -> str:
    """split_identifiers(text) -> text, CamelCase as words: C's two boundaries as substitutions."""
    _announce()
    if not isinstance(text, str):
        raise TypeError("split_identifiers() takes a str")
    return _LOWER_THEN_UPPER.sub(r"\1 \2", _ACRONYM_THEN_WORD.sub(r"\1 \2", text))


# -- the vocabulary's hashes, as C computes them ---------------------------------------------------------
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)


def term_keys(terms: Sequence[str]) -> np.ndarray:
    """C's 64-bit key of each term (FNV-1a over its code points, murmur3's finalizer), all at once."""
    n = len(terms)
    lengths = np.fromiter(map(len, terms), dtype=np.int64, count=n)
    points = np.frombuffer("".join(terms).encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.uint64)
    starts = np.cumsum(lengths) - lengths
    order = np.argsort(-lengths, kind="stable")  # longest first: the terms still going are a prefix
    desc = -lengths[order]
    h = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    for j in range(int(lengths.max()) if n else 0):
        rows = order[: np.searchsorted(desc, -j, side="left")]  # terms longer than j
        h[rows] = (h[rows] ^ points[starts[rows] + j]) * _FNV_PRIME
    h ^= h >> np.uint64(33)
    h *= _MIX1
    h ^= h >> np.uint64(33)
    h *= _MIX2
    h ^= h >> np.uint64(33)
    return h


# -- Featurizer ----------------------------------------------------------------------------------------------
_WORD_MEMORY = 1 << 14  # words whose character n-gram columns are remembered per block (C: as many)


@dataclass(slots=True)
class _Block:
    chars: bool
    min_n: int
    max_n: int
    source: int
    lead: int
    columns: dict[str, int]  # term -> its column in the whole row
    idf: np.ndarray  # by column in the whole row minus offset
    sublinear: bool
    weight: float
    offset: int
    memory: dict[str, list[int]]  # a word -> the columns of its character n-grams, in order


_SUBLINEAR = np.array([float(t) if t < 2 else math.log(t) + 1.0 for t in range(1024)])  # math.log: C's log()


def _sublinear(tf: np.ndarray) -> np.ndarray:
    """``log(tf) + 1`` of counts above 1 (scikit-learn's sublinear_tf), as C computes it."""
    if tf.max() < len(_SUBLINEAR):
        return _SUBLINEAR[tf]
    return np.array([float(t) if t < 2 else math.log(t) + 1.0 for t in tf.tolist()])


def _doubles(obj: Any, count: int, what: str) -> np.ndarray:
    view = memoryview(obj)
    if view.format != "d" or view.itemsize != 8 or view.nbytes != count * 8 or not view.c_contiguous:
        raise ValueError(f"{what} must be {count} contiguous float64 values")
    return np.frombuffer(view, dtype=np.float64)


def _leading_words_end(text: str, n: int) -> int:
    """Where the first ``n`` whitespace-separated words end (trailing whitespace makes no term)."""
    end = 0
    for k, match in enumerate(re.finditer(r"\S+", text)):
        if k == n:
            break
        end = match.end()
    return end


class Featurizer:
    """``engine._native.Featurizer``: feature rows and fused raw scores of a fitted feature pipeline.

    Featurizer(blocks, numeric, weights, width, n_features, tier_of, phrases, number_rules=1), with the C
    type's arguments
    and checks. ``scores(docs, threads)`` ignores ``threads``: Python holds the GIL throughout.
    """

    def __init__(
        self,
        blocks: list[tuple[Any, ...]],
        numeric: tuple[Any, ...] | None,
        weights: Any,
        width: int,
        n_features: int,
        tier_of: Callable[[str | None], int],
        phrases: tuple[str, ...],
        number_rules: int = 1,
    ) -> None:
        _announce()
        self._rules = _rules(number_rules)
        if not isinstance(blocks, list):
            raise TypeError("blocks must be a list")
        width, n_features = operator.index(width), operator.index(n_features)
        if not isinstance(phrases, tuple):
            raise TypeError("phrases must be a tuple")
        if n_features <= 0 or n_features >= 2**31 - 1 or width < 0:
            raise ValueError("bad feature count or width")
        self.n_features, self.width = n_features, width
        self._tier_of = tier_of
        self._phrases = _phrases(phrases)
        self._blocks: list[_Block] = []
        self._sources = 0
        for item in blocks:
            if not isinstance(item, tuple) or len(item) != 10:
                raise TypeError("a block is a tuple of 10 items")
            kind, min_n, max_n, source, terms, idf, sublinear, weight, offset, lead = item
            if not isinstance(kind, str):
                raise TypeError("a block's kind is a str")
            min_n, max_n, source = operator.index(min_n), operator.index(max_n), operator.index(source)
            offset, lead = operator.index(offset), operator.index(lead)
            if kind not in ("words", "chars"):
                raise ValueError(f"unknown block kind {kind}")
            if min_n < 1 or max_n < min_n or source < 0:
                raise ValueError("bad n-gram range or source")
            self._sources = max(self._sources, source + 1)
            terms = list(terms)
            if offset < 0 or offset + len(terms) > n_features:
                raise ValueError("block outside the feature range")
            idf_values = _doubles(idf, len(terms), "idf")
            for term in terms:
                _text(term)
            if len(terms) and np.unique(term_keys(terms)).size != len(terms):
                raise ValueError("two vocabulary terms share a hash")
            self._blocks.append(
                _Block(
                    kind == "chars",
                    min_n,
                    max_n,
                    source,
                    lead,
                    dict(zip(terms, range(offset, offset + len(terms)), strict=True)),
                    idf_values,
                    bool(sublinear),
                    float(weight),
                    offset,
                    {},
                )
            )
        self._numeric: tuple[np.ndarray, np.ndarray, float, int] | None = None
        if numeric is not None:
            mean, scale, numeric_weight, numeric_offset = numeric
            numeric_offset = operator.index(numeric_offset)
            size = 10 + len(self._phrases)
            if numeric_offset < 0 or numeric_offset + size > n_features:
                raise ValueError("numeric block outside the feature range")
            self._numeric = (
                _doubles(mean, size, "mean"),
                _doubles(scale, size, "scale"),
                float(numeric_weight),
                numeric_offset,
            )
            self._sources = max(self._sources, 2)
        self._weights: np.ndarray | None = None
        if weights is not None:
            view = memoryview(weights)
            size = n_features * width * view.itemsize
            if view.format not in ("f", "d") or not view.c_contiguous or view.nbytes != size:
                raise ValueError(
                    f"weights must be {n_features} x {width} contiguous float32 or float64 values"
                )
            dtype = np.float32 if view.format == "f" else np.float64
            self._weights = np.frombuffer(view, dtype=dtype).reshape(n_features, width)

    # -- one document ------------------------------------------------------------------------------------
    def _check(self, doc: Any) -> tuple[str, ...]:
        if not isinstance(doc, tuple):
            raise TypeError("a document is a tuple of str")
        if len(doc) < self._sources:
            raise ValueError("document tuple too short")
        for i in range(self._sources):
            _text(doc[i])
        return doc

    def _row(self, doc: tuple[str, ...], tier: int) -> tuple[np.ndarray, np.ndarray]:
        """(columns int64, values float64) of a checked document, in C's order."""
        parts_idx: list[np.ndarray] = []
        parts_val: list[np.ndarray] = []
        for blk in self._blocks:
            text = doc[blk.source]
            if blk.lead > 0:
                text = text[: _leading_words_end(text, blk.lead)]
            get = blk.columns.get
            if blk.chars:
                cols: list[int] = []
                memory = blk.memory
                for word in text.split():
                    found = memory.get(word)
                    if found is None:
                        grams = _char_grams(f" {word} ", blk.min_n, blk.max_n)
                        found = [c for c in map(get, grams) if c is not None]
                        if len(memory) >= _WORD_MEMORY:
                            memory.clear()
                        memory[word] = found
                    cols += found
            else:
                grams = _word_grams(_TOKEN.findall(text), blk.min_n, blk.max_n)
                cols = [c for c in map(get, grams) if c is not None]
            if not cols:
                continue
            counts = Counter(cols)  # columns in the order first met, as C's touched list
            idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
            v = (_sublinear(tf) if blk.sublinear else tf.astype(np.float64)) * blk.idf[idx - blk.offset]
            ss = float(np.cumsum(v * v)[-1])  # added in order, as C adds them
            if ss > 0.0:  # L2 norm per block, then the block's weight in the union
                v *= blk.weight / math.sqrt(ss)
            parts_idx.append(idx)
            parts_val.append(v)
        if self._numeric is not None:
            mean, scale, weight, offset = self._numeric
            m = np.array(_magnitudes(doc[0], doc[1], tier, self._phrases, self._rules))
            v = (m - mean) / scale * weight
            keep = np.flatnonzero(v != 0.0)
            parts_idx.append(keep + offset)
            parts_val.append(v[keep])
        if not parts_idx:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        return np.concatenate(parts_idx), np.concatenate(parts_val)

    def _tier_of_doc(self, doc: tuple[str, ...]) -> int:
        return _tier(doc[0], self._tier_of) if self._numeric is not None else 0

    def _raw(self, idx: np.ndarray, vals: np.ndarray) -> np.ndarray:
        """Every fused model's decision function: the row's products with the weights, added in order."""
        assert self._weights is not None
        if not idx.size:
            return np.zeros(self.width)
        products = self._weights[idx] * vals[:, np.newaxis]  # float32 weights are widened exactly
        if self.width == 1:  # a reduction along the contiguous axis adds pairwise: this one adds in order
            return np.cumsum(products[:, 0])[-1:] + 0.0  # + 0.0: C starts from +0.0
        # Down the rows of a C-ordered array NumPy adds row after row (each column in order, as C does;
        # tests/engine/test_native_fallback.py checks the bits), 10x faster than a cumulative sum.
        return np.add.reduce(products, axis=0, initial=0.0)

    def row(self, doc: tuple[str, ...]) -> tuple[bytes, bytes, bytes]:
        """row(doc) -> (indices int64, values float64, raw scores float64) as bytes"""
        doc = self._check(doc)
        idx, vals = self._row(doc, self._tier_of_doc(doc))
        raw = self._raw(idx, vals) if self._weights is not None else np.zeros(self.width)
        return idx.tobytes(), vals.tobytes(), raw.tobytes()

    def scores(self, docs: Sequence[tuple[str, ...]], threads: int = 1) -> bytes:
        """scores(docs, threads=1) -> raw scores (n x width float64) as bytes"""
        operator.index(threads)
        if self._weights is None:
            raise ValueError("this featurizer has no weights")
        docs = tuple(docs)
        tiers = [self._tier_of_doc(self._check(doc)) for doc in docs]
        out = np.empty((len(docs), self.width))
        for i, (doc, tier) in enumerate(zip(docs, tiers, strict=True)):
            out[i] = self._raw(*self._row(doc, tier))
        return out.tobytes()

    def csr(self, docs: Sequence[tuple[str, ...]]) -> tuple[bytes, bytes, bytes]:
        """csr(docs) -> (indptr int64, indices int32, data float64) as bytes"""
        docs = tuple(docs)
        tiers = [self._tier_of_doc(self._check(doc)) for doc in docs]
        indptr = np.zeros(len(docs) + 1, dtype=np.int64)
        indices: list[np.ndarray] = []
        data: list[np.ndarray] = []
        for i, (doc, tier) in enumerate(zip(docs, tiers, strict=True)):
            idx, vals = self._row(doc, tier)
            indices.append(idx)
            data.append(vals)
            indptr[i + 1] = indptr[i] + idx.size
        if not indices:
            return indptr.tobytes(), b"", b""
        return (
            indptr.tobytes(),
            np.concatenate(indices).astype(np.int32).tobytes(),
            np.concatenate(data).tobytes(),
        )
