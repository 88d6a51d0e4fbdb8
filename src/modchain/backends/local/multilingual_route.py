"""Which fast-tier model reads which text: the local backend's language routing (see ``multilingual``).

Each text's language comes from ``modchain.core.language.detect_language``, which caches short texts: the chain
detected it when the message arrived, and the toxicity and prompt-safety filters ask about the same message.

* **English and undetermined texts** keep the English path exactly (same scores as before), with one addition
  for prompt safety: when such a text carries enough letters of another script (a Chinese instruction behind an
  English paragraph reads as "und" or "en"), ``prompt_injection_multi`` and the multilingual patterns score that
  part (its sentences that hold such letters) too, and the higher score counts. A pure-ASCII text never reaches the
  multilingual models, and one that is plainly English (``_plainly_english``) skips the detector.
* **Toxicity**: every text keeps the English scores (on the encoder tiers, the encoder's for English and
  undetermined texts only: it is English-only, so other languages keep the fast tier's, ``by_language``); a text
  with Han characters that is not Japanese or Korean is also scored by ``toxicity_zh``, and each label takes the
  higher of the two (the English model reads the Latin parts of a mixed text, ``toxicity_zh`` the Chinese). Other
  languages: the English path alone (no model yet).
* **Prompt safety, any other language**: ``prompt_injection_multi`` with the multilingual attack patterns
  (``multilingual_patterns``) as a floor, the English attack patterns (an English
  "ignore all previous instructions" fires whatever surrounds it), and the English model on the sentences of the
  text that are themselves English (an English injection behind a German greeting) -- the highest counts. Not the
  English model on the whole text: it reads unknown words as injection.

``note`` says which model decided (``toxicity_zh``, ``prompt_injection_multi (de)``); the backend puts it in the
finding's ``explanation``. English texts get no note, as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

from modchain.backends.local.normalize import without_redactions

__all__ = ["ENGLISH", "HAN", "by_language", "language_of", "prompt_safety_routed", "toxicity_routed"]

ENGLISH = frozenset({"en", "und"})
# Han alone (extension A, compatibility ideographs): the characters ``toxicity_zh`` reads
HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# letters of scripts other than Latin (digits, underscore and Latin letters excluded from \w)
_OTHER_SCRIPT = re.compile("[^\\W\\d_a-zA-Z\u00c0-\u024f\u1e00-\u1eff]")
_MIN_OTHER_LETTERS = 4  # Han/kana/Hangul carry a word each: four are a short phrase
_SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？]*")
_MIN_ENGLISH_WORDS = 4  # an English part shorter than this is left to the patterns and the multilingual model
_LATIN_RUN = re.compile(r"[A-Za-z][A-Za-z0-9'’,;:\-\s]*[A-Za-z0-9]")


# Plainly English ASCII text skips the detector (about 30 us a message, 1.5% of the offline chain): at least
# three of these words, and a fifth of the words. None is a common word in another language the models cover
# ("a", "in", "on", "i", "die" are left out), so a text taking this shortcut takes the path the detector would give
# it; a non-English text padded with English words to take it gets the English path, which is today's.
_ENGLISH_WORDS = frozenset("the to of and is are you your my it it's for that this with can what how please me do "
                           "have i'm would could should there about from was were be been".split())
_SHORTCUT_MIN = 3


_SHORTCUT_CHARS = 2000  # a long text is judged by its start (the detector samples long texts too)


def _plainly_english(text: str) -> bool:
    words = text[:_SHORTCUT_CHARS].lower().split()
    hits = sum(map(_ENGLISH_WORDS.__contains__, words))
    return hits >= _SHORTCUT_MIN and hits * 5 >= len(words)


_WORD3 = re.compile(r"[A-Za-z]{3,}")


def language_of(text: str) -> str:
    """The language the models route on: ``detect_language``'s (cached there: the chain asked it already), except
    that plainly English ASCII text is ``en`` and ASCII text with too few words to tell is ``und``."""
    if text.isascii():
        if _plainly_english(text):
            return "en"
        if len(_WORD3.findall(text, 0, 200)) < 3:
            # too little to tell a language by ("s t u p i d", "sh1t h4ppens"): the English path, as before
            return "und"
    from modchain.core.language import detect_language

    return detect_language(text)


def _other_script_letters(text: str, enough: int = _MIN_OTHER_LETTERS) -> int:
    """How many letters of a script other than Latin ``text`` holds, counted up to ``enough`` (no list of them:
    a 2 MB Chinese text would be two million one-character strings)."""
    if text.isascii():
        return 0
    return sum(1 for _ in islice(_OTHER_SCRIPT.finditer(text), enough))


def toxicity_routed(texts: Sequence[str], english: list[dict[str, float]]) -> list[tuple[dict[str, float], str]]:
    """``(labels, note)`` per text from the English scores ``english`` (one per text, already computed): Chinese
    texts also get ``toxicity_zh``'s, label by label the higher."""
    out = []
    for text, scores in zip(texts, english):
        if text.isascii() or not HAN.search(text) or language_of(text) in ("ja", "ko"):
            out.append((scores, ""))
            continue
        from modchain.backends.local.multilingual import score_toxicity_zh

        zh = score_toxicity_zh(without_redactions(text))
        merged = {label: max(score, zh.get(label, 0.0)) for label, score in scores.items()}
        out.append((merged, "toxicity_zh" if max(zh.values()) >= max(scores.values()) else ""))
    return out


Scorer = Callable[[list[str], list[str]], list[Any]]


def by_language(texts: Sequence[str], english: Scorer, other: Scorer) -> list[Any]:
    """One result per text: ``english(part, langs)`` for the texts the English models read (:data:`ENGLISH`),
    ``other(part, langs)`` for the rest, each called once (when it has texts) with those texts and their
    languages; the results in the texts' order. Each text's language is looked up once."""
    langs = [language_of(t) for t in texts]
    out: list[Any] = [None] * len(texts)
    for score, wanted in ((english, True), (other, False)):
        idx = [i for i, lang in enumerate(langs) if (lang in ENGLISH) == wanted]
        if idx:
            for i, result in zip(idx, score([texts[i] for i in idx], [langs[i] for i in idx])):
                out[i] = result
    return out


Verdict = tuple[float, "str | None"]


def prompt_safety_routed(texts: Sequence[str], english: Callable[[list[str]], list[Verdict]]
                         ) -> list[tuple[float, str | None, str]]:
    """``(score, kind, note)`` per text; ``english(texts)`` is the English path (a tier's verdicts) and is called
    once, for the texts that take it."""

    def english_path(part: list[str], langs: list[str]) -> list[tuple[float, str | None, str]]:
        out = []
        for text, lang, (score, kind) in zip(part, langs, english(part)):
            verdict = (score, kind, "")
            foreign = _foreign_part(text) if _other_script_letters(text) >= _MIN_OTHER_LETTERS else ""
            if foreign:
                # only the other-script sentences: the English model has judged the rest, and the multilingual model
                # scored whole mixed English pages (and their punctuation, once the words were removed) too high
                multi, multi_kind, _ = _multi(foreign)
                if multi > score:
                    verdict = (multi, multi_kind if multi >= 0.5 else None, f"prompt_injection_multi ({lang})")
            out.append(verdict)
        return out

    return by_language(texts, english_path,
                       lambda part, langs: [_non_english(text, lang) for text, lang in zip(part, langs)])


def _multi(text: str) -> tuple[float, str | None, str]:
    """``(score, kind, prepared text)``: ``prompt_injection_multi`` with the multilingual attack patterns as a floor
    (each window of a long text alone, the highest counting)."""
    from modchain.backends.local.long_text import windows
    from modchain.backends.local.multilingual import normalize, prompt_injection_probability
    from modchain.backends.local.multilingual_patterns import pattern_score

    prepared = without_redactions(text)
    if not prepared or prepared.isspace():
        return 0.0, None, prepared
    pat, kind = max((pattern_score(normalize(part)) for part in windows(prepared) or [prepared]),
                    key=lambda v: v[0])
    model = prompt_injection_probability(prepared)
    if model >= 0.5 and kind is None:
        kind = "injection"
    return max(model, pat), kind, prepared


def _non_english(text: str, lang: str) -> tuple[float, str | None, str]:
    from modchain.backends.local.prompt_safety_heuristics import pattern_score, score_prompt_safety

    note = f"prompt_injection_multi ({lang})"
    multi, kind, prepared = _multi(text)
    if not prepared or prepared.isspace():
        return 0.0, None, note
    pat, pat_kind = pattern_score(prepared)  # the English patterns: an English attack phrase anywhere
    best = multi
    if pat > best:
        best, kind = pat, pat_kind
    english_part = _english_part(prepared)
    if english_part:
        # mostly English (a misdetected English text, or an English request behind a foreign greeting): the English
        # model judges the whole text, as it did before routing; else only its English sentences
        whole = 2 * len(english_part.split()) >= len(prepared.split())
        en_score, en_kind = score_prompt_safety(prepared if whole else english_part)
        if en_score > best:
            best, kind, note = en_score, en_kind, f"local English model on the English part ({lang} text)"
    return round(best, 4), (kind if best >= 0.5 else None), note


def _foreign_part(text: str) -> str:
    """The sentences of a text that hold letters of a script other than Latin, joined; "" when they hold fewer
    than ``_MIN_OTHER_LETTERS`` such letters."""
    parts = [m.group() for m in _SENTENCE.finditer(text) if _OTHER_SCRIPT.search(m.group())]
    joined = " ".join(parts)
    return joined if _other_script_letters(joined) >= _MIN_OTHER_LETTERS else ""


def _english_part(text: str) -> str:
    """The sentences of a non-English text that are English themselves (in a Latin-script text), or its runs of
    Latin script (in a text of another script), joined; "" when they are too short to judge."""
    if _other_script_letters(text) >= _MIN_OTHER_LETTERS:
        parts = [m.group() for m in _LATIN_RUN.finditer(text)]
    else:
        parts = [m.group() for m in _SENTENCE.finditer(text)]
    keep = [p.strip() for p in parts if len(p.split()) >= 2 and language_of(p.strip()) == "en"]
    joined = " ".join(keep)
    return joined if len(joined.split()) >= _MIN_ENGLISH_WORDS else ""
