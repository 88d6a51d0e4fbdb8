"""Feature extraction of the linear text classifiers: the feature families of one normalized text.

See ``linear_model`` for the families (``w a p f c x``) and how they are scored. ``featurize`` is the reference
(the training script calls it); ``linear_feature_cache`` computes the same families from per-message caches.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from modchain.backends.local.linear_lexicon import Lexicon, tokenize

__all__ = ["char_ngrams_cached", "extra_family", "featurize", "lexical_families"]


def featurize(
    norm: str, lexicon: Lexicon, config: dict, extra: Iterable[str] = ()
) -> dict[str, set[str] | frozenset[str]]:
    """Feature strings by family (``w``, ``a``, ``p``, ``f``, ``c``, ``x``) for normalized text.

    Strings carry no family prefix here; model files key them as ``"<family>:<feature>"``."""
    tokens = tokenize(norm, config.get("max_tokens", 4000))
    lo, hi = config.get("char_orders", (3, 5))
    fam_c = _char_ngrams(frozenset(_char_words(tokens, config)), lo, hi) if hi else frozenset()
    families = lexical_families(tokens, lexicon, config)
    families["c"] = fam_c
    families["x"] = extra_family(extra, config)
    return families


def _char_words(tokens: list[str], config: dict) -> set[str]:
    return {t for t in tokens[: config.get("max_char_tokens", 200)] if t[0] != "<" and t not in ("?", "!")}


def extra_family(extra: Iterable[str], config: dict) -> set[str]:
    fam_x = set(extra)
    if config.get("sentinel"):
        fam_x.add("_")
    return fam_x


def lexical_families(tokens: list[str], lexicon: Lexicon, config: dict) -> dict[str, set[str] | frozenset[str]]:
    """The families that depend on the lexicon (``w a p f``) from the (unrepaired) tokens."""
    tokens = lexicon.repair(tokens)
    stream, hits = lexicon.abstract(tokens)
    fam_w = set(tokens)
    fam_w.update([a + " " + b for a, b in zip(tokens, tokens[1:])])

    fam_a: set[str] = set()
    fam_p: set[str] = set()
    classes: set[str] = set()
    if hits:
        n = len(stream)
        order = config.get("abstract_order", 3)
        for pos, cls in hits:
            classes.add(cls)
            # every n-gram (2..order) that contains this class token
            for k in range(2, order + 1):
                for s in range(max(0, pos - k + 1), min(pos, n - k) + 1):
                    fam_a.add(" ".join(stream[s : s + k]))
        window = config.get("window", 6)
        for i, (pi, ci) in enumerate(hits):
            for pj, cj in hits[i + 1 :]:
                if pj - pi > window:
                    break
                fam_p.add(ci + "|" + cj)
    if "<q>" in fam_w:
        classes.add("<QUOTE>")
    if "?" in fam_w:
        classes.add("<QMARK>")
    fam_f = set(classes)
    ordered = sorted(classes)
    fam_f.update([a + "&" + b for i, a in enumerate(ordered) for b in ordered[i + 1 :]])
    if config.get("sentinel"):
        # every family holds "_": a lone feature is scaled by 1/sqrt(2), not 1, and each family gets
        # a learned offset (short texts with one flag otherwise swing the score)
        for fam in (fam_w, fam_a, fam_p, fam_f):
            fam.add("_")
    return {"w": fam_w, "a": fam_a, "p": fam_p, "f": fam_f}

def _char_ngrams(words: frozenset[str], lo: int, hi: int) -> frozenset[str]:
    # Cached for ordinary texts only: one huge token would otherwise pin megabytes per cache entry.
    if sum(map(len, words)) > 10_000:
        return _char_ngrams_uncached(words, lo, hi)
    return char_ngrams_cached(words, lo, hi)


def _char_ngrams_uncached(words: frozenset[str], lo: int, hi: int) -> frozenset[str]:
    grams: set[str] = set()
    for t in words:
        padded = " " + t + " "
        m = len(padded)
        for k in range(lo, hi + 1):
            grams.update([padded[s : s + k] for s in range(0, m - k + 1)])
    return frozenset(grams)


char_ngrams_cached = lru_cache(maxsize=256)(_char_ngrams_uncached)
