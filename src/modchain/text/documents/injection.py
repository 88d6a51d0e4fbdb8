"""The trained window scorer for injection in retrieved documents (:class:`WindowInjectionModel`).

It is the default scorer of ``DocumentGuard`` with the offline backend: a small logistic model trained on
windows of planted and clean pages (training/train_document_injection.py), stored in
``backends/local/models/document_injection.json.gz``. With a remote prompt-safety backend (Comprehend, Bedrock,
a Hugging Face classifier) the backend scores the windows instead, gated and floored by the hand-written cues of
:mod:`modchain.text.documents.cues` (``DocumentGuardConfig.injection_scorer="backend"``).

A window (see :func:`~modchain.text.documents.cues.window_spans`) is scored from its text (the prompt-safety
featurizer: words, lexicon classes, character n-grams) and from what only the document can tell
(:func:`window_features`): how much of the window's vocabulary the rest of the page shares, what form of
request it makes, where it sits, whether it reads as another language than the page, and which AI-reader cues
fire. The model learns the weights of these cues and of their conjunctions (a question on the page's topic is a
FAQ; off it, a planted task); training calls :func:`window_features`, so the two cannot drift apart.
Standard library only (the model file is read by the package's pure-Python linear-model code); English cues.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from modchain.backends.local.long_text import length_shift  # stdlib only: no model is loaded at import
from modchain.text.documents.cues import (
    OPENERS,
    PageWords,
    content_words,
    cue_score,
    request_kinds,
    window_cues,
    window_spans,
)

MODEL_NAME = "document_injection"
_YOU = re.compile(r"\b(?:you|your|you're|yours)\b", re.I)


def _first_word(sentence: str) -> str:
    words = [w.lower() for w in re.findall(r"[A-Za-z']+", sentence.strip()[:80])]
    while words and words[0] in OPENERS:
        words.pop(0)
    return words[0] if words else ""


# Common English function words: a window with almost none of them in a page full of them is in another language.
_ENGLISH = frozenset("""
the a an and or but of to in on at for with from by as is are was were be been it its this that these those
you your we our they their he she his her not no do does did have has had will would can could should if then
there here what which who when where how than so very all any some more most about into over after before
""".split())
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f']+")


def _english_counts(sentence: str) -> tuple[int, int]:
    """(English function words, all words) of a sentence; words in other scripts count as non-English."""
    words = _LATIN_WORD.findall(sentence.lower())
    # about two CJK characters a word; an ASCII sentence has no letter outside a-z, A-Z (no search needed)
    other = 0 if sentence.isascii() else len(re.findall(r"[^\W\d_a-zA-Z\u00c0-\u024f]", sentence)) // 2
    return sum(w in _ENGLISH for w in words), len(words) + other


def _language_shift(inside: tuple[int, int], outside: tuple[int, int]) -> bool:
    """A window that reads as another language than the rest of its document."""
    return inside[1] >= 4 and inside[0] <= 0.05 * inside[1] and outside[1] >= 8 and outside[0] >= 0.2 * outside[1]


def _overlap_bucket(inside: set[str], shared_words: int) -> str:
    """How much of a window's vocabulary (``inside``, of which ``shared_words`` occur elsewhere in the
    document) the rest of the document shares: none at all (``0``) to most."""
    if not inside:
        return "none"
    shared = shared_words / len(inside)
    return "0" if shared == 0 else "lo" if shared < 0.2 else "mid" if shared < 0.4 else "hi"


def window_features(text: str, sentences: list[tuple[int, int]], size: int, max_chars: int,
                    prompt_safety: Callable[[str], float] | None = None) -> list[tuple[int, int, str, list[str]]]:
    """``(first, last + 1, window text, context features)`` for every window of :func:`window_spans`;
    ``prompt_safety`` (a window's prompt-safety probability) adds its score, bucketed, as features."""
    return [(first, last, window, feats)
            for first, last, window, feats, _ in _window_features(text, sentences, size, max_chars, prompt_safety)]


def _window_features(text: str, sentences: list[tuple[int, int]], size: int, max_chars: int,
                     prompt_safety: Callable[[str], float] | None
                     ) -> list[tuple[int, int, str, list[str], tuple[int, ...]]]:
    """:func:`window_features`, each with the indices of the READER_CUES found in the window (the guard's
    reader-cue score reads them too, instead of searching every window a second time).

    Linear in the page: everything about a sentence is computed once, page totals once, and a window reads
    only its own sentences and those totals."""
    words = [content_words(text[s:e]) for s, e in sentences]
    kinds = [request_kinds(text[s:e]) for s, e in sentences]
    english = [_english_counts(text[s:e]) for s, e in sentences]
    total = (sum(e for e, _ in english), sum(n for _, n in english))
    count = len(sentences)
    page_words = PageWords(words)
    # A page that asks its reader things elsewhere (an email, a forum thread, a FAQ) is conversational: one
    # more request in it is ordinary. A request in a page that asks nothing else stands out.
    asking = [bool(k) for k in kinds]
    addressing = [bool(_YOU.search(text[s:e])) for s, e in sentences]
    all_asking, all_addressing = sum(asking), sum(addressing)
    every_foreign = all("foreign" in k for k in kinds)
    length = "1" if count == 1 else "2-3" if count <= 3 else "4-7" if count <= 7 else "8+"
    spans = window_spans(sentences, size, max_chars)
    found = window_cues(text, [(start, end) for _, _, start, end in spans])
    out = []
    for (first, last, start, end), cue_found in zip(spans, found):
        window = text[start:end]
        inside, shared = page_words.run(first, last)
        off = "solo" if count == 1 else _overlap_bucket(inside, shared)
        forms = set().union(*kinds[first:last]) or {"plain"}
        word = _first_word(window)
        feats = [f"off={off}", f"sh={min(shared, 3)}", f"n={length}", f"w={last - first}", f"fw={word}", f"fw={word}&off={off}"]
        feats += [f"{form}&off={off}" for form in forms] + [f"{form}" for form in forms]
        feats += ["at=first"] * (first == 0) + ["at=last"] * (last == count)
        others = all_asking - sum(asking[first:last])
        page = f"ask={min(others, 2)},you={min(all_addressing - sum(addressing[first:last]), 2)}"
        feats += [page] + [f"{form}&{page}" for form in forms]
        inside_en = (sum(e for e, _ in english[first:last]), sum(n for _, n in english[first:last]))
        if _language_shift(inside_en, (total[0] - inside_en[0], total[1] - inside_en[1])):
            feats += ["lang=shift", f"lang=shift&off={off}"]
        if "foreign" in forms and not every_foreign:
            feats += ["script=shift", f"script=shift&off={off}"]  # another script than the rest of the page
        cues = [f"cue{i}" for i in cue_found]
        feats += cues + [f"cue&off={off}"] * bool(cues)
        if prompt_safety is not None:
            unsafe = prompt_safety(window)
            feats += [f"ps>={t}" for t in (0.3, 0.5, 0.7, 0.9) if unsafe >= t]
            feats += [f"ps>=0.5&off={off}", f"ps>=0.5&{page}"] * (unsafe >= 0.5)
        out.append((first, last, window, feats, cue_found))
    return out


class WindowInjectionModel:
    """The trained window scorer (pure Python; the model file ships in the package)."""

    def __init__(self, model: object | None = None) -> None:
        if model is None:  # imported here: the package's top-level import stays free of model loading
            from modchain.backends.local.linear_model import load_model

            model = load_model(MODEL_NAME)
        self.model = model
        # A page of n windows is n chances for a clean window to cross the threshold: each window's threshold is
        # raised by slope * ln(n) (0 in files trained before the slope was fitted; see the model card).
        self.length_slope = float(getattr(model, "length_slope", 0.0))
        self.prompt_safety: Callable[[str], float] | None = None
        if model.config.get("prompt_safety_feature"):  # type: ignore[attr-defined]
            from modchain.backends.local.prompt_safety_heuristics import score_prompt_safety

            self.prompt_safety = lambda window: score_prompt_safety(window)[0]

    def score_windows(self, text: str, sentences: list[tuple[int, int]], size: int = 2, max_chars: int = 1500
                      ) -> list[tuple[int, int, float]]:
        """``(first, last + 1, calibrated probability)`` per window; 0.5 is the dev-chosen threshold."""
        return [(first, last, p) for first, last, p, _ in self.score_windows_cues(text, sentences, size, max_chars)]

    def score_windows_cues(self, text: str, sentences: list[tuple[int, int]], size: int = 2, max_chars: int = 1500
                           ) -> list[tuple[int, int, float, float]]:
        """:meth:`score_windows`, each with the window's :func:`~modchain.text.documents.cues.reader_cue_score`."""
        model = self.model
        head = model.head_names[0]
        windows = _window_features(text, sentences, size, max_chars, self.prompt_safety)
        shift = length_shift(len(windows), self.length_slope)
        return [(first, last, model.calibrate([model.logits(window, feats)[0] - shift])[head], cue_score(found))
                for first, last, window, feats, found in windows]
