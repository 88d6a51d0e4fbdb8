"""Evaluation metrics: confusion counts and span matching. Pure functions, no I/O, no timing.

Conventions: a ratio whose denominator is 0 is 0.0 (so an empty set scores 0, not NaN). ``fpr`` is always
over *texts*: negative texts (no gold positive) that got a positive prediction, divided by all negative
texts. For binary tasks that is the usual FP / (FP + TN); for spans, TP/FP/FN count spans while TN and
the false-alarm count are texts, since a text without PII has no natural "negative span".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

#: A labelled character span: (start inclusive, end exclusive, label).
Span = tuple[int, int, str]

#: A prediction matches a gold span of the same label when their intersection-over-union reaches this.
MIN_IOU = 0.5


def ratio(num: float, den: float) -> float:
    """``num / den``, with 0/0 (and anything over 0) defined as 0.0."""
    return num / den if den else 0.0


@dataclass(frozen=True)
class Counts:
    """Confusion counts. ``fp_texts``: negative texts with a positive prediction (equals ``fp`` for
    binary tasks, where each text is one unit)."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    fp_texts: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn,
                      self.fp_texts + other.fp_texts)

    @property
    def precision(self) -> float:
        return ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def fpr(self) -> float:
        return ratio(self.fp_texts, self.fp_texts + self.tn)

    def as_dict(self, digits: int = 4) -> dict[str, int | float]:
        return {
            "tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn,
            "precision": round(self.precision, digits), "recall": round(self.recall, digits),
            "f1": round(self.f1, digits), "fpr": round(self.fpr, digits),
        }


def binary_counts(gold: Iterable[bool], predicted: Iterable[bool]) -> Counts:
    """Counts for per-text yes/no labels (``gold[i]``: text i is positive)."""
    tp = fp = tn = fn = 0
    for g, p in zip(gold, predicted, strict=True):
        if g and p:
            tp += 1
        elif p:
            fp += 1
        elif g:
            fn += 1
        else:
            tn += 1
    return Counts(tp=tp, fp=fp, tn=tn, fn=fn, fp_texts=fp)


def iou(a: tuple[int, int] | Span, b: tuple[int, int] | Span) -> float:
    """Intersection over union of two half-open character ranges; 0.0 when they do not overlap (or
    when both are empty)."""
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return ratio(inter, union)


def match_spans(gold: Sequence[Span], predicted: Sequence[Span], min_iou: float = MIN_IOU) -> list[tuple[int, int]]:
    """One-to-one matching of same-label spans, greedily by IoU: the highest-IoU pair is matched first,
    then the next pair whose gold and prediction are both still free, down to ``min_iou``. Ties go to the
    earlier gold span, then the earlier prediction. Returns (gold index, prediction index) pairs."""
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must be in (0, 1], not {min_iou}")
    candidates = []
    for gi, g in enumerate(gold):
        for pi, p in enumerate(predicted):
            if g[2] == p[2]:
                overlap = iou(g, p)
                if overlap >= min_iou:
                    candidates.append((-overlap, gi, pi))
    candidates.sort()
    used_gold: set[int] = set()
    used_pred: set[int] = set()
    pairs = []
    for _, gi, pi in candidates:
        if gi not in used_gold and pi not in used_pred:
            used_gold.add(gi)
            used_pred.add(pi)
            pairs.append((gi, pi))
    return pairs


def span_counts(gold: Sequence[Span], predicted: Sequence[Span], min_iou: float = MIN_IOU) -> Counts:
    """Counts for one text: matched predictions are TP, unmatched ones FP, unmatched gold spans FN; the
    text adds one TN when it has neither gold spans nor predictions, or one false-alarm text when it has
    predictions but no gold span."""
    tp = len(match_spans(gold, predicted, min_iou))
    negative = not gold
    return Counts(tp=tp, fp=len(predicted) - tp, fn=len(gold) - tp,
                  tn=int(negative and not predicted), fp_texts=int(negative and bool(predicted)))


def span_report(
    texts: Iterable[tuple[Sequence[Span], Sequence[Span]]],
    labels: Collection[str] | None = None,
    min_iou: float = MIN_IOU,
) -> tuple[Counts, dict[str, Counts]]:
    """Overall and per-label counts over (gold spans, predicted spans) per text.

    ``labels``: evaluate only these (spans of other labels, gold or predicted, are dropped); None or
    empty: every label seen. Per label, TN and false-alarm texts are counted as if that label were the
    only one, i.e. over texts without gold spans *of that label*.
    """
    keep = frozenset(labels) if labels else None
    rows = [([s for s in gold if keep is None or s[2] in keep], [s for s in pred if keep is None or s[2] in keep])
            for gold, pred in texts]
    names = sorted(keep if keep is not None else {s[2] for gold, pred in rows for s in (*gold, *pred)})
    overall = Counts()
    per_label = dict.fromkeys(names, Counts())
    for gold, pred in rows:
        overall += span_counts(gold, pred, min_iou)
        for label in names:
            per_label[label] += span_counts([s for s in gold if s[2] == label], [s for s in pred if s[2] == label],
                                            min_iou)
    return overall, per_label
