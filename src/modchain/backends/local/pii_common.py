"""What every offline PII recognizer module shares: the match type, token boundaries, context windows.

Kept apart from ``pii_recognizers`` so the recognizer modules (built-in, international, custom) can
import it without importing each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["A", "AI", "L", "LD", "R", "PiiMatch", "ascii_context_words", "clean_edges", "context_near", "context_words"]


@dataclass(frozen=True, slots=True)
class PiiMatch:
    label: str
    start: int  # inclusive
    end: int  # exclusive
    score: float
    recognizer: str


# ASCII mode: \d is [0-9] (so int() never meets Arabic-Indic digits) and IGNORECASE [a-z] does
# not also match the Kelvin sign. A number must not be the middle of a longer token: nothing
# from [\w.+-] before it, no word char or "-" after it, and no ".5"/",5" continuation (decimals,
# versions, thousands separators).
A, AI = re.ASCII, re.ASCII | re.IGNORECASE
L, R = r"(?<![\w.+-])", r"(?![\w-]|[.,]\d)"
# The same left boundary, written after a pattern's first digit: a pattern that starts with a plain
# character class lets ``re`` skip ahead to candidate positions instead of trying every one.
LD = r"\d(?<![\w.+-]\d)"


def context_near(rx: re.Pattern[str], text: str, start: int, end: int, before: int = 40, after: int = 20) -> bool:
    """A context word within a bounded window around the span (bounded: linear over all spans)."""
    return rx.search(text, max(0, start - before), end + after) is not None


def clean_edges(text: str, start: int, end: int) -> bool:
    # The patterns run in ASCII mode; this stops "jöhn@x.com" yielding "hn@x.com" (or a number
    # glued to an Arabic-Indic digit) by looking at the neighbours as Unicode.
    return not (start and text[start - 1].isalnum()) and not (end < len(text) and text[end].isalnum())


def context_words(words: str) -> re.Pattern[str]:
    """Context words, each starting on a word boundary (Unicode, case-insensitive: "Sécurité", "PESEL")."""
    return re.compile(r"(?<!\w)(?:" + words + ")", re.IGNORECASE)


def ascii_context_words(words: str) -> re.Pattern[str]:
    """Context words, each starting on a word boundary (ASCII, case-insensitive): the built-in recognizers'."""
    return re.compile(r"\b(?:" + words + ")", AI)
