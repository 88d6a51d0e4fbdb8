"""Tokens and the phrase lexicon of the linear text classifiers (``linear_model``).

``tokenize`` cuts normalized text into the tokens every feature family is built from; ``Lexicon`` maps phrases
to class tokens (longest match first), repairs misspellings of lexicon words and words run together, and marks
negated classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["Lexicon", "tokenize"]

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


class Lexicon:
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
