"""Feature extraction shared by every linear model that looks at the same message, through small LRU caches.

The results equal ``linear_features.featurize(normalize_for_model(text), ...)``; ``clear_caches`` empties them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache

from modchain.backends.local.linear_features import (
    char_ngrams_cached,
    extra_family,
    featurize,
    lexical_families,
)
from modchain.backends.local.linear_lexicon import Lexicon, tokenize
from modchain.backends.local.normalize import normalize_for_model

__all__ = ["SharedFeaturizer", "clear_caches", "shared_featurizer"]


# --- shared per-message work ---------------------------------------------------------------------
# The toxicity, prompt-safety and prompt-kind models (and the pattern checks) all look at the same message
# one after another. What does not depend on a model -- normalization, tokens, character n-grams -- is
# computed once per message and kept in small LRU caches keyed by the text; what depends only on a lexicon
# (prompt safety and prompt kind share theirs) once per lexicon. Cached values are never mutated.
_SHARED_MAX_LEN = 2000  # longer texts are not cached (rare, and they would evict many short ones)
_MAX_SHARED_TOKENS = 4000


@lru_cache(maxsize=512)
def _analyze(text: str) -> tuple[str, ...]:
    """The tokens of ``normalize_for_model(text)`` (at most 4,000), for every model."""
    return tuple(tokenize(normalize_for_model(text), _MAX_SHARED_TOKENS))


@lru_cache(maxsize=512)
def _shared_char_ngrams(text: str, lo: int, hi: int, n_tokens: int) -> frozenset[str]:
    # == {t for t in tokens if t[0] != "<" and t not in ("?", "!")}: "<q>" is the only token that starts with "<"
    words = set(_analyze(text)[:n_tokens])
    words.difference_update(_NOT_CHAR_WORDS)
    cache = _WORD_NGRAMS.setdefault((lo, hi), {})
    parts = list(map(cache.get, words))  # one C-level pass: nearly every word was seen before
    if None in parts:
        parts = [_word_ngrams(w, lo, hi) if p is None else p for w, p in zip(words, parts)]
    return frozenset().union(*parts)


_NOT_CHAR_WORDS = ("<q>", "?", "!")
_WORD_NGRAMS: dict[tuple[int, int], dict[str, tuple[str, ...]]] = {}  # (lo, hi) -> word -> its n-grams
_CACHED_WORD_MAX = 50


def _word_ngrams(word: str, lo: int, hi: int) -> tuple[str, ...]:
    """The character n-grams of one word padded with spaces (cached: words repeat across messages)."""
    cache = _WORD_NGRAMS.setdefault((lo, hi), {})
    grams = cache.get(word)
    if grams is None:
        padded = " " + word + " "
        m = len(padded)
        grams = tuple({padded[s : s + k] for k in range(lo, hi + 1) for s in range(0, m - k + 1)})
        if len(word) <= _CACHED_WORD_MAX:  # real words repeat; a 10,000-letter "word" must not stay in memory
            if len(cache) > 50000:
                cache.clear()
            cache[word] = grams
    return grams


class SharedFeaturizer:
    """Featurizes text for every model that has the same lexicon and config (cached per message)."""

    def __init__(self, lexicon: Lexicon, config: dict) -> None:
        self.lexicon = lexicon
        self.config = config
        self.max_tokens = config.get("max_tokens", 4000)
        lo, hi = config.get("char_orders", (3, 5))
        # the words whose character n-grams count: the first max_char_tokens of the first max_tokens tokens
        self.char_key = (lo, hi, min(self.max_tokens, config.get("max_char_tokens", 200)))
        self.families = lru_cache(maxsize=256)(self._families)

    def _families(self, text: str) -> dict[str, frozenset[str]]:
        tokens = list(_analyze(text)[: self.max_tokens])
        fams = {k: frozenset(v) for k, v in lexical_families(tokens, self.lexicon, self.config).items()}
        fams["c"] = _shared_char_ngrams(text, *self.char_key) if self.char_key[1] else frozenset()
        return fams

    def features(self, text: str, extra: Iterable[str]) -> dict[str, set[str] | frozenset[str]]:
        if len(text) > _SHARED_MAX_LEN or self.max_tokens > _MAX_SHARED_TOKENS:
            return featurize(normalize_for_model(text), self.lexicon, self.config, extra)
        fams = dict(self.families(text))
        fams["x"] = extra_family(extra, self.config)
        return fams


_FEATURIZERS: dict[str, SharedFeaturizer] = {}  # content key -> featurizer (models with equal lexicons share)


def shared_featurizer(spec: dict, config: dict) -> SharedFeaturizer:
    key = hashlib.sha256(json.dumps([spec["lexicon"], spec.get("known", []), config], sort_keys=True,
                                    ensure_ascii=False).encode("utf-8")).hexdigest()
    fz = _FEATURIZERS.get(key)
    if fz is None:
        lexicon = Lexicon(spec["lexicon"], spec.get("known", ()), config.get("negatable", ()),
                           config.get("negator", "<NOT>"))
        fz = _FEATURIZERS[key] = SharedFeaturizer(lexicon, config)
    return fz


def clear_caches() -> None:
    """Forget every per-text cache of the featurizers (and of normalization)."""
    from modchain.backends.local import normalize

    for cached in (_analyze, _shared_char_ngrams, char_ngrams_cached):
        cached.cache_clear()
    _WORD_NGRAMS.clear()
    for featurizer in _FEATURIZERS.values():
        featurizer.families.cache_clear()
        featurizer.lexicon._repaired.clear()
    normalize.clear_caches()
