"""International identifiers for the offline PII recognizers, validated by python-stdnum and phonenumbers.

A pattern proposes a candidate; a well-kept library decides whether it is one: python-stdnum's
``is_valid`` (checksum, format, embedded dates and country codes) for national identifiers, IBANs and
BICs, phonenumbers (Google's libphonenumber metadata for every region) for international phone
numbers. Hand-written rules remain only where no library has one (UK National Insurance prefixes,
Ontario health numbers, the shapes of passport and driving-licence numbers).

Labels: Amazon Comprehend's names where it has one (UK_NATIONAL_INSURANCE_NUMBER, IN_AADHAAR, ...).
Comprehend has no EU national IDs; those follow its pattern, ``<ISO country>_<the identifier's English
name>``: DE_TAX_IDENTIFICATION_NUMBER (Steuer-IdNr), ES_NATIONAL_IDENTITY_NUMBER (DNI and NIE),
FR_SOCIAL_SECURITY_NUMBER (NIR / INSEE), IT_FISCAL_CODE (codice fiscale), NL_CITIZEN_SERVICE_NUMBER (BSN),
PL_NATIONAL_IDENTIFICATION_NUMBER (PESEL), SE_PERSONAL_IDENTITY_NUMBER (personnummer).

Scores: a checksum that passes 1 random number in 10 or 11 proves little, so digit-only identifiers
(NHS, UTR, SIN, DE IdNr, BSN, PESEL, Aadhaar without its 4-4-4 grouping) score below the default
threshold (0.5) unless a context word in the identifier's own languages is near; shapes that are rare
outside the identifier (PAN, codice fiscale, NINO, IBAN, NIR, DNI) count alone. PASSPORT_NUMBER and
DRIVER_ID have no checksum at all: they are only looked for right after a context word.

Linear time: every pattern is bounded (no unbounded repetition), context checks and the token search
after a passport / licence word look at a bounded window. python-stdnum and phonenumbers are imported
on first use, not when modchain is imported.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache

from modchain.backends.local.pii_cards import issued_card_number
from modchain.backends.local.pii_common import AI, LD, A, PiiMatch, R, context_near, context_words

__all__ = ["IBAN_LENGTHS", "INTERNATIONAL_FINDERS", "INTERNATIONAL_LABELS", "luhn_ok"]


@cache
def _stdnum(module: str) -> Callable[[str], bool]:
    return importlib.import_module(f"stdnum.{module}").is_valid  # type: ignore[no-any-return]


def luhn_ok(digits: str) -> bool:
    return _stdnum("luhn")(digits)


def _compact(value: str) -> str:
    return re.sub(r"[ .\-/_]", "", value).upper()


# Finders that only report next to a context word first check, once per text, that one of these stems of
# their context words occurs anywhere in it (substring tests on the lower-cased text: much cheaper than a
# regex alternation, and most texts have none). Every alternative of those finders' context patterns
# contains one of the stems; a stem that is also part of other words ("dl", "pass") only makes the gate
# pass more often.
_GATE_STEMS = (
    "nhs", "health", "chi ", "utr", "unique tax", "taxpayer", "tax reference", "self", "hmrc", "sin", "social insurance",
    "insurance number", "nas", "assurance", "ohip", "phn", "ramq", "carte", "care", "msp", "steuer",
    "identifikationsnummer", "idnr", "tin", "tax id", "tax identification", "bsn", "burger", "sofi", "citizen service",
    "pesel", "swift", "bic", "bank", "wire", "iban", "code banque", "pass", "pasaporte", "paspoort", "paszport", "driv",
    "licen", "dl", "hrerschein", "permis", "carnet", "patente", "rijbewijs",
)
# Substring tests on the lower-cased text, one bounded chunk at a time: ~10 us for a chat message, where one
# case-insensitive regex alternation of the stems took ~250 us (re cannot skip ahead through an IGNORECASE
# alternation). Chunks bound the copy: lowering a non-ASCII str makes CPython allocate 12 bytes per character for
# the case mapping, and the whole of a 2 MB text at once set the PII filter's peak memory.
_GATE_CHUNK = 1 << 15
_GATE_OVERLAP = max(map(len, _GATE_STEMS)) - 1  # a stem across a chunk boundary is still seen
_gate_cache: tuple[str, bool] = ("", False)


def _has_stem(text: str) -> bool:
    for start in range(0, len(text), _GATE_CHUNK):
        low = text[start : start + _GATE_CHUNK + _GATE_OVERLAP].lower()
        for stem in _GATE_STEMS:
            if stem in low:
                return True
    return False


def _context_somewhere(text: str) -> bool:
    global _gate_cache
    cached = _gate_cache
    if cached[0] is text:  # the gated finders of one find_pii call see the same str object
        return cached[1]
    found = _has_stem(text)
    _gate_cache = (text, found)
    return found


def forget_context_gate() -> None:
    """Drop the cached gate verdict (and with it the reference to the last text, which may be megabytes)."""
    global _gate_cache
    _gate_cache = ("", False)


@dataclass(frozen=True)
class _Id:
    """One identifier: a candidate pattern, a validator of the compact value, context words and scores."""

    label: str
    name: str
    pattern: re.Pattern[str]
    valid: Callable[[str], bool]
    context: re.Pattern[str]
    alone: float  # validated, no context word near (below 0.5: not reported without one)
    with_context: float
    before: int = 50
    after: int = 20
    alone_if: Callable[[str], bool] | None = None  # the raw match must pass this to score ``alone``

    def find(self, text: str) -> Iterator[PiiMatch]:
        if self.alone < 0.5 and not _context_somewhere(text):
            return
        for m in self.pattern.finditer(text):
            compact = _compact(m.group())
            if not self.valid(compact):
                continue
            if context_near(self.context, text, m.start(), m.end(), self.before, self.after):
                score = self.with_context
            elif self.alone < 0.5 or (self.alone_if is not None and not self.alone_if(m.group())):
                # Not reported at all: a weak candidate would still hide an overlapping one (a bare nine
                # digits as a SIN over the same digits as an ABA routing number).
                continue
            else:
                score = self.alone
            yield PiiMatch(self.label, m.start(), m.end(), score, self.name)


def _nino_ok(v: str) -> bool:
    # HMRC: no D, F, I, Q, U, V in the prefix, no O second, and some prefixes never issued.
    return v[:2] not in {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}


def _sin_ok(v: str) -> bool:
    # stdnum rejects a leading 0 (never issued); documentation examples such as "046 454 286" use it,
    # and people copy them, so with a context word a Luhn-valid 0 number also counts (see ``alone``).
    return _stdnum("ca.sin")(v) or (len(v) == 9 and v[0] == "0" and luhn_ok(v))


def _ca_health_ok(v: str) -> bool:
    if v[:4].isalpha():  # Quebec RAMQ: 4 letters, birth year, month (+50 for women), day, 2 digits
        month = int(v[6:8])
        return 1 <= month % 50 <= 12 and 1 <= int(v[8:10]) <= 31
    digits = v[:10]
    return luhn_ok(digits) or _stdnum("ca.bc_phn")(digits)  # Ontario OHIP (Luhn), British Columbia PHN


def _grouped(value: str) -> bool:
    return any(c in " -" for c in value)


def _dashed(value: str) -> bool:
    return "-" in value or "+" in value


def _ids() -> tuple[_Id, ...]:
    return (
        _Id("UK_NATIONAL_INSURANCE_NUMBER", "uk_nino",
            re.compile(r"(?<![\w-])[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z](?:[ -]?\d{2}){3}[ -]?[A-D](?![\w-])", AI),
            _nino_ok, context_words(r"national insurance|ni ?(?:no|number|#)\b|nino\b|n\.i\. ?n"), 0.85, 0.98),
        _Id("UK_NATIONAL_HEALTH_SERVICE_NUMBER", "uk_nhs_stdnum",
            re.compile(LD + r"\d{2}[ -]?\d{3}[ -]?\d{4}" + R, A), _stdnum("gb.nhs"),
            context_words(r"nhs|national health|health service|chi (?:no|number)"), 0.4, 0.98),
        _Id("UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER", "uk_utr_stdnum",
            re.compile(LD + r"\d{4} ?\d{5}" + R, A), _stdnum("gb.utr"),
            context_words(r"utr\b|unique tax|taxpayer reference|tax reference|self[- ]assessment|hmrc"), 0.35, 0.97),
        _Id("IN_AADHAAR", "in_aadhaar_stdnum",
            # not a 4-4-4 run inside a longer run of digit groups (the tail of an IBAN, a card number)
            re.compile(r"[2-9](?<![\w.+-][2-9])(?<!\d[ -][2-9])\d{3}([ -]?)\d{4}\1\d{4}(?![ -]\d)" + R, A),
            _stdnum("in_.aadhaar"),
            context_words(r"aadhaa?r|uidai|uid\b|आधार|enrol?ment"), 0.85, 0.98, alone_if=_grouped),
        _Id("IN_PERMANENT_ACCOUNT_NUMBER", "in_pan_stdnum",
            re.compile(r"(?<![\w-])[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z](?![\w-])", A), _stdnum("in_.pan"),
            context_words(r"pan\b|permanent account|income tax|itr\b"), 0.88, 0.98),
        _Id("CA_SOCIAL_INSURANCE_NUMBER", "ca_sin_stdnum",
            re.compile(LD + r"\d{2}([ -]?)\d{3}\1\d{3}" + R, A), _sin_ok,
            context_words(r"sin\b|social insurance|insurance number|nas\b|assurance sociale"), 0.45, 0.98),
        _Id("CA_HEALTH_NUMBER", "ca_health",
            re.compile(r"(?:" + LD + r"\d{3}[ -]?\d{3}[ -]?\d{3}(?:[ -]?[A-Z]{2})?"
                       r"|(?<![\w-])[A-Z]{4} ?\d{4} ?\d{4})(?![\w-]|[.,]\d)", AI), _ca_health_ok,
            context_words(r"health (?:card|number|insurance|plan)|ohip|phn\b|personal health|ramq|carte soleil"
                          r"|assurance[- ]maladie|care ?card|carte sant[ée]|msp\b|healthcare"), 0.3, 0.95),
        _Id("DE_TAX_IDENTIFICATION_NUMBER", "de_idnr_stdnum",
            re.compile(LD + r"\d( ?)\d{3}\1\d{3}\1\d{3}" + R, A), _stdnum("de.idnr"),
            context_words(r"steuer[- ]?id|steueridentifikationsnummer|identifikationsnummer|idnr|tin\b|tax id"
                          r"|tax identification|steuernummer|steuerliche"), 0.4, 0.97),
        _Id("FR_SOCIAL_SECURITY_NUMBER", "fr_nir_stdnum",
            re.compile(r"[12](?<![\w.+-][12])( ?)\d{2}\1\d{2}\1(?:\d{2}|2[AB])\1\d{3}\1\d{3}(?:\1\d{2})" + R, AI),
            _stdnum("fr.nir"),
            context_words(r"s[ée]curit[ée] sociale|s[ée]cu\b|nir\b|insee|carte vitale|social security"), 0.88, 0.98),
        _Id("ES_NATIONAL_IDENTITY_NUMBER", "es_dni_stdnum",
            re.compile(r"(?:" + LD + r"\d{7}|(?<![\w-])[XYZ][ -]?\d{7})[ -]?[A-Z](?![\w-])", AI),
            lambda v: _stdnum("es.dni")(v) or _stdnum("es.nie")(v),
            context_words(r"dni\b|nie\b|nif\b|documento nacional|identidad|n[uú]mero de identificaci[oó]n"), 0.85, 0.98),
        _Id("IT_FISCAL_CODE", "it_codicefiscale_stdnum",
            re.compile(r"(?<![\w-])[A-Z]{6}[0-9LMNP-V]{2}[A-EHLMPR-T][0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{3}[A-Z](?![\w-])", AI),
            _stdnum("it.codicefiscale"), context_words(r"codice fiscale|cf\b|fiscal code|tessera sanitaria"), 0.95, 0.99),
        _Id("NL_CITIZEN_SERVICE_NUMBER", "nl_bsn_stdnum",
            re.compile(LD + r"(?:\d{8}|\d{3}\.\d{2}\.\d{3}|\d{2}[ -]\d{3}[ -]\d{3})" + R, A),
            _stdnum("nl.bsn"),
            context_words(r"bsn\b|burgerservicenummer|sofi-?nummer|citizen service|burger ?service"), 0.4, 0.97),
        _Id("PL_NATIONAL_IDENTIFICATION_NUMBER", "pl_pesel_stdnum",
            re.compile(LD + r"\d{10}" + R, A), _stdnum("pl.pesel"), context_words(r"pesel"), 0.45, 0.98),
        _Id("SE_PERSONAL_IDENTITY_NUMBER", "se_personnummer_stdnum",
            re.compile(LD + r"\d{5}(?:\d{2})?[-+ ]?\d{4}" + R, A), _stdnum("se.personnummer"),
            context_words(r"personnummer|personal identity|personal number|personnr|pnr\b|samordningsnummer"),
            0.8, 0.98, alone_if=_dashed),
    )


# --- IBAN: any country, any separators -----------------------------------------------------------
# Two letters, two check digits, then 10-30 characters, each optionally after one separator. Bounded and
# deterministic (each repetition consumes exactly one alphanumeric), so linear.
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ./_\-]?[A-Z0-9]){10,30}", AI)
_IBAN_CTX = context_words(r"iban|account|bank|transfer|swift|bic\b|wire|sepa|konto|compte|cuenta|conto|rekening"
                          r"|virement|[üu]berweisung|transferencia|bonifico")


# IBAN length per country (ISO 13616 registry): it says where an IBAN written in groups ends, before
# python-stdnum validates the value (mod 97 and the country's BBAN structure).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    # Joined the registry since 2021.
    "BI": 27, "DJ": 27, "FK": 18, "HN": 28, "LY": 25, "MN": 20, "NI": 28, "OM": 23, "RU": 33, "SD": 18,
    "SO": 23, "YE": 30,
}


def _iban_end(candidate: str) -> int:
    """Where the IBAN at the start of ``candidate`` ends (0: none): after as many characters as its
    country's IBAN has (stdnum knows the structure), on a separator or the end of the candidate."""
    want = IBAN_LENGTHS.get(candidate[:2].upper())
    if want is None:
        return 0
    seen = 0
    for i, c in enumerate(candidate):
        seen += c.isalnum()
        if seen == want:
            return i + 1 if i + 1 == len(candidate) or not candidate[i + 1].isalnum() else 0
    return 0


def _iban_valid(value: str) -> bool:
    from stdnum import iban

    return iban.is_valid(value, check_country=False)


def _find_iban(text: str) -> Iterator[PiiMatch]:
    for m in _IBAN.finditer(text):
        end = _iban_end(m.group())
        if not end:
            continue
        value = m.group()[:end]
        seps = {c for c in value if not c.isalnum()}
        if len(seps) > 1:
            continue  # "DE89 3704.0044-0532": one kind of separator per IBAN, else it is a run of codes
        # check_country=False: the BBAN structure and mod 97 are checked, not stdnum's national bank lists
        # (a Belgian IBAN of a bank missing from its copy of the list is still an IBAN).
        if _iban_valid(_compact(value)):
            ctx = context_near(_IBAN_CTX, text, m.start(), m.start() + end)
            yield PiiMatch("INTERNATIONAL_BANK_ACCOUNT_NUMBER", m.start(), m.start() + end,
                           0.99 if ctx else 0.97, "iban_stdnum")


# --- SWIFT / BIC ---------------------------------------------------------------------------------
_BIC = re.compile(r"(?<![\w-])[A-Z]{4}[A-Z]{2}[A-Z2-9][A-NP-Z0-9](?:[A-Z0-9]{3})?(?![\w-])", A)
_BIC_CTX = context_words(r"swift|bic\b|bank identifier|bank code|wire|iban|bankleitzahl|code banque")


def _find_swift(text: str) -> Iterator[PiiMatch]:
    if not _context_somewhere(text):
        return
    for m in _BIC.finditer(text):
        if _stdnum("bic")(m.group()) and context_near(_BIC_CTX, text, m.start(), m.end(), 60, 30):
            yield PiiMatch("SWIFT_CODE", m.start(), m.end(), 0.96, "swift_bic_stdnum")


# --- Passport and driving-licence numbers: only right after a context word ---------------------------
_PASSPORT_CTX = context_words(r"passports?|passeport|reisepass|pasaporte|passaporto|paspoort|paszport"
                              r"|pass(?:nummer|nr)|passport (?:no|number|#)")
_PASSPORT = re.compile(r"(?<![\w-])(?:[A-Z]{1,2}\d{6,8}|\d{8,9}|\d{2}[A-Z]{2}\d{5}"
                       r"|[CFGHJKLMNPRTVWXYZ][CFGHJKLMNPRTVWXYZ0-9]{8})(?![\w-])", A)
_DRIVER_CTX = context_words(r"driv(?:er'?s?|ing|ers) ?licen[cs]e|licen[cs]e (?:no|number|#)|dl ?(?:no|number|#)"
                            r"|dl\b|f[üu]hrerschein|permis de conduire|carnet de conducir|licencia de conducir"
                            r"|patente di guida|rijbewijs|driver id")
_DRIVER = re.compile(r"(?<![\w-])[A-Z0-9](?:[A-Z0-9]|[ -](?=[A-Z0-9])){4,21}(?![\w-])", A)
_DATE_SHAPE = re.compile(r"(?:19|20)\d\d[- ]?(?:0[1-9]|1[0-2])[- ]?(?:0[1-9]|[12]\d|3[01])"
                         r"|(?:0?[1-9]|[12]\d|3[01])[- ](?:0?[1-9]|1[0-2])[- ](?:19|20)\d\d")
_WINDOW = 40  # characters after a context word in which the number must start


def _after_context(text: str, ctx: re.Pattern[str], token: re.Pattern[str]) -> Iterator[tuple[int, int, str]]:
    searched = 0
    for hit in ctx.finditer(text):
        start = max(hit.end(), searched)
        m = token.search(text, start, min(len(text), hit.end() + _WINDOW + 24))
        if m and m.start() <= hit.end() + _WINDOW:
            searched = m.end()
            yield m.start(), m.end(), m.group()


def _find_passport(text: str) -> Iterator[PiiMatch]:
    if not _context_somewhere(text):
        return
    for start, end, value in _after_context(text, _PASSPORT_CTX, _PASSPORT):
        if sum(c.isdigit() for c in value) >= 3 and not _DATE_SHAPE.fullmatch(value):
            yield PiiMatch("PASSPORT_NUMBER", start, end, 0.9, "passport_context")


def _find_driver(text: str) -> Iterator[PiiMatch]:
    if not _context_somewhere(text):
        return
    for start, _end, value in _after_context(text, _DRIVER_CTX, _DRIVER):
        groups = value.split(" ")
        while groups and not any(c.isdigit() for c in groups[-1]):
            groups.pop()  # "D1234567 CA": a trailing word is not part of the number
        value = " ".join(groups)
        compact = _compact(value)
        if compact.isdigit() and issued_card_number(compact):
            continue  # "DL 4111 1111 1111 1111": a card number after the word, which the card recognizer reports
        if 6 <= len(compact) <= 20 and sum(c.isdigit() for c in compact) >= 5 and not _DATE_SHAPE.fullmatch(value):
            yield PiiMatch("DRIVER_ID", start, start + len(value), 0.9, "driver_id_context")


# --- Phones through libphonenumber ------------------------------------------------------------------
def _find_phone_validated(text: str) -> Iterator[PiiMatch]:
    """International numbers ("+44 20 7946 0958", "0049 30 901820") that libphonenumber says are valid for
    their country: scored above the shape-only recognizers, so the number's exact extent wins."""
    if "+" not in text and "00" not in text:
        return
    import phonenumbers

    from modchain.backends.local.pii_phone import intl_phone_candidates

    for start, end, value in intl_phone_candidates(text):
        number = value if value.startswith("+") else "+" + value[2:]
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            yield PiiMatch("PHONE", start, end, 0.93, "phone_libphonenumber")


@lru_cache(maxsize=1)
def _id_specs() -> dict[str, _Id]:
    return {spec.label: spec for spec in _ids()}  # built on first use: the validators import stdnum


def _id_finder(label: str) -> Callable[[str], Iterator[PiiMatch]]:
    def find(text: str) -> Iterator[PiiMatch]:
        return _id_specs()[label].find(text)
    return find


_ID_LABELS = ("UK_NATIONAL_INSURANCE_NUMBER UK_NATIONAL_HEALTH_SERVICE_NUMBER UK_UNIQUE_TAXPAYER_REFERENCE_NUMBER "
              "IN_AADHAAR IN_PERMANENT_ACCOUNT_NUMBER CA_SOCIAL_INSURANCE_NUMBER CA_HEALTH_NUMBER "
              "DE_TAX_IDENTIFICATION_NUMBER FR_SOCIAL_SECURITY_NUMBER ES_NATIONAL_IDENTITY_NUMBER IT_FISCAL_CODE "
              "NL_CITIZEN_SERVICE_NUMBER PL_NATIONAL_IDENTIFICATION_NUMBER SE_PERSONAL_IDENTITY_NUMBER").split()

#: (labels, finder) pairs, in the shape of ``pii_recognizers``' own table.
INTERNATIONAL_FINDERS: tuple[tuple[frozenset[str], Callable[[str], Iterator[PiiMatch]]], ...] = (
    *((frozenset({label}), _id_finder(label)) for label in _ID_LABELS),
    (frozenset({"INTERNATIONAL_BANK_ACCOUNT_NUMBER"}), _find_iban),
    (frozenset({"SWIFT_CODE"}), _find_swift),
    (frozenset({"PASSPORT_NUMBER"}), _find_passport),
    (frozenset({"DRIVER_ID"}), _find_driver),
    (frozenset({"PHONE"}), _find_phone_validated),
)
INTERNATIONAL_LABELS: frozenset[str] = frozenset().union(*(labels for labels, _ in INTERNATIONAL_FINDERS))
