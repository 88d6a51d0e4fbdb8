"""DocumentGuard's toxicity check: the whole document first, then sentence windows where they can change something.

Why not the highest score of every sentence window, as before: a 2 KB page has about 40 windows (each sentence,
each pair), and the highest of 40 noisy scores crossed the threshold on 40-56% of benign 2 KB pages
(``benchmarks/document_guard_benign.py``). So:

1. **The whole document** goes through the toxicity chain, as :class:`~modchain.ModerationChain` scores any long
   text: the offline backend cuts it into 4 KB windows and raises its threshold for their number
   (``long_text``), and decisive phrases still count in full; remote services split it into their own segments.
2. **Sentence windows** are scored only
   * for a document toxic as a whole that is to be redacted: they say which sentences to cut;
   * for a document that reached a fifth of the threshold (:data:`WINDOW_GATE`), when the backend states its
     length slope (:meth:`~modchain.backends.base.TextBackend.length_slope`: the offline fast tier does): one
     abusive sentence is diluted by the rest of its page, and its window finds it. Their maximum is held to the
     threshold raised by ``length_shift(number of windows, slope)``, the calibration the backend applies to
     its own windows, so that false positives do not grow with the page.
3. **A document is toxic** when either score reaches the threshold. ``redact`` cuts every window as toxic as
   the whole document (else the highest one) and any window over the raised threshold.

Measured (``benchmarks/document_guard_toxic.py``): fewer benign pages dropped, and fewer pages with one planted
abusive sentence caught than with the old maximum; docs/rag_and_agents.md has the table.
"""

from __future__ import annotations

import math
from typing import Any

from langchain_core.runnables import RunnableConfig

from modchain.backends.local.long_text import length_shift  # the one length calibration (stdlib only)
from modchain.text.documents.cues import window_spans
from modchain.text.documents.injection_scoring import DocumentState, failed
from modchain.text.documents.report import DocumentGuardConfig

__all__ = ["WINDOW_GATE", "score_toxicity"]

#: Windows are scored for a document whose whole score reached this share of the threshold: an abusive sentence
#: still lifts its page's score this far, and few benign pages get there (``benchmarks/document_guard_toxic.py``).
WINDOW_GATE = 0.2


def score_toxicity(chain: Any, docs: list[DocumentState], config: DocumentGuardConfig,
                   run_config: RunnableConfig | None) -> None:
    """Set each document's ``scores["toxicity"]``, its ``hits["toxicity"]`` (sentence runs; empty when toxic with
    nothing known to cut) and its ``error`` flag. ``chain``: a detection-only toxicity chain at threshold 0."""
    if not docs:
        return
    threshold, slope = config.toxicity_threshold, _length_slope(chain)
    closer = []
    for d, result in zip(docs, chain.moderate_batch([d.text for d in docs], run_config)):
        d.scores["toxicity"] = _top(result)
        if failed(result):
            d.flags.append("error")
        elif d.scores["toxicity"] >= threshold:
            d.hits["toxicity"] = []  # toxic; the sentence runs to cut, if any, come from the windows
            if config.toxicity == "redact":
                closer.append(d)
        elif slope and d.scores["toxicity"] >= threshold * WINDOW_GATE:  # no slope: windows would decide nothing
            closer.append(d)
    if closer:
        _score_windows(chain, closer, config, slope, run_config)


def _score_windows(chain: Any, docs: list[DocumentState], config: DocumentGuardConfig, slope: float,
                   run_config: RunnableConfig | None) -> None:
    units, texts = [], []
    for d in docs:
        spans = window_spans(d.sentences, config.window_sentences, config.max_window_chars)
        units += [(d, first, last, len(spans)) for first, last, _, _ in spans]
        texts += [d.text[start:end] for _, _, start, end in spans]
    toxic_whole = {id(d): d.scores["toxicity"] for d in docs if "toxicity" in d.hits}
    highest: dict[int, tuple[float, int, DocumentState, int, int]] = {}
    for (d, first, last, n), result in zip(units, chain.moderate_batch(texts, run_config)):
        if failed(result):
            d.flags.append("error")
            continue
        raw = _top(result)
        raised = _raised(raw, length_shift(n, slope)) if slope else 0.0  # no slope: the windows only locate
        if (slope and raised >= config.toxicity_threshold) or raw >= toxic_whole.get(id(d), 2.0):
            d.hits.setdefault("toxicity", []).append((first, last))
            d.scores["toxicity"] = max(d.scores["toxicity"], raised)
        if (raw, first - last) > highest.get(id(d), (-1.0, 0))[:2]:  # the highest; of equals, the shortest
            highest[id(d)] = (raw, first - last, d, first, last)
    for _, _, d, first, last in highest.values():  # toxic as a whole but no window as toxic: cut the highest
        if id(d) in toxic_whole and not d.hits["toxicity"]:
            d.hits["toxicity"].append((first, last))


def _length_slope(chain: Any) -> float:
    """The toxicity backend's length slope (``TextBackend.length_slope``: the offline fast tier's model file), else
    0: other tiers and remote backends calibrate (or not) inside their own calls."""
    try:  # a backend the chain cannot build was reported (raised, or failed open) on the documents already
        backend = chain.backend_for(chain.filters[0])
    except Exception:  # noqa: BLE001
        return 0.0
    slope = getattr(backend, "length_slope", None)  # a backend need not subclass TextBackend
    return (slope("toxicity") if callable(slope) else None) or 0.0


def _top(result: Any) -> float:
    """The highest score a detection-only chain result holds (0.0 when none)."""
    return max((f.score for f in result.findings), default=0.0)


def _raised(p: float, shift: float) -> float:
    """``p`` with its logit lowered by ``shift``: a window judged against a threshold raised by ``shift``."""
    return p if shift <= 0.0 or p <= 0.0 or p >= 1.0 else 1.0 / (1.0 + math.exp(shift) * (1.0 - p) / p)
