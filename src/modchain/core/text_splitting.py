"""Split text at service limits, byte-exactly, at the most natural boundary that fits.

Services limit UTF-8 *bytes* (DetectToxicContent: 1 KB a segment; DetectPiiEntities: 100 KB), while
Python and the services' offsets count characters. Every function here returns character spans, and every
span it returns encodes to at most the limit. Cuts prefer, in order: the end of a sentence, a line break,
a run of whitespace, and only then the last character that fits (never inside a character). No NLTK and
no data download: a regular expression is enough to find sentence ends for packing purposes. Standard library
only; in ``core`` because the text backends (Comprehend, Bedrock, the local long-text path) split at limits too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

_SENTENCE_BREAK = re.compile(r"(?<=[.!?。！？])[\"')\]]*\s+|\n\s*")
_WHITESPACE = re.compile(r"\s+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (each with its trailing whitespace), blanks skipped. Sentences
    end at ``.``, ``!``, ``?`` (and their CJK forms) followed by whitespace, and at line breaks; linear time."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(text):
        if text[start : match.end()].strip():
            spans.append((start, match.end()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _fit(text: str, start: int, max_bytes: int) -> int:
    """The largest end such that text[start:end] encodes to at most max_bytes."""
    # A character is at least one byte, so at most max_bytes characters can fit.
    window = text[start : start + max_bytes]
    encoded = window.encode("utf-8")
    if len(encoded) <= max_bytes:
        return start + len(window)
    return start + len(encoded[:max_bytes].decode("utf-8", "ignore"))


def _last_break(pattern: re.Pattern[str], text: str, start: int, end: int) -> int | None:
    last = None
    for match in pattern.finditer(text, start, end):
        last = match.end()
    return last if last is not None and last > start else None


def cut_point(text: str, start: int, max_bytes: int) -> int:
    """Where a chunk starting at ``start`` should end so it fits ``max_bytes`` (always > start).

    A boundary is only taken in the second half of the room available: cutting at a sentence end far
    from the limit would make many small chunks (more requests, and windows that creep forward).
    """
    if max_bytes < 4:
        raise ValueError("max_bytes must be at least 4 (one UTF-8 character)")
    limit = _fit(text, start, max_bytes)
    if limit >= len(text):
        return len(text)
    floor = start + (limit - start) // 2
    for pattern in (_SENTENCE_BREAK, _WHITESPACE):
        found = _last_break(pattern, text, floor, limit)
        if found is not None and found < limit:
            return found
    return limit


def split_spans(text: str, max_bytes: int) -> list[tuple[int, int]]:
    """Consecutive spans covering ``text`` exactly, each at most ``max_bytes`` in UTF-8."""
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        end = cut_point(text, start, max_bytes)
        spans.append((start, end))
        start = end
    return spans


def overlapping_windows(text: str, max_bytes: int, overlap_bytes: int) -> list[tuple[int, int]]:
    """Spans of at most ``max_bytes`` that overlap by at least ``overlap_bytes`` where possible.

    An entity that crosses the end of one window lies whole inside the next one as long as it is shorter
    than the overlap, so a detector run on each window misses nothing at the cuts.
    """
    if overlap_bytes * 2 >= max_bytes:
        raise ValueError("overlap_bytes must be less than half of max_bytes")
    windows: list[tuple[int, int]] = []
    start = 0
    while True:
        end = cut_point(text, start, max_bytes)
        if windows and end <= windows[-1][1]:
            # No progress from this start (a boundary, or a wide character that does not fit): the previous
            # window already holds this one; move the start on instead of emitting a redundant window.
            end = windows[-1][1]
        else:
            windows.append((start, end))
        if end >= len(text):
            return windows
        # Step back at least overlap_bytes from the cut, then further back to a word start, so the
        # overlap is never smaller than overlap_bytes (moving forward could start inside an entity).
        back = end
        while back > start and utf8_len(text[back:end]) < overlap_bytes:
            back = max(start, back - max(1, overlap_bytes // 4))
        word_start = _last_break(_WHITESPACE, text, start + 1, back + 1)
        next_start = word_start if word_start is not None and word_start <= back else back
        start = max(next_start, start + 1)


def pack(sizes: Sequence[int], max_items: int, max_total: int) -> Iterator[list[int]]:
    """Group item indexes in order so each group has at most max_items items and max_total size."""
    group: list[int] = []
    total = 0
    for index, size in enumerate(sizes):
        if group and (len(group) >= max_items or total + size > max_total):
            yield group
            group, total = [], 0
        group.append(index)
        total += size
    if group:
        yield group
