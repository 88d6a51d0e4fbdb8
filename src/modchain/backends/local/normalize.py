"""Text normalization shared by the offline toxicity and prompt-safety heuristics.

``normalize_text`` folds the cheap evasions people use against word lists: compatibility forms
(fullwidth, math-bold letters), accents and combining marks ("ïdïot", Zalgo), invisible
characters (zero-width space/joiner, soft hyphen, bidi controls, tag characters), a few
Cyrillic/Greek homoglyphs, leetspeak inside words ("sh1t", "a$$", "id10t") and elongation
("stuuupid" -> "stuupid"). ``squeeze`` then collapses every letter run to one letter, and
``compile_squeezed`` compiles a pattern written in plain English so it matches squeezed text;
together they make "ignooore" and "ignore" the same word.

Limits: the output is for matching only. Lengths change, so offsets into it do not map back to
the input (the PII recognizers never use it). Leetspeak folding is lossy ("mp3" -> "mpe") and
stripping combining marks also removes legitimate accents; both are harmless for English word
lists and wrong for anything else. Masked ("f*ck") and letter-spaced ("i d i o t") spellings
are not folded.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["compile_squeezed", "normalize_text", "squeeze"]

# Invisible/format characters plus the combining-mark blocks used for accents and Zalgo text.
# Removed after NFKD so that precomposed letters lose their marks too ("é" -> "e").
_STRIP = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f"
    "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
)
# Cyrillic and Greek letters that render like Latin ones; NFKC leaves them alone.
_CONFUSABLES = str.maketrans(
    "асеорхуіјѕԁӏкмтнвАВЕКМНОРСТХУІЈЅαονρτικευΑΒΕΖΗΙΚΜΝΟΡΤΥΧ\u2018\u2019\u02bc\u2032",
    "aceopxyijsdlkmthbabekmhopctxyijsaovptikeuabezhikmnoptyx''''",
)
# Leetspeak digits/symbols are only folded when they touch a letter, so "4 apples", "$100"
# and "192.168.0.1" keep their meaning while "sh1t" and "a$$" become words.
_LEET_WORD = re.compile(r"[a-z0-9@$]*(?:[a-z][0-9@$]|[0-9@$][a-z])[a-z0-9@$]*")
_LEET = str.maketrans("01345@$", "oieasas")
_LEET_KEEP_AT = str.maketrans("01345$", "oieass")
_EMAIL_TAIL = re.compile(r"\.[a-z]")
_ELONGATED = re.compile(r"([a-z])\1{2,}")  # 3+ repeats -> 2: keeps real doubles ("kill", "all")
_SPACES = re.compile(r"\s+")
_RUNS = re.compile(r"([a-z])\1+")
_SOURCE_RUNS = re.compile(r"(?<!\\)([a-z])\1+")  # never touch an escape such as the b in "\bbomb"


def _unleet(m: re.Match[str]) -> str:
    token = m.group()
    # "name@host.com": an "@" followed by a domain is an address, not an "a".
    table = _LEET_KEEP_AT if "@" in token and _EMAIL_TAIL.match(m.string, m.end()) else _LEET
    return token.translate(table)


def normalize_text(text: str) -> str:
    """Lowercase, de-obfuscated, whitespace-collapsed form of ``text`` for lexicon matching."""
    if not text.isascii():  # the Unicode work is the slow part; most chat text skips it
        text = unicodedata.normalize("NFKD", text)
        text = unicodedata.normalize("NFKC", _STRIP.sub("", text)).translate(_CONFUSABLES)
    text = text.lower()
    if "@" in text or "$" in text or any(c in text for c in "01345"):
        text = _LEET_WORD.sub(_unleet, text)
    text = _ELONGATED.sub(r"\1\1", text)
    return _SPACES.sub(" ", text).strip()


def squeeze(text: str) -> str:
    """Collapse every run of one repeated letter: ``"kill all" -> "kil al"``."""
    return _RUNS.sub(r"\1", text)


def compile_squeezed(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Compile ``pattern`` (plain lowercase English) so that it matches ``squeeze``d text."""
    return re.compile(_SOURCE_RUNS.sub(r"\1", pattern), flags)
