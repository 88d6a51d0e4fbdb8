"""The fast tier beyond English: two small linear models over character n-grams, in pure Python.

The English models (``toxicity_lexicon``, ``prompt_safety_heuristics``) fold accents and tokenize ``[a-z0-9]+``:
they cannot see Chinese at all, and they read the unknown words of other languages as prompt attacks. Two models,
trained by ``training/train_multilingual.py`` and shipped in ``models/`` (see MODELS.md), cover that:

* ``toxicity_zh`` -- head ``toxic``: offensive Chinese (insults, profanity, hate against groups, threats); trained
  on COLD, with a hand-written lexicon family (``multilingual_lexicon``) so that it carries beyond COLD's race /
  gender / region comments.
* ``prompt_injection_multi`` -- head ``unsafe``: prompt injections and jailbreaks vs. ordinary requests, in the
  17 languages of its data and in English (so that an English attack inside a German message still counts, and
  a language is not itself a signal).

Features (``featurize``): the text is NFKC-normalized and casefolded (accents kept: they tell languages apart);
runs of Han / kana / Hangul give character 1- to 3-grams, runs of Thai / Lao / Khmer / Myanmar 2- to 4-grams,
and other words their character n-grams inside the word padded with spaces (orders in the file's ``config``);
``toxicity_zh`` adds the lexicon family, ``prompt_injection_multi`` a sentinel per family. Each family is an
L2-normalized binary bag, scored with dict lookups as
in ``linear_model``; a calibration shift puts each model's tuned threshold at probability 0.5. A text longer than
one window is scored window by window (``long_text``), the highest window counting.

Nothing here is loaded until a non-English text arrives: the backend routes by language (``multilingual_route``).
"""

from __future__ import annotations

import gzip
import json
import math
import re
import threading
import unicodedata
from functools import lru_cache
from itertools import repeat

from modchain.backends.local.linear_model import family_tables, read_model_file, sigmoid
from modchain.backends.local.long_text import windows
from modchain.backends.local.multilingual_lexicon import (
    CJK,
    GROUP_WORDS,
    STRONG,
    YOU_WORDS,
    lexicon_hits,
    quoted_share,
)
from modchain.backends.local.multilingual_route import HAN

__all__ = ["FORMAT", "MultiModel", "featurize", "load_multi", "normalize",
           "prompt_injection_probability", "score_toxicity_zh", "toxicity_zh_probability"]

FORMAT = "modchain-multilingual/1"
TOXICITY_ZH, PROMPT_MULTI = "toxicity_zh", "prompt_injection_multi"
_TOX_LABELS = ("PROFANITY", "HATE_SPEECH", "INSULT", "GRAPHIC", "HARASSMENT_OR_ABUSE", "SEXUAL",
               "VIOLENCE_OR_THREAT")  # == toxicity_lexicon.TOXICITY_LABELS (not imported: it loads the English model)
_TIGHT = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"  # Thai, Lao, Myanmar, Khmer: no spaces between words
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
_TOKENS = re.compile(f"([{CJK}]+)|([{_TIGHT}]+)|([^\\W_{CJK}{_TIGHT}]+)")
_MAX_CHARS = 6000  # a window is at most 4,000 UTF-8 bytes; a cap keeps a caller's direct call linear and bounded


def normalize(text: str) -> str:
    """NFKC (fullwidth and compatibility forms), casefold, invisible characters removed; accents are kept."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text[:_MAX_CHARS])).casefold()


def featurize(norm: str, config: dict) -> dict[str, frozenset[str]]:
    """Feature strings by family of normalized text: ``c`` character n-grams, ``l`` lexicon (when configured)."""
    families = {"c": _grams(norm, tuple(config["cjk_orders"]), tuple(config["word_orders"]))}
    if config.get("lexicon"):
        families["l"] = frozenset(_lexicon_features(norm))
    if config.get("sentinel"):
        # every family holds "_": a family's learned offset, and a short text's few n-grams are scaled by
        # 1/sqrt(n + 1), not 1/sqrt(n) (a four-word request otherwise swings on one n-gram)
        families = {fam: feats | _SENTINEL for fam, feats in families.items()}
    return families


def _grams(norm: str, cjk: tuple[int, int], word: tuple[int, int]) -> frozenset[str]:
    # cached for chat-sized texts only: the n-grams of 256 windows of a long document would pin tens of megabytes
    return _grams_cached(norm, cjk, word) if len(norm) <= _CACHE_MAX_LEN else _grams_uncached(norm, cjk, word)


_CACHE_MAX_LEN = 2000


def _grams_uncached(norm: str, cjk: tuple[int, int], word: tuple[int, int]) -> frozenset[str]:
    grams: set[str] = set()
    (clo, chi), (wlo, whi) = cjk, word
    for m in _TOKENS.finditer(norm):
        run, tight, other = m.groups()
        if run:
            lo, hi, s = clo, chi, run
        elif tight:
            lo, hi, s = 2, 4, tight
        else:
            lo, hi, s = wlo, whi, " " + other + " "
        n = len(s)
        for k in range(lo, hi + 1):
            grams.update([s[i : i + k] for i in range(n - k + 1)])
    return frozenset(grams)


_grams_cached = lru_cache(maxsize=256)(_grams_uncached)
_SENTINEL = frozenset({"_"})


def _lexicon_features(norm: str) -> set[str]:
    feats: set[str] = set()
    for _, hits in lexicon_hits(norm):
        for label, weight in hits:
            feats.add(label if weight < STRONG else label + "+")
            if weight >= STRONG:
                feats.add("strong")
    if feats and YOU_WORDS.search(norm):
        feats.add("you&lex")  # abuse aimed at the reader
    if feats:
        inside, total = quoted_share(norm)
        if inside and inside == total:
            feats.add("quoted")  # every insult is quoted: reported or condemned, the model weighs it
    if GROUP_WORDS.search(norm):
        feats.add("group")
    return feats


class MultiModel:
    """One loaded model file: ``probability(text)`` (calibrated: 0.5 is the tuned threshold)."""

    def __init__(self, spec: dict) -> None:
        if spec.get("format") != FORMAT:
            raise ValueError(f"unsupported model format {spec.get('format')!r}")
        self.name: str = spec["name"]
        self.config: dict = spec["config"]
        self.bias: float = float(spec["bias"])
        self.shift: float = float(spec.get("shift", 0.0))
        self.tables: dict[str, dict[str, float]] = family_tables(spec["weights"])
        self.meta: dict = spec.get("meta", {})

    def features(self, text: str) -> dict[str, frozenset[str]]:
        return featurize(normalize(text), self.config)

    def logit(self, families: dict[str, frozenset[str]]) -> float:
        z = self.bias
        for fam, feats in families.items():
            table = self.tables.get(fam)
            if feats and table:
                z += sum(map(table.get, feats, repeat(0.0))) / math.sqrt(len(feats))
        return z

    def probability(self, text: str, only: re.Pattern[str] | None = None) -> float:
        """The highest calibrated probability over the text's windows (0.0 for blank text); with ``only``, over
        the windows where that pattern occurs (a long English page with one Chinese line: that line's window)."""
        if not text or text.isspace():
            return 0.0
        parts = windows(text) or [text]
        if only is not None:
            parts = [part for part in parts if only.search(part)]
        return max((sigmoid(self.logit(self.features(part)) - self.shift) for part in parts), default=0.0)


_MODELS: dict[str, MultiModel] = {}
_LOCK = threading.Lock()


def load_multi(name: str) -> MultiModel:
    """``models/<name>.json.gz`` shipped in this package, loaded once per process on first use."""
    model = _MODELS.get(name)
    if model is None:
        with _LOCK:
            model = _MODELS.get(name)
            if model is None:
                spec = json.loads(gzip.decompress(read_model_file(name)).decode("utf-8"))
                model = _MODELS[name] = MultiModel(spec)
    return model


def toxicity_zh_probability(text: str) -> float:
    return round(load_multi(TOXICITY_ZH).probability(text, only=HAN), 4)  # windows without Chinese: nothing to read


def prompt_injection_probability(text: str) -> float:
    return round(load_multi(PROMPT_MULTI).probability(text), 4)


def score_toxicity_zh(text: str) -> dict[str, float]:
    """The seven toxicity labels for Chinese text: the highest equals ``toxic_zh``'s probability, spread over the
    labels by the lexicon evidence (as ``toxicity_lexicon`` does for English)."""
    p = toxicity_zh_probability(text)
    out = dict.fromkeys(_TOX_LABELS, 0.0)
    if p <= 0.0:
        return out
    norm = normalize(text)
    keep = dict.fromkeys(_TOX_LABELS, 1.0)
    for _, hits in lexicon_hits(norm):
        for label, weight in hits:
            keep[label] *= 1 - weight
    evidence = {label: 1 - k for label, k in keep.items()}
    if GROUP_WORDS.search(norm):
        evidence["HATE_SPEECH"] = max(evidence.values()) or 1.0
    top = max(evidence.values())
    if top <= 0.0:
        label = "INSULT" if YOU_WORDS.search(norm) else "HARASSMENT_OR_ABUSE"
        evidence[label], top = 1.0, 1.0
    return {label: round(p * evidence[label] / top, 4) for label in _TOX_LABELS}
