"""Normalization for the offline PII recognizers, with every character mapped back to the original text.

The recognizers match ASCII shapes ("123-45-6789", "jo@example.com"). People write the same values in
other shapes, by habit or to slip past a filter; ``normalize_for_pii`` rewrites those shapes into the
ones the recognizers know and returns, for each normalized character, the index of the original
character it came from, so a span found in the normalized text is an exact span of the original:

* compatibility forms (fullwidth digits, NFKC) and invisible characters (zero-width space, soft hyphen);
* separators between two digits that are not " ", "-" or ".": "/", "_", en and em dashes, the minus
  sign, tabs, runs of two or three spaces, " - " ("123/45/6789", "4111_1111_1111_1111", "415/555/2671",
  "123–45–6789") become one "-" or " "; with ``join_lines``, line breaks too (a card broken over two
  lines), which ``find_pii`` uses in a second pass for the labels that get broken that way;
* a non-ASCII letter glued to a digit ("é1 (415) 555-2671") is kept apart by an inserted space, so the
  number is still a token of its own (an ASCII letter glued to it still makes it part of a word);
* spelled-out digits, also mixed with digits: "four one five, five five five, two six seven one" ->
  "415-555-2671", "SSN: one two three - four five - six seven eight nine", "4 one 5 555 2671", "double five",
  "oh" for 0, and the digit words of German, Spanish, French, Italian and Dutch (``pii_spelled``);
* obfuscated emails: "jo [at] example [dot] com", "jo(at)example(dot)com", "jo at example dot com";
* internationalised emails: inside an "@" token, each non-ASCII letter stands in for an ASCII one
  ("jö@exämple.de" matches like "jx@exxmple.de"; the span still covers the original letters).
  Punycode domains ("xn--exmple-cua.de") are ASCII already.

The output is for matching only (it is never shown). Every step is one regex pass or one scan with a
bounded window, so the whole is linear in the input; ASCII text without any of these shapes comes back
unchanged with ``origin`` None, at the cost of a few regex scans.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from bisect import bisect_right
from collections.abc import Iterator

from modchain.backends.local.pii_spelled import spelled_digit_edits

__all__ = ["LINE_BREAK_BETWEEN_DIGITS", "OriginMap", "normalize_for_pii"]

_INVISIBLE = frozenset("\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff")
_DASHES = "/_\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d\uff3f\uff0f"
# One separator run between two digits: a dash-like character (optionally spaced), a line break with
# the spaces around it, or 2-3 spaces/tabs. Bounded, so matching is linear.
# Written digit first (the separator is group 1): ``re`` then skips to digits instead of trying a lookbehind
# at every position.
_DIGIT_SEP = re.compile(r"\d([ \t]?[" + _DASHES + r"][ \t]?| - |\t|[ \t]{2,3})(?=\d)")
# A line break between digits joins two lines only in the second pass (``join_lines``): in addresses and
# business cards consecutive lines often end and start with unrelated numbers ("Box 9168\n781 1704").
_LINE_SEP = re.compile(r"\d([ \t]{0,3}(?:\r\n|[\n\r\v\f\u2028\u2029])[ \t]{0,3})(?=\d)")
LINE_BREAK_BETWEEN_DIGITS = re.compile(r"\d[ \t]{0,3}[\n\r\v\f\u2028\u2029][ \t]{0,3}\d")
_GLUED = re.compile(r"(?<=[^\W\d_])(?=[0-9])|(?<=[0-9])(?=[^\W\d_])")  # letter|digit boundaries (filtered below)
# "[at]", "(at)", "{at}", "<at>", "[@]" and "[dot]", "(dot)", "[.]": bracketed words are always obfuscation.
_AT_BRACKET = re.compile(r"(?<=[\w.+-])[ \t]{0,3}[\[({<][ \t]?(?:at|@)[ \t]?[\])}>][ \t]{0,3}(?=\w)", re.I)
_BRACKETED_WORD = re.compile(r"[\[({<][ \t]?(?:at|@)[ \t]?[\])}>]", re.I)  # cheap check before the two below
_DOT_BRACKET = re.compile(r"(?<=\w)[ \t]{0,3}[\[({<][ \t]?(?:dot|\.)[ \t]?[\])}>][ \t]{0,3}(?=\w)", re.I)
# Bare words only in the full shape "name at host dot tld" (one to three "dot"s), to leave prose alone.
_AT_WORDS = re.compile(r"(?<![\w.+-])[a-z0-9][a-z0-9._+-]{0,63} (at|AT) [a-z0-9-]{1,63}"
                       r"(?: (?:dot|DOT) [a-z0-9-]{1,63}){0,2} (?:dot|DOT) [a-z]{2,24}(?![\w@])", re.I)
_DOT_WORD = re.compile(r" (?:dot|DOT) ")
# Words that stand before "at" in prose far more often than as the name part of an address.
_PROSE_BEFORE_AT = frozenset("""look looking looked site website page store shop online available found located here there
this that it us me him her them you home work school visit check see find buy sold priced posted hosted listed
published live lives based meet arrive arrived stay stayed aim point stare laugh smile good bad great best open now
is are was were be been am and or but we they i he she""".split())
_EMAIL_CHAR = re.compile(r"[\w.%+-]")
_Edit = tuple[int, int, str]


class OriginMap:
    """Index of a normalized character -> index of the original character it came from.

    Kept as the edits of each normalization pass that changed something, not as one integer per character:
    memory grows with the number of edits (a few per value rewritten), not with the text, which is what
    bounds the peak memory of moderating a long document. A lookup walks the passes back, a binary search
    each. ``len`` and iteration give the full per-character map (tests use it).
    """

    __slots__ = ("_length", "_passes")

    def __init__(self, length: int, passes: tuple[tuple[list[_Edit], array], ...] = ()) -> None:
        self._length = length
        self._passes = passes

    def then(self, edits: list[_Edit], output_starts: array, length: int) -> OriginMap:
        return OriginMap(length, (*self._passes, (edits, output_starts)))

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[int]:
        return (self[i] for i in range(self._length))

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self._length:
            raise IndexError(index)
        for edits, output_starts in reversed(self._passes):
            index = _back_through(edits, output_starts, index)
        return index

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original ``[start, end)`` of the normalized span ``[start, end)``: a span that starts (ends) inside
        a replacement starts at the first (ends after the last) original character the replacement stands for.
        So "five" rewritten as "5" is covered whole whether the span starts or ends there."""
        if not 0 <= start < end <= self._length:
            raise IndexError(start if not 0 <= start < self._length else end)
        last = end - 1
        for edits, output_starts in reversed(self._passes):
            start = _back_through(edits, output_starts, start, "first")
            last = _back_through(edits, output_starts, last, "last")
        return start, last + 1


def _back_through(edits: list[_Edit], output_starts: array, index: int, side: str = "") -> int:
    """Where output character ``index`` of one pass was in that pass's input.

    A replacement of equal length maps one to one; otherwise its characters map to the replaced run's first
    character, the last one to its last character (an insertion maps to the next character), so a match that
    ends on or starts at a replacement still gets the original's bounds. ``side`` "first" / "last": every
    character of a replacement maps to the run's first / last character (the start / end of a span)."""
    k = bisect_right(output_starts, index) - 1
    if k < 0:
        return index
    start, end, replacement = edits[k]
    offset = index - output_starts[k]
    if offset >= len(replacement):  # after this edit, before the next: copied text
        return end + offset - len(replacement)
    if end - start == len(replacement):
        return start + offset
    if end == start:
        return start
    if side:
        return start if side == "first" else end - 1
    return end - 1 if offset == len(replacement) - 1 else start


def _apply(text: str, origin: OriginMap | None, edits: list[_Edit]) -> tuple[str, OriginMap | None]:
    """Apply sorted, disjoint edits (start, end, replacement) and record them in the origin map."""
    if not edits:
        return text, origin
    pieces: list[str] = []
    output_starts = array("i")
    cursor = written = 0
    for start, end, replacement in edits:
        pieces.append(text[cursor:start])
        written += start - cursor
        output_starts.append(written)
        pieces.append(replacement)
        written += len(replacement)
        cursor = end
    pieces.append(text[cursor:])
    out = "".join(pieces)
    return out, (origin or OriginMap(len(text))).then(edits, output_starts, len(out))


_NOT_PLAIN = re.compile("[^\x00-\x7f]")  # the invisible characters are all non-ASCII too


def _unicode_edits(text: str) -> list[_Edit]:
    """NFKC per character, invisible characters dropped: one edit per non-ASCII character that changes.

    Most non-ASCII characters in prose (typographic quotes, accented letters) are NFKC-stable, so they cost no
    edit; text whose characters are all stable comes back with no edits and no origin map at all."""
    edits: list[_Edit] = []
    for m in _NOT_PLAIN.finditer(text):
        char = m.group()
        if char in _INVISIBLE:
            edits.append((m.start(), m.end(), ""))
            continue
        piece = unicodedata.normalize("NFKC", char)
        if piece != char:
            edits.append((m.start(), m.end(), piece))
    return edits


def _separator_edits(text: str, join_lines: bool) -> list[_Edit]:
    edits = []
    matches = _DIGIT_SEP.finditer(text)
    if join_lines:
        matches = sorted([*matches, *_LINE_SEP.finditer(text)], key=lambda m: m.start())
    for m in matches:
        sep = m.group(1)
        repl = "-" if any(c in _DASHES or c == "-" for c in sep) else " "
        edits.append((m.start(1), m.end(1), repl))
    return edits


def _glued_edits(text: str) -> list[_Edit]:
    # Only where one side is a non-ASCII letter and the other an ASCII digit.
    return [(m.start(), m.start(), " ") for m in _GLUED.finditer(text)
            if not (text[m.start() - 1].isascii() and text[m.start()].isascii())]


def _email_edits(text: str) -> list[_Edit]:
    edits: list[_Edit] = []
    lowered_has_at = "at" in text or "AT" in text or "@" in text
    if _BRACKETED_WORD.search(text):
        edits += [(m.start(), m.end(), "@") for m in _AT_BRACKET.finditer(text)]
        if edits:
            edits += [(m.start(), m.end(), ".") for m in _DOT_BRACKET.finditer(text)]
    if lowered_has_at and (" dot " in text or " DOT " in text):
        for m in _AT_WORDS.finditer(text):
            if text[m.start():m.start(1) - 1].lower() in _PROSE_BEFORE_AT:
                continue  # "the site at example dot com", "look at example dot org": prose, not an address
            edits.append((m.start(1) - 1, m.end(1) + 1, "@"))
            edits += [(m.start() + d.start(), m.start() + d.end(), ".")
                      for d in _DOT_WORD.finditer(m.group(), m.end(1) - m.start())]
    edits.sort()
    kept: list[_Edit] = []
    for edit in edits:  # the bracket and word forms may both see one address: keep the first of overlaps
        if not kept or edit[0] >= kept[-1][1]:
            kept.append(edit)
    return kept


def _idn_email_edits(text: str) -> list[_Edit]:
    """Non-ASCII letters of the token around each "@" stand in as "x" (same length)."""
    edits: list[_Edit] = []
    done = 0
    at = text.find("@")
    while at != -1:
        start = at
        while start > max(done, at - 64) and _EMAIL_CHAR.match(text[start - 1]):
            start -= 1
        end = at + 1
        while end < min(len(text), at + 256) and (_EMAIL_CHAR.match(text[end]) or text[end] == "-"):
            end += 1
        for i in range(start, end):
            if not text[i].isascii() and text[i].isalnum():
                edits.append((i, i + 1, "x"))
        done = end
        at = text.find("@", max(end, at + 1))
    return edits


def normalize_for_pii(text: str, join_lines: bool = False) -> tuple[str, OriginMap | None]:
    """``(normalized, origin)``: ``origin[i]`` is the index in ``text`` of normalized character ``i``;
    ``origin`` is None when nothing changed. A span ``[s, e)`` of the normalized text is
    ``[origin[s], origin[e - 1] + 1)`` of ``text``. ``join_lines``: a line break between two digits is a
    separator too (a card or SSN broken over two lines); callers keep only what spans such a break."""
    out, origin = (text, None) if text.isascii() else _apply(text, None, _unicode_edits(text))
    out, origin = _apply(out, origin, spelled_digit_edits(out))
    out, origin = _apply(out, origin, _separator_edits(out, join_lines))
    if not out.isascii():
        out, origin = _apply(out, origin, _glued_edits(out))
        if "@" in out:
            out, origin = _apply(out, origin, _idn_email_edits(out))
    out, origin = _apply(out, origin, _email_edits(out))
    return out, origin
