"""Which language a text is written in: a small, pure-Python, offline detector.

Why this design: a chain routes each text to a backend that supports its language (Comprehend's PII
detection reads English and Spanish, its toxicity only English), so detection runs on every message
and must cost microseconds, import nothing heavy and download nothing. The usual detectors do not fit:
py3langid needs numpy (not a core dependency), lingua's wheel is ~96 MB, fastText's models are
downloads under CC-BY-SA. Routing needs far less than they offer: the script, and for Latin script a
handful of well-separated languages. So:

1. **Script.** The characters of the text are counted once (``collections.Counter``, a C loop) and
   each distinct character is mapped to a Unicode script by a bisect over block ranges. The script with
   most letters wins (Han, kana and Hangul count 3 each: one such character carries about a word).
   Most scripts name one language: Hangul -> ko, Thai -> th, Bengali -> bn, Devanagari -> hi, ...; Han
   is ``ja`` when kana is present, else ``zh``; Cyrillic is ``uk``/``sr`` by their own letters, else
   ``ru``; Arabic script is ``ur``/``fa`` by their own letters, else ``ar``.
2. **Latin script.** Tokens are looked up in function-word lists (articles, pronouns, prepositions,
   auxiliaries and a few everyday words) for en, de, es, fr, it, pt, nl, tr, id, vi, tl; letters that
   belong to few languages (ß, ñ, ã, ı, ơ, ...) add hints. The best score must reach ``MIN_SCORE``,
   lead the runner-up by a margin and cover a share of the tokens, else the answer is ``"und"``.

Cost: linear in the text and bounded: texts longer than ``MAX_SAMPLE_CHARS`` are read as a prefix
plus evenly spread windows (``_sample``), so a 10 MB document costs the same as a 2 kB one. Tokenizing
is ``str.translate`` plus ``str.split`` for ASCII text (C fast path) and, for other text, one regular expression
that is a single character class with ``+`` (no nesting, no alternation: no backtracking).

Limits (see docs/languages.md): very short texts (one or two words) are ``"und"``; code-switched text
gets the language with most evidence; Latin-script languages outside the list above (Swedish, Polish,
...) are usually ``"und"`` or, with shared function words, a neighbour; Devanagari is always ``hi``.
"""

from __future__ import annotations

import re
import string
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from modchain.core.errors import InputError

__all__ = ["LATIN_LANGUAGES", "LanguageGuess", "UNDETERMINED", "detect_language", "guess_language"]

UNDETERMINED = "und"
MAX_SAMPLE_CHARS = 2048  # texts up to this length are read whole
_PREFIX_CHARS = 1024  # longer texts: this prefix ...
_WINDOWS, _WINDOW_CHARS = 4, 256  # ... plus this many windows spread over the rest
MIN_SCORE = 2.0  # Latin script: the best language needs at least this much evidence
MIN_MARGIN = 1.0  # ... and must lead the runner-up by this much
MIN_COVERAGE = 0.12  # ... and explain this share of the tokens (texts of 8+ tokens)
_IDEOGRAPHIC_WEIGHT = 3  # one Han/kana/Hangul character is about a word: weigh it against letters
_MIN_SCRIPT_WEIGHT = 6  # non-Latin scripts: two ideographs or six letters at least

# Unicode blocks -> script. Sorted by start; the end is exclusive. Gaps are punctuation, digits, symbols.
_BLOCKS: tuple[tuple[int, int, str], ...] = (
    (0x0041, 0x005B, "Latin"), (0x0061, 0x007B, "Latin"), (0x00C0, 0x0250, "Latin"),
    (0x0370, 0x0400, "Greek"), (0x0400, 0x0530, "Cyrillic"), (0x0531, 0x0590, "Armenian"),
    (0x0591, 0x0600, "Hebrew"), (0x0600, 0x0700, "Arabic"), (0x0750, 0x0780, "Arabic"),
    (0x0900, 0x0980, "Devanagari"), (0x0980, 0x0A00, "Bengali"), (0x0A00, 0x0A80, "Gurmukhi"),
    (0x0A80, 0x0B00, "Gujarati"), (0x0B80, 0x0C00, "Tamil"), (0x0C00, 0x0C80, "Telugu"),
    (0x0C80, 0x0D00, "Kannada"), (0x0D00, 0x0D80, "Malayalam"), (0x0E00, 0x0E80, "Thai"),
    (0x0E80, 0x0F00, "Lao"), (0x1000, 0x10A0, "Myanmar"), (0x10A0, 0x1100, "Georgian"),
    (0x1100, 0x1200, "Hangul"), (0x1780, 0x1800, "Khmer"), (0x1E00, 0x1F00, "Latin"),
    (0x1F00, 0x2000, "Greek"), (0x3040, 0x30A0, "Kana"), (0x30A1, 0x30FB, "Kana"),
    (0x30FC, 0x3100, "Kana"), (0x3130, 0x3190, "Hangul"), (0x31F0, 0x3200, "Kana"),
    (0x3400, 0x4DC0, "Han"), (0x4E00, 0xA000, "Han"), (0xAC00, 0xD7B0, "Hangul"),
    (0xF900, 0xFB00, "Han"), (0xFB50, 0xFE00, "Arabic"), (0xFE70, 0xFF00, "Arabic"),
    (0xFF66, 0xFFA0, "Kana"), (0x20000, 0x30000, "Han"),
)
_BLOCK_STARTS = tuple(start for start, _, _ in _BLOCKS)

# Scripts that name one language (ISO 639-1).
_SCRIPT_LANGUAGE = {
    "Greek": "el", "Armenian": "hy", "Hebrew": "he", "Devanagari": "hi", "Bengali": "bn",
    "Gurmukhi": "pa", "Gujarati": "gu", "Tamil": "ta", "Telugu": "te", "Kannada": "kn",
    "Malayalam": "ml", "Thai": "th", "Lao": "lo", "Myanmar": "my", "Georgian": "ka", "Hangul": "ko",
    "Khmer": "km",
}
_UKRAINIAN_LETTERS = frozenset("єїґЄЇҐіІ")
_SERBIAN_LETTERS = frozenset("ђћџљњјЂЋЏЉЊЈ")
_URDU_LETTERS = frozenset("ٹڈڑںےۓ")
_PERSIAN_LETTERS = frozenset("پچژگکی")

# Function words per Latin-script language. A word in several lists counts for each (it then adds no
# contrast, only evidence that the text is language at all). Written for this module, not taken from
# any corpus or evaluation set.
_WORDS: dict[str, str] = {
    "en": "the a an and or but of to in on at for with from by about into over after before is are was "
    "were be been being am has have had do does did will would can could should must may might shall "
    "i you he she it we they me him her us them my your his its our their this that these those what "
    "which who whom whose where when why how not no yes there here than then so if because just also "
    "very too all any some more most much many other only up out get got make like know think want need "
    "please thanks thank hello hi ll ve re don doesn didn isn aren wasn won can't something anything",
    "de": "der die das den dem des ein eine einen einem einer eines und oder aber ist sind war waren bin "
    "bist sein seine ihr ihre mein meine dein deine ich du er sie es wir uns euch mich mir dich dir sich "
    "nicht kein keine mit von zu zum zur vom auf für über unter im in an am als auch noch nach wie aus "
    "bei wenn nur so um kann können will wird werden hat haben habe doch schon sehr hier dass daß was "
    "wer wo warum bitte danke ja nein man gibt diese dieser dieses alle immer heute etwas mal gut hallo "
    "guten mehr durch gegen ohne mich jetzt einfach",
    "es": "el la los las lo un una unos unas y o pero de del al a en con por para sin sobre entre hasta "
    "desde es son está están estoy soy eres era fue ser estar hay tiene tengo tienes puedo puede quiero "
    "necesito hacer que qué como cómo cuál dónde cuando cuándo porque no sí si se le les me te nos mi "
    "mis tu tus su sus yo tú él ella nosotros ellos ellas usted este esta esto ese esa eso muy más ya "
    "también todo todos nada algo gracias hola bien favor aquí ahora",
    "fr": "le la les l un une des du de d et ou mais est sont suis es être avoir ai as a ont été fait faire "
    "je j tu il elle on nous vous ils elles me m te t se s moi toi lui leur mon ma mes ton ta tes son sa "
    "ses notre votre nos vos ce c cette ces ça qui que qu quoi dans pour par sur avec sans chez vers pas "
    "ne n plus très bien aussi comme tout tous quand comment pourquoi où au aux en y merci bonjour oui "
    "non peux peut veux alors donc ici",
    "it": "il lo la i gli le l un uno una di da in con su per tra fra e è ed o ma anche non che chi cosa "
    "come più molto sono sei siamo siete hanno ho hai ha mi ti si ci vi ne del della dei delle dello "
    "degli al alla ai alle nel nella nei sul sulla questo questa quello quella io tu lui lei noi voi loro "
    "mio mia tuo tua suo sua perché quando dove ciao grazie sì bene essere fare posso puoi può voglio "
    "tutto tutti ancora già qui ora poi sempre",
    "pt": "o a os as um uma uns umas e ou mas de do da dos das em no na nos nas ao aos à às com por para "
    "pelo pela sem sobre até é são está estão estou sou foi era ser fazer tem tenho posso pode quero "
    "preciso que não se me te eu você vocês ele ela eles elas nós meu minha seu sua isso isto esse essa "
    "este esta como mais muito também já quando onde porque obrigado obrigada olá sim bem tudo nada algo",
    "nl": "de het een en of maar van in is dat die niet op te zijn voor met als er om aan ook bij nog ik "
    "je jij hij zij wij we ze u mijn jouw uw ons onze hun wat wie waar waarom hoe wanneer dit deze naar "
    "uit dan kan kunnen wil wordt worden heb hebben heeft was waren geen al door over zo veel heel hallo "
    "dank bedankt ja nee graag alsjeblieft mij",
    "tr": "bir ve veya bu şu o da de için ile ne mi mı mu mü ben sen biz siz onlar var yok çok daha gibi "
    "ama ancak değil olarak olan ki en her şey bana sana beni seni benim senin onun nasıl neden nerede "
    "zaman kadar sonra önce şimdi evet hayır merhaba teşekkür lütfen iyi bunu şunu tüm bütün",
    "id": "yang dan di ke dari ini itu dengan untuk tidak ada saya aku kamu anda dia kami kita mereka "
    "akan sudah belum bisa dapat juga atau tetapi tapi karena jika kalau apa siapa bagaimana mengapa "
    "kenapa kapan sangat lebih pada oleh dalam seperti harus ingin mau terima kasih halo bukan telah "
    "adalah saja hanya semua",
    "vi": "và của là có không được cho một những các trong với người này đã để khi từ tôi bạn anh chị em "
    "họ chúng ta mình thì sẽ đang như nhưng cũng rất làm gì nào sao đâu vì nếu hay hoặc ra vào lên xin "
    "chào cảm ơn",
    "tl": "ang ng mga sa na ay at ko mo ka ako ikaw siya kami tayo sila kayo niya nila namin natin ito "
    "iyan iyon hindi oo po opo ba din rin lang lamang para may mayroon wala kung pero dahil nang kay si "
    "ni sino ano paano bakit saan kailan salamat kumusta gusto kailangan naman talaga",
}
LATIN_LANGUAGES: tuple[str, ...] = tuple(_WORDS)
_WORD_LANGUAGES: dict[str, tuple[int, ...]] = {}
for _index, _language in enumerate(LATIN_LANGUAGES):
    for _word in _WORDS[_language].split():
        _WORD_LANGUAGES[_word] = (*_WORD_LANGUAGES.get(_word, ()), _index)

# Letters that belong to few of the languages above: (language indexes, weight per occurrence).
_HINTS: dict[str, tuple[tuple[int, ...], float]] = {}
for _letters, _languages, _weight in (
    ("ßä", ("de",), 1.0), ("öü", ("de", "tr"), 0.5), ("ñ¿¡", ("es",), 1.0), ("áíóú", ("es", "pt"), 0.25),
    ("œë", ("fr",), 1.0), ("îûÿ", ("fr",), 0.5), ("ç", ("fr", "pt", "tr"), 0.3), ("èù", ("fr", "it"), 0.5),
    ("ìò", ("it",), 1.0), ("àâêô", ("fr", "pt", "it", "vi"), 0.2), ("ãõ", ("pt", "vi"), 0.7),
    ("ışğİ", ("tr",), 1.0), ("ơưđăĐƠƯĂ", ("vi",), 1.0),
):
    for _letter in _letters:
        _HINTS[_letter] = (tuple(LATIN_LANGUAGES.index(code) for code in _languages), _weight)
_VI = LATIN_LANGUAGES.index("vi")
_VIETNAMESE_TONED = (0x1EA0, 0x1EFA)  # Latin Extended Additional: ạ ả ấ ầ ... ỹ, used by Vietnamese only
# Tokens. ASCII: punctuation and digits become spaces, then ``str.split`` (C loops; ``translate`` has an ASCII fast
# path). Other text: ``translate`` falls back to a per-character lookup there, so a letter-run pattern is faster.
_LETTER_RUN = re.compile(r"[^\W\d_]+")
_SEPARATORS = str.maketrans(dict.fromkeys(string.punctuation + string.digits + "¿¡«»‘’‚“”„‹›–—…·。，、！？：；", " "))
_SCRIPT_CACHE: dict[str, str | None] = {}  # character -> script, filled as characters are met
_SCRIPT_CACHE_LIMIT = 50_000  # bounded memory: past this, characters are classified without caching


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """A detected language, how sure the detector is (0..1) and the script that decided it."""

    language: str
    confidence: float
    script: str | None


def detect_language(text: str) -> str:
    """ISO 639-1 code of ``text``'s language (``"en"``, ``"zh"``, ...), or ``"und"`` when unsure."""
    if isinstance(text, str) and len(text) <= _CACHE_MAX_LEN:
        return _detect_cached(text)
    return guess_language(text).language


def _detect(text: str) -> str:
    return guess_language(text).language


# The chain detects each message's language when it arrives, and the local backend asks again for the texts it
# routes: a small cache answers the second time. Long texts are not kept (each would pin its whole length).
_CACHE_MAX_LEN = 2000
_detect_cached = lru_cache(maxsize=1024)(_detect)


def guess_language(text: str) -> LanguageGuess:
    """Detect ``text``'s language with a confidence; see the module docstring for how."""
    if not isinstance(text, str):
        raise InputError(f"language detection needs a str, got {type(text).__name__}")
    sample = _sample(text)
    if sample.isascii():
        # Fast path (most traffic): only Latin letters are possible and no hint letters exist.
        return _latin(sample, None)
    counts = Counter(sample)
    scripts: Counter[str] = Counter()
    for char, n in counts.items():
        script = _SCRIPT_CACHE.get(char, "")
        if script == "":
            script = _script(char)
            if len(_SCRIPT_CACHE) < _SCRIPT_CACHE_LIMIT:
                _SCRIPT_CACHE[char] = script
        if script is not None:
            scripts[script] += n
    if not scripts:
        return LanguageGuess(UNDETERMINED, 0.0, None)
    weighted = Counter(scripts)
    for script in ("Han", "Kana", "Hangul"):
        if script in weighted:
            weighted[script] *= _IDEOGRAPHIC_WEIGHT
    if "Kana" in weighted and "Han" in weighted:
        # Japanese mixes kanji and kana; Chinese has at most a stray kana (a quoted name, ー).
        group = "Kana" if scripts["Kana"] * 10 >= scripts["Kana"] + scripts["Han"] else "Han"
        weighted[group] = weighted.pop("Kana") + weighted.pop("Han")
    total = sum(weighted.values())
    top, top_n = weighted.most_common(1)[0]
    share = top_n / total
    if share <= 0.5:  # no script has a majority of the letters
        return LanguageGuess(UNDETERMINED, share, None)
    if top == "Latin":
        return _latin(sample, counts)
    if top_n < _MIN_SCRIPT_WEIGHT:  # "你" or "ok" in another script: too little to go on
        return LanguageGuess(UNDETERMINED, round(share, 3), top)
    return LanguageGuess(_script_language(top, counts), round(share, 3), top)


def _script(char: str) -> str | None:
    code = ord(char)
    index = bisect_right(_BLOCK_STARTS, code) - 1
    if index < 0:
        return None
    start, end, script = _BLOCKS[index]
    return script if code < end else None


def _script_language(script: str, counts: Counter[str]) -> str:
    if script == "Kana":
        return "ja"
    if script == "Han":
        return "zh"
    if script == "Cyrillic":
        if any(c in counts for c in _SERBIAN_LETTERS):
            return "sr"
        return "uk" if any(c in counts for c in _UKRAINIAN_LETTERS) else "ru"
    if script == "Arabic":
        if any(c in counts for c in _URDU_LETTERS):
            return "ur"
        return "fa" if any(c in counts for c in _PERSIAN_LETTERS) else "ar"
    return _SCRIPT_LANGUAGE.get(script, UNDETERMINED)


def _latin(sample: str, counts: Counter[str] | None) -> LanguageGuess:
    scores = [0.0] * len(LATIN_LANGUAGES)
    lowered = sample.lower()
    tokens = lowered.translate(_SEPARATORS).split() if counts is None else _LETTER_RUN.findall(lowered)
    lookup = _WORD_LANGUAGES.get
    for token in tokens:
        hit = lookup(token)
        if hit is not None:
            for index in hit:
                scores[index] += 1.0
    if counts is not None:  # non-ASCII Latin: letters that only a few languages use
        toned = 0
        for char, n in counts.items():
            hint = _HINTS.get(char)
            if hint is not None:
                indexes, weight = hint
                for index in indexes:
                    scores[index] += weight * min(n, 5)
            elif _VIETNAMESE_TONED[0] <= ord(char) < _VIETNAMESE_TONED[1]:
                toned += n
        scores[_VI] += min(toned, 20)
    ordered = sorted(scores, reverse=True)
    best_score, second_score = ordered[0], ordered[1]
    confidence = round((best_score - second_score) / best_score, 3) if best_score else 0.0
    if best_score < MIN_SCORE or best_score - second_score < MIN_MARGIN:
        return LanguageGuess(UNDETERMINED, confidence, "Latin")
    if len(tokens) >= 8 and best_score < MIN_COVERAGE * len(tokens):
        return LanguageGuess(UNDETERMINED, confidence, "Latin")
    return LanguageGuess(LATIN_LANGUAGES[scores.index(best_score)], confidence, "Latin")


def _sample(text: str) -> str:
    """The part of ``text`` the detector reads: all of it, or a prefix plus spread windows (bounded work)."""
    if len(text) <= MAX_SAMPLE_CHARS:
        return text
    parts = [text[:_PREFIX_CHARS]]
    rest = len(text) - _PREFIX_CHARS - _WINDOW_CHARS
    for i in range(1, _WINDOWS + 1):
        start = _PREFIX_CHARS + rest * i // _WINDOWS
        parts.append(text[start : start + _WINDOW_CHARS])
    return " ".join(parts)
