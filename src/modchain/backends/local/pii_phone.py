"""Phone numbers for the offline PII recognizers, by shape and context: NANP rules for US numbers, "+" or "00"
international numbers, national numbers with a trunk 0 next to a phone word, and other digit groups next to a
phone word. National numbers without a phone word are judged by libphonenumber (``pii_phone_national``).

Also what the other number recognizers share about context: ``named_other`` (a number named as an order,
invoice, account, ... or the tail of an IBAN-like chain is not personal data of another kind), and the
international candidates that ``pii_international`` hands to libphonenumber. Part of ``find_pii``
(``pii_recognizers``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from modchain.backends.local.pii_common import AI, LD, A, L, PiiMatch, ascii_context_words, context_near

__all__ = ["INTL_BEFORE", "NOT_PHONE", "PHONE_CONTEXT", "find_phone", "intl_phone_candidates", "named_other", "other_id"]


# --- Phone numbers ------------------------------------------------------------------------------
# Phones end at a word boundary, but a "-Office" or "-fax" label may follow; an extension
# ("x204", "ext. 42") is part of the number.
_PR = r"(?!\w|-\d|[.,:]\d)"
_EXT = r"(?:\s?(?:x|ext\.?|extension)\s?\d{1,6}(?!\w))?"
# US / NANP, optionally as "+1", "1" or "001" (the international call prefix) then the number.
_NANP = re.compile(L + r"(?:\+?1[ .-]?|001[ .-]?)?(\(\d{3}\)|\d{3})([ .-]?)(\d{3})[ .-]?(\d{4})" + _EXT + _PR,
                   AI)
# International: "+" (or "00") and a country code, then digit groups joined by single separators
# (one optional "(0)"-style group); 7-15 digits in all, per E.164.
_INTL = re.compile(r"(?:\+(?<![\w+]\+)|0(?<![\w+]0)0(?=[1-9]))[1-9]\d{0,14}"
                   r"(?:[ .-]?\(\d{1,4}\)[ .-]?\d{1,14})?(?:[ .-]\d{1,14}){0,6}" + _PR, A)
INTL_BEFORE = re.compile(r"(?:\+|\b00)\d{1,4}[ .-]?\Z")
# National numbers written with the trunk prefix 0, as most of the world outside North America writes
# them: "020 7946 0958", "06 12 34 56 78", "(02) 9876 5432", "0221/1234567", "03-1234-5678".
_TRUNK = re.compile(r"(?:\((?<![\w.+-]\()0[1-9]\d{0,3}\)|0(?<![\w.+-]0)[1-9]\d{0,4})"
                    r"(?:(?:[ ./-]|(?<=\)) ?)\d{2,8}){1,4}" + _PR, A)
# Any other grouped digits ("612 345 678", "(11) 98765-4321", "467 3395"): a phone only next to a
# phone word, since the shape alone is as often an amount, a code or an ID.
_GROUPED = re.compile(r"(?:\((?<![\w.+-]\()\d{1,4}\) ?|" + LD + r"\d{0,4}[ .-])(?:\d{2,8}[ .-]){0,3}\d{2,8}"
                      + _PR, A)
_NANP_SHAPE = re.compile(r"(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]?\d{4}")  # judged by the NANP rules alone
# Shapes that are something else: dates (also followed by a time), SSNs, ZIP+4 codes, IPv4 addresses.
_NOT_PHONE = re.compile(r"(?:\d{4}([-./])\d{1,2}\1\d{1,2}|\d{1,2}([-./ ])\d{1,2}\2(?:\d{4}|\d{2}))(?:[ T]\d{1,2})?"
                        r"|\d{3}-\d{2}-\d{4}|\d{5}-\d{4}|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
                        # a date with the year first, then anything (a time): "1996 09 11 18 17"
                        r"|(?:19|20)\d\d([-./ ])(?:0?[1-9]|1[0-2])\3(?:0?[1-9]|[12]\d|3[01])(?:\D.*)?"
                        # opening hours written as a range of 24-hour times: "0900-1700"
                        r"|(?:[01]\d|2[0-3])[0-5]\d ?- ?(?:[01]\d|2[0-3])[0-5]\d")
_PHONE_CTX = ascii_context_words(r"phone|tel\b|tel[eé]f|t[eé]l\b|call(?:ing|ed)?\b|cell|mobile?|m[oó]vil|celular|portable|handy\b"
                 r"|fax|contact|text me|sms|whats ?app|reach|dial|ring\b|voicemail|hotline|landline|answer|messages?\b"
                 r"|(?:my|your|his|her|our|their) (?:\w+ )?number")
# Business-card labels count only right next to the number: "Office: 416 60 039", "781 1704 office".
_LABEL_BEFORE = re.compile(r"\b(?:office|desk|home|work|direct)\W{0,3}\Z", AI)
_LABEL_AFTER = re.compile(r"\A[ -]?\(?(?:office|desk|home|work|direct)\b", AI)
# "order 0412 345 678", "meeting ID 876 5432 1098": a number named as something else is not a phone.
_ID_BEFORE = re.compile(r"\b(?:order|invoice|receipt|booking|ref|reference|tracking|account|acct|serial|sku|part|lot|case"
                        r"|ticket|isbn"
                        r"|meeting|passcode|pin|policy|claim|patent|zip|postal|postcode|id)\b\W{0,3}"
                        r"(?:(?:no|nr|num|number|id|code)\b\W{0,3})?(?:(?:is|was)\b\W{0,3})?\Z", AI)
# The same words followed by a number sign ("order #", "invoice no."): said of a formatted NANP-shaped number too.
_ID_NUMBER_BEFORE = re.compile(r"\b(?:order|invoice|receipt|booking|ref|reference|tracking|account|acct|serial|sku|part"
                               r"|lot|case|ticket|policy|claim|confirmation)\s?(?:#|no\.|nr\.|number:?)\s?\Z", AI)
# A number named as a national identifier (whose own recognizer may have rejected its checksum: "My NHS
# number is 314 388 2489" with a wrong check digit) or following a code that mixes letters and digits
# (a UPS tracking number "1Z 999 AA1 01 2345 6784") is not a phone either.
_OTHER_ID_BEFORE = re.compile(r"(?:\b(?:nhs|sin|nas|aadhaa?r|uid|bsn|burgerservicenummer|pesel|personnummer|utr|steuer-?id"
                              r"|idnr|nir|s[ée]cu|dni|nie|nif|iban|ohip|phn|passport|licen[cs]e)\b\W{0,3}"
                              r"(?:(?:no|nr|num|number|nummer|numero|code)\b\W{0,3})?(?:(?:is|was|ist|est|es|är)\b\W{0,3})?"
                              r"|\b(?=[a-z]{0,6}\d)(?=\d{0,6}[a-z])[a-z0-9]{2,8} )\Z", re.IGNORECASE)
# The tail of an IBAN-like group chain ("DE89 3704 0044 0532 0130 01" with a bad checksum) is not a phone.
_IBAN_BEFORE = re.compile(r"\b[a-z]{2}\d{2}(?: [a-z0-9]{4})* \Z", AI)


def _phone_context(text: str, start: int, end: int, before: int = 40, after: int = 20) -> bool:
    return (context_near(_PHONE_CTX, text, start, end, before, after)
            or _LABEL_BEFORE.search(text, max(0, start - 12), start) is not None
            or _LABEL_AFTER.search(text[end : end + 12]) is not None)


def other_id(text: str, start: int) -> bool:
    return _OTHER_ID_BEFORE.search(text, max(0, start - 40), start) is not None


_other_id = other_id
NOT_PHONE, PHONE_CONTEXT = _NOT_PHONE, _PHONE_CTX  # for ``pii_phone_national``


def named_other(text: str, start: int) -> bool:
    return (_ID_BEFORE.search(text, max(0, start - 30), start) is not None
            or _IBAN_BEFORE.search(text, max(0, start - 40), start) is not None)


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def find_phone(text: str) -> Iterator[PiiMatch]:
    for m in _NANP.finditer(text):
        area, exch = m.group(1).strip("()"), m.group(3)
        if area[0] < "2" or exch[0] < "2" or area[1:] == "11":  # NANP: NXX-NXX, no N11 area codes
            continue
        if INTL_BEFORE.search(text, max(0, m.start() - 6), m.start()):
            continue  # the tail of "+44 415 555 2671" is not a US number
        if _other_id(text, m.start()):
            continue
        ctx, g = _phone_context(text, m.start(), m.end()), m.group()
        if g.isdigit():  # a bare digit run is as likely an ID as a phone
            score = 0.8 if ctx and not named_other(text, m.start()) else 0.4
        elif not ctx and _ID_NUMBER_BEFORE.search(text, max(0, m.start() - 30), m.start()):
            continue  # "Your order #252-9243909 has shipped": named as something else, no phone word near
        elif g.startswith(("+1", "1", "001")):
            score = 0.97 if ctx else 0.85
        else:
            score = 0.95 if ctx else 0.75
        yield PiiMatch("PHONE", m.start(), m.end(), score, "phone_nanp")
    if "+" in text or "00" in text:
        for m in _INTL.finditer(text):
            body = m.group().lstrip("+")
            n = _digits(body) - (2 if m.group().startswith("00") else 0)
            if 7 <= n <= 15 and not _NOT_PHONE.fullmatch(body) and not _other_id(text, m.start()):
                ctx = _phone_context(text, m.start(), m.end())
                if m.group().startswith("+"):
                    yield PiiMatch("PHONE", m.start(), m.end(), 0.9 if ctx else 0.7, "phone_intl")
                elif (" " in body or "-" in body or ctx) and not named_other(text, m.start()):
                    # "0044 117 496 0312"; a bare run of digits that starts with 00 is an ID
                    yield PiiMatch("PHONE", m.start(), m.end(), 0.85 if ctx else 0.6, "phone_intl")
    for m in _TRUNK.finditer(text):
        g = m.group()
        # Without a phone word a national number counts only if libphonenumber finds it valid in some region
        # (``pii_phone_national``); next to one, its shape is enough (a mistyped number is still a number).
        if (9 <= _digits(g) <= 11 and not _NOT_PHONE.fullmatch(g) and not named_other(text, m.start())
                and not _other_id(text, m.start()) and _phone_context(text, m.start(), m.end())):
            yield PiiMatch("PHONE", m.start(), m.end(), 0.9, "phone_national")
    for m in _GROUPED.finditer(text):
        g = m.group()
        if (7 <= _digits(g) <= 12 and not _NOT_PHONE.fullmatch(g) and not _NANP_SHAPE.fullmatch(g)
                and _phone_context(text, m.start(), m.end(), before=30, after=12)
                and not named_other(text, m.start()) and not _other_id(text, m.start())):
            yield PiiMatch("PHONE", m.start(), m.end(), 0.7, "phone_grouped_context")


def intl_phone_candidates(text: str) -> Iterator[tuple[int, int, str]]:
    """Spans shaped like international numbers ("+" or "00", then 7-15 digits), for libphonenumber to judge
    (``pii_international``)."""
    for m in _INTL.finditer(text):
        body = m.group().lstrip("+")
        n = _digits(body) - (2 if m.group().startswith("00") else 0)
        if 7 <= n <= 15 and not _NOT_PHONE.fullmatch(body):
            yield m.start(), m.end(), m.group()

