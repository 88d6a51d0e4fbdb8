"""Features, fitting and export of the offline classifiers (``train_text_classifiers.py``): sparse matrices of
the package's own features, L2 logistic regressions, thresholds, length slopes and the gzip JSON model files."""

from __future__ import annotations

import gzip
import json
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import prose
from classifier_decontam import as_windows
from classifier_examples import SEED, Example, pydoc_paragraphs, rag_passages
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from modchain.backends.local import linear_model as lm
from modchain.backends.local import long_text
from modchain.backends.local.normalize import normalize_for_model

__all__ = ["Featurizer", "build_matrix", "export_head", "fit", "fit_length_slope", "known_words", "oof_scores",
           "pattern_features", "pick_threshold", "tail_scale", "train_binary", "train_kind", "write_model"]


def pattern_features(text: str) -> list[str]:
    """Which hand-written prompt-safety patterns fire (the pattern scorer's evidence as features)."""
    from modchain.backends.local import prompt_safety_heuristics as psh

    return psh.pattern_features(text)


def known_words(texts: list[str], lexicon: dict[str, str], min_df: int = 2) -> list[str]:
    """The training vocabulary (alphabetic tokens in >= min_df texts), for spelling repair."""
    df: Counter = Counter()
    for t in texts:
        df.update({w for w in lm.tokenize(normalize_for_model(t)) if w.isalpha()})
    return sorted({w for w, c in df.items() if c >= min_df} | {p for p in lexicon if " " not in p})


class Featurizer:
    def __init__(self, lexicon: dict[str, str], config: dict, known: list[str], extra_fn=None):
        self.lexicon = lm._Lexicon(lexicon, known, config.get("negatable", ()), config.get("negator", "<NOT>"))
        self.config = config
        self.known = known
        self.extra_fn = extra_fn

    def __call__(self, text: str) -> dict[str, set[str]]:
        extra = self.extra_fn(text) if self.extra_fn else ()
        return lm.featurize(normalize_for_model(text), self.lexicon, self.config, extra)


def build_matrix(feats: list[dict[str, set[str]]], vocab: dict[str, int] | None, min_df: int = 2):
    """Binary bags, L2-normalized per family (as inference does) -> CSR matrix, vocab of "fam:feature"."""
    if vocab is None:
        df: Counter = Counter()
        for fam in feats:
            for name, fs in fam.items():
                df.update([name + ":" + f for f in fs])
        vocab = {f: i for i, f in enumerate(sorted(f for f, c in df.items() if c >= min_df))}
    rows, cols, vals = [], [], []
    for r, fam in enumerate(feats):
        for name, fs in fam.items():
            if not fs:
                continue
            v = 1.0 / np.sqrt(len(fs))
            for f in fs:
                j = vocab.get(name + ":" + f)
                if j is not None:
                    rows.append(r)
                    cols.append(j)
                    vals.append(v)
    X = sparse.csr_matrix((vals, (rows, cols)), shape=(len(feats), len(vocab)), dtype=np.float64)
    # Feature sets iterate in an order that depends on PYTHONHASHSEED; sorted indices give liblinear the same
    # summation order every run, hence byte-identical weights.
    X.sum_duplicates()
    X.sort_indices()
    return X, vocab


def fit(X, y, w, C: float, class_weight: str | None = None) -> LogisticRegression:
    clf = LogisticRegression(C=C, max_iter=3000, solver="liblinear", random_state=SEED, class_weight=class_weight)
    clf.fit(X, y, sample_weight=w)
    return clf


def export_head(clf: LogisticRegression, vocab: dict[str, int], keep: int, min_abs: float) -> dict:
    coef = clf.coef_[0]
    inv = {i: f for f, i in vocab.items()}
    order = np.argsort(-np.abs(coef))
    weights = {}
    for j in order[:keep]:
        if abs(coef[j]) < min_abs:
            break
        weights[inv[int(j)]] = float(f"{coef[j]:.4g}")
    return {"bias": float(f"{clf.intercept_[0]:.6g}"), "weights": dict(sorted(weights.items()))}


def oof_scores(X, y, w, groups, C: float, folds: int = 5) -> np.ndarray:
    out = np.zeros(len(y))
    for tr, te in GroupKFold(n_splits=folds).split(X, y, groups):
        out[te] = fit(X[tr], y[tr], w[tr], C).decision_function(X[te])
    return out


def pick_threshold(scores: np.ndarray, y: np.ndarray, w: np.ndarray, max_fpr: float | None = None,
                   min_recall: float | None = None) -> float:
    """Weighted-F1-maximizing logit threshold, optionally under an FPR cap / recall floor."""
    best, best_t = -1.0, 0.0
    for t in np.quantile(scores, np.linspace(0.02, 0.98, 193)):
        pred = scores >= t
        tp = float(w[(pred == 1) & (y == 1)].sum())
        fp = float(w[(pred == 1) & (y == 0)].sum())
        fn = float(w[(pred == 0) & (y == 1)].sum())
        tn = float(w[(pred == 0) & (y == 0)].sum())
        fpr = fp / max(fp + tn, 1e-9)
        rec = tp / max(tp + fn, 1e-9)
        if max_fpr is not None and fpr > max_fpr:
            continue
        if min_recall is not None and rec < min_recall:
            continue
        f1 = 2 * tp / max(2 * tp + fp + fn, 1e-9)
        if f1 > best:
            best, best_t = f1, float(t)
    return best_t


def train_binary(name: str, exs: list[Example], featurizer: Featurizer, lexicon: dict[str, str], config: dict,
                 C: float, keep: int, min_abs: float, threshold_rule: dict, head: str, min_df: int = 2) -> dict:
    train = as_windows([e for e in exs if e.split == "train"])
    t0 = time.time()
    feats = [featurizer(e.text) for e in train]
    X, vocab = build_matrix(feats, None, min_df=min_df)
    y = np.array([e.label for e in train])
    w = np.array([e.weight for e in train])
    groups = np.array([e.group for e in train])
    print(f"[{name}] {len(train)} train examples, {X.shape[1]} features ({time.time() - t0:.0f}s featurizing)", flush=True)
    clf = fit(X, y, w, C)
    oof = oof_scores(X, y, w, groups, C)
    # the threshold is picked on the hand-written cases' out-of-fold scores (the target distribution)
    # plus the shared data, each weighted as in training
    mask = np.array([threshold_rule.get("source") is None or e.source in threshold_rule["source"] for e in train])
    t = pick_threshold(oof[mask], y[mask], w[mask], threshold_rule.get("max_fpr"), threshold_rule.get("min_recall"))
    slope = fit_length_slope(clf, vocab, featurizer, t)
    spec = {"format": lm.FORMAT, "name": name, "config": config, "lexicon": lexicon, "known": featurizer.known,
            "heads": {head: export_head(clf, vocab, keep, min_abs)}, "calibration": {head: float(f"{t:.5g}")},
            "length": {"slope": slope, "window_bytes": long_text.WINDOW_BYTES}}
    print(f"[{name}] exported {len(spec['heads'][head]['weights'])} weights, threshold logit {t:.3f}, "
          f"length slope {slope}", flush=True)
    return spec


def fit_length_slope(clf: LogisticRegression, vocab: dict[str, int], featurizer: Featurizer, threshold: float,
                     docs: int = 48, size: int = 40_000) -> float:
    """The scale of the upper tail of benign windows' logits (see modchain/backends/local/long_text.py): long
    benign train-split documents are cut into windows as inference cuts them, and tail_scale reads their logits."""
    rng = random.Random(SEED + 13)
    rag, pydoc = rag_passages(), pydoc_paragraphs()
    pool = rag["train"] + pydoc["train"]
    texts = [w for _ in range(docs) for w in long_text.windows(prose.concatenate(pool, rng, size)) or []]
    X, _ = build_matrix([featurizer(t) for t in texts], vocab)
    z = clf.decision_function(X) - threshold
    slope = tail_scale(z)
    print(f"  benign windows: {len(z)}, above threshold {float(np.mean(z >= 0)):.4f}, tail scale {slope:.3f}")
    return float(f"{slope:.3g}")


def tail_scale(logits) -> float:
    """The mean excess of the logits above their 90th percentile (an exponential tail's maximum-likelihood scale),
    clamped to [0.25, 3] so a degenerate tail cannot switch the length correction off or make it huge."""
    z = np.sort(np.asarray(logits, dtype=float))
    tail = z[int(0.9 * len(z)):]
    return float(np.clip(np.mean(tail - tail[0]), 0.25, 3.0))


def train_kind(exs: list[Example], featurizer: Featurizer, lexicon, config, C: float, keep: int, min_abs: float) -> dict:
    train = as_windows([e for e in exs if e.split == "train" and e.label == 1])
    feats = [featurizer(e.text) for e in train]
    X, vocab = build_matrix(feats, None)
    w = np.array([e.weight for e in train])
    heads, calib = {}, {}
    for kind in ("jailbreak", "injection", "harmful"):
        y = np.array([1 if e.kind == kind else 0 for e in train])
        clf = fit(X, y, w, C, class_weight="balanced")  # injections are few next to harmful requests
        heads[kind] = export_head(clf, vocab, keep, min_abs)
        calib[kind] = 0.0
    return {"format": lm.FORMAT, "name": "prompt_kind", "config": config, "lexicon": lexicon,
            "known": featurizer.known, "heads": heads,
            "calibration": calib}


def write_model(spec: dict, out: Path, meta: dict) -> Path:
    spec = dict(spec)
    spec["meta"] = meta
    raw = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    path = out / f"{spec['name']}.json.gz"
    with open(path, "wb") as f:  # mtime=0: byte-identical output for identical input
        f.write(gzip.compress(raw, compresslevel=9, mtime=0))
    return path
