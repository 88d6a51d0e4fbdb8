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

__all__ = ["LINE_BREAK_BETWEEN_DIGITS", "normalize_for_pii"]

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


def _apply(text: str, origin: list[int] | None, edits: list[_Edit]) -> tuple[str, list[int] | None]:
    """Apply sorted, disjoint edits (start, end, replacement) and carry the origin map through them.

    A replacement of equal length maps one to one; otherwise its characters map to the replaced run's
    first character, the last one to its last character (an insertion maps to the next character), so a
    match that ends on or starts at a replacement still gets the original's bounds."""
    if not edits:
        return text, origin
    base = origin if origin is not None else range(len(text))
    pieces: list[str] = []
    new_origin = array("i")  # 4 bytes a character, not a list of int objects
    cursor = 0
    for start, end, repl in edits:
        pieces.append(text[cursor:start])
        new_origin.extend(base[cursor:start])
        pieces.append(repl)
        if end - start == len(repl):
            new_origin.extend(base[start:end])
        elif end == start:
            new_origin.extend([base[start]] * len(repl))
        else:
            new_origin.extend([base[start]] * (len(repl) - 1) + [base[end - 1]])
        cursor = end
    pieces.append(text[cursor:])
    new_origin.extend(base[cursor:])
    return "".join(pieces), new_origin


_NOT_PLAIN = re.compile("[^\x00-\x7f]")  # the invisible characters are all non-ASCII too


def _unicode_forms(text: str) -> tuple[str, array | None]:
    """NFKC per character, invisible characters dropped. ASCII runs are copied whole: only the characters
    that are not ASCII are looked at one by one."""
    pieces: list[str] = []
    origin = array("i")  # 4 bytes a character (a list of int objects costs ~36)
    cursor = 0
    for m in _NOT_PLAIN.finditer(text):
        index, char = m.start(), m.group()
        if index > cursor:
            pieces.append(text[cursor:index])
            origin.extend(range(cursor, index))
        cursor = index + 1
        if char in _INVISIBLE:
            continue
        piece = unicodedata.normalize("NFKC", char)
        pieces.append(piece)
        origin.extend([index] * len(piece))
    if cursor < len(text):
        pieces.append(text[cursor:])
        origin.extend(range(cursor, len(text)))
    out = "".join(pieces)
    return (text, None) if out == text else (out, origin)


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


def normalize_for_pii(text: str, join_lines: bool = False) -> tuple[str, list[int] | None]:
    """``(normalized, origin)``: ``origin[i]`` is the index in ``text`` of normalized character ``i``;
    ``origin`` is None when nothing changed. A span ``[s, e)`` of the normalized text is
    ``[origin[s], origin[e - 1] + 1)`` of ``text``. ``join_lines``: a line break between two digits is a
    separator too (a card or SSN broken over two lines); callers keep only what spans such a break."""
    out, origin = (text, None) if text.isascii() else _unicode_forms(text)
    out, origin = _apply(out, origin, _separator_edits(out, join_lines))
    if not out.isascii():
        out, origin = _apply(out, origin, _glued_edits(out))
        if "@" in out:
            out, origin = _apply(out, origin, _idn_email_edits(out))
    out, origin = _apply(out, origin, _email_edits(out))
    return out, origin
