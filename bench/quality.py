"""Quality on real text the model has not seen, per domain, beside plain baselines trained on the same rows.

Shuffled folds leak near-duplicates (rules of one mixin, updates of one status-page incident), so every
fold here holds out a whole group: a mixin, a provider, or a stretch of time (train on older, test on
newer). In each fold the shipped pipeline (``training.train.fit_models``) and a plain TF-IDF + logistic
regression (balanced classes) are trained on the same rows; predictions are pooled over folds.

- alerts (``alert_rules_mixins``, group = mixin): page-decision balanced accuracy (truth: the rule's
  severity is critical/high; prediction: critical or high) and 4-level macro-F1 (over the classes
  present), for three recipes: synthetic only (no real rows: every rule unseen), built-in (synthetic +
  the other mixins: what ``make run`` trains with no user data) and with --data (synthetic + all four
  shared files, the held-out mixins excluded).
- status pages (severity): leave-one-provider-out, and forward-chaining time blocks; macro-F1 and ECE.
- post-mortems (ISSRE'22, category and actions): leave-one-provider-out and time blocks; category
  macro-F1 and ECE, action top-1/top-3 (baselines: one-vs-rest TF-IDF + LR, and ranking actions by their
  frequency in the fold's real training rows).
- suite: ``training/data/plain_language.jsonl`` (training/suite.py) against the shipped built-in model
  (``train_builtin``) and the built-in recipe (synthetic + every mixin).

Needs ``../shared/data/real``. Run by hand:
``python bench/quality.py [--seed N ...] [--samples 12000] [--json]
[--only alerts|statuspage|postmortems|suite] [--alert-folds K] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import multiprocessing
import pickle
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
from joblib import parallel_config
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer
from threadpoolctl import threadpool_limits

from engine.scorer import Scores
from engine.taxonomy import CATEGORIES, SEVERITIES
from training.dataset import LabeledIncident, load_jsonl
from training.metrics import action_report, classification_report, majority_macro_f1
from training.suite import (
    PAGE,
    SuiteRow,
    failures,
    format_row,
    load_suite,
    page_columns,
    run_suite,
    summary_line,
)
from training.synthetic import generate_incidents
from training.train import BUILTIN_SAMPLES, TrainConfig, fit_models, train_builtin

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
ALERTS = "alert_rules_mixins.dev.jsonl"
STATUS = "statuspage_incidents.dev.jsonl"
POSTMORTEMS = "cloud_postmortems_issre22.dev.jsonl"
DANLUU = "danluu_postmortems.dev.jsonl"
DOMAINS = ("alerts", "statuspage", "postmortems", "suite")
TIME_BLOCKS = 5  # sorted by date; each block after the first is tested on a model of the older ones
SCORER_NAMES = {
    "model": "model",
    "tfidf": "tf-idf+LR, same rows",
    "tfidf_real": "tf-idf+LR, real rows only",
    "frequency": "action frequency (real rows)",
    "majority": "majority class",
}


# -- data -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RealData:
    files: dict[str, list[LabeledIncident]]
    dates: dict[str, datetime]  # by row id; LabeledIncident drops ``date``, so it is read from the JSON


def parse_date(text: str) -> datetime:
    """``2022-03-26T01:43:00Z``, ``2021-02-09T10:00 PST`` (the OpenAI/Anthropic rows) or ``2011-04-29``."""
    text = text.strip()
    for suffix, hours in ((" PST", -8), (" PDT", -7)):
        if text.endswith(suffix):
            return datetime.fromisoformat(text[: -len(suffix)]).replace(
                tzinfo=timezone(timedelta(hours=hours))
            )
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def load_real(root: Path) -> RealData:
    files = {name: load_jsonl(root / name).rows for name in (ALERTS, STATUS, POSTMORTEMS, DANLUU)}
    dates: dict[str, datetime] = {}
    for name in (STATUS, POSTMORTEMS):
        with (root / name).open(encoding="utf-8") as fh:
            for line in fh:
                obj = json.loads(line) if line.strip() else {}
                if obj.get("id") and obj.get("date"):
                    dates[str(obj["id"])] = parse_date(str(obj["date"]))
    return RealData(files, dates)


@functools.lru_cache(maxsize=2)
def _synthetic(samples: int, seed: int, label_noise: float) -> tuple[LabeledIncident, ...]:
    """One seed's synthetic rows, generated once per worker process."""
    return tuple(generate_incidents(samples, seed=seed, label_noise=label_noise))


# -- the plain baseline ---------------------------------------------------------------------------------
class PlainScorer:
    """TF-IDF (sublinear tf) + logistic regression with balanced classes, one per label asked for; actions
    one-vs-rest. The scorer interface of engine/scorer.py, so every metric treats it like the model."""

    def __init__(self, rows: Sequence[LabeledIncident], labels: Sequence[str]) -> None:
        self.vectorizer = TfidfVectorizer(sublinear_tf=True).fit([r.text for r in rows])
        X = self.vectorizer.transform([r.text for r in rows])
        self.severity_classes: tuple[str, ...] = ()
        self.category_classes: tuple[str, ...] = ()
        self.action_classes: tuple[str, ...] = ()
        self._severity = self._category = self._actions = None
        for label in ("severity", "category"):
            idx = [i for i, r in enumerate(rows) if getattr(r, label)]
            if label in labels and len({getattr(rows[i], label) for i in idx}) > 1:
                clf = _lr().fit(X[idx], [getattr(rows[i], label) for i in idx])
                setattr(self, f"_{label}", clf)
                setattr(self, f"{label}_classes", tuple(str(c) for c in clf.classes_))
        idx = [i for i, r in enumerate(rows) if r.actions]
        if "actions" in labels and idx:
            binarizer = MultiLabelBinarizer()
            Y = binarizer.fit_transform([rows[i].actions for i in idx])
            self._actions = OneVsRestClassifier(_lr()).fit(X[idx], Y)
            self.action_classes = tuple(str(c) for c in binarizer.classes_)

    def score_many(self, texts: Sequence[str]) -> list[Scores]:
        X = self.vectorizer.transform(list(texts))
        n = len(texts)
        sev = self._severity.predict_proba(X) if self._severity is not None else np.zeros((n, 0))
        cat = self._category.predict_proba(X) if self._category is not None else None
        acts = self._actions.predict_proba(X) if self._actions is not None else np.zeros((n, 0))
        return [Scores(sev[i], None if cat is None else cat[i], acts[i]) for i in range(n)]


def _lr() -> LogisticRegression:
    return LogisticRegression(max_iter=2000, class_weight="balanced")


def _frequency_ranking(rows: Sequence[LabeledIncident]) -> list[str]:
    """Actions by how often they were taken in these rows: the answer that ignores the text."""
    counts = Counter(a for r in rows for a in r.actions or ())
    return [a for a, _ in counts.most_common()]


def _predict(scorer: Any, texts: Sequence[str], labels: Sequence[str]) -> dict[str, list[Any]]:
    """(label, confidence) per text for severity and category, P(critical or high) as ``page``, the top
    3 actions; only ``labels``."""
    scores = scorer.score_many(texts)
    out: dict[str, list[Any]] = {}
    for label in ("severity", "category"):
        classes = getattr(scorer, f"{label}_classes")
        if label not in labels:
            continue
        if not len(classes):  # a baseline with one class only in its rows: counted as wrong
            out[label] = [("?", 0.0)] * len(scores)
            continue
        probs = [getattr(s, label) for s in scores]
        out[label] = [(str(classes[int(np.argmax(p))]), float(np.max(p))) for p in probs]
        if label == "severity":
            paging = page_columns(classes)
            out["page"] = [float(np.sum(p[paging])) for p in probs]
    if "actions" in labels:
        out["actions"] = [
            [str(scorer.action_classes[j]) for j in np.argsort(-s.actions, kind="stable")[:3]] for s in scores
        ]
    return out


# -- folds ----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Task:
    """One fit: the real training rows (synthetic rows are added in the worker) and the rows to score."""

    key: tuple[str, str, str]  # (domain, scheme or recipe, fold description)
    real: list[LabeledIncident]
    test: list[LabeledIncident]
    labels: tuple[str, ...]
    baselines: tuple[str, ...]


def run_task(task: Task, config: TrainConfig) -> dict[str, dict[str, list[Any]]]:
    started = time.perf_counter()
    with threadpool_limits(1):
        rows = [*_synthetic(config.samples, config.seed, config.label_noise), *task.real]
        texts = [r.text for r in task.test]
        out = {"model": _predict(fit_models(rows, config).scorer(), texts, task.labels)}
        if "tfidf" in task.baselines:
            out["tfidf"] = _predict(PlainScorer(rows, task.labels), texts, task.labels)
        if "tfidf_real" in task.baselines:
            out["tfidf_real"] = _predict(PlainScorer(task.real, task.labels), texts, task.labels)
        if "frequency" in task.baselines:
            out["frequency"] = {"actions": [_frequency_ranking(task.real)[:3]] * len(texts)}
    print(
        f"  {' / '.join(task.key)}: {len(texts)} rows, {time.perf_counter() - started:.0f}s", file=sys.stderr
    )
    return out


def _grouped(
    rows: Sequence[LabeledIncident], groups: Sequence[str], splitter: Any
) -> Iterator[tuple[str, list[int]]]:
    """(description, test indices) per fold of a group splitter."""
    for _, test in splitter.split(np.zeros(len(rows)), groups=groups):
        held = sorted({groups[i] for i in test})
        yield (held[0] if len(held) == 1 else f"{len(held)} groups"), list(test)


def _time_blocks(
    rows: Sequence[LabeledIncident], dates: dict[str, datetime]
) -> Iterator[tuple[str, list[int], list[int]]]:
    """Forward chaining: rows sorted by date in ``TIME_BLOCKS`` consecutive blocks; each block after the
    first is tested on a model of every older block. Yields (description, train indices, test indices)."""
    order = sorted((i for i, r in enumerate(rows) if r.id in dates), key=lambda i: dates[rows[i].id])  # type: ignore[index]
    blocks = [list(b) for b in np.array_split(order, TIME_BLOCKS)]
    for k in range(1, len(blocks)):
        first, last = dates[rows[blocks[k][0]].id], dates[rows[blocks[k][-1]].id]  # type: ignore[index]
        train = [i for b in blocks[:k] for i in b]
        yield f"{first:%Y-%m-%d}..{last:%Y-%m-%d}", train, blocks[k]


def alert_tasks(data: RealData, folds: int | None, seed: int) -> list[Task]:
    rules = data.files[ALERTS]
    mixins = [r.service or "?" for r in rules]
    others = [r for name in (STATUS, POSTMORTEMS, DANLUU) for r in data.files[name]]
    splitter = (
        LeaveOneGroupOut() if not folds else GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    )
    tasks = [Task(("alerts", "synthetic-only", "all rules"), [], list(rules), ("severity",), ("tfidf",))]
    for desc, test in _grouped(rules, mixins, splitter):
        held = set(test)
        rest = [r for i, r in enumerate(rules) if i not in held]
        test_rows = [rules[i] for i in test]
        both = ("tfidf", "tfidf_real")
        tasks.append(Task(("alerts", "built-in", desc), rest, test_rows, ("severity",), both))
        tasks.append(Task(("alerts", "with --data", desc), [*rest, *others], test_rows, ("severity",), both))
    return tasks


def _labeled_tasks(
    data: RealData, domain: str, name: str, labels: tuple[str, ...], baselines: tuple[str, ...]
) -> list[Task]:
    """Provider folds and time folds of one shared file; the other three files always train."""
    rows = data.files[name]
    others = [r for n, rs in data.files.items() if n != name for r in rs]

    def scored(idx: Sequence[int]) -> list[LabeledIncident]:
        return [rows[i] for i in idx if any(getattr(rows[i], label) for label in labels)]

    tasks = []
    providers = [r.provider or r.source for r in rows]
    for desc, test in _grouped(rows, providers, LeaveOneGroupOut()):
        held = set(test)
        train = [r for i, r in enumerate(rows) if i not in held]
        tasks.append(Task((domain, "by provider", desc), [*train, *others], scored(test), labels, baselines))
    for desc, train_idx, test in _time_blocks(rows, data.dates):
        train = [rows[i] for i in train_idx]
        tasks.append(Task((domain, "by time", desc), [*train, *others], scored(test), labels, baselines))
    return tasks


def statuspage_tasks(data: RealData) -> list[Task]:
    return _labeled_tasks(data, "statuspage", STATUS, ("severity",), ("tfidf", "tfidf_real"))


def postmortem_tasks(data: RealData) -> list[Task]:
    baselines = ("tfidf", "tfidf_real", "frequency")
    return _labeled_tasks(data, "postmortems", POSTMORTEMS, ("category", "actions"), baselines)


def suite_builtin_recipe(
    mixins: Sequence[LabeledIncident], config: TrainConfig, rows: Sequence[SuiteRow]
) -> dict[str, Any]:
    """The built-in recipe (synthetic + every mixin rule) and the plain baseline on the same rows."""
    with threadpool_limits(1):
        train_rows = [*_synthetic(config.samples, config.seed, config.label_noise), *mixins]
        labels = ("severity", "category", "actions")
        return {
            "model": run_suite(fit_models(train_rows, config).scorer(), rows),
            "tfidf": run_suite(PlainScorer(train_rows, labels), rows),
        }


def suite_shipped(rows: Sequence[SuiteRow]) -> dict[str, Any]:
    """What ``make run`` serves with no data: ``train_builtin`` into a fresh directory, loaded as served."""
    from engine.ml_service import load_model_set
    from engine.registry import ModelRegistry

    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        train_builtin(Path(tmp))
        version = ModelRegistry(tmp).active()
        result = run_suite(load_model_set(version).scorer, rows)
        result["trained_on"] = version.metadata.get("data", {}).get("by_source", {})
        return result


# -- metrics --------------------------------------------------------------------------------------------
def _majority(truth: Sequence[str]) -> str:
    return Counter(truth).most_common(1)[0][0]


def severity_metrics(
    truth: Sequence[str], pred: Sequence[tuple[str, float]] | None, page: Sequence[float] | None = None
) -> dict[str, Any]:
    """Macro-F1 (over the classes in the truth), ECE, accuracy and the page decision; ``pred`` None: the
    majority class. With ``page``, P(critical or high) per row, also how well it ranks the rows that
    page above the others (``page_auc``), whatever level the decision pages at."""
    if pred is None:
        labels = [_majority(truth)] * len(truth)
        out: dict[str, Any] = {"n": len(truth), "macro_f1": majority_macro_f1(truth, SEVERITIES)}
        out["accuracy"] = float(np.mean([t == p for t, p in zip(truth, labels, strict=True)]))
    else:
        labels = [p for p, _ in pred]
        rep = classification_report(truth, labels, [c for _, c in pred], SEVERITIES)
        out = {k: rep[k] for k in ("n", "macro_f1", "ece", "accuracy")}
    page_t = np.array([t in PAGE for t in truth])
    page_p = np.array([p in PAGE for p in labels])
    out["page_bacc"] = float(balanced_accuracy_score(page_t, page_p))
    out["paged_when_page"] = float(page_p[page_t].mean()) if page_t.any() else None
    out["quiet_when_not"] = float((~page_p[~page_t]).mean()) if (~page_t).any() else None
    if page is not None and page_t.any() and (~page_t).any():
        out["page_auc"] = float(roc_auc_score(page_t, page))
    return out


def category_metrics(truth: Sequence[str], pred: Sequence[tuple[str, float]] | None) -> dict[str, Any]:
    if pred is None:
        return {"n": len(truth), "macro_f1": majority_macro_f1(truth, CATEGORIES)}
    rep = classification_report(truth, [p for p, _ in pred], [c for _, c in pred], CATEGORIES)
    return {k: rep[k] for k in ("n", "macro_f1", "ece", "accuracy")}


def pool(tasks: Sequence[Task], results: Sequence[dict[str, Any]], domain: str) -> dict[str, Any]:
    """Per scheme (or recipe): every scorer's metrics on the predictions pooled over its folds."""
    out: dict[str, Any] = {}
    schemes: dict[str, list[tuple[Task, dict[str, Any]]]] = {}
    for task, result in zip(tasks, results, strict=True):
        if task.key[0] == domain:
            schemes.setdefault(task.key[1], []).append((task, result))
    for scheme, parts in schemes.items():
        rows = [r for t, _ in parts for r in t.test]
        scorers = [*parts[0][1], "majority"]
        per: dict[str, Any] = {}
        for name in scorers:
            preds = (
                None
                if name == "majority"
                else {
                    k: [p for _, res in parts for p in res[name].get(k, [])]
                    for k in ("severity", "page", "category", "actions")
                }
            )
            per[name] = _metrics(rows, preds, parts[0][0].labels, name)
        per["folds"] = [{"test": t.key[2], "n": len(t.test)} for t, _ in parts]
        out[scheme] = per
    return out


def _metrics(
    rows: Sequence[LabeledIncident], preds: dict[str, list[Any]] | None, labels: Sequence[str], name: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "severity" in labels and name != "frequency":
        idx = [i for i, r in enumerate(rows) if r.severity]
        truth = [rows[i].severity for i in idx]
        out["severity"] = severity_metrics(
            truth,
            None if preds is None else [preds["severity"][i] for i in idx],
            [preds["page"][i] for i in idx] if preds and preds.get("page") else None,
        )  # type: ignore[arg-type]
    if "category" in labels and name != "frequency":
        idx = [i for i, r in enumerate(rows) if r.category]
        truth = [rows[i].category for i in idx]
        out["category"] = category_metrics(
            truth, None if preds is None else [preds["category"][i] for i in idx]
        )  # type: ignore[arg-type]
    if "actions" in labels and preds is not None and preds.get("actions"):
        idx = [i for i, r in enumerate(rows) if r.actions]
        out["actions"] = action_report([rows[i].actions for i in idx], [preds["actions"][i] for i in idx])  # type: ignore[misc]
    return out


class ResultCache:
    """Finished fits on disk (``--resume DIR``), so a run killed from outside resumes where it stopped.

    A result is found again only for the same call (the function and every argument: the rows with
    their labels, the fold, seed and samples) under the same code: the key hashes them with the files of
    ``engine/``, ``training/`` (its bundled data too) and this one.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        root = Path(__file__).resolve().parents[1]
        digest = hashlib.sha256()
        sources = [*root.glob("engine/*"), *root.glob("training/**/*"), Path(__file__).resolve()]
        for path in sorted(p for p in sources if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
        self.code = digest.hexdigest()

    def key(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
        call = pickle.dumps((fn.__qualname__, args), protocol=5)
        return hashlib.sha256(self.code.encode() + call).hexdigest()[:32]

    def get(self, key: str) -> Any:
        path = self.directory / f"{key}.pickle"
        return pickle.loads(path.read_bytes()) if path.exists() else None

    def put(self, key: str, value: Any) -> None:
        tmp = self.directory / f"{key}.tmp"
        tmp.write_bytes(pickle.dumps(value, protocol=5))
        tmp.replace(self.directory / f"{key}.pickle")


def _threaded(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn`` in a worker, its own parallel fits (a large run's heads) in threads: loky processes started
    inside a forked worker can outlive it and leave the pool waiting at shutdown. Same models either way."""
    with parallel_config(backend="threading"):
        return fn(*args)


def run_all(
    calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]], jobs: int, cache: ResultCache | None = None
) -> list[Any]:
    """Every call, in ``jobs`` forked processes, results in order.

    Forked workers read the loaded data without a copy and carry the parent's command line. A worker
    killed from outside (the OS short of memory, a stray ``kill``) breaks the pool: the calls not yet
    finished are submitted again to a new one, twice at most; every call is deterministic, so a rerun
    gives what the first run would have.
    """
    keys = [cache.key(fn, args) for fn, args in calls] if cache else []
    results: dict[int, Any] = {}
    if cache:
        found = {i: cache.get(k) for i, k in enumerate(keys)}
        results = {i: v for i, v in found.items() if v is not None}
        if results:
            print(f"  {len(results)} of {len(calls)} fits from {cache.directory}", file=sys.stderr)

    def done(i: int, value: Any) -> None:
        results[i] = value
        if cache:
            cache.put(keys[i], value)

    for attempt in range(3):
        pending = [i for i in range(len(calls)) if i not in results]
        if not pending:
            break
        if attempt:
            print(f"  a worker was killed: {len(pending)} calls again", file=sys.stderr)
        if jobs <= 1:
            for i in pending:
                done(i, calls[i][0](*calls[i][1]))
            break
        try:
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
                futures = {pool.submit(_threaded, calls[i][0], *calls[i][1]): i for i in pending}
                for future in as_completed(futures):
                    done(futures[future], future.result())
        except BrokenProcessPool:
            if attempt == 2:
                raise
    return [results[i] for i in range(len(calls))]


# -- one seed -------------------------------------------------------------------------------------------
def run_seed(
    data: RealData,
    seed: int,
    samples: int,
    only: Sequence[str],
    alert_folds: int | None,
    jobs: int,
    shipped: bool = False,
    cache: ResultCache | None = None,
) -> dict[str, Any]:
    """Every fit of one seed in ``jobs`` processes; ``shipped``: also the shipped built-in on the suite
    (it does not depend on the seed, so it runs once, in the first seed's pool)."""
    config = TrainConfig(samples=samples, seed=seed, progress=False)
    tasks: list[Task] = []
    if "alerts" in only:
        tasks += alert_tasks(data, alert_folds, seed)
    if "statuspage" in only:
        tasks += statuspage_tasks(data)
    if "postmortems" in only:
        tasks += postmortem_tasks(data)
    calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [(run_task, (t, config)) for t in tasks]
    suite_rows = load_suite() if "suite" in only else []
    if suite_rows:
        calls.append((suite_builtin_recipe, (data.files[ALERTS], config, suite_rows)))
        if shipped:
            calls.append((suite_shipped, (suite_rows,)))
    started = time.perf_counter()
    with threadpool_limits(1):
        results = run_all(calls, jobs, cache)
    out: dict[str, Any] = {"seconds": round(time.perf_counter() - started, 1)}
    fits = results[: len(tasks)]
    if "alerts" in only:
        rules = data.files[ALERTS]
        out["alerts"] = {
            "rules": len(rules),
            "mixins": len({r.service for r in rules}),
            "folds": f"GroupKFold({alert_folds})" if alert_folds else "leave-one-mixin-out",
            **pool(tasks, fits, "alerts"),
        }
    for domain in ("statuspage", "postmortems"):
        if domain in only:
            out[domain] = pool(tasks, fits, domain)
    if suite_rows:
        out["suite"] = {"built-in recipe": results[len(tasks)]}
        if shipped:
            out["shipped"] = results[-1]
    return out


# -- reporting ------------------------------------------------------------------------------------------
def _cell(value: Any, width: int = 7) -> str:
    if value is None:
        return " " * (width - 1) + "-"
    if isinstance(value, tuple):  # (mean, min, max) over seeds
        if all(float(v).is_integer() for v in value) and value[1] == value[2]:
            return str(int(value[0])).rjust(width)
        return f"{value[0]:.3f} [{value[1]:.3f}, {value[2]:.3f}]".rjust(width)
    if isinstance(value, int):
        return str(value).rjust(width)
    return f"{value:.3f}".rjust(width)


def _get(d: dict[str, Any], *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _table(title: str, header: Sequence[str], lines: Sequence[tuple[str, str, Sequence[Any]]]) -> None:
    print(title)
    wide = any(isinstance(v, tuple) for _, _, vals in lines for v in vals)
    width = 24 if wide else 2 + max(7, *(len(h) for h in header))
    print(f"  {'':<16}{'':<30}" + "".join(h.rjust(width) for h in header))
    last = None
    for group, name, vals in lines:
        print(f"  {group if group != last else '':<16}{name:<30}" + "".join(_cell(v, width) for v in vals))
        last = group


def print_report(out: dict[str, Any]) -> None:
    """The compact tables of one seed, or of the summary over seeds (cells: mean [min, max])."""
    if "alerts" in out:
        a = out["alerts"]
        lines = []
        for recipe in ("synthetic-only", "built-in", "with --data"):
            for name in ("model", "tfidf", "tfidf_real", "majority"):
                s = _get(a, recipe, name, "severity")
                if s is not None:
                    keys = ("page_bacc", "page_auc", "paged_when_page", "quiet_when_not", "macro_f1")
                    lines.append((recipe, SCORER_NAMES[name], [s.get(k) for k in keys]))
        _table(
            f"alerts: {a.get('rules')} rules of {a.get('mixins')} mixins, {a.get('folds')} "
            "(truth: rule critical = page)",
            ("page-BA", "page-AUC", "paged|crit", "quiet|warn", "macro-F1"),
            lines,
        )
    if "statuspage" in out:
        lines = []
        for scheme in ("by provider", "by time"):
            for name in ("model", "tfidf", "tfidf_real", "majority"):
                s = _get(out["statuspage"], scheme, name, "severity")
                if s is not None:
                    lines.append(
                        (scheme, SCORER_NAMES[name], [s.get(k) for k in ("n", "macro_f1", "ece", "accuracy")])
                    )
        _table("status pages: severity", ("n", "macro-F1", "ECE", "accuracy"), lines)
    if "postmortems" in out:
        lines = []
        for scheme in ("by provider", "by time"):
            for name in ("model", "tfidf", "tfidf_real", "frequency", "majority"):
                p = _get(out["postmortems"], scheme, name)
                if p is None:
                    continue
                c, act = p.get("category", {}), p.get("actions", {})
                cells = [
                    c.get("n"),
                    c.get("macro_f1"),
                    c.get("ece"),
                    act.get("n"),
                    act.get("top1"),
                    act.get("top3"),
                ]
                lines.append((scheme, SCORER_NAMES[name], cells))
        _table(
            "post-mortems (ISSRE'22): category and actions; danluu rows train",
            ("cat n", "macro-F1", "ECE", "act n", "top-1", "top-3"),
            lines,
        )
    if "suite" in out:
        lines = []
        for model, results in out["suite"].items():
            for name, r in results.items():
                if name in SCORER_NAMES:
                    keys = ("severity", "category", "actions", "page_auc")
                    lines.append((model, SCORER_NAMES[name], [r.get(k) for k in keys]))
        _table(
            "plain-language suite: share acceptable; page-AUC: pageable messages ranked above the others",
            ("severity", "category", "top-3 act", "page-AUC"),
            lines,
        )


def print_shipped(result: dict[str, Any]) -> None:
    print(
        "plain-language suite, shipped built-in model "
        f"(train_builtin; trained on {result.get('trained_on')}):"
    )
    print(f"  {summary_line(result)}  targets: severity 0.85, category 0.80, actions 0.85")
    if result.get("page_auc") is not None:
        print(f"  P(critical or high) ranks pageable messages above the others: AUC {result['page_auc']:.3f}")
    wrong = failures(result)
    print(f"  wrong on {len(wrong)} of {result['n']} rows:")
    for d in wrong:
        print(f"    {format_row(d)}")


# -- summary over seeds ---------------------------------------------------------------------------------
def _numbers(out: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], float]]:
    if isinstance(out, dict):
        for k, v in out.items():
            if k not in ("rows", "folds", "seconds", "trained_on"):
                yield from _numbers(v, (*path, k))
    elif isinstance(out, int | float) and not isinstance(out, bool):
        yield path, float(out)


def summarize(by_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The per-seed structure with every number replaced by (mean, min, max) over the seeds.

    One seed is one draw of the synthetic sample (and, with --alert-folds, of the mixin folds): a change
    counts only if it holds across seeds.
    """
    values: dict[tuple[str, ...], list[float]] = {}
    for out in by_seed.values():
        for path, v in _numbers(out):
            values.setdefault(path, []).append(v)
    summary: dict[str, Any] = {}
    for path, vs in values.items():
        if len(vs) != len(by_seed):
            continue
        node = summary
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = (float(np.mean(vs)), min(vs), max(vs))
    for key in ("rules", "mixins"):
        if key in summary.get("alerts", {}):
            summary["alerts"][key] = int(summary["alerts"][key][0])
    if "alerts" in summary:
        summary["alerts"]["folds"] = next(iter(by_seed.values()))["alerts"]["folds"]
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--samples", type=int, default=BUILTIN_SAMPLES, help="synthetic incidents in every training set"
    )
    parser.add_argument(
        "--seed", type=int, action="append", help="repeatable: several are summarized (default 42)"
    )
    parser.add_argument("--only", action="append", choices=DOMAINS, help="repeatable; default: every domain")
    parser.add_argument(
        "--alert-folds",
        type=int,
        default=None,
        help="GroupKFold(K) over mixins instead of leave-one-mixin-out",
    )
    parser.add_argument("--jobs", type=int, default=2, help="fits run in this many processes (default 2)")
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="keep finished fits in DIR and reuse them (same code, data and options): a killed run resumes",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not REAL.is_dir():
        print(f"{REAL} not found: this benchmark needs the shared real dev files", file=sys.stderr)
        return 2
    only = tuple(args.only or DOMAINS)
    data = load_real(REAL)
    cache = ResultCache(args.resume) if args.resume else None
    started = time.perf_counter()
    shipped = None
    by_seed: dict[int, dict[str, Any]] = {}
    for seed in dict.fromkeys(args.seed or [42]):
        first = not by_seed
        by_seed[seed] = run_seed(data, seed, args.samples, only, args.alert_folds, args.jobs, first, cache)
        shipped = by_seed[seed].pop("shipped", shipped)
        if not args.json:
            print(f"seed {seed} ({args.samples} synthetic samples, {by_seed[seed]['seconds']:.0f}s):")
            print_report(by_seed[seed])
            print()
    summary = summarize(by_seed)
    total = round(time.perf_counter() - started, 1)
    if args.json:
        print(
            json.dumps(
                {"seeds": by_seed, "summary": summary, "shipped_suite": shipped, "seconds": total},
                indent=1,
                default=str,
            )
        )
        return 0
    if len(by_seed) > 1:
        print(f"over seeds {', '.join(map(str, by_seed))}: mean [min, max]")
        print_report(summary)
        print()
    if shipped is not None:
        print_shipped(shipped)
    print(f"total {total:.0f}s")
    return 0


if __name__ == "__main__":
    # Run as the module ``bench.quality``, not ``__main__``: the worker processes then import the fold
    # functions by name (and keep their per-process synthetic cache) instead of unpickling copies.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import quality

    raise SystemExit(quality.main())
