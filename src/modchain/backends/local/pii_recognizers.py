"""Offline PII recognizers: precompiled ``re`` patterns plus real validation.

``find_pii(text)`` returns non-overlapping :class:`PiiMatch` spans labelled with Amazon Comprehend's
PII entity names. A pattern only proposes a candidate; where a rule exists the candidate must pass
it: SSA structure (SSN), Luhn + issuer prefix and length (cards), ABA checksum (routing), NANP rules
(US phones), ``ipaddress`` (IPv6). International identifiers (IBAN with any separators, UK, Indian,
Canadian and EU national IDs, SWIFT, passport and licence numbers, libphonenumber-validated phones) live in
``pii_international`` (python-stdnum / phonenumbers); the text is first normalized with every character
mapped back (``pii_normalize``: separators such as "/" or an en dash, obfuscated and internationalised
emails); ``find_pii(..., recognizers=...)`` also runs custom recognizers (``pii_custom``). Scores are hand-set:
validated next to a context word ("ssn", "routing", "iban") ~0.95-0.99, validated alone
~0.85-0.9, shapes that mean little alone lower or context-only (< 0.5): bare 9/10-digit runs,
short Maestro numbers, Luhn-valid numbers of unknown issuers, digit groups that are phones only
next to a phone word. Phones also cover national formats with a trunk 0 ("020 7946 0958",
"06 12 34 56 78"), "00" international prefixes and extensions; URLs also bare domains with a
common TLD ("example.com/path"). Cards are cut out of chains of digit groups on group boundaries,
so a trailing CVV, expiry or a second card does not hide one; SSNs typed as 3-6 or 5-4 groups count,
like bare nine digits, only next to an SSN word.

Time is linear in the input: every pattern is free of ambiguous repetition (no catastrophic
backtracking in ``re``), context checks look at a bounded window, and overlap resolution marks covered
characters instead of comparing each candidate with every kept span. ``benchmarks/linear_time.py``
measures it. (A linear-time engine such as RE2 would not help: it has no lookaround or backreferences,
which these patterns use for token boundaries, and it is a compiled extension.)

Limits: the recognizers in this module are US-centric (SSN, NANP, ABA) with English context words (plus a
few European phone words); see docs/international_pii.md for the others. No names, addresses or dates
(those need a model). A checksum makes a number possible, not real: test
card numbers pass. Unsupported labels in ``labels`` are ignored, so a chain configured with
Comprehend's full label list still runs. Offsets index the original ``str`` (``text[m.start:m.end]``
is the match). Measured with ``modchain eval pii`` on the files in ``benchmarks/data``.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

from modchain.backends.local.pii_common import AI, LD, A, L, PiiMatch, R, clean_edges, context_near
from modchain.backends.local.pii_custom import PiiRecognizer, build_recognizers, run_recognizer
from modchain.backends.local.pii_international import INTERNATIONAL_FINDERS
from modchain.backends.local.pii_normalize import LINE_BREAK_BETWEEN_DIGITS, normalize_for_pii

__all__ = ["SUPPORTED_PII_LABELS", "PiiMatch", "PiiRecognizer", "find_pii"]


# Shared with the international and custom recognizers (``pii_common``); the short names are this module's.
_A, _AI, _L, _R, _LD = A, AI, L, R, LD
_ctx, _clean_edges = context_near, clean_edges


def _cw(words: str) -> re.Pattern[str]:  # context words, each starting on a word boundary
    return re.compile(r"\b(?:" + words + ")", _AI)


# --- SSN --------------------------------------------------------------------------------------
_SSN = re.compile(r"(" + _LD + r"\d{2})([- .])(\d{2})\2(\d{4})" + _R, _A)
_NINE = re.compile(_LD + r"\d{8}" + _R, _A)
# "123-456789", "12345-6789", "123 456789": nine digits in two groups, as people type them into forms.
# Also ZIP+4 codes and IDs, so like bare nine digits they count only next to an SSN word.
_SSN_SPLIT = re.compile(_LD + r"(?:\d{2}[- ]\d{6}|\d{4}[- ]\d{4})" + _R, _A)
_SSN_CTX = _cw(r"ssns?\b|social security|soc\.? ?sec|ss ?#|ss ?no\b")
_SSN_PUBLISHED = frozenset({"078051120", "219099999"})  # Woolworth wallet card, SSA pamphlet


def _ssn_ok(d: str) -> bool:
    area, group, serial = d[:3], d[3:5], d[5:]
    return (area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"
            and len(set(d)) > 1 and d not in _SSN_PUBLISHED)


def _find_ssn(text: str) -> Iterator[PiiMatch]:
    for m in _SSN.finditer(text):
        if _ssn_ok(m.group(1) + m.group(3) + m.group(4)):
            base = 0.85 if m.group(2) == "-" else 0.75  # "123 45 6789", "123.45.6789" are weaker shapes
            ctx = _ctx(_SSN_CTX, text, m.start(), m.end())
            yield PiiMatch("SSN", m.start(), m.end(), 0.97 if ctx else base, "ssn_formatted")
    for m in itertools.chain(_NINE.finditer(text), _SSN_SPLIT.finditer(text)):
        # Nine bare digits are as often an order or routing number: report only with an SSN word near,
        # and not when the number is named as something else ("... my order number is 412557890").
        d = m.group().replace("-", "").replace(" ", "")
        if _ssn_ok(d) and _ctx(_SSN_CTX, text, m.start(), m.end()) and not _named_other(text, m.start()):
            yield PiiMatch("SSN", m.start(), m.end(), 0.93 if d == m.group() else 0.9, "ssn_bare")


# --- Payment cards ------------------------------------------------------------------------------
# A chain of digit groups joined by single spaces or hyphens. A card is found inside it, starting and
# ending on group boundaries: a CVV, an expiry or a second card may follow in the same chain
# ("5500 0055 5555 5559 99", "4111 1111 1111 1111 5500 0000 0000 0004"). Separators make the split
# unambiguous, so the regex is linear; ``_find_card`` tries a bounded number of cuts per group.
_CARD_CHAIN = re.compile(_LD + r"\d*(?:[ -]\d+)*", _A)
_CARD_GROUP = re.compile(r"\d+", _A)
# What may not follow a number (as _R): a word, "-", a decimal part. A comma then 4+ digits is not a
# thousands separator or a decimal but a list ("4242424242424242,5105105105105100").
_GLUED_AFTER = re.compile(r"[\w-]|\.\d|,\d{1,3}(?!\d)", _A)
_CARD_CTX = _cw(r"card|credit|debit|visa|master ?card|amex|american express|discover|jcb|diners|maestro"
                r"|unionpay|cc\b|ccn|cvv|payment|pan\b")
_CARD_WORD = _cw(r"card|credit|debit|visa|master ?card|amex|maestro|cc\b|ccn\b")  # for unknown issuers
_R16_19, _R14_19, _R12_19 = range(16, 20), range(14, 20), range(12, 20)
_ISSUERS = (  # (first prefix, last prefix, prefix digits, allowed lengths)
    (4, 4, 1, (13, 16, 19)),  # Visa
    (51, 55, 2, (16,)), (2221, 2720, 4, (16,)),  # Mastercard
    (34, 34, 2, (15,)), (37, 37, 2, (15,)),  # American Express
    (6011, 6011, 4, _R16_19), (65, 65, 2, _R16_19), (644, 649, 3, _R16_19),  # Discover
    (3528, 3589, 4, _R16_19),  # JCB
    (300, 305, 3, _R14_19), (36, 36, 2, _R14_19), (38, 38, 2, _R14_19),  # Diners Club
    (62, 62, 2, _R16_19),  # UnionPay
    (2200, 2204, 4, _R16_19),  # Mir
    (50, 50, 2, _R16_19), (56, 69, 2, _R16_19),  # Maestro (and Dankort 5019), full-length numbers
    (1, 1, 1, (15,)),  # UATP
)
# Shapes that are cards but weak alone: short Maestro numbers (12-15 digits) and JCB's old 15-digit
# range 2131. Like a Luhn-valid number of an unknown issuer, they count only next to a card word.
_WEAK_ISSUERS = ((50, 50, 2, _R12_19), (56, 69, 2, _R12_19), (2131, 2131, 4, (15,)))  # 1800: UATP's range


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # digit sum of 2*d


_LUHN_DOUBLE = str.maketrans("0123456789", "".join(map(str, _LUHN_DOUBLED)))


def _luhn_ok(d: str) -> bool:
    # Every second digit from the right is doubled (digit sum of 2*d, by table); str methods keep it fast.
    return (sum(map(int, d[::-1][::2])) + sum(map(int, d[::-1][1::2].translate(_LUHN_DOUBLE)))) % 10 == 0


def _issued(d: str, issuers: tuple[tuple[int, int, int, Collection[int]], ...]) -> bool:
    return any(lo <= int(d[:n]) <= hi and len(d) in ok for lo, hi, n, ok in issuers)


def _card_score(text: str, start: int, end: int, d: str, whole: bool) -> tuple[float, str] | None:
    if not (12 + (not whole) <= len(d) <= 19 and _luhn_ok(d)):
        return None
    if len(d) >= 13 and _issued(d, _ISSUERS):
        return (0.98 if _ctx(_CARD_CTX, text, start, end) else 0.88), "card_luhn"
    if whole and "1" <= d[0] <= "6" and _ctx(_CARD_WORD, text, start, end, before=30, after=0):
        # Issuer tables go stale (and miss regional schemes); a Luhn-valid number that the text calls
        # a card, in the ranges ISO/IEC 7812 gives card issuers (major industry 1-6), still is one.
        # Without the card word, 1 digit run in 10 would pass. Only for a whole chain of groups: cut out
        # of a longer one ("4526 0181 5908" of a mistyped "4526 0181 5908 3013"), it is too weak.
        return (0.9 if _issued(d, _WEAK_ISSUERS) else 0.7), "card_luhn_context"
    return None


def _find_card(text: str) -> Iterator[PiiMatch]:
    for chain in _CARD_CHAIN.finditer(text):
        if chain.end() - chain.start() < 12:
            continue  # too short to hold a card: most digit runs in text (dates, amounts, IPs)
        groups = [(g.start(), g.end()) for g in _CARD_GROUP.finditer(text, chain.start(), chain.end())]
        if _GLUED_AFTER.match(text, chain.end()):
            groups.pop()  # the last group runs on into a word or a decimal: not a number of its own
        i = 0
        while i < len(groups):
            found = None
            # Cards start on a group: a lone run of 12-19 digits, or a 4-digit group then groups of 2-7.
            # The longest valid cut wins; at most 19 digits, so a handful of cuts per start.
            first = groups[i][1] - groups[i][0]
            if 12 <= first <= 19 or first == 4:
                digits, ends = first, [(i, first)]
                j = i + 1
                while first == 4 and j < len(groups) and 2 <= groups[j][1] - groups[j][0] <= 7:
                    digits += groups[j][1] - groups[j][0]
                    if digits > 19:
                        break
                    ends.append((j, digits))
                    j += 1
                for j, _digits in reversed(ends):
                    start, end = groups[i][0], groups[j][1]
                    d = text[start:end].replace(" ", "").replace("-", "")
                    scored = _card_score(text, start, end, d, i == 0 and j == len(groups) - 1)
                    if scored:
                        found = (j, PiiMatch("CREDIT_DEBIT_NUMBER", start, end, scored[0], scored[1]))
                        break
            if found:
                yield found[1]
                i = found[0] + 1
            else:
                i += 1


# --- Email and URL ------------------------------------------------------------------------------
# The lookbehind means an attempt only starts at the beginning of a token, which keeps the
# scan linear; a local part cannot start in the middle of a word.
_EMAIL = re.compile(r"(?<![\w.%+-])[a-z0-9_%+-](?:[a-z0-9._%+-]{0,62}[a-z0-9_%+-])?@"
                    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,24}|xn--[a-z0-9-]{0,58}[a-z0-9])"
                    r"(?![\w-]|\.[a-z0-9])", _AI)  # an internationalized TLD is written in punycode: "xn--p1ai"
_EMAIL_CTX = _cw(r"e-?mail|contact|reach me")
# "logo@2x.png" (image assets at 2x/3x density) has an email's shape: no TLD is a file extension.
_FILE_EXTENSIONS = frozenset("png jpg jpeg gif svg webp bmp ico tif tiff heic pdf txt csv json yaml yml xml html "
                             "htm css js ts exe dll".split())
_URL = re.compile(r"(?<![\w@/.-])(?:(?:https?|s?ftp|ftps)://|www\.)[^\s<>\"'`]+", _AI)
_URL_TRAIL = ".,;:!?'\")]}>*"
# A bare domain ("example.com", "docs.python.org/3/") counts when its TLD is one people type in prose,
# in lower case. Left out: TLDs that are also file extensions (.py, .md, .sh, .rs, .pl, .zip) or
# everyday words ("it.it", "fine.so", "me", "in", "us"), which a missing space after a full stop
# would otherwise turn into a URL.
_TLDS = ("com org net edu gov mil int info biz io co ai dev tech online site store shop blog xyz cloud news media "
         "travel museum health agency email website uk de fr nl ch se dk fi ie pt cz ru jp cn au ca br mx nz za kr "
         "tw hk sg eu tv ly gl fm ar cl gr hu ro sk si hr bg lt lv ee ua il tr ae sa vn th ph pk ng ke eg").split()
_BARE_DOMAIN = re.compile(r"(?<![\w@/.:%+&=?#~-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                          r"(?-i:" + "|".join(sorted(_TLDS, key=len, reverse=True)) + r")"
                          r"(?::\d{2,5})?(?:/[^\s<>\"'`]*)?(?![\w@(-]|\.[a-z0-9])", _AI)
_TLD_HIT = re.compile(r"\.(?:" + "|".join(sorted(_TLDS, key=len, reverse=True)) + r")(?![a-z0-9])", _A)


def _find_email(text: str) -> Iterator[PiiMatch]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        # The pattern already keeps dots off the local part's ends.
        if ".." not in m.group() and m.group().rsplit(".", 1)[1].lower() not in _FILE_EXTENSIONS:
            ctx = _ctx(_EMAIL_CTX, text, m.start(), m.end())
            yield PiiMatch("EMAIL", m.start(), m.end(), 0.99 if ctx else 0.95, "email")


def _trim_url(url: str) -> str:
    # Sentence punctuation is not part of the URL, but a ")" that closes a "(" inside it is. Counted
    # once and updated as the end moves, so a URL followed by 100,000 ")" stays linear.
    end, opened, closed = len(url), url.count("("), url.count(")")
    while end and url[end - 1] in _URL_TRAIL and not (url[end - 1] == ")" and opened >= closed):
        closed -= url[end - 1] == ")"
        opened -= url[end - 1] == "("
        end -= 1
    return url[:end]


def _find_url(text: str) -> Iterator[PiiMatch]:
    for m in _URL.finditer(text):
        url = _trim_url(m.group())
        rest = url.split("//", 1)[-1] if "//" in url[:8] else url[4:]
        # "www.example" is not an address yet: after "www." the host needs a dot of its own.
        www_host_ok = "//" in url[:8] or "." in rest.split("/", 1)[0].split(":", 1)[0].strip(".")
        if rest[:1].isalnum() and www_host_ok:
            yield PiiMatch("URL", m.start(), m.start() + len(url), 0.9, "url")
    searched = 0
    for hit in _TLD_HIT.finditer(text):  # a literal "." first: fast, and rare in text without domains
        start = hit.start()
        while start > searched and text[start - 1].isascii() and (text[start - 1].isalnum() or text[start - 1] in ".-"):
            start -= 1  # back to the start of the token
        if start < searched:
            continue
        m = _BARE_DOMAIN.match(text, start)
        if m:
            url = _trim_url(m.group())
            if "." in url:
                yield PiiMatch("URL", m.start(), m.start() + len(url), 0.75, "url_bare_domain")
        searched = max(hit.end(), m.end() if m else 0)


# --- Phone numbers ------------------------------------------------------------------------------
# Phones end at a word boundary, but a "-Office" or "-fax" label may follow; an extension
# ("x204", "ext. 42") is part of the number.
_PR = r"(?!\w|-\d|[.,:]\d)"
_EXT = r"(?:\s?(?:x|ext\.?|extension)\s?\d{1,6}(?!\w))?"
# US / NANP, optionally as "+1", "1" or "001" (the international call prefix) then the number.
_NANP = re.compile(_L + r"(?:\+?1[ .-]?|001[ .-]?)?(\(\d{3}\)|\d{3})([ .-]?)(\d{3})[ .-]?(\d{4})" + _EXT + _PR,
                   _AI)
# International: "+" (or "00") and a country code, then digit groups joined by single separators
# (one optional "(0)"-style group); 7-15 digits in all, per E.164.
_INTL = re.compile(r"(?:\+(?<![\w+]\+)|0(?<![\w+]0)0(?=[1-9]))[1-9]\d{0,14}"
                   r"(?:[ .-]?\(\d{1,4}\)[ .-]?\d{1,14})?(?:[ .-]\d{1,14}){0,6}" + _PR, _A)
_INTL_BEFORE = re.compile(r"(?:\+|\b00)\d{1,4}[ .-]?\Z")
# National numbers written with the trunk prefix 0, as most of the world outside North America writes
# them: "020 7946 0958", "06 12 34 56 78", "(02) 9876 5432", "0221/1234567", "03-1234-5678".
_TRUNK = re.compile(r"(?:\((?<![\w.+-]\()0[1-9]\d{0,3}\)|0(?<![\w.+-]0)[1-9]\d{0,4})"
                    r"(?:(?:[ ./-]|(?<=\)) ?)\d{2,8}){1,4}" + _PR, _A)
# Any other grouped digits ("612 345 678", "(11) 98765-4321", "467 3395"): a phone only next to a
# phone word, since the shape alone is as often an amount, a code or an ID.
_GROUPED = re.compile(r"(?:\((?<![\w.+-]\()\d{1,4}\) ?|" + _LD + r"\d{0,4}[ .-])(?:\d{2,8}[ .-]){0,3}\d{2,8}"
                      + _PR, _A)
_NANP_SHAPE = re.compile(r"(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]?\d{4}")  # judged by the NANP rules alone
# Shapes that are something else: dates (also followed by a time), SSNs, ZIP+4 codes, IPv4 addresses.
_NOT_PHONE = re.compile(r"(?:\d{4}([-./])\d{1,2}\1\d{1,2}|\d{1,2}([-./ ])\d{1,2}\2(?:\d{4}|\d{2}))(?:[ T]\d{1,2})?"
                        r"|\d{3}-\d{2}-\d{4}|\d{5}-\d{4}|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
                        # a date with the year first, then anything (a time): "1996 09 11 18 17"
                        r"|(?:19|20)\d\d([-./ ])(?:0?[1-9]|1[0-2])\3(?:0?[1-9]|[12]\d|3[01])(?:\D.*)?"
                        # opening hours written as a range of 24-hour times: "0900-1700"
                        r"|(?:[01]\d|2[0-3])[0-5]\d ?- ?(?:[01]\d|2[0-3])[0-5]\d")
_PHONE_CTX = _cw(r"phone|tel\b|tel[eé]f|t[eé]l\b|call(?:ing|ed)?\b|cell|mobile?|m[oó]vil|celular|portable|handy\b"
                 r"|fax|contact|text me|sms|whats ?app|reach|dial|ring\b|voicemail|hotline|landline|answer|messages?\b"
                 r"|(?:my|your|his|her|our|their) (?:\w+ )?number")
# Business-card labels count only right next to the number: "Office: 416 60 039", "781 1704 office".
_LABEL_BEFORE = re.compile(r"\b(?:office|desk|home|work|direct)\W{0,3}\Z", _AI)
_LABEL_AFTER = re.compile(r"\A[ -]?\(?(?:office|desk|home|work|direct)\b", _AI)
# "order 0412 345 678", "meeting ID 876 5432 1098": a number named as something else is not a phone.
_ID_BEFORE = re.compile(r"\b(?:order|invoice|receipt|booking|ref|reference|tracking|account|acct|serial|sku|part|lot|case"
                        r"|ticket|isbn"
                        r"|meeting|passcode|pin|policy|claim|patent|zip|postal|postcode|id)\b\W{0,3}"
                        r"(?:(?:no|nr|num|number|id|code)\b\W{0,3})?(?:(?:is|was)\b\W{0,3})?\Z", _AI)
# A number named as a national identifier (whose own recognizer may have rejected its checksum: "My NHS
# number is 314 388 2489" with a wrong check digit) or following a code that mixes letters and digits
# (a UPS tracking number "1Z 999 AA1 01 2345 6784") is not a phone either.
_OTHER_ID_BEFORE = re.compile(r"(?:\b(?:nhs|sin|nas|aadhaa?r|uid|bsn|burgerservicenummer|pesel|personnummer|utr|steuer-?id"
                              r"|idnr|nir|s[ée]cu|dni|nie|nif|iban|ohip|phn|passport|licen[cs]e)\b\W{0,3}"
                              r"(?:(?:no|nr|num|number|nummer|numero|code)\b\W{0,3})?(?:(?:is|was|ist|est|es|är)\b\W{0,3})?"
                              r"|\b(?=[a-z]{0,6}\d)(?=\d{0,6}[a-z])[a-z0-9]{2,8} )\Z", re.IGNORECASE)
# The tail of an IBAN-like group chain ("DE89 3704 0044 0532 0130 01" with a bad checksum) is not a phone.
_IBAN_BEFORE = re.compile(r"\b[a-z]{2}\d{2}(?: [a-z0-9]{4})* \Z", _AI)


def _phone_context(text: str, start: int, end: int, before: int = 40, after: int = 20) -> bool:
    return (_ctx(_PHONE_CTX, text, start, end, before, after)
            or _LABEL_BEFORE.search(text, max(0, start - 12), start) is not None
            or _LABEL_AFTER.search(text[end : end + 12]) is not None)


def _other_id(text: str, start: int) -> bool:
    return _OTHER_ID_BEFORE.search(text, max(0, start - 40), start) is not None


def _named_other(text: str, start: int) -> bool:
    return (_ID_BEFORE.search(text, max(0, start - 30), start) is not None
            or _IBAN_BEFORE.search(text, max(0, start - 40), start) is not None)


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def _find_phone(text: str) -> Iterator[PiiMatch]:
    for m in _NANP.finditer(text):
        area, exch = m.group(1).strip("()"), m.group(3)
        if area[0] < "2" or exch[0] < "2" or area[1:] == "11":  # NANP: NXX-NXX, no N11 area codes
            continue
        if _INTL_BEFORE.search(text, max(0, m.start() - 6), m.start()):
            continue  # the tail of "+44 415 555 2671" is not a US number
        if _other_id(text, m.start()):
            continue
        ctx, g = _phone_context(text, m.start(), m.end()), m.group()
        if g.isdigit():  # a bare digit run is as likely an ID as a phone
            score = 0.8 if ctx and not _named_other(text, m.start()) else 0.4
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
                elif (" " in body or "-" in body or ctx) and not _named_other(text, m.start()):
                    # "0044 117 496 0312"; a bare run of digits that starts with 00 is an ID
                    yield PiiMatch("PHONE", m.start(), m.end(), 0.85 if ctx else 0.6, "phone_intl")
    for m in _TRUNK.finditer(text):
        g = m.group()
        if (9 <= _digits(g) <= 11 and not _NOT_PHONE.fullmatch(g) and not _named_other(text, m.start())
                and not _other_id(text, m.start())):
            if _phone_context(text, m.start(), m.end()):
                score = 0.9
            else:  # "020 7946 0958" is a phone on its own; "0412 55831" could be anything
                score = 0.6 if sum(not c.isdigit() for c in g.replace(") ", ")")) >= 2 else 0.45
            yield PiiMatch("PHONE", m.start(), m.end(), score, "phone_national")
    for m in _GROUPED.finditer(text):
        g = m.group()
        if (7 <= _digits(g) <= 12 and not _NOT_PHONE.fullmatch(g) and not _NANP_SHAPE.fullmatch(g)
                and _phone_context(text, m.start(), m.end(), before=30, after=12)
                and not _named_other(text, m.start()) and not _other_id(text, m.start())):
            yield PiiMatch("PHONE", m.start(), m.end(), 0.7, "phone_grouped_context")


def intl_phone_candidates(text: str) -> Iterator[tuple[int, int, str]]:
    """Spans shaped like international numbers ("+" or "00", then 7-15 digits), for libphonenumber to judge
    (``pii_international``)."""
    for m in _INTL.finditer(text):
        body = m.group().lstrip("+")
        n = _digits(body) - (2 if m.group().startswith("00") else 0)
        if 7 <= n <= 15 and not _NOT_PHONE.fullmatch(body):
            yield m.start(), m.end(), m.group()


# --- Network identifiers ------------------------------------------------------------------------
_OCT = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"  # 0-255, no leading zeros
_IPV4 = re.compile(r"(?<![\w.])" + _OCT + r"(?:\." + _OCT + r"){3}(?!\w|\.\d)", _A)
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9a-f]{1,4})?"
                   r"(?![\w:]|\.\d)", _AI)
_IP_CTX = _cw(r"ip\b|ipv[46]|address|host|server|ping|gateway|dns|subnet|router")
# "version 1.2.3.4", "section 3.2.1.4", "chapter 12.4.1.7": dotted quads that number things.
_VERSION_BEFORE = re.compile(r"(?:\b(?:v|version|ver|release|build|section|sec|chapter|ch|clause|article|art|paragraph"
                             r"|para|step|figure|fig|table|rule|item|appendix)|§)[\s.:]*\Z", _AI)
_MAC = re.compile(r"(?<![\w:.-])(?:[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}"
                  r"|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4})(?![\w:-]|\.\w)", _AI)
_MAC_CTX = _cw(r"mac\b|hardware|ethernet|wi-?fi|bssid|nic\b|device")


def _find_ip(text: str) -> Iterator[PiiMatch]:
    for m in _IPV4.finditer(text):
        if _VERSION_BEFORE.search(text, max(0, m.start() - 14), m.start()):
            score = 0.3  # "version 1.2.3.4" is far more likely than an address
        else:
            score = 0.97 if _ctx(_IP_CTX, text, m.start(), m.end()) else 0.85
        yield PiiMatch("IP_ADDRESS", m.start(), m.end(), score, "ipv4")
    if "::" not in text and text.count(":") < 7:
        return  # every IPv6 address has either "::" or seven colons
    for m in _IPV6.finditer(text):
        try:
            ipaddress.IPv6Address(m.group())
        except ValueError:
            continue
        groups = sum(1 for g in m.group().split(":") if g) + ("." in m.group())  # embedded IPv4 = 2 groups
        if groups == 0 or not any(c.isdigit() for c in m.group()):
            continue  # "a::b", "dead::beef": C++ scopes and words far more often than addresses
        ctx = _ctx(_IP_CTX, text, m.start(), m.end())
        # Short compressed forms ("::1", "fe80::") are weak on their own.
        score = (0.97 if ctx else 0.9) if groups >= 3 else (0.85 if ctx else 0.6)
        yield PiiMatch("IP_ADDRESS", m.start(), m.end(), score, "ipv6")


def _find_mac(text: str) -> Iterator[PiiMatch]:
    for m in _MAC.finditer(text):
        ctx = _ctx(_MAC_CTX, text, m.start(), m.end())
        dotted = m.group(1) is None  # Cisco "0011.2233.4455" is also a plain 12-hex ID shape
        score = (0.9 if ctx else 0.6) if dotted else (0.97 if ctx else 0.85)
        yield PiiMatch("MAC_ADDRESS", m.start(), m.end(), score, "mac")


# --- AWS credentials ----------------------------------------------------------------------------
# AKIA: long-term keys; ASIA: temporary (STS); ABIA, ACCA and the legacy A3T prefix: other issuers.
_AWS_KEY = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])", _A)
_AWS_KEY_CTX = _cw(r"aws|access|key|credential")
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])", _A)
_SECRET_CTX = re.compile(r"secret", _AI)  # also inside aws_secret_access_key / SecretAccessKey


def _find_aws(text: str) -> Iterator[PiiMatch]:
    for m in _AWS_KEY.finditer(text):
        ctx = _ctx(_AWS_KEY_CTX, text, m.start(), m.end())
        yield PiiMatch("AWS_ACCESS_KEY", m.start(), m.end(), 0.99 if ctx else 0.95, "aws_access_key")
    if not _SECRET_CTX.search(text):
        return  # 40 base64 characters alone could be anything (a hash, a token, a path)
    for m in _AWS_SECRET.finditer(text):
        s = m.group()
        mixed = (not s.islower() and not s.isupper() and any(c.isdigit() or c in "/+" for c in s))
        if mixed and _ctx(_SECRET_CTX, text, m.start(), m.end(), before=60, after=0):
            yield PiiMatch("AWS_SECRET_KEY", m.start(), m.end(), 0.9, "aws_secret_key")


# --- Bank accounts ------------------------------------------------------------------------------
_ABA_CTX = _cw(r"routing|aba\b|rtn\b|transit")
_ABA_DASHED = re.compile(_LD + r"\d{3}-\d{4}-\d" + _R, _A)  # "0710-0001-3", the check-printing layout
_ABA_PREFIX = frozenset([*range(13), *range(21, 33), *range(61, 73), 80])  # Fed districts


def _find_aba(text: str) -> Iterator[PiiMatch]:
    for m in itertools.chain(_NINE.finditer(text), _ABA_DASHED.finditer(text)):
        d = [ord(c) - 48 for c in m.group() if c != "-"]
        aba = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5] + d[8]
        if aba % 10 == 0 and d[0] * 10 + d[1] in _ABA_PREFIX:
            # One 9-digit number in ten passes the checksum, so without a context word it is weak.
            ctx = _ctx(_ABA_CTX, text, m.start(), m.end())
            yield PiiMatch("BANK_ROUTING", m.start(), m.end(), 0.97 if ctx else 0.4, "aba_checksum")


_FINDERS: tuple[tuple[frozenset[str], Callable[[str], Iterator[PiiMatch]]], ...] = tuple(
    (frozenset(labels.split()), finder) for labels, finder in (
        ("SSN", _find_ssn), ("CREDIT_DEBIT_NUMBER", _find_card), ("EMAIL", _find_email), ("URL", _find_url),
        ("PHONE", _find_phone), ("IP_ADDRESS", _find_ip), ("MAC_ADDRESS", _find_mac),
        ("AWS_ACCESS_KEY AWS_SECRET_KEY", _find_aws), ("BANK_ROUTING", _find_aba),
    )
) + INTERNATIONAL_FINDERS
SUPPORTED_PII_LABELS: frozenset[str] = frozenset().union(*(labels for labels, _ in _FINDERS))


def find_pii(text: str, labels: Collection[str] | None = None, recognizers: Iterable[Any] = ()) -> list[PiiMatch]:
    """Validated PII spans in ``text``, non-overlapping and sorted by start.

    ``labels`` keeps only those labels (None or empty: all supported ones and every custom recognizer's);
    the others are not even searched for, so a span is never hidden by a label you did not ask for.
    ``recognizers``: custom recognizers (``pii_custom.PiiRecognizer`` objects, or ``PiiRecognizerConfig``
    / dicts in its shape), run next to the built-in ones. Where candidates overlap, the higher score wins,
    then the longer span, the earlier start, the label name. The text is normalized first (``pii_normalize``:
    separators, compatibility forms, obfuscated emails) and spans are mapped back onto ``text``.
    """
    if isinstance(labels, str):  # find_pii(t, "SSN") means one label, not the letters S, S, N
        labels = (labels,)
    wanted = SUPPORTED_PII_LABELS.intersection(labels) if labels else SUPPORTED_PII_LABELS
    custom = build_recognizers(recognizers) if recognizers else ()
    if labels:
        custom = tuple(r for r in custom if r.labels & set(labels))
    custom_wanted = frozenset(labels) if labels else frozenset().union(*(r.labels for r in custom))
    candidates = _mapped(_candidates(*normalize_for_pii(text), wanted, custom, custom_wanted))
    if LINE_BREAK_BETWEEN_DIGITS.search(text):
        # Second pass with line breaks between digits as separators, for the numbers people break over
        # lines; only what spans a break counts (the first pass saw the rest).
        joined = _candidates(*normalize_for_pii(text, join_lines=True), wanted & _LINE_BROKEN, custom, custom_wanted)
        candidates += [m for m in _mapped(joined) if any(c in _BREAKS for c in text[m.start:m.end])]
    return _resolve(candidates, len(text))


_LINE_BROKEN = frozenset({"SSN", "CREDIT_DEBIT_NUMBER", "INTERNATIONAL_BANK_ACCOUNT_NUMBER"})
_BREAKS = frozenset("\n\r\v\f\u2028\u2029")


def _mapped(found: tuple[list[PiiMatch], list[int] | None]) -> list[PiiMatch]:
    matches, origin = found
    if origin is None:
        return matches
    return [PiiMatch(m.label, origin[m.start], origin[m.end - 1] + 1, m.score, m.recognizer) for m in matches]


def _candidates(text: str, origin: list[int] | None, wanted: Collection[str], custom: tuple[Any, ...] = (),
                custom_wanted: Collection[str] = frozenset()) -> tuple[list[PiiMatch], list[int] | None]:
    """Every candidate in the (normalized) ``text``, in its coordinates; ``origin`` passes through."""
    candidates = [m for found, finder in _FINDERS if found & wanted for m in finder(text)
                  if m.label in wanted and _clean_edges(text, m.start, m.end)]
    for recognizer in custom:
        candidates += [m for m in run_recognizer(recognizer, text) if m.label in custom_wanted]
    return candidates, origin


def _resolve(candidates: list[PiiMatch], length: int) -> list[PiiMatch]:
    candidates.sort(key=lambda m: (-m.score, m.start - m.end, m.start, m.label, m.end, m.recognizer))
    # One byte per character marks what a kept span covers: a candidate is checked and marked in time
    # proportional to its own length, not to the number of spans kept so far (that was quadratic).
    covered = bytearray(length)
    kept: list[PiiMatch] = []
    for cand in candidates:
        if covered.find(1, cand.start, cand.end) == -1:
            covered[cand.start : cand.end] = b"\x01" * (cand.end - cand.start)
            kept.append(cand)
    kept.sort(key=lambda m: (m.start, m.end))
    return kept
