"""Pure-Python inference for the small linear text classifiers shipped in ``models/``.

A model file (gzip-compressed JSON, written by ``training/train_text_classifiers.py``) holds
everything inference needs, so training and inference cannot drift apart:

* ``lexicon``: phrase -> class token (``"trans people" -> "<GROUP>"``, ``"kill" -> "<VIOL>"``).
  Phrases are matched greedily, longest first.
* ``known``: the training vocabulary, used to repair misspellings of lexicon words and words
  run together (see ``_Lexicon``).
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
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
from array import array
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from importlib import resources
from itertools import chain, repeat
from typing import Any

from modchain.backends.local.normalize import normalize_for_model

__all__ = ["LinearTextModel", "featurize", "load_model", "tokenize"]

FORMAT = "modchain-linear/1"

# Words (with inner apostrophes and "*" masks: "don't", "f*ck"), quote marks, ? and !.
_TOKEN = re.compile(r"[a-z0-9]+(?:[*'][a-z0-9]+)*|[\"“”«»]|(?<![a-z0-9])'|'(?![a-z0-9])|[?!]")
_QUOTES = frozenset("\"“”«»'")


def tokenize(norm: str, max_tokens: int = 4000) -> list[str]:
    """Tokens of normalized text; every quote mark becomes ``<q>``."""
    tokens = _TOKEN.findall(norm)
    if len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
    if _QUOTES.isdisjoint(norm):  # most messages: no quote mark, nothing to rename
        return tokens
    return ["<q>" if t in _QUOTES else t for t in tokens]


class _Lexicon:
    """Greedy longest-match phrase -> class lookup over a token list, with two repairs for
    tokens the model never saw in training (``known`` = the training vocabulary):

    * a one-letter slip of a lexicon word of five letters or more (a missing, extra or swapped
      letter: "muslis", "disgutsing") is read as that word;
    * two known words run together ("hatemore", "transpeople") are split.

    Negation: a class in ``negatable`` right after a ``negator`` class (within two tokens) is
    renamed ``<CLASS~>``, so "are not vermin" and "are vermin" give different features.
    """

    def __init__(self, phrases: dict[str, str], known: Iterable[str] = (), negatable: Iterable[str] = (),
                 negator: str = "<NOT>") -> None:
        self.first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for phrase, cls in phrases.items():
            words = tuple(phrase.split())
            self.first.setdefault(words[0], []).append((words, cls))
        for entries in self.first.values():
            entries.sort(key=lambda e: -len(e[0]))
        self.known = frozenset(known)
        self.single = {p for p in phrases if " " not in p and len(p) >= 5 and p.isalpha()}
        # Longest words a repair can produce: longer tokens cannot be respelled or split into known words,
        # so they skip repair altogether (bounding its cost, which grows with the square of a token's length).
        self.max_respell = max(map(len, self.single), default=0) + 1
        self.max_split = 2 * max(map(len, set(known) | set(self.first)), default=0)
        self.deletions: dict[str, str] = {}
        for word in sorted(self.single):
            for i in range(len(word)):
                self.deletions.setdefault(word[:i] + word[i + 1 :], word)
        self.negatable = frozenset(negatable)
        self.negator = negator
        self._repaired: dict[str, tuple[str, ...]] = {}  # unknown token -> its repair (a small cache)

    def repair(self, tokens: list[str]) -> list[str]:
        known, first = self.known, self.first
        if not known:
            return tokens
        # Most messages have no token to repair: find the candidates with set operations first (C loops), and
        # walk the tokens only when one of them really changes.
        longest = max(self.max_respell, self.max_split)
        # one argument each: set.difference(a, b) would walk all of b (the lexicon), not the few tokens
        unknown = set(tokens).difference(known)
        fixes: dict[str, tuple[str, ...]] = {}
        cache = self._repaired
        for t in unknown:
            if len(t) < 4 or len(t) > longest or t in first or not t.isalpha():
                continue
            fixed = cache.get(t)
            if fixed is None:
                fixed = self._repair_one(t)
                if len(cache) > 20000:
                    cache.clear()
                cache[t] = fixed
            if fixed != (t,):
                fixes[t] = fixed
        if not fixes:
            return list(tokens)
        out: list[str] = []
        for t in tokens:
            fixed = fixes.get(t)
            if fixed is None:
                out.append(t)
            else:
                out.extend(fixed)
        return out

    def _repair_one(self, t: str) -> tuple[str, ...]:
        known, first = self.known, self.first
        word = self._respell(t) if len(t) <= self.max_respell else None
        if word is not None:
            return (word,)
        for i in range(1, len(t) - 1 if len(t) <= self.max_split else 0):
            left, right = t[:i], t[i:]
            if (left in known or left in first) and (right in known or right in first) and (
                    len(left) > 1 or left in ("a", "i")):
                return (left, right)
        return (t,)

    def _respell(self, t: str) -> str | None:
        word = self.deletions.get(t)  # a letter missing
        if word is not None:
            return word
        single = self.single
        n = len(t)
        for i in range(n):
            d = t[:i] + t[i + 1 :]
            if d in single:  # a letter too many
                return d
            if i < n - 1:
                s = t[:i] + t[i + 1] + t[i] + t[i + 2 :]
                if s in single:  # two letters swapped
                    return s
        return None

    def abstract(self, tokens: list[str]) -> tuple[list[str], list[tuple[int, str]]]:
        """(stream with matched phrases collapsed to their class, [(position, class)])."""
        out: list[str] = []
        hits: list[tuple[int, str]] = []
        first = self.first
        negatable, negator = self.negatable, self.negator
        i = 0
        # only the positions whose token starts a phrase need a look; the runs between them are copied whole
        for c in [c for c, t in enumerate(tokens) if t in first]:
            if c < i:  # inside a phrase matched just before
                continue
            out.extend(tokens[i:c])
            entries = first[tokens[c]]
            for words, cls in entries:
                k = len(words)
                if k == 1 or tuple(tokens[c : c + k]) == words:
                    if cls in negatable and negator in out[-2:]:
                        cls = cls[:-1] + "~>"
                    hits.append((len(out), cls))
                    out.append(cls)
                    i = c + k
                    break
            else:
                out.append(tokens[c])
                i = c + 1
        out.extend(tokens[i:])
        return out, hits


def featurize(
    norm: str, lexicon: _Lexicon, config: dict, extra: Iterable[str] = ()
) -> dict[str, set[str] | frozenset[str]]:
    """Feature strings by family (``w``, ``a``, ``p``, ``f``, ``c``, ``x``) for normalized text.

    Strings carry no family prefix here; model files key them as ``"<family>:<feature>"``."""
    tokens = tokenize(norm, config.get("max_tokens", 4000))
    lo, hi = config.get("char_orders", (3, 5))
    fam_c = _char_ngrams(frozenset(_char_words(tokens, config)), lo, hi) if hi else frozenset()
    families = _lexical_families(tokens, lexicon, config)
    families["c"] = fam_c
    families["x"] = _extra_family(extra, config)
    return families


def _char_words(tokens: list[str], config: dict) -> set[str]:
    return {t for t in tokens[: config.get("max_char_tokens", 200)] if t[0] != "<" and t not in ("?", "!")}


def _extra_family(extra: Iterable[str], config: dict) -> set[str]:
    fam_x = set(extra)
    if config.get("sentinel"):
        fam_x.add("_")
    return fam_x


def _lexical_families(tokens: list[str], lexicon: _Lexicon, config: dict) -> dict[str, set[str] | frozenset[str]]:
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


class _SharedFeaturizer:
    """Featurizes text for every model that has the same lexicon and config (cached per message)."""

    def __init__(self, lexicon: _Lexicon, config: dict) -> None:
        self.lexicon = lexicon
        self.config = config
        self.max_tokens = config.get("max_tokens", 4000)
        lo, hi = config.get("char_orders", (3, 5))
        # the words whose character n-grams count: the first max_char_tokens of the first max_tokens tokens
        self.char_key = (lo, hi, min(self.max_tokens, config.get("max_char_tokens", 200)))
        self.families = lru_cache(maxsize=256)(self._families)

    def _families(self, text: str) -> dict[str, frozenset[str]]:
        tokens = list(_analyze(text)[: self.max_tokens])
        fams = {k: frozenset(v) for k, v in _lexical_families(tokens, self.lexicon, self.config).items()}
        fams["c"] = _shared_char_ngrams(text, *self.char_key) if self.char_key[1] else frozenset()
        return fams

    def features(self, text: str, extra: Iterable[str]) -> dict[str, set[str] | frozenset[str]]:
        if len(text) > _SHARED_MAX_LEN or self.max_tokens > _MAX_SHARED_TOKENS:
            return featurize(normalize_for_model(text), self.lexicon, self.config, extra)
        fams = dict(self.families(text))
        fams["x"] = _extra_family(extra, self.config)
        return fams


_FEATURIZERS: dict[str, _SharedFeaturizer] = {}  # content key -> featurizer (models with equal lexicons share)


def _shared_featurizer(spec: dict, config: dict) -> _SharedFeaturizer:
    key = hashlib.sha256(json.dumps([spec["lexicon"], spec.get("known", []), config], sort_keys=True,
                                    ensure_ascii=False).encode("utf-8")).hexdigest()
    fz = _FEATURIZERS.get(key)
    if fz is None:
        lexicon = _Lexicon(spec["lexicon"], spec.get("known", ()), config.get("negatable", ()),
                           config.get("negator", "<NOT>"))
        fz = _FEATURIZERS[key] = _SharedFeaturizer(lexicon, config)
    return fz


def _char_ngrams(words: frozenset[str], lo: int, hi: int) -> frozenset[str]:
    # Cached for ordinary texts only: one huge token would otherwise pin megabytes per cache entry.
    if sum(map(len, words)) > 10_000:
        return _char_ngrams_uncached(words, lo, hi)
    return _char_ngrams_cached(words, lo, hi)


def _char_ngrams_uncached(words: frozenset[str], lo: int, hi: int) -> frozenset[str]:
    grams: set[str] = set()
    for t in words:
        padded = " " + t + " "
        m = len(padded)
        for k in range(lo, hi + 1):
            grams.update([padded[s : s + k] for s in range(0, m - k + 1)])
    return frozenset(grams)


_char_ngrams_cached = lru_cache(maxsize=256)(_char_ngrams_uncached)


class LinearTextModel:
    """A loaded model file: ``logits(text)`` per head and calibrated ``probabilities(text)``."""

    def __init__(self, spec: dict) -> None:
        if spec.get("format") != FORMAT:
            raise ValueError(f"unsupported model format {spec.get('format')!r}")
        self.name: str = spec["name"]
        self.config: dict = spec["config"]
        self._featurizer = _shared_featurizer(spec, self.config)
        self.lexicon = self._featurizer.lexicon
        self.head_names: list[str] = list(spec["heads"])
        self.biases = [spec["heads"][h]["bias"] for h in self.head_names]
        self.shifts = [spec.get("calibration", {}).get(h, 0.0) for h in self.head_names]
        # per head, per family: feature -> weight (one C-level dict lookup per feature)
        self.tables: list[dict[str, dict[str, float]]] = []
        for h in self.head_names:
            tables: dict[str, dict[str, float]] = {}
            for key, w in spec["heads"][h]["weights"].items():
                fam, _, feat = key.partition(":")
                tables.setdefault(fam, {})[feat] = w
            self.tables.append(tables)
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
        (and the batch and the model's heads are many enough for it to pay: ``_MIN_VECTOR_BATCH``, ``_MIN_VECTOR_HEADS``).

        The feature families of all texts form a sparse matrix X (one row per text, one column per feature the
        model knows, each entry the family's 1/sqrt(size)); the logits are ``X @ W + bias``. Features the model
        does not know only count towards their family's size, as on the pure-Python path. Both paths give the
        same logits up to floating-point summation order (~1e-15); tests hold them to 1e-9."""
        # the size first: one message (``invoke``) never imports numpy, so the single-message path stays light
        np = _numpy() if len(batch) >= _MIN_VECTOR_BATCH and len(self.tables) >= _MIN_VECTOR_HEADS else None
        if np is None:
            return [self.logits_from_features(f) for f in batch]
        return self._matrix().logits(np, batch)

    def _matrix(self) -> _SparseWeights:
        matrix = self.__dict__.get("_sparse")
        if matrix is None:
            matrix = self.__dict__["_sparse"] = _SparseWeights(self)
        return matrix

    def probabilities(self, text: str, extra: Iterable[str] = ()) -> dict[str, float]:
        """Calibrated probability per head: 0.5 is each head's tuned decision threshold."""
        return self.calibrate(self.logits(text, extra))

    def calibrate(self, logits: list[float]) -> dict[str, float]:
        return {h: _sigmoid(z - s) for h, z, s in zip(self.head_names, logits, self.shifts)}


# Below this many texts the per-text loop is as fast (numpy's fixed cost per call is a few microseconds), and
# numpy is not even imported (``invoke`` on one message stays free of it; tests/test_light_import.py).
_MIN_VECTOR_BATCH = 8
# Fewer heads than this and the loop is as fast or faster: either way each feature costs one dict lookup (to its
# weight, or to its column), which is nearly all of the time; the product only saves the per-head sums. Measured
# on 500 chat messages (benchmarks/batch_throughput.py texts, 2-core machine): toxicity (1 head) ~55 us/text loop
# vs ~62 product, prompt_kind (3 heads) ~150 vs ~80.
_MIN_VECTOR_HEADS = 2


def _numpy() -> Any:
    """numpy, or None when it is not installed: the pure-Python loop then computes the same logits."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def vectorized() -> bool:
    """Whether ``LinearTextModel.logits_batch`` runs as a numpy sparse product here (else the pure-Python loop)."""
    return _numpy() is not None


class _SparseWeights:
    """A model's weights as a dense (columns x heads) array, with a column index per feature family."""

    def __init__(self, model: LinearTextModel) -> None:
        np = _numpy()
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


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def model_from_bytes(data: bytes) -> LinearTextModel:
    return LinearTextModel(json.loads(gzip.decompress(data).decode("utf-8")))


@cache
def load_model(name: str) -> LinearTextModel:
    """Load ``models/<name>.json.gz`` shipped inside this package (cached per process)."""
    path = resources.files("modchain.backends.local").joinpath("models", f"{name}.json.gz")
    return model_from_bytes(path.read_bytes())


def clear_caches() -> None:
    """Forget every per-text cache of the featurizers (and of normalization)."""
    from modchain.backends.local import normalize

    for cached in (_analyze, _shared_char_ngrams, _char_ngrams_cached):
        cached.cache_clear()
    _WORD_NGRAMS.clear()
    for featurizer in _FEATURIZERS.values():
        featurizer.families.cache_clear()
        featurizer.lexicon._repaired.clear()
    normalize.clear_caches()
