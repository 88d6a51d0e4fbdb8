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
lists and wrong for anything else. Masked spellings ("f*ck") are not folded (the trained
classifiers keep "*" inside a token, so their character n-grams still see "f*c"); letter-spaced
ones ("i d i o t", "f.u.c.k") are folded by ``normalize_for_model`` only.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["GateSet", "compile_squeezed", "gate", "literal_anchors", "normalize_for_model", "normalize_text", "squeeze",
           "squeezed_text"]

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
# The same substitution, fast: ``_LEET_WORD`` matches exactly the maximal runs of [a-z0-9@$] that hold a letter
# next to a digit/@/$ (its greedy stars always widen a match to the whole run, and a run without such a pair has
# no match), and tried at every position it backtracks through every word. This form starts only at a run's
# first character and looks ahead within the run; ``_LEET_PAIR`` (a charset-first search, so the regex engine
# skips straight to digits) says whether any run qualifies at all. Equality is tested (test_vectorized_scoring).
_LEET_RUN = re.compile(r"(?<![a-z0-9@$])(?=[a-z0-9@$]*?(?:[a-z][0-9@$]|[0-9@$][a-z]))[a-z0-9@$]++")
_LEET_PAIR = re.compile(r"[0-9@$](?:(?<=[a-z].)|(?=[a-z]))")
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


_CACHE_MAX_LEN = 2000  # the scorers normalize the same message several times; short texts are cached


def normalize_text(text: str) -> str:
    """Lowercase, de-obfuscated, whitespace-collapsed form of ``text`` for lexicon matching."""
    if len(text) <= _CACHE_MAX_LEN:
        return _normalize_cached(text)
    return _normalize(text)


def _normalize(text: str) -> str:
    if not text.isascii():  # the Unicode work is the slow part; most chat text skips it
        text = unicodedata.normalize("NFKD", text)
        text = unicodedata.normalize("NFKC", _STRIP.sub("", text)).translate(_CONFUSABLES)
    text = text.lower()
    if _LEET_PAIR.search(text):
        text = _LEET_RUN.sub(_unleet, text)
    text = _ELONGATED.sub(r"\1\1", text)
    # == _SPACES.sub(" ", text).strip(): str.split and re's \s both split on exactly the str.isspace characters
    return " ".join(text.split())


_normalize_cached = lru_cache(maxsize=1024)(_normalize)


# Three or more single letters split by one space, dot, dash or underscore: "h a t e", "f.u.c.k".
_SPACED = re.compile(r"(?<![a-z0-9])[a-z](?:[ ._-][a-z](?![a-z0-9])){2,}")
_SPACED_SEP = re.compile(r"[ ._-]")


def normalize_for_model(text: str) -> str:
    """``normalize_text`` plus letter-spacing folding (``"i h a t e"`` -> ``"ihate"``), for the
    trained classifiers, whose character n-grams still find the word inside the joined run."""
    if len(text) <= _CACHE_MAX_LEN:
        return _for_model_cached(text)
    return _for_model(text)


def _for_model(text: str) -> str:
    norm = normalize_text(text)
    if " " in norm or "." in norm or "-" in norm or "_" in norm:
        norm = _SPACED.sub(lambda m: _SPACED_SEP.sub("", m.group()), norm)
    return norm


_for_model_cached = lru_cache(maxsize=1024)(_for_model)


def squeeze(text: str) -> str:
    """Collapse every run of one repeated letter: ``"kill all" -> "kil al"``."""
    return _RUNS.sub(r"\1", text)


def squeezed_text(text: str) -> str:
    """``squeeze(normalize_text(text))``, cached: the toxicity phrases and the prompt-safety patterns both
    match it, so a message is normalized and squeezed once for both."""
    if len(text) <= _CACHE_MAX_LEN:
        return _squeezed_cached(text)
    return squeeze(normalize_text(text))


@lru_cache(maxsize=1024)
def _squeezed_cached(text: str) -> str:
    return squeeze(_normalize_cached(text))


def compile_squeezed(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Compile ``pattern`` (plain lowercase English) so that it matches ``squeeze``d text."""
    return re.compile(_SOURCE_RUNS.sub(r"\1", pattern), flags)


try:  # the regex parser, to find the literal text each pattern cannot match without
    import re._constants as _sc
    import re._parser as _sp
except ImportError:  # Python 3.10
    import sre_constants as _sc  # type: ignore[no-redef]
    import sre_parse as _sp  # type: ignore[no-redef]


def _anchors(seq) -> frozenset[str] | None:  # type: ignore[no-untyped-def]
    """Strings of which every match of the parsed sequence contains at least one (None: no such set).

    Used as a gate: a pattern whose anchors are all absent from the text cannot match, so it is
    not run (most text contains none, which saves ~30 regex searches per message)."""
    best: frozenset[str] | None = None

    def consider(cand: frozenset[str] | None) -> None:
        nonlocal best
        if cand and (best is None or min(map(len, cand)) > min(map(len, best))
                     or (min(map(len, cand)) == min(map(len, best)) and len(cand) < len(best))):
            best = cand

    run: list[str] = []
    for op, arg in list(seq) + [(None, None)]:
        if op is _sc.LITERAL:
            run.append(chr(arg))
            continue
        if len(run) >= 3:
            consider(frozenset(["".join(run)]))
        run = []
        if op is _sc.BRANCH:
            alts = [_anchors(alt) for alt in arg[1]]
            if all(a is not None for a in alts):
                consider(frozenset().union(*alts))  # type: ignore[arg-type]
        elif op in (_sc.MAX_REPEAT, _sc.MIN_REPEAT) and arg[0] >= 1:
            consider(_anchors(arg[2]))
        elif op is _sc.SUBPATTERN:
            consider(_anchors(arg[-1]))
    return best


def literal_anchors(rx: re.Pattern[str]) -> frozenset[str] | None:
    """Literal strings of which every match of ``rx`` contains at least one, or None if there is no
    such set. ``any(a in text for a in anchors)`` is then a cheap, exact pre-check: when it fails,
    ``rx.search(text)`` cannot succeed. The scorers use it to skip most of their regexes."""
    return _anchors(_sp.parse(rx.pattern))


def gate(rx: re.Pattern[str]) -> re.Pattern[str] | None:
    """A regex matching any of ``rx``'s literal anchors (None: no anchors, always run ``rx``)."""
    anchors = literal_anchors(rx)
    if anchors is None:
        return None
    return re.compile("|".join(re.escape(a) for a in sorted(anchors, key=lambda a: (-len(a), a))))


def _trie_regex(words: list[str]) -> str:
    """A regex matching exactly ``words`` (a prefix trie, so one position is tested in a few steps, not one per
    word); greedy, so it matches the longest word that starts at a position."""
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return "(?:" + body + ")?" if "" in node else body

    return build(trie)


class GateSet:
    """One scan that says which of many regexes can match a text: the gates of all of them at once.

    ``active(text)`` returns the indices of the regexes that have no literal anchors or at least one anchor
    present in ``text`` -- exactly the regexes for which ``gate(rx)`` would match, found with one regex scan
    (a lookahead at every position over a trie of all anchors; every anchor that starts at a position is a
    prefix of the longest one found there) instead of one alternation search per regex."""

    def __init__(self, regexes: list[re.Pattern[str]] | tuple[re.Pattern[str], ...]) -> None:
        self.always: list[int] = []
        self.by_anchor: dict[str, list[int]] = {}
        for i, rx in enumerate(regexes):
            anchors = literal_anchors(rx)
            if anchors is None:
                self.always.append(i)
            else:
                for a in anchors:
                    self.by_anchor.setdefault(a, []).append(i)
        self._hit: dict[str, frozenset[int]] = {}  # longest anchor found -> regexes its anchor prefixes gate
        if self.by_anchor:
            _ALL_ANCHORS.update(self.by_anchor)
            _shared_scan.cache_clear()

    def _indices(self, found: str) -> frozenset[int]:
        idx = self._hit.get(found)
        if idx is None:
            by_anchor = self.by_anchor
            idx = frozenset(i for k in range(1, len(found) + 1) for i in by_anchor.get(found[:k], ()))
            if len(self._hit) > 4096:
                self._hit.clear()
            self._hit[found] = idx
        return idx

    def active(self, text: str) -> list[int]:
        """Indices (ascending) of the regexes whose gate passes on ``text``."""
        out = set(self.always)
        if self.by_anchor:
            for found in _shared_scan(text) if len(text) <= _CACHE_MAX_LEN else _scan(text):
                out.update(self._indices(found))
        return sorted(out)


# One scan serves every GateSet: the toxicity phrases and the prompt-safety patterns gate on the same squeezed
# text, so its anchors are found once (cached per text) over a trie of all sets' anchors. At each position the
# scan finds the longest anchor of any set, and every anchor of a set that starts there is a prefix of it, so
# ``_indices`` finds the same regexes as a scan over that set's anchors alone.
_ALL_ANCHORS: set[str] = set()
_SCANNER: list[re.Pattern[str] | None] = [None, None]  # [compiled scan, for how many anchors]


def _scan(text: str) -> frozenset[str]:
    scanner, built_for = _SCANNER
    if scanner is None or built_for != len(_ALL_ANCHORS):
        scanner = re.compile("(?=(" + _trie_regex(sorted(_ALL_ANCHORS)) + "))")
        _SCANNER[:] = [scanner, len(_ALL_ANCHORS)]
    return frozenset(scanner.findall(text))


_shared_scan = lru_cache(maxsize=1024)(_scan)


def clear_caches() -> None:
    """Forget every cached text (they hold message text in memory; also for fair cold-cache timing)."""
    for cached in (_normalize_cached, _for_model_cached, _squeezed_cached, _shared_scan):
        cached.cache_clear()


# A run of three or more mask characters standing alone is a redaction (the PII filter's default output,
# "call me at ***********"), not content; inside a word ("f***", "sh*t") it is masked profanity and stays.
_REDACTION = re.compile(r"(?<![\w*])\*{3,}(?![\w*])")


def without_redactions(text: str) -> str:
    """``text`` with standalone redaction runs replaced by a space, for the classifiers: a later filter reads
    the PII filter's masked output, and a run of asterisks must not read as a masked swear word."""
    return _REDACTION.sub(" ", text) if "***" in text else text
