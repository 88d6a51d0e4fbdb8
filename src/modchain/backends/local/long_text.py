"""Length-robust verdicts for the offline classifiers: score long texts in windows, calibrate the aggregate.

A linear model scores a bag of features. Before this module a long text was scored whole: its first few
thousand tokens only (the featurizer's cap), and with every weak cue of a long page adding to one logit, so a
benign 2 KB page was flagged more often than a sentence and a 200 KB one nearly always (issue 12). Now a text
longer than one window is cut into overlapping windows at sentence or word boundaries (``WINDOW_BYTES``;
an attack phrase shorter than ``OVERLAP_BYTES`` lies whole in some window) and each window is scored alone.

Taking the plain maximum over n windows would still raise the false-positive rate with n: n benign windows
are n chances for a noisy score to cross the threshold. So the windows' logits are compared with a threshold
raised by ``slope * ln(n)``: if benign windows' logits have an exponential upper tail of scale ``slope``
(P(z > t) ~ q e^(-t/slope)), the chance that the largest of n crosses ``t + slope ln n`` is about that of one
window crossing ``t`` -- the false-positive rate no longer grows with length. The training script fits
``slope`` to the tail of benign prose windows and stores it in the model file (``length.slope``). Evidence
that does not come from the noisy model -- the high-precision attack patterns, the decisive toxicity phrases
-- is taken per window at full strength, since one planted instruction in a long page is still an attack.

**One insult among ordinary sentences.** The same dilution happens inside one window: the models' feature
families are L2-normalized, so every ordinary sentence around an insult lowers its weight, and an abusive line
between two chat requests scored far lower than alone (``benchmarks/tiers.py``, "in context"). So toxicity
scores the sentences (:func:`sentence_parts`) of a one-window text that reached :data:`SENTENCE_GATE` without
being flagged, each against the threshold raised for their number as above, and a sentence that is then
*decisive* (:data:`DECISIVE_SENTENCE`, far above the threshold) decides. Only decisive sentences count: taking any
sentence over the threshold flagged benign prose far more often on dev. Prompt safety does not do this: a
request is judged with its context ("which poisonous mushrooms look like edible ones? I forage and want to stay
safe" is a safety question, its first sentence alone is not), and the sentence path blocked such prompts.
"""

from __future__ import annotations

import math

__all__ = ["DECISIVE_SENTENCE", "OVERLAP_BYTES", "SENTENCE_GATE", "WINDOW_BYTES", "length_shift", "sentence_parts",
           "windows"]

WINDOW_BYTES = 4000  # about 700 words: a long prompt fits whole; the featurizer's token cap is never reached
OVERLAP_BYTES = 400  # longer than any attack pattern or toxic phrase the scorers match
#: Toxicity: a one-window text scoring at least this (a fifth of the 0.5 threshold) and under the threshold has
#: its sentences scored too. Few ordinary chat messages get here (3% of the speed benchmark's), so the extra pass
#: costs little, and on dev it loses almost none of what scoring every text's sentences finds.
SENTENCE_GATE = 0.1
#: How high a sentence (its threshold already raised for the number of sentences) must score to decide for its
#: text: chosen on dev (benchmarks/tiers.py, in context) from 0.5, 0.8, 0.9 and 0.95 as the lowest that kept every
#: benign dev set's false-positive rate within 0.01 of scoring the text whole (0.5 took benign prose 0.02 -> 0.12).
DECISIVE_SENTENCE = 0.8


def windows(text: str) -> list[str] | None:
    """The overlapping windows of a long text, or ``None`` when it fits in one (score it whole)."""
    # A character is 1 to 4 UTF-8 bytes, so only texts between those bounds are encoded to know whether they
    # fit: encoding a long text just to measure it would copy all of it (megabytes at the peak of a 2 MB text).
    if len(text) <= WINDOW_BYTES // 4 or (len(text) <= WINDOW_BYTES and len(text.encode("utf-8")) <= WINDOW_BYTES):
        return None
    from modchain.core.text_splitting import overlapping_windows  # stdlib-only, shared with the AWS backends

    return [text[start:end] for start, end in overlapping_windows(text, WINDOW_BYTES, OVERLAP_BYTES)]


def length_shift(n_windows: int, slope: float) -> float:
    """How much to raise a window's logit threshold when it is the largest of ``n_windows``."""
    return slope * math.log(n_windows) if n_windows > 1 else 0.0


def sentence_parts(text: str) -> list[str] | None:
    """The sentences of a text that fits in one window, or ``None`` when it has fewer than two (its whole score
    is its sentence's) or is longer than one window (it is scored in :func:`windows` instead)."""
    from modchain.core.text_splitting import sentence_spans  # stdlib-only

    if windows(text) is not None:
        return None
    spans = sentence_spans(text)
    return [text[start:end].strip() for start, end in spans] if len(spans) > 1 else None
