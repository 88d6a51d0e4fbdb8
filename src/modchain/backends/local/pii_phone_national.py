"""National phone numbers written without "+" or "00" ("020 7946 0958", "030 12345678", "06 12 34 56 78",
"91 123 45 67", "98765 43210"), validated by libphonenumber for a region chosen from the context.

A national number means nothing without its country: "612 34 56 78" is a Spanish mobile, "98765 43210" an
Indian one, and both are also just digits. So a candidate counts only if libphonenumber says it is a valid
number of a region, and which regions are tried depends on what the text says:

* hints near the number (300 characters each side): country and city names in English and in the country's
  languages ("Madrid", "Deutschland", "Mumbai"), the top-level domains of nearby addresses (``.co.uk``,
  ``.de``), and, when ``modchain.core.language.detect_language`` is available, the text's language
  (``de`` -> DE, AT, CH); a number valid in a hinted region counts alone (0.85);
* next to a phone word ("call", "Handy", "llámame", "portable", ...), every region of a bounded list
  (``REGIONS``) is tried and the first that accepts the number wins (0.93);
* with neither, a number written with the trunk prefix 0 and two or more separators ("020 7946 0958",
  "06 12 34 56 78") counts if valid in one of ``REGIONS`` (0.8). Bare digit runs, numbers with one separator
  ("030 12345678") and numbers without a trunk 0 are never reported on their shape alone.

Look-alikes stay out: dates (also followed by a time), times and opening hours, IP addresses, ISBNs, SSN shapes,
amounts next to a currency, the tail of an international number, and numbers named as something else (order,
invoice, customer, booking, ... numbers, also in German, French, Spanish, Italian and Dutch); an invalid number
is not reported (a number next to a phone word still is, by the shape rules of ``pii_phone``). The whole chain
of digit groups is judged, never a piece of it: cutting chains found "numbers" inside card numbers and ISBNs.

Cost: one bounded pattern finds candidates; libphonenumber runs only for candidates that pass the cheap
checks, at most ``_BUDGET_BASE + len(text) // _BUDGET_PER`` times per text (a digit soup of a megabyte does not
run it a million times); reading a candidate's context counts against the same budget. Past the budget,
trunk-prefixed numbers with two separators fall back to the shape score the shape rules gave them before
(0.6). phonenumbers is imported on first use; validity is not cached (a cache would keep people's numbers).
"""

from __future__ import annotations

import importlib
import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from functools import lru_cache

from modchain.backends.local.pii_common import A, PiiMatch, context_near
from modchain.backends.local.pii_phone import INTL_BEFORE, NOT_PHONE, PHONE_CONTEXT, named_other, other_id
from modchain.backends.local.pii_spelled import trie_alternation
from modchain.core.language import detect_language

__all__ = ["REGIONS", "find_national_phone"]

#: Regions tried when no hint names one, most often written in national format first.
REGIONS = ("GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "IE", "PT", "PL", "SE", "DK", "NO", "IN", "AU",
           "NZ", "JP", "BR", "MX", "ZA")
_NANP = frozenset({"US", "CA"})
_TRUNK_OPTIONAL = frozenset({"IN"})  # mobiles are written without the trunk 0 there

# Country, nationality and city names, lower case -> region. A hint only chooses where to look: the number
# must still be valid there.
_PLACES = {
    "GB": "uk|u.k.|united kingdom|britain|british|england|scotland|wales|london|manchester|birmingham|glasgow"
          "|edinburgh|leeds|bristol|liverpool|cardiff|belfast",
    "DE": "germany|deutschland|berlin|münchen|munich|hamburg|köln|cologne|frankfurt|stuttgart|düsseldorf|leipzig",
    "FR": "france|paris|lyon|marseille|toulouse|bordeaux|lille|nantes|strasbourg",
    "ES": "spain|españa|espana|madrid|barcelona|valencia|sevilla|seville|bilbao|málaga|malaga|zaragoza",
    "IT": "italy|italia|roma|rome|milano|milan|napoli|naples|torino|turin|firenze|florence|bologna",
    "NL": "netherlands|holland|nederland|amsterdam|rotterdam|utrecht|eindhoven",
    "BE": "belgium|belgique|belgië|belgie|brussels|bruxelles|brussel|antwerp|antwerpen|gent|liège",
    "CH": "switzerland|schweiz|suisse|svizzera|zürich|zurich|geneva|genève|geneve|basel|bern|lausanne",
    "AT": "austria|österreich|osterreich|wien|vienna|salzburg|graz|innsbruck",
    "IE": "ireland|éire|dublin|cork|galway",
    "PT": "portugal|lisboa|lisbon|porto",
    "PL": "poland|polska|warszawa|warsaw|kraków|krakow|wrocław|gdańsk",
    "SE": "sweden|sverige|stockholm|göteborg|gothenburg|malmö",
    "DK": "denmark|danmark|copenhagen|københavn|aarhus",
    "NO": "norway|norge|oslo|bergen",
    "IN": "india|bharat|mumbai|delhi|bangalore|bengaluru|chennai|hyderabad|kolkata|pune|ahmedabad|jaipur",
    "AU": "australia|sydney|melbourne|brisbane|perth|adelaide|canberra",
    "NZ": "new zealand|auckland|wellington|christchurch",
    "JP": "japan|tokyo|osaka|kyoto|yokohama",
    "BR": "brazil|brasil|são paulo|sao paulo|rio de janeiro",
    "MX": "mexico|méxico|guadalajara|monterrey",
    "ZA": "south africa|johannesburg|cape town|durban|pretoria",
}
_PLACE_REGION = {place: region for region, places in _PLACES.items() for place in places.split("|")}
# Run on lower-cased text (``re.IGNORECASE`` is several times slower with this many words).
_PLACE = re.compile(r"\b(" + trie_alternation(_PLACE_REGION) + r")\b")
_PLACE_ANY_CASE = re.compile(_PLACE.pattern, re.IGNORECASE)
_CHUNK = 1 << 16
_TLD_REGION = {"uk": "GB", "de": "DE", "fr": "FR", "es": "ES", "it": "IT", "nl": "NL", "be": "BE", "ch": "CH",
               "at": "AT", "ie": "IE", "pt": "PT", "pl": "PL", "se": "SE", "dk": "DK", "no": "NO", "in": "IN",
               "au": "AU", "nz": "NZ", "jp": "JP", "br": "BR", "mx": "MX", "za": "ZA"}
_TLD = re.compile(r"\.(?<=[a-z0-9-]\.)(?:co\.|com\.|org\.|ac\.)?(" + "|".join(_TLD_REGION) + r")(?![\w.-]|\.\w)",
                  re.IGNORECASE)
_LANGUAGE_REGIONS = {"de": ("DE", "AT", "CH"), "fr": ("FR", "BE", "CH"), "es": ("ES", "MX"), "it": ("IT", "CH"),
                     "nl": ("NL", "BE"), "pt": ("PT", "BR"), "pl": ("PL",), "hi": ("IN",), "ja": ("JP",)}
_HINT_WINDOW = 300

# Phone words in the languages of REGIONS, besides the English (and few others) of ``pii_phone``; each also
# hints at its language's regions ("llámame" -> ES, MX), a cheap language signal right next to the number.
_PHONE_WORDS_BY_LANGUAGE = {
    "de": r"handy\b|handynummer|telefon|rufnummer|festnetz|mobilnummer|anruf|ruf\b|ruf (?:mich|uns)|erreichbar|b[üu]ro\b"
          r"|(?:mein|meine) (?:\w+ )?nummer",
    "fr": r"t[ée]l[ée]phone|portable|appel|appelle|joindre|fixe\b|bureau\b|(?:mon|ma) (?:\w+ )?num[ée]ro",
    "es": r"tel[ée]fono|m[óo]vil\b|ll[áa]m|llamar|tfno|tlf\b|oficina\b|mi (?:\w+ )?n[uú]mero",
    "it": r"cellulare|chiam|numero di telefono|ufficio\b|(?:il mio|mio) (?:\w+ )?numero",
    "nl": r"mobiel|bel (?:me|mij|ons)|bellen|telefoon|kantoor\b|mijn (?:\w+ )?nummer",
    "pt": r"telem[óo]vel|ligue|celular",
    "pl": r"zadzwo[ńn]|telefonu?\b|kom[óo]rk",
    "xx": r"whatsapp|cell\b|ring\b|mobil\b",  # shared by several languages: no hint
}
# These run on a lower-cased window around the candidate (case-insensitive matching costs several times more).
_PHONE_WORDS = re.compile(r"(?<!\w)(?:" + "|".join(f"(?P<{lang}>{words})" for lang, words in _PHONE_WORDS_BY_LANGUAGE.items())
                          + ")")
# A number named as something else, in the languages of REGIONS (the English words are ``pii_phone``'s).
_NAMED_OTHER = re.compile(
    r"(?:\b(?:bestell|kunden|rechnungs|auftrags|artikel|vertrags|versicherungs|konto|vorgangs|sendungs|buchungs"
    r"|referenz|mitglieds|steuer|kassen|akten)(?:nummer|nr)\b\.?|\b(?:rechnung|bestellung|auftrag|commande|facture"
    r"|r[ée]f[ée]rence|dossier|contrat|pedido|factura|referencia|expediente|contrato|ordine|fattura|riferimento"
    r"|pratica|bestelling|factuur|klantnummer|ordernummer|referentie|isbn|siret|siren|iban|ean|gtin)\b"
    r"(?:\W{0,3}(?:n[°ºo]\.?|nr\.?|no\.?|num\.?|n[uú]mero|num[ée]ro|nummer|number))?)\W{0,4}"
    r"(?:(?:is|ist|est|es|è|è il|is het)\W{0,3})?\Z")
_CURRENCY_BEFORE = re.compile(r"(?:[€$£¥₹]|\b(?:eur|usd|gbp|chf|inr|rs|sek|nok|dkk|pln|mxn|brl))\W{0,2}\Z")
_CURRENCY_AFTER = re.compile(r"\A\W{0,2}(?:[€$£¥₹%]|(?:eur|euros?|usd|dollars?|gbp|pounds?|chf|francs?|inr"
                             r"|rupees?|sek|kr|z[łl]|pesos?|reais)\b)")
# A date (day or year first), maybe followed by a time; a time range; a 13-digit ISBN.
_DATE_START = re.compile(r"(?:\d{1,2}([./-])\d{1,2}\1(?:19|20)\d\d|(?:19|20)\d\d([./-])\d{1,2}\2\d{1,2})(?!\d)")
_TIME_RANGE = re.compile(r"(?:[01]?\d|2[0-3])[.:h][0-5]\d(?:[ -]{1,3}(?:[01]?\d|2[0-3])[.:h][0-5]\d)?")
_ISBN = re.compile(r"97[89]\d{10}")
_SSN_SHAPE = re.compile(r"\d{3}([ .-])\d{2}\1\d{4}")
# INTL_BEFORE (pii_phone): the tail of an international number ("+44 7700 900456", "+41 (0)96 471 07 95") is
# judged whole elsewhere.

# Candidates: an optional "(0xx)" area code, then digit groups joined by single separators; 7-13 digits are
# checked below. Every repetition starts with a separator: one way to match, linear.
# (Written with the character class first: ``re`` then skips to the positions that can start a match.)
_CANDIDATE = re.compile(r"[\d(](?<![\w.+-][\d(])(?:(?<=\()\d{1,5}\) ?\d{1,12}|(?<=\d)\d{0,12})(?:[ .-]\d{1,12}){0,6}"
                        r"(?!\w|-\d|[.,:]\d)", A)
_GROUP = re.compile(r"\d+")
# A number the NANP rules of ``pii_phone`` accept ("415 555 2671"): judged there, not here. "347 123 4567" (an
# exchange cannot start with 1) is an Italian mobile, not a US number.
_NANP_SHAPE = re.compile(r"(?:\([2-9]\d\d\)|[2-9]\d\d)[ .-]?[2-9]\d\d[ .-]?\d{4}")
_TEN_DIGITS_US_STYLE = re.compile(r"(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}")
_BUDGET_BASE, _BUDGET_PER = 64, 256  # libphonenumber calls per text: 64, plus one per 256 characters


@lru_cache(maxsize=1)
def _phonenumbers() -> object:
    return importlib.import_module("phonenumbers")


@lru_cache(maxsize=1)
def _region_lengths() -> dict[str, tuple[frozenset[int], bool]]:
    """Per region: the national significant number lengths it allows, and whether its trunk prefix is 0."""
    metadata = _phonenumbers().PhoneMetadata  # type: ignore[attr-defined]
    return {region: (frozenset(meta.general_desc.possible_length), meta.national_prefix == "0")
            for region in REGIONS if (meta := metadata.metadata_for_region(region)) is not None}


def _valid(digits: str, region: str) -> bool:  # not cached: a cache would keep people's numbers in memory
    pn = _phonenumbers()
    try:
        number = pn.parse(digits, region)  # type: ignore[attr-defined]
    except pn.NumberParseException:  # type: ignore[attr-defined]
        return False
    return (pn.region_code_for_number(number) == region  # type: ignore[attr-defined]
            and pn.is_valid_number(number))  # type: ignore[attr-defined]


def _possible(digits: str, region: str) -> bool:
    """A cheap check before libphonenumber: where the trunk prefix is 0, a number written in national format
    starts with it (Indian mobiles aside: "98765 43210"), and the rest must have one of the region's lengths.
    (libphonenumber alone would take "3 645 000", a German town's population, as a valid local number.)"""
    known = _region_lengths().get(region)
    if known is None:
        return False
    lengths, trunk_zero = known
    if trunk_zero:
        if digits[0] == "0":
            return len(digits) - 1 in lengths
        return region in _TRUNK_OPTIONAL and len(digits) in lengths
    return len(digits) in lengths


def _language_regions(text: str) -> tuple[str, ...]:
    """The regions of the text's language (none for English, an undetermined or an unlisted language)."""
    return _LANGUAGE_REGIONS.get(detect_language(text), ())


def _place_hints(text: str) -> list[tuple[int, str]]:
    """(position, region) of each place name, read from lower-cased chunks (no lower-cased copy of a long text)."""
    found: list[tuple[int, str]] = []
    for offset in range(0, len(text), _CHUNK):
        chunk = text[offset : offset + _CHUNK + 24]  # 24: a name across the chunk edge is still seen
        lowered = chunk.lower()
        matches = _PLACE.finditer(lowered) if len(lowered) == len(chunk) else _PLACE_ANY_CASE.finditer(chunk)
        found += [(offset + m.start(), region) for m in matches
                  if (region := _PLACE_REGION.get(m.group(1).lower()))
                  if not found or offset + m.start() > found[-1][0]]
    return found


class _Context:
    """What one text says about regions (read once, on first need) and its libphonenumber budget."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.budget = _BUDGET_BASE + len(text) // _BUDGET_PER
        self._hints: tuple[list[int], list[str]] | None = None
        self._language: tuple[str, ...] | None = None

    def regions_near(self, start: int, end: int) -> list[str]:
        """Regions named within ``_HINT_WINDOW`` characters of the span, else those of the text's language."""
        if self._hints is None:
            found = _place_hints(self.text)
            if "." in self.text:
                found += [(m.start(), region) for m in _TLD.finditer(self.text)
                          if (region := _TLD_REGION.get(m.group(1).lower()))]
                found.sort()
            self._hints = ([pos for pos, _ in found], [region for _, region in found])
        positions, regions = self._hints
        near = list(dict.fromkeys(regions[bisect_left(positions, start - _HINT_WINDOW):
                                          bisect_left(positions, end + _HINT_WINDOW)]))
        if not near:
            if self._language is None:
                self._language = _language_regions(self.text)
            near = list(self._language)
        return near

    def valid_region(self, digits: str, regions: Iterable[str]) -> str | None:
        for region in regions:
            if region in _NANP or not _possible(digits, region):
                continue
            if self.budget <= 0:
                raise _OverBudget
            self.budget -= 1
            if _valid(digits, region):
                return region
        return None


class _OverBudget(Exception):
    """The text's libphonenumber budget is spent: fall back to the shape score."""


def _excluded(value: str, digits: str) -> bool:
    """Shapes that are something else, judged on the candidate alone (cheap: no context read yet)."""
    return (not 7 <= len(digits) <= 13 or digits.startswith("00") or _ISBN.fullmatch(digits) is not None
            or ("." in value and (" " in value or "-" in value))  # "02.2023 10.30": phones use one kind
            or NOT_PHONE.fullmatch(value) is not None or _DATE_START.match(value) is not None
            or _TIME_RANGE.fullmatch(value) is not None)


def _named_otherwise(text: str, start: int, end: int, before: str, after: str) -> bool:
    """Context that makes the number something else: the tail of an international number, a number named as an
    order, invoice, ... (English: ``pii_phone``), an amount of money. ``before`` / ``after``: the lower-cased
    40 characters before and 20 after the candidate."""
    return (INTL_BEFORE.search(text, max(0, start - 8), start) is not None
            or _NAMED_OTHER.search(before) is not None or named_other(text, start)
            or _CURRENCY_BEFORE.search(before[-6:]) is not None or _CURRENCY_AFTER.match(after) is not None)


def find_national_phone(text: str) -> Iterator[PiiMatch]:
    context: _Context | None = None
    for m in _CANDIDATE.finditer(text):
        value = m.group()
        if len(value) < 7 or value.startswith("00") or _NANP_SHAPE.fullmatch(value):
            continue  # too short for a phone; international ("pii_phone"); US-shaped (the NANP rules judge it)
        context = context or _Context(text)
        found = _judge(text, m.start(), value, context)  # the whole chain only: cutting it finds numbers in cards
        if found is not None:
            yield found


def _judge(text: str, start: int, value: str, context: _Context) -> PiiMatch | None:
    end = start + len(value)
    digits = "".join(_GROUP.findall(value))
    if _excluded(value, digits):
        return None
    if context.budget <= 0:  # past the budget only the shape counts, as it did before libphonenumber
        separators = sum(not c.isdigit() for c in value.replace(") ", ")"))
        if digits[0] == "0" and separators >= 2 and not named_other(text, start) and not other_id(text, start):
            return PiiMatch("PHONE", start, end, 0.6, "phone_national")
        return None
    context.budget -= 1  # reading the context costs about as much as one libphonenumber call
    before, after = text[max(0, start - 40) : start].lower(), text[end : end + 20].lower()
    if _named_otherwise(text, start, end, before, after):
        return None
    separators = sum(not c.isdigit() for c in value.replace(") ", ")"))
    trunk = digits[0] == "0"
    local_word = _PHONE_WORDS.search(before) or _PHONE_WORDS.search(after)
    word = local_word is not None or context_near(PHONE_CONTEXT, text, start, end, 40, 20)
    us_style = _TEN_DIGITS_US_STYLE.fullmatch(value) is not None
    if (_SSN_SHAPE.fullmatch(value) and not word) or not (word or separators):
        return None  # "078 05 1121" is an SSN's shape; a bare digit run needs a phone word
    if other_id(text, start):
        return None
    try:
        if word and not us_style and (separators or trunk):
            # A phone word: every region may be tried, its language's first ("llámame" -> ES, MX). A bare digit
            # run needs the trunk 0 too ("1234567890 is not a phone number").
            first = _LANGUAGE_REGIONS.get(local_word.lastgroup or "", ()) if local_word is not None else ()
            if context.valid_region(digits, dict.fromkeys((*first, *REGIONS))):
                return PiiMatch("PHONE", start, end, 0.93, "phone_national_region")
            return None
        if trunk and separators >= 2 and not us_style and context.valid_region(digits, REGIONS):
            return PiiMatch("PHONE", start, end, 0.8, "phone_national_region")  # "020 7946 0958" on its own
        # Otherwise only a region the text names counts ("Estoy en Madrid, 91 123 45 67"); for "347 123 4567"
        # (US-shaped, not a valid US number) even next to a phone word.
        hinted = context.regions_near(start, end)
        if local_word is not None:
            hinted = [*_LANGUAGE_REGIONS.get(local_word.lastgroup or "", ()), *hinted]
        if hinted and context.valid_region(digits, dict.fromkeys(hinted)):
            return PiiMatch("PHONE", start, end, 0.93 if word else 0.85, "phone_national_region")
    except _OverBudget:
        if trunk and separators >= 2 and not word:
            return PiiMatch("PHONE", start, end, 0.6, "phone_national")  # the shape score it had before
    return None
