"""Spelled-out digits for the PII normalization: "four one five, five five five, two six seven one" -> "415-555-2671".

People spell numbers out when they dictate them, and to slip them past a filter. ``spelled_digit_edits`` finds
runs of digit words (and digits mixed in: "4 one 5 555 2671") and returns the edits that rewrite each run into
the digit shapes the recognizers know; ``pii_normalize`` applies them with every character mapped back, so a
finding covers the original words exactly.

How a run is read:

* an item is a digit word (English, German, Spanish, French, Italian, Dutch; "oh"/"o" for 0), "double" or
  "triple" before a digit ("double five" -> "55"), or a run of ASCII digits;
* items one or two spaces apart (or joined by a bare hyphen: "four-one-five") form one group, written as one
  run of digits; a multi-digit number is a group of its own;
* groups are separated by a comma, dash, dot, semicolon, slash or the word "dash" (written "-") or by spaces
  next to a multi-digit number (kept);
* a group that holds a word must have two digits or more and one word that is a digit word only (the "weak"
  words "o", "oh", "un", "uno", "dos", "due", "sept", "null", "een", ... are also everyday words: they count only
  next to another digit); a lone digit word ("call 020 7946 0958 one more time") ends the run;
* only runs with a word and at least seven digits are rewritten (every number a recognizer looks for has seven
  or more): counting ("one, two, three") and quantities ("two 3-bed flats") stay as they are.

Cost: texts with no digit word next to another digit item pay one regex search over their lower-cased text,
read in 64 KB chunks (no lower-cased copy of a long document); otherwise runs are read only from shortly before
each such pair to the run's end, one regex match per run and one per group. No pattern can backtrack more than
a bounded distance (every repetition starts with a bounded gap and ends on an item boundary): linear in the
text. Limits: no tens or hundreds ("forty-two", "five hundred"), no other languages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["spelled_digit_edits", "trie_alternation"]

_Edit = tuple[int, int, str]

# Words that are digits and (almost) nothing else.
_STRONG = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "nought": "0", "niner": "9",
    "eins": "1", "zwei": "2", "zwo": "2", "drei": "3", "vier": "4", "fünf": "5", "fuenf": "5", "sechs": "6",
    "sieben": "7", "acht": "8", "neun": "9",
    "cero": "0", "cuatro": "4", "cinco": "5", "seis": "6", "siete": "7", "ocho": "8", "nueve": "9",
    "zéro": "0", "deux": "2", "trois": "3", "quatre": "4", "cinq": "5", "huit": "8", "neuf": "9",
    "quattro": "4", "cinque": "5", "sette": "7", "nove": "9",
    "twee": "2", "drie": "3", "vijf": "5", "zes": "6", "zeven": "7", "negen": "9",
}
# Digit words that are also everyday words ("o" the letter, "uno", "un", "due" date, "Sept." the month).
_WEAK = {"oh": "0", "o": "0", "null": "0", "nul": "0", "un": "1", "une": "1", "uno": "1", "een": "1", "dos": "2",
         "due": "2", "tres": "3", "tre": "3", "sei": "6", "sept": "7", "otto": "8"}
_TIMES = {"double": 2, "triple": 3}
_DIGIT_WORDS = {**_STRONG, **_WEAK}


def trie_alternation(words: Iterable[str]) -> str:
    """The words as a trie-shaped alternation ("o(?:ne|h)?|t(?:wo|hree)"): ``re`` tries a branch per distinct
    next letter instead of one per word, about twice as fast on prose; longer words are tried first. Words are
    escaped (``pii_phone_national`` passes place names with dots and spaces)."""
    by_first: dict[str, list[str]] = {}
    for word in sorted(set(words)):
        by_first.setdefault(word[0], []).append(word[1:])
    parts = []
    for first, rests in by_first.items():
        longer = [rest for rest in rests if rest]
        if not longer:
            parts.append(re.escape(first))
        else:
            parts.append(re.escape(first) + "(?:" + trie_alternation(longer) + ")" + ("?" if "" in rests else ""))
    return "|".join(parts)


# The gate: a digit word right after a separator and followed by another item. Starting with a character class
# lets ``re`` skip to the few positions that can start a match; it runs on lower-cased text (``re.I`` is ~4x
# slower here).
_PAIR = (r"(?:" + trie_alternation(_STRONG) + r"|double|triple)[ \t,.;:/-]{1,3}(?:[0-9]|(?:" + trie_alternation(_DIGIT_WORDS)
         + r")(?![^\W_]))")
_GATE = re.compile(r"[\s,.;:(\[/\"'-]" + _PAIR)
_GATE_ANY_CASE = re.compile(_GATE.pattern, re.IGNORECASE)
_GATE_AT_START = re.compile(_PAIR)
# An item: a digit word or digits, not glued to a letter or digit on either side. (A digit run glued to a letter
# is given back digit by digit once; the lookbehind keeps a match from starting inside it, so that is linear.)
_ITEM = r"(?:" + trie_alternation({**_DIGIT_WORDS, **_TIMES}) + r"|[0-9]+)(?![^\W_])"
# What may stand between two items of a run: a bare hyphen, one punctuation mark with up to two spaces each side,
# the word "dash", a closing parenthesis ("(415) five ..."), or up to three spaces. Bounded: constant work per item.
_GAP = r"-|[ \t]{0,2}[,;./\-\u2013\u2014][ \t]{0,2}|[ \t]{1,2}(?:dash|hyphen)[ \t]{1,2}|\)[ \t]?|[ \t]{1,3}"
# A run: items joined by gaps. One match per run; every repetition starts with a bounded gap and ends on an
# item boundary, so matching is linear in the run.
_RUN = re.compile(r"(?<![^\W_])" + _ITEM + r"(?:(?:" + _GAP + r")" + _ITEM + r")*")
_RUN_ANY_CASE = re.compile(_RUN.pattern, re.IGNORECASE)
# Inside a run, a group: words and single digits one or two spaces (or a bare hyphen) apart, or a number.
_JOINABLE = r"(?:" + trie_alternation({**_DIGIT_WORDS, **_TIMES}) + r"|[0-9](?![0-9]))(?![^\W_])"
_GROUPISH = re.compile(_JOINABLE + r"(?:(?:[ \t]{1,2}|-)" + _JOINABLE + r")*|[0-9]{2,}")
_GROUPISH_ANY_CASE = re.compile(_GROUPISH.pattern, re.IGNORECASE)
_TOKENS = re.compile(r"[^\W_]+")
_SPACES = re.compile(r"[ \t]{1,3}")
_TOKEN_DIGITS = {**_DIGIT_WORDS, **{str(d): str(d) for d in range(10)}}
_STRONG_TOKENS = frozenset(_STRONG) | frozenset("0123456789")
_CHUNK = 1 << 16
_LOOK_BACK = 48  # a run may start this far before the first digit-word pair the gate finds
_MIN_DIGITS = 7


def _gate_hits(text: str) -> list[int]:
    """Positions of the gate's matches (where a run can be), reading lower-cased chunks of ``text``."""
    hits: list[int] = []
    for offset in range(0, len(text), _CHUNK):
        chunk = text[offset : offset + _CHUNK + 32]  # 32: a pair across the chunk edge is still seen
        lowered = chunk.lower()
        if not offset and _GATE_AT_START.match(lowered):
            hits.append(0)
        # A few characters lower-case to two ("İ"): then offsets would shift, so that chunk is searched as it is.
        found = _GATE.finditer(lowered) if len(lowered) == len(chunk) else _GATE_ANY_CASE.finditer(chunk)
        hits += [offset + m.start() for m in found if not hits or offset + m.start() > hits[-1]]
    return hits


def _group_digits(tokens: list[str]) -> str | None:
    """The digits a group's tokens stand for; None if the group cannot be part of a number: a weak word without
    a digit-only word or digit beside it, a single word, or "double" without a digit after it."""
    if not _TOKEN_DIGITS.keys() >= set(tokens) - _TIMES.keys():
        return None  # a token that matched only case-insensitively ("ſechs" with a long s): not read as a digit
    if _TIMES.keys() & set(tokens):
        digits, strong, i = [], False, 0
        while i < len(tokens):
            times = _TIMES.get(tokens[i])
            if times is None:
                digits.append(_TOKEN_DIGITS[tokens[i]])
                strong = strong or tokens[i] in _STRONG_TOKENS
                i += 1
                continue
            if i + 1 == len(tokens) or len(_TOKEN_DIGITS.get(tokens[i + 1], "")) != 1:
                return None
            digits.append(_TOKEN_DIGITS[tokens[i + 1]] * times)
            strong, i = True, i + 2
        out = "".join(digits)
    else:
        out = "".join(map(_TOKEN_DIGITS.__getitem__, tokens))
        strong = not _STRONG_TOKENS.isdisjoint(tokens)
    return out if strong and len(out) >= 2 else None


def _run_edits(text: str, start: int, end: int, lowered: bool) -> list[_Edit]:
    """Edits for one run ``text[start:end]``: its groups that hold words, in digits, and its separators."""
    groups = _GROUPISH if lowered else _GROUPISH_ANY_CASE
    edits: list[_Edit] = []
    segment: list[tuple[int, int, str | None]] = []  # (start, end, digits if the group holds words else None)
    for m in groups.finditer(text, start, end):
        piece = m.group()
        if piece.isdigit():
            segment.append((m.start(), m.end(), None))  # a number written in digits: kept as it is
            continue
        tokens = _TOKENS.findall(piece if lowered else piece.casefold())
        digits = _group_digits(tokens)
        if digits is None:
            edits += _segment_edits(text, segment)
            segment = []
        else:
            segment.append((m.start(), m.end(), digits))
    return edits + _segment_edits(text, segment)


def _segment_edits(text: str, segment: list[tuple[int, int, str | None]]) -> list[_Edit]:
    """A segment (groups joined by separators) is rewritten if it holds a word and seven digits or more."""
    if not any(digits is not None for _, _, digits in segment):
        return []
    if sum(len(digits) if digits is not None else e - s for s, e, digits in segment) < _MIN_DIGITS:
        return []
    edits: list[_Edit] = []
    for k, (start, end, digits) in enumerate(segment):
        if k:
            gap_start = segment[k - 1][1]
            gap = text[gap_start:start]
            if not gap.startswith(")"):  # "(415) five ...": the parenthesis stays, the NANP shape has it
                out = " " if _SPACES.fullmatch(gap) else "-"
                if out != gap:
                    edits.append((gap_start, start, out))
        if digits is not None:
            edits.append((start, end, digits))
    return edits


def spelled_digit_edits(text: str) -> list[_Edit]:
    """Sorted, disjoint edits (start, end, replacement) that write each spelled-out number of ``text`` in digits."""
    hits = _gate_hits(text)
    if not hits:
        return []
    lowered = text.isascii()
    source = text.lower() if lowered else text  # ASCII: same offsets, and the faster case-sensitive patterns
    run = _RUN if lowered else _RUN_ANY_CASE
    edits: list[_Edit] = []
    done = 0
    for hit in hits:
        if hit < done:
            continue  # inside a run already read
        pos = max(done, hit - _LOOK_BACK)
        while True:  # the run that reaches past the hit (the gate saw an item at hit + 1)
            m = run.search(source, pos)
            if m is None or m.start() > hit + 1 or m.end() > hit:
                break
            pos = m.end()
        if m is None or m.start() > hit + 1:
            continue
        done = m.end()
        edits += _run_edits(source, m.start(), m.end(), lowered)
    return edits
