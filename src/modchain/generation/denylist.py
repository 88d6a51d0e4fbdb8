"""A denylist matcher for prompts that survives the usual evasions, with spans into the original text.

    matcher = Denylist(["nude", "porn*", DenyTerm(text="naked", mode="word")], allow=["naked mole rat"])
    matcher.find("a n.u.d.3 picture")      # [DenyMatch(term="nude", start=2, end=10, ...)]

What it folds, so that a listed term still matches:

* case (``casefold``), full-width and other compatibility forms (NFKC), accents and Zalgo marks;
* zero-width and other invisible characters (ZWSP, ZWJ, soft hyphen, bidi controls, tag characters);
* Cyrillic / Greek look-alikes ("nudе" with a Cyrillic е);
* leetspeak: each letter of a term also matches its usual substitutes ("p0rn", "nud3", "$ex", "a$$");
* letters spaced or punctuated apart ("n u d e", "n.u.d.e", "p-o-r-n", "s_e_x") and elongation ("nuuude").

Every repetition in the pattern is bounded (a character repeated more than three times is squeezed to
three before matching, gaps hold at most five characters), so matching time grows linearly with the
prompt: unbounded ``+``/``*`` over look-alike classes backtracked for minutes on a 2 KB "xxx...x" prompt.

What keeps it from flagging innocent text: in ``word`` mode (the default) a term must start and end at a
word boundary, so "Scunthorpe", "therapist", "cocktail", "Sussex" and "grape" are left alone while the
same letters standing alone are caught. A trailing ``*`` makes a prefix ("porn*" also catches
"pornographic"); ``phrase`` mode matches the term anywhere, even inside a longer word. Multi-word terms
match with spacing or punctuation (up to five characters) between their words. Allowlisted phrases ("naked mole rat",
"breast cancer") cancel the matches that lie inside them.

The text is normalized one character at a time with a map back to the original offsets, so a match's
``start``/``end`` index the caller's text exactly. All terms compile into one regular expression per
matcher: a prompt is checked in well under a millisecond.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import Field, field_validator

from modchain.core.config import StrictModel
from modchain.core.errors import ConfigurationError, InputError

#: A short default list of explicit-content terms for image prompts. Pass your own for anything else.
DEFAULT_EXPLICIT_TERMS: tuple[str, ...] = (
    "nude", "nudes", "nudity", "naked", "topless", "bottomless", "porn*", "nsfw", "xxx", "hentai",
    "sex", "sexual", "sexy", "erotic*", "explicit", "genitals", "genitalia", "penis", "vagina", "nipple",
    "lingerie", "fetish", "bdsm", "orgy", "gore", "gory", "decapitated", "dismembered",
)

# Invisible characters, removed before matching (they render as nothing but split words for a regex).
_INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d"
    "\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f\u3164"
    "\ufeff\uffa0"
)
# Cyrillic and Greek letters that look like Latin ones (NFKC leaves them alone). Capitals first, since a
# capital and its lower case may resemble different Latin letters (Greek Ν looks like N, ν like v).
_UPPER_HOMOGLYPHS = str.maketrans(
    "АВЕКМНОРСТХУІЈЅΑΒΕΗΙΚΜΝΟΡΤΥΧΖ",
    "abekmhopctxyijsabehikmnoptyxz",
)
_HOMOGLYPHS = str.maketrans(
    "асеорхуіјѕԁӏкмтнвгпьαβεικνορτυχζηω",
    "aceopxyijsdlkmthbrnbabeikvoptuxznw",
)
# What each letter may be written as, besides itself.
_LEET: dict[str, str] = {
    "a": "4@^", "b": "86", "c": "(<{", "e": "3€", "g": "96", "i": "1!|l", "l": "1|!i", "o": "0°",
    "s": "5$z", "t": "7+", "z": "2", "x": "×", "u": "v", "v": "u",
}
# Characters that may sit between the letters of one word ("n.u.d.e", "s e x", "p-o-r-n"), at most five.
_GAP = r"[\s.\-_*'\"`~,:;/\\|#=]{0,5}"
# Longest run of one character kept by normalization (and longest run a letter of a term matches).
_MAX_RUN = 3
# A boundary: no letter or digit on that side (so "Scunthorpe" and "therapist" hold no listed word).
_BOUNDARY_BEFORE = r"(?<![^\W_])"
_BOUNDARY_AFTER = r"(?![^\W_])"


class DenyTerm(StrictModel):
    """One listed term: a word, a phrase of several words, or a prefix ending in ``*``."""

    text: str = Field(min_length=1, description="The term, in plain spelling; a trailing * makes a prefix.")
    mode: Literal["word", "phrase"] = Field(
        "word", description="word: whole words only (boundaries both ends); phrase: anywhere, even inside a word.")
    category: str = Field("DENYLIST", description="Reported as the finding's category.")

    @field_validator("text")
    @classmethod
    def _has_letters(cls, text: str) -> str:
        if not any(ch.isalnum() for ch in text):
            raise ValueError("a denylist term needs at least one letter or digit")
        return text


class DenyMatch(StrictModel):
    """Where a listed term was found. ``start``/``end`` index the original text (end exclusive)."""

    term: str
    category: str
    start: int
    end: int


def _normalize(text: str) -> tuple[str, list[int], list[int]]:
    """The matcher's view of ``text`` and, per character, the original span ``[start, end)`` it stands for.
    Runs of one character longer than ``_MAX_RUN`` are squeezed; the kept last one spans the dropped ones."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    run = 0  # how many times the last kept character repeats at the end of ``out``
    for index, char in enumerate(text):
        if char in _INVISIBLE or "\U000e0000" <= char <= "\U000e007f":
            continue
        compatible = unicodedata.normalize("NFKC", char).translate(_UPPER_HOMOGLYPHS)
        folded = unicodedata.normalize("NFKD", compatible.casefold())
        for piece in folded:
            if unicodedata.combining(piece):
                continue
            piece = piece.translate(_HOMOGLYPHS)
            run = run + 1 if out and out[-1] == piece else 1
            if run > _MAX_RUN:
                ends[-1] = index + 1
                continue
            out.append(piece)
            starts.append(index)
            ends.append(index + 1)
    return "".join(out), starts, ends


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """The text as the matcher sees it, and for each of its characters the offset it came from."""
    normalized, starts, _ = _normalize(text)
    return normalized, starts


def _letter_pattern(letter: str) -> str:
    variants = letter + _LEET.get(letter, "")
    quantifier = f"{{1,{_MAX_RUN}}}"
    return f"[{re.escape(variants)}]{quantifier}" if len(variants) > 1 else f"{re.escape(letter)}{quantifier}"


def _term_pattern(term: DenyTerm, plurals: bool) -> str:
    text, _ = normalize_with_offsets(term.text.strip())
    prefix = text.endswith("*")
    words = [w for w in re.split(r"[^\w]+|_", text.rstrip("*")) if w]
    if not words:
        raise ConfigurationError("a denylist term needs at least one letter or digit")
    # Letters of one word may be spaced or punctuated apart; words of a phrase need some separator.
    body = r"[\W_]{1,5}".join(_GAP.join(_letter_pattern(ch) for ch in word) for word in words)
    if prefix:
        return rf"{_BOUNDARY_BEFORE}{body}\w*"
    if term.mode == "phrase":
        return body
    suffix = r"(?:e?s)?" if plurals else ""
    return rf"{_BOUNDARY_BEFORE}{body}{suffix}{_BOUNDARY_AFTER}"


def _as_terms(items: Iterable[str | DenyTerm | dict], default_mode: str) -> list[DenyTerm]:
    terms = []
    for item in items:
        if isinstance(item, DenyTerm):
            terms.append(item)
        elif isinstance(item, dict):
            terms.append(DenyTerm.from_dict(item))
        elif isinstance(item, str):
            terms.append(DenyTerm(text=item, mode=default_mode))
        else:
            raise ConfigurationError(f"a denylist term must be a str, dict or DenyTerm, not {type(item).__name__}")
    return terms


class Denylist:
    """Finds listed terms in text, evasions included (see the module docstring).

    Args:
        terms: strings, dicts or :class:`DenyTerm`; strings use ``mode``.
        allow: allowlisted phrases; a match lying entirely inside one is dropped ("naked mole rat").
        mode: the mode for terms given as plain strings.
        plurals: in word mode also match the term followed by "s"/"es" ("nudes").
    """

    def __init__(self, terms: Iterable[str | DenyTerm | dict] = DEFAULT_EXPLICIT_TERMS, *,
                 allow: Iterable[str | DenyTerm | dict] = (), mode: Literal["word", "phrase"] = "word",
                 plurals: bool = True) -> None:
        self.terms: tuple[DenyTerm, ...] = tuple(_as_terms(terms, mode))
        self.allow: tuple[DenyTerm, ...] = tuple(_as_terms(allow, "word"))
        if not self.terms:
            raise ConfigurationError("a denylist needs at least one term")
        self._deny = self._compile(self.terms, plurals)
        self._allow = self._compile(self.allow, False) if self.allow else None

    @staticmethod
    def _compile(terms: Sequence[DenyTerm], plurals: bool) -> re.Pattern[str]:
        # One alternation, one named group per term: a single scan of the text finds every term.
        parts = [f"(?P<t{i}>{_term_pattern(term, plurals)})" for i, term in enumerate(terms)]
        return re.compile("|".join(parts))

    def find(self, text: str) -> list[DenyMatch]:
        """Every listed term in ``text`` not covered by an allowlisted phrase, in order of position."""
        if not isinstance(text, str):
            raise InputError(f"expected text, got {type(text).__name__}")
        normalized, starts, ends = _normalize(text)
        if not normalized:
            return []
        allowed = [m.span() for m in self._allow.finditer(normalized)] if self._allow is not None else []
        matches = []
        for match in self._deny.finditer(normalized):
            start, end = match.span()
            if any(a <= start and end <= b for a, b in allowed):
                continue
            term = self.terms[int(match.lastgroup[1:])]  # type: ignore[index]
            matches.append(DenyMatch(term=term.text, category=term.category, start=starts[start],
                                     end=ends[end - 1]))
        return matches

    def matches(self, text: str) -> bool:
        """Whether ``text`` holds any listed term (after the allowlist)."""
        return bool(self.find(text))


__all__ = ["DEFAULT_EXPLICIT_TERMS", "DenyMatch", "DenyTerm", "Denylist", "normalize_with_offsets"]
