"""How :class:`~modchain.text.documents.DocumentGuard` scores injection in retrieved documents.

:class:`InjectionScorer` picks one of three scorers from ``DocumentGuardConfig.injection_scorer`` and gives
every document its ``injection`` score (the maximum over its sentence windows), noting the windows at or over
the threshold:

* ``"model"`` -- the trained window model (:class:`~modchain.text.documents.injection.WindowInjectionModel`),
  pure Python, no backend call;
* ``"backend"`` -- the prompt-safety backend on the windows, gated and floored by the hand-written cues of
  :mod:`modchain.text.documents.cues`;
* ``"embedding"`` / ``"embedding+model"`` -- a head on sentence embeddings
  (:mod:`modchain.text.documents.injection_embedding`, torch and transformers), alone or with the window model.

``"auto"`` is ``"model"`` when prompt safety would go to the offline ``local`` backend, else ``"backend"``.
With ``reader_cues`` every scorer also counts each window's explicit AI-reader cues.

:class:`DocumentState` is the guard's working state for one document; it lives here so the guard and this
module share it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import RunnableConfig

from modchain.core.config import PromptSafetyConfig
from modchain.core.errors import BackendError
from modchain.text.chain import ModerationChain
from modchain.text.documents.cues import (
    content_words,
    cue_score,
    planted_blocks,
    reader_cue_score,
    request_score,
    window_cues,
    window_spans,
)
from modchain.text.documents.injection import WindowInjectionModel
from modchain.text.documents.report import DocumentGuardConfig


@dataclass
class DocumentState:
    """One document while the guard works on it."""

    index: int
    doc: Document
    text: str
    sentences: list[tuple[int, int]] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    hits: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # kind -> sentence runs at/over threshold
    flags: list[str] = field(default_factory=list)
    pii_labels: tuple[str, ...] = ()
    action: str = "keep"


# The guard's record of one scored window: (document, kind, first sentence, last + 1, score).
Note = Callable[[DocumentState, str, int, int, float], None]


def failed(result: Any) -> bool:
    """Whether any filter of a chain result errored (the chain failed open on it)."""
    return any(f.error for f in result.filters)


class InjectionScorer:
    """The injection scorer chosen by ``config.injection_scorer``.

    Args:
        config: the guard's configuration.
        backend / backends: as given to the guard (they decide what ``"auto"`` means).
        chain: builds a :class:`ModerationChain` from filter configs, as the guard builds its own, so the
            backend, fail-open and vault are the guard's.
    """

    def __init__(self, config: DocumentGuardConfig, backend: Any, backends: dict[str, Any] | None,
                 chain: Callable[[list[Any]], ModerationChain]) -> None:
        self.config = config
        # The trained window model reads the page itself (pure Python, no backend call); it stands in for the
        # local prompt-safety backend only: a remote backend the caller chose keeps scoring the windows.
        scorer = config.injection_scorer
        if scorer == "auto":
            scorer = "model" if _local_prompt_safety(config, backend, backends) else "backend"
        self.window_model = WindowInjectionModel() if scorer == "model" and config.injection != "off" else None
        self.embedding_scorer = None
        if scorer in ("embedding", "embedding+model") and config.injection != "off":
            # numpy here, torch and transformers on first use only: the default path stays pure Python
            from modchain.text.documents.injection_embedding import EmbeddingInjectionScorer

            self.embedding_scorer = EmbeddingInjectionScorer(
                config.embedding_model, device=config.embedding_device, head=config.embedding_head,
                combine=scorer == "embedding+model")
        # Detection only, threshold 0: every score comes back, the guard decides.
        self.chain = chain([PromptSafetyConfig(threshold=0.0, action="detect")])

    def score(self, docs: Sequence[DocumentState], run_config: RunnableConfig | None, note: Note) -> None:
        """Set ``scores["injection"]`` on every document, ``note`` each window, flag ``error`` where a backend
        failed open; a failure that does not fail open raises."""
        if self.embedding_scorer is not None:
            self._score_embedding(docs, note)
            return
        if self.window_model is not None:
            for d in docs:
                d.scores["injection"] = 0.0
                for first, last, score, cue in self.window_model.score_windows_cues(
                        d.text, d.sentences, self.config.window_sentences, self.config.max_window_chars):
                    if self.config.reader_cues:  # explicit AI-reader cues: flagged 0% of the dev clean pages
                        score = max(score, cue)
                    note(d, "injection", first, last, score)
                    d.scores["injection"] = max(d.scores["injection"], score)
            return
        cfg = self.config
        units: list[tuple[DocumentState, int, int, float]] = []  # (doc, first, last, floor score from cues/requests)
        texts: list[str] = []
        for d in docs:
            best = 0.0
            if cfg.reader_cues:
                spans = window_spans(d.sentences, cfg.window_sentences, cfg.max_window_chars)
                found = window_cues(d.text, [(start, end) for _, _, start, end in spans])
                for (first, last, _, _), cues in zip(spans, found):
                    cue = cue_score(cues)
                    note(d, "injection", first, last, cue)
                    best = max(best, cue)
            if cfg.context_gate:
                words = [content_words(d.text[s:e]) for s, e in d.sentences]
                runs = planted_blocks(d.text, d.sentences, cfg.max_block_sentences, words)
            else:
                runs = [(f, lst) for f, lst, _, _ in window_spans(d.sentences, cfg.window_sentences,
                                                                   cfg.max_window_chars)]
            for first, last in runs:
                floor = max(request_score(d.text[s:e]) for s, e in d.sentences[first:last]) if cfg.context_gate else 0.0
                units.append((d, first, last, floor))
                texts.append(d.text[d.sentences[first][0] : d.sentences[last - 1][1]])
            d.scores["injection"] = best
        results = self.chain.moderate_batch(texts, run_config) if texts else []
        for (d, first, last, floor), result in zip(units, results):
            if failed(result):
                d.flags.append("error")
                continue
            score = max([floor] + [f.score for f in result.findings])
            note(d, "injection", first, last, score)
            d.scores["injection"] = max(d.scores["injection"], score)

    def _score_embedding(self, docs: Sequence[DocumentState], note: Note) -> None:
        """All documents' sentences embedded in one batch; a model failure fails closed unless fail_open."""
        try:
            per_doc = self.embedding_scorer.score_documents(  # type: ignore[union-attr]
                [(d.text, d.sentences) for d in docs], self.config.window_sentences, self.config.max_window_chars)
        except BackendError:
            if not self.config.fail_open:
                raise
            for d in docs:
                d.flags.append("error")
                d.scores["injection"] = 0.0
            return
        for d, windows in zip(docs, per_doc):
            d.scores["injection"] = 0.0
            for first, last, score in windows:
                if self.config.reader_cues:
                    score = max(score, reader_cue_score(d.text[d.sentences[first][0]:d.sentences[last - 1][1]]))
                note(d, "injection", first, last, score)
                d.scores["injection"] = max(d.scores["injection"], score)


def _local_prompt_safety(config: DocumentGuardConfig, backend: Any, backends: dict[str, Any] | None) -> bool:
    """Whether prompt safety would be scored by the offline ``local`` backend (as ModerationChain resolves it), on
    any tier: an instance reports its tier in its name (``local:cascade``), a config names the backend alone."""
    chosen = backend if backend is not None else (backends or {}).get(config.backend.name)
    if chosen is None:
        return config.backend.name == "local"
    name = chosen if isinstance(chosen, str) else getattr(chosen, "name", None)
    return isinstance(name, str) and name.split(":", 1)[0] == "local"
