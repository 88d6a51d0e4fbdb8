"""US nine-digit identifiers for the offline PII recognizers: SSNs (SSA structure) and ABA routing numbers
(checksum and Federal Reserve prefix).

Both are nine digits, as are ZIP+4 codes, order numbers and IDs, so a bare run of nine digits counts only next to
a context word ("ssn", "routing"); the formatted SSN shape ("123-45-6789") counts alone. Part of ``find_pii``
(``pii_recognizers``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from modchain.backends.local.pii_common import LD, A, PiiMatch, R, ascii_context_words, context_near
from modchain.backends.local.pii_phone import named_other

__all__ = ["NINE_DIGITS", "find_bank_routing", "find_ssn"]


# --- SSN --------------------------------------------------------------------------------------
_SSN = re.compile(r"(" + LD + r"\d{2})([- .])(\d{2})\2(\d{4})" + R, A)
NINE_DIGITS = re.compile(LD + r"\d{8}" + R, A)
# "123-456789", "12345-6789", "123 456789": nine digits in two groups, as people type them into forms.
# Also ZIP+4 codes and IDs, so like bare nine digits they count only next to an SSN word.
_SSN_SPLIT = re.compile(LD + r"(?:\d{2}[- ]\d{6}|\d{4}[- ]\d{4})" + R, A)
_SSN_CTX = ascii_context_words(r"ssns?\b|social security|soc\.? ?sec|ss ?#|ss ?no\b")
_SSN_PUBLISHED = frozenset({"078051120", "219099999"})  # Woolworth wallet card, SSA pamphlet


def _ssn_ok(d: str) -> bool:
    area, group, serial = d[:3], d[3:5], d[5:]
    return (area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"
            and len(set(d)) > 1 and d not in _SSN_PUBLISHED)


def find_ssn(text: str) -> Iterator[PiiMatch]:
    for m in _SSN.finditer(text):
        if _ssn_ok(m.group(1) + m.group(3) + m.group(4)):
            base = 0.85 if m.group(2) == "-" else 0.75  # "123 45 6789", "123.45.6789" are weaker shapes
            ctx = context_near(_SSN_CTX, text, m.start(), m.end())
            yield PiiMatch("SSN", m.start(), m.end(), 0.97 if ctx else base, "ssn_formatted")
    for m in itertools.chain(NINE_DIGITS.finditer(text), _SSN_SPLIT.finditer(text)):
        # Nine bare digits are as often an order or routing number: report only with an SSN word near,
        # and not when the number is named as something else ("... my order number is 412557890").
        d = m.group().replace("-", "").replace(" ", "")
        if _ssn_ok(d) and context_near(_SSN_CTX, text, m.start(), m.end()) and not named_other(text, m.start()):
            yield PiiMatch("SSN", m.start(), m.end(), 0.93 if d == m.group() else 0.9, "ssn_bare")



# --- Bank accounts ------------------------------------------------------------------------------
_ABA_CTX = ascii_context_words(r"routing|aba\b|rtn\b|transit")
_ABA_DASHED = re.compile(LD + r"\d{3}-\d{4}-\d" + R, A)  # "0710-0001-3", the check-printing layout
_ABA_PREFIX = frozenset([*range(13), *range(21, 33), *range(61, 73), 80])  # Fed districts


def find_bank_routing(text: str) -> Iterator[PiiMatch]:
    for m in itertools.chain(NINE_DIGITS.finditer(text), _ABA_DASHED.finditer(text)):
        d = [ord(c) - 48 for c in m.group() if c != "-"]
        aba = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5] + d[8]
        if aba % 10 == 0 and d[0] * 10 + d[1] in _ABA_PREFIX:
            # One 9-digit number in ten passes the checksum, so without a context word it is weak.
            ctx = context_near(_ABA_CTX, text, m.start(), m.end())
            yield PiiMatch("BANK_ROUTING", m.start(), m.end(), 0.97 if ctx else 0.4, "aba_checksum")

