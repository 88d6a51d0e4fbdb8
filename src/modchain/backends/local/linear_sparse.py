"""The batch path of the linear text classifiers: many texts' logits as one numpy sparse product.

Used by ``LinearTextModel.logits_batch`` when numpy is installed and the batch and the model's heads are many
enough for it to pay; otherwise the model loops over the texts in pure Python, with the same logits.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modchain.backends.local.linear_model import LinearTextModel

__all__ = ["MIN_VECTOR_BATCH", "MIN_VECTOR_HEADS", "SparseWeights", "numpy_or_none", "vectorized"]


# Below this many texts the per-text loop is as fast (numpy's fixed cost per call is a few microseconds), and
# numpy is not even imported (``invoke`` on one message stays free of it; tests/test_light_import.py).
MIN_VECTOR_BATCH = 8
# Fewer heads than this and the loop is as fast or faster: either way each feature costs one dict lookup (to its
# weight, or to its column), which is nearly all of the time; the product only saves the per-head sums. Measured
# on 500 chat messages (benchmarks/batch_throughput.py texts, 2-core machine): toxicity (1 head) ~55 us/text loop
# vs ~62 product, prompt_kind (3 heads) ~150 vs ~80.
MIN_VECTOR_HEADS = 2


def numpy_or_none() -> Any:
    """numpy, or None when it is not installed: the pure-Python loop then computes the same logits."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def vectorized() -> bool:
    """Whether ``LinearTextModel.logits_batch`` runs as a numpy sparse product here (else the pure-Python loop)."""
    return numpy_or_none() is not None


class SparseWeights:
    """A model's weights as a dense (columns x heads) array, with a column index per feature family."""

    def __init__(self, model: LinearTextModel) -> None:
        np = numpy_or_none()
        # family -> feature -> row of ``weights`` (rows numbered across families, so one lookup finds it)
        columns: dict[str, dict[str, int]] = {}
        total = 0
        for tables in model.tables:
            for fam, table in tables.items():
                index = columns.setdefault(fam, {})
                for feat in table:
                    if feat not in index:
                        index[feat] = total
                        total += 1
        weights = np.zeros((total + 1, len(model.tables)))  # the last row: 0.0 for every unknown feature
        for j, tables in enumerate(model.tables):
            for fam, table in tables.items():
                index = columns[fam]
                for feat, w in table.items():
                    weights[index[feat], j] = w
        self.columns = columns
        self.weights = weights
        self.unknown = total
        self.biases = np.asarray(model.biases, dtype=float)

    def logits(self, np: Any, batch: Sequence[dict[str, set[str] | frozenset[str]]]) -> list[list[float]]:
        n = len(batch)
        cols = array("q")  # X's column indices, family after family (numpy reads the buffer without a copy)
        rows: list[Any] = []  # per family: the text of each entry in ``cols``
        scales: list[Any] = []  # per family: the 1/sqrt(family size) of each entry
        texts = np.arange(n)
        names = {fam for families in batch for fam in families}
        unknown = repeat(self.unknown)
        for fam, index in self.columns.items():
            if fam not in names:
                continue
            fams = [families.get(fam, ()) for families in batch]
            size = np.fromiter(map(len, fams), dtype=np.int64, count=n)
            # every feature, known or not (unknown ones point at the all-zero row), in one C-level pass
            cols.extend(map(index.get, chain.from_iterable(fams), unknown))
            rows.append(np.repeat(texts, size))
            scales.append(np.repeat(1.0 / np.sqrt(np.maximum(size, 1)), size))
        out = np.zeros((n, self.weights.shape[1]))
        if cols:
            at, scale = np.concatenate(rows), np.concatenate(scales)
            picked = self.weights[np.frombuffer(cols, dtype=np.int64)] * scale[:, None]  # X's values times W's rows
            for j in range(out.shape[1]):
                out[:, j] = np.bincount(at, weights=picked[:, j], minlength=n)
        out += self.biases
        return out.tolist()
