"""Injection in retrieved documents, scored with sentence embeddings (an optional, model-backed scorer).

The pure-Python window model (:mod:`modchain.text.documents.injection`) judges "off topic" by shared words,
and short passages rarely repeat words: a planted ordinary task ("Analyze the trend of electric car sales")
in a page about strollers shares none, but neither does a page's own next sentence, often. A sentence
embedding knows that "the stroller folds flat" and "check your airline's rules for prams" are about the same
thing, and that a request for car-sales analysis is not.

Each document's sentences are embedded once (all documents of a call in one batch) by the backend's
:class:`~modchain.backends.hf.sentence_encoder.SentenceEncoder`. A window (each sentence, each run of
``size``) is the normalized mean of its sentences; its features are the window embedding itself (what kind of
text it is: a request to a chatbot reads differently from a page), its elementwise product with the rest of
the document's mean embedding (a learned similarity: how this window relates to its page), a few cosine
summaries (to the rest of the page, to its nearest sentence outside, to its neighbours, and how coherent the
rest of the page is by itself), and the request-shape and AI-reader cues of
:mod:`modchain.text.documents.cues`. A small trained head (``backends/local/models/document_injection_minilm.npz``,
written by training/train_document_injection_embeddings.py) maps them to a probability whose 0.5 is the
threshold chosen on the benchmark's dev split.

This is document-injection logic (windows, cues, the head, the combination with the window model), so it
lives with the other document scorers; only the embedding model is a backend. numpy is imported here, torch and
transformers by the encoder on first use; ``DocumentGuard`` imports this module only when the embedding
scorer is configured.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modchain.core.errors import BackendError, ConfigurationError
from modchain.text.documents.cues import (
    content_words,
    reader_cue_score,
    request_kinds,
    window_spans,
)

# Names of the scalar features, in the order the head reads them (after the two embedding blocks).
SCALAR_FEATURES = ("cos_rest", "cos_nearest_out", "cos_neighbour", "rest_coherence", "off_by", "solo",
                   "width2", "q", "task", "you", "foreign", "reader_cue", "shared_words", "no_shared_words",
                   "at_first", "at_last", "page_asks", "n_sentences")


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def document_window_features(text: str, sentences: list[tuple[int, int]], embeddings: np.ndarray, size: int,
                             max_chars: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """``([(first, last + 1)], features)`` for every window of :func:`window_spans`, from the document's sentence
    embeddings (one row per sentence). Shared by the scorer and its training script, so they cannot drift."""
    count = len(sentences)
    pieces = [text[s:e] for s, e in sentences]
    kinds = [request_kinds(p) for p in pieces]
    words = [content_words(p) for p in pieces]
    asking = [bool(k) for k in kinds]
    sims = embeddings @ embeddings.T
    spans, rows = [], []
    for first, last, start, end in window_spans(sentences, size, max_chars):
        window = _unit(embeddings[first:last].mean(0))
        outside = [i for i in range(count) if not first <= i < last]
        scalars = dict.fromkeys(SCALAR_FEATURES, 0.0)
        rest = np.zeros_like(window)
        if outside:
            rest = _unit(embeddings[outside].mean(0))
            to_out = embeddings[outside] @ window
            scalars["cos_rest"] = float(window @ rest)
            scalars["cos_nearest_out"] = float(to_out.max())
            neighbours = [i for i in (first - 1, last) if 0 <= i < count]
            scalars["cos_neighbour"] = float(max(embeddings[i] @ window for i in neighbours))
            if len(outside) > 1:
                block = sims[np.ix_(outside, outside)]
                coherence = float((block.sum() - len(outside)) / (len(outside) * (len(outside) - 1)))
            else:
                coherence = 1.0
            scalars["rest_coherence"] = coherence
            scalars["off_by"] = coherence - scalars["cos_nearest_out"]  # further from the page than the page is
        else:
            scalars["solo"] = 1.0
        forms = set().union(*kinds[first:last])
        scalars.update({form: 1.0 for form in forms})
        scalars["width2"] = float(last - first > 1)
        scalars["reader_cue"] = reader_cue_score(text[start:end])
        inside = set().union(*words[first:last])
        shared = inside & set().union(*(words[i] for i in outside)) if outside else set()
        scalars["shared_words"] = len(shared) / len(inside) if inside else 0.0
        scalars["no_shared_words"] = float(bool(outside) and bool(inside) and not shared)
        scalars["at_first"] = float(first == 0)
        scalars["at_last"] = float(last == count)
        scalars["page_asks"] = min(sum(asking) - sum(asking[first:last]), 2) / 2
        scalars["n_sentences"] = min(count, 12) / 12
        spans.append((first, last))
        rows.append(np.concatenate([window, window * rest, np.array([scalars[k] for k in SCALAR_FEATURES],
                                                                   dtype=np.float32)]))
    width = 2 * embeddings.shape[1] + len(SCALAR_FEATURES)
    return spans, (np.stack(rows).astype(np.float32) if rows else np.zeros((0, width), dtype=np.float32))


class EmbeddingHead:
    """A small MLP (or logistic regression: no hidden layer) on standardized features, in numpy.

    ``layers`` is ``[(W, b), ...]``; hidden layers use ReLU; the last gives one logit. ``threshold`` is the logit
    chosen on dev; :meth:`probabilities` returns ``sigmoid(logit - threshold)``, so 0.5 is that threshold.
    ``combine_weight`` / ``combine_threshold``: the combined score (see :func:`combined_probabilities`).
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]],
                 threshold: float = 0.0, meta: dict[str, Any] | None = None, combine_weight: float = 0.5,
                 combine_threshold: float = 0.0) -> None:
        self.mean, self.scale = np.asarray(mean, np.float32), np.asarray(scale, np.float32)
        self.layers = [(np.asarray(w, np.float32), np.asarray(b, np.float32)) for w, b in layers]
        self.threshold = float(threshold)
        self.meta = meta or {}
        self.combine_weight, self.combine_threshold = float(combine_weight), float(combine_threshold)

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    def logits(self, features: np.ndarray) -> np.ndarray:
        h = (features - self.mean) / self.scale
        for index, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if index < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h.reshape(-1)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.logits(features) - self.threshold)))

    def save(self, path: str | Path) -> Path:
        arrays = {"mean": self.mean, "scale": self.scale, "threshold": np.float64(self.threshold),
                  "combine": np.array([self.combine_weight, self.combine_threshold], dtype=np.float64),
                  "meta": np.array(json.dumps(self.meta, sort_keys=True))}
        for index, (w, b) in enumerate(self.layers):
            arrays[f"w{index}"], arrays[f"b{index}"] = w, b
        path = Path(path)
        np.savez_compressed(path, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path | None = None) -> EmbeddingHead:
        """Read a head saved by :meth:`save`; by default the one shipped with the package (``HEAD_PATH``)."""
        path = _shipped_head_path() if path is None else path
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                layers, index = [], 0
                while f"w{index}" in data:
                    layers.append((data[f"w{index}"], data[f"b{index}"]))
                    index += 1
                combine = data["combine"] if "combine" in data else np.array([0.5, 0.0])
                return cls(data["mean"], data["scale"], layers, float(data["threshold"]),
                           json.loads(str(data["meta"])), float(combine[0]), float(combine[1]))
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the embedding injection head {str(path)!r}: {exc}") from exc


def combined_model_logits(text: str, sentences: list[tuple[int, int]], model: Any, size: int,
                          max_chars: int) -> np.ndarray:
    """Logit of the pure-Python window model's probability, raised to the AI-reader cue score, per window."""
    probs = [max(p, reader_cue_score(text[sentences[first][0]:sentences[last - 1][1]]))
             for first, last, p in model.score_windows(text, sentences, size, max_chars)]
    clipped = np.clip(np.array(probs, dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.log(clipped / (1 - clipped))


class EmbeddingInjectionScorer:
    """Scores the windows of many documents with one embedding pass (the ``embedding`` injection scorer).

    ``combine=True`` (``injection_scorer="embedding+model"``): a window's score is the head's logit over its own
    threshold plus ``head.combine_weight`` times the logit of the pure-Python window model (AI-reader cues
    included), calibrated so 0.5 is the combined threshold chosen on dev. The two read different things (meaning
    versus words and form) and miss different payloads.
    """

    name = "embedding_injection"

    def __init__(self, model: str | None = None, *, device: str | None = None,
                 head: EmbeddingHead | str | Path | None = None, encoder: Any = None,
                 combine: bool = False) -> None:
        if encoder is None:  # the model is a backend: imported when a scorer is built, not with this module
            from modchain.backends.hf.sentence_encoder import DEFAULT_EMBEDDING_MODEL, SentenceEncoder

            encoder = SentenceEncoder(model or DEFAULT_EMBEDDING_MODEL, device=device)
        self.encoder = encoder
        self.head = head if isinstance(head, EmbeddingHead) else EmbeddingHead.load(head or None)
        self.window_model = None
        if combine:
            from modchain.text.documents.injection import WindowInjectionModel

            self.window_model = WindowInjectionModel()

    def _embed_sentences(self, documents: Sequence[tuple[str, list[tuple[int, int]]]]) -> list[np.ndarray]:
        unique: dict[str, int] = {}
        for text, sentences in documents:
            for s, e in sentences:
                unique.setdefault(text[s:e].strip(), len(unique))
        try:
            vectors = self.encoder.encode(list(unique))
        except ConfigurationError:
            raise
        except Exception as exc:  # noqa: BLE001 - a model failure is a backend failure (fail closed or open)
            raise BackendError(f"embedding model failed: {type(exc).__name__}", backend=self.name,
                               operation="encode") from exc
        return [vectors[[unique[text[s:e].strip()] for s, e in sentences]] if sentences
                else np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), np.float32)
                for text, sentences in documents]

    def score_documents(self, documents: Sequence[tuple[str, list[tuple[int, int]]]], size: int = 2,
                        max_chars: int = 1500) -> list[list[tuple[int, int, float]]]:
        """Per document ``(text, sentence spans)``: ``(first, last + 1, probability)`` per window."""
        embedded = self._embed_sentences(documents)
        out = []
        for (text, sentences), embeddings in zip(documents, embedded):
            spans, features = document_window_features(text, sentences, embeddings, size, max_chars)
            if features.shape[1] != self.head.n_features:
                raise ConfigurationError(
                    f"the injection head expects {self.head.n_features} features but the embedding model gives "
                    f"{features.shape[1]}: the head was trained for another embedding model")
            if not spans:
                out.append([])
                continue
            if self.window_model is None:
                probs = self.head.probabilities(features)
            else:
                z = (self.head.logits(features) - self.head.threshold + self.head.combine_weight
                     * combined_model_logits(text, sentences, self.window_model, size, max_chars))
                probs = 1.0 / (1.0 + np.exp(-(z - self.head.combine_threshold)))
            out.append([(first, last, float(p)) for (first, last), p in zip(spans, probs)])
        return out


def _shipped_head_path() -> Path:
    from modchain.backends.hf.sentence_encoder import HEAD_PATH

    return HEAD_PATH


__all__ = ["SCALAR_FEATURES", "EmbeddingHead", "EmbeddingInjectionScorer", "combined_model_logits",
           "document_window_features"]
