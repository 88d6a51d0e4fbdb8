"""Pure-Python inference for the small linear text classifiers shipped in ``models/``.

A model file (gzip-compressed JSON, written by ``training/train_text_classifiers.py``) holds
everything inference needs, so training and inference cannot drift apart:

* ``lexicon``: phrase -> class token (``"trans people" -> "<GROUP>"``, ``"kill" -> "<VIOL>"``).
  Phrases are matched greedily, longest first.
* ``known``: the training vocabulary, used to repair misspellings of lexicon words and words
  run together (see ``linear_lexicon.Lexicon``).
* ``heads``: one or more logistic heads, each ``{"bias": float, "weights": {feature: float}}``.
* ``config``: the featurizer settings used in training (n-gram orders, caps).
* ``calibration``: the logit shift that puts each head's tuned decision threshold at 0.5.

Features are strings, computed by :func:`featurize` from the normalized text
(:func:`modchain.backends.local.normalize.normalize_for_model`):

========  ====================================================================================
``w:``    word unigrams and bigrams
``a:``    abstracted n-grams: the token stream with lexicon phrases replaced by their class,
          only the n-grams that contain a class (``"<GROUP> are <NEG>"``)
``p:``    ordered pairs of class tokens at most ``window`` tokens apart (``"<HATEV>|<GROUP>"``)
``f:``    flags: each class present, and every pair of classes present anywhere in the text
``c:``    character 3- to 5-grams inside words, padded with spaces (robust to misspellings)
``x:``    extra features a caller adds (for example, which hand-written patterns fired)
========  ====================================================================================

Each family's weights are summed and divided by the square root of the family's feature count
(an L2-normalized binary bag per family, exactly as in training). Weights of features unseen in
training are zero, so unknown words cost one failed dictionary lookup each.

Many texts at once (``logits_batch``, used by the local backend's batch path): one sparse matrix product per
model when numpy is installed, else the same loop; both give the same logits (to floating-point summation order).

The feature extraction is most of the cost. It is shared: normalization, tokens and character n-grams are
computed once per message for every model, and the lexicon-dependent families once per lexicon (the
prompt-safety and prompt-kind models share one), in small LRU caches keyed by the text.

Layout: ``linear_lexicon`` (tokens, phrase lexicon), ``linear_features`` (``featurize``), ``linear_feature_cache``
(the per-message caches), ``linear_sparse`` (the numpy batch path); this module loads a model file and scores.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from itertools import repeat

from modchain.backends.local.linear_feature_cache import (
    clear_caches,  # noqa: F401 (its old home: re-exported)
    shared_featurizer,
)
from modchain.backends.local.linear_features import featurize
from modchain.backends.local.linear_lexicon import Lexicon, tokenize
from modchain.backends.local.linear_sparse import (
    MIN_VECTOR_BATCH,
    MIN_VECTOR_HEADS,
    SparseWeights,
    numpy_or_none,
    vectorized,  # noqa: F401 (its old home: re-exported)
)

__all__ = ["LinearTextModel", "featurize", "load_model", "tokenize"]

# The names these had here before the split: the training scripts and tests use them.
_Lexicon = Lexicon
_MIN_VECTOR_BATCH, _MIN_VECTOR_HEADS = MIN_VECTOR_BATCH, MIN_VECTOR_HEADS

FORMAT = "modchain-linear/1"


class LinearTextModel:
    """A loaded model file: ``logits(text)`` per head and calibrated ``probabilities(text)``."""

    def __init__(self, spec: dict) -> None:
        if spec.get("format") != FORMAT:
            raise ValueError(f"unsupported model format {spec.get('format')!r}")
        self.name: str = spec["name"]
        self.config: dict = spec["config"]
        self._featurizer = shared_featurizer(spec, self.config)
        self.lexicon = self._featurizer.lexicon
        self.head_names: list[str] = list(spec["heads"])
        self.biases = [spec["heads"][h]["bias"] for h in self.head_names]
        self.shifts = [spec.get("calibration", {}).get(h, 0.0) for h in self.head_names]
        # per head, per family: feature -> weight (one C-level dict lookup per feature)
        self.tables: list[dict[str, dict[str, float]]] = [family_tables(spec["heads"][h]["weights"])
                                                           for h in self.head_names]
        self.meta: dict = spec.get("meta", {})
        # threshold raise per ln(number of windows) for long texts (see long_text.py); 0 in older files
        self.length_slope: float = float(spec.get("length", {}).get("slope", 0.0))

    def features(self, text: str, extra: Iterable[str] = ()) -> dict[str, set[str] | frozenset[str]]:
        """``featurize(normalize_for_model(text), ...)``, from the per-message caches shared by all models
        (the result is the same; treat it as read-only)."""
        return self._featurizer.features(text, extra)

    def logits(self, text: str, extra: Iterable[str] = ()) -> list[float]:
        """Raw logit per head (before calibration)."""
        return self.logits_from_features(self.features(text, extra))

    def logits_from_features(self, families: dict[str, set[str]]) -> list[float]:
        out = list(self.biases)
        for fam, feats in families.items():
            if not feats:
                continue
            scale = 1.0 / math.sqrt(len(feats))
            for j, tables in enumerate(self.tables):
                table = tables.get(fam)
                if table:
                    out[j] += scale * sum(map(table.get, feats, repeat(0.0)))
        return out

    def logits_batch(self, batch: Sequence[dict[str, set[str] | frozenset[str]]]) -> list[list[float]]:
        """``[logits_from_features(f) for f in batch]``, as one sparse matrix product when numpy is installed
        (and the batch and the model's heads are many enough for it to pay: ``MIN_VECTOR_BATCH``, ``MIN_VECTOR_HEADS``).

        The feature families of all texts form a sparse matrix X (one row per text, one column per feature the
        model knows, each entry the family's 1/sqrt(size)); the logits are ``X @ W + bias``. Features the model
        does not know only count towards their family's size, as on the pure-Python path. Both paths give the
        same logits up to floating-point summation order (~1e-15); tests hold them to 1e-9."""
        # the size first: one message (``invoke``) never imports numpy, so the single-message path stays light
        np = numpy_or_none() if len(batch) >= MIN_VECTOR_BATCH and len(self.tables) >= MIN_VECTOR_HEADS else None
        if np is None:
            return [self.logits_from_features(f) for f in batch]
        return self._matrix().logits(np, batch)

    def _matrix(self) -> SparseWeights:
        matrix = self.__dict__.get("_sparse")
        if matrix is None:
            matrix = self.__dict__["_sparse"] = SparseWeights(self)
        return matrix

    def probabilities(self, text: str, extra: Iterable[str] = ()) -> dict[str, float]:
        """Calibrated probability per head: 0.5 is each head's tuned decision threshold."""
        return self.calibrate(self.logits(text, extra))

    def calibrate(self, logits: list[float]) -> dict[str, float]:
        return {h: sigmoid(z - s) for h, z, s in zip(self.head_names, logits, self.shifts)}


def family_tables(weights: dict[str, float]) -> dict[str, dict[str, float]]:
    """A model file's ``{"<family>:<feature>": weight}`` as ``{family: {feature: weight}}``."""
    tables: dict[str, dict[str, float]] = {}
    for key, w in weights.items():
        fam, _, feat = key.partition(":")
        tables.setdefault(fam, {})[feat] = w
    return tables


def sigmoid(z: float) -> float:
    """The logistic function, without overflow for large negative ``z``."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def model_from_bytes(data: bytes) -> LinearTextModel:
    return LinearTextModel(json.loads(gzip.decompress(data).decode("utf-8")))


def read_model_file(name: str) -> bytes:
    """The bytes of ``models/<name>.json.gz`` shipped inside this package."""
    return resources.files("modchain.backends.local").joinpath("models", f"{name}.json.gz").read_bytes()


@cache
def load_model(name: str) -> LinearTextModel:
    """Load ``models/<name>.json.gz`` shipped inside this package (cached per process)."""
    return model_from_bytes(read_model_file(name))
