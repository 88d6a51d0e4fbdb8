"""Payment card numbers for the offline PII recognizers: Luhn checksum, issuer prefix and length.

Cards are cut out of chains of digit groups on group boundaries, so a trailing CVV, expiry or a second card does
not hide one. Short Maestro numbers and Luhn-valid numbers of unknown issuers count only next to a card word.
Part of ``find_pii`` (``pii_recognizers``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator

from modchain.backends.local.pii_common import LD, A, PiiMatch, ascii_context_words, context_near

__all__ = ["find_card", "issued_card_number", "luhn_ok"]


# --- Payment cards ------------------------------------------------------------------------------
# A chain of digit groups joined by single spaces or hyphens. A card is found inside it, starting and
# ending on group boundaries: a CVV, an expiry or a second card may follow in the same chain
# ("5500 0055 5555 5559 99", "4111 1111 1111 1111 5500 0000 0000 0004"). Separators make the split
# unambiguous, so the regex is linear; ``find_card`` tries a bounded number of cuts per group.
_CARD_CHAIN = re.compile(LD + r"\d*(?:[ -]\d+)*", A)
_CARD_GROUP = re.compile(r"\d+", A)
# What may not follow a number (as R): a word, "-", a decimal part. A comma then 4+ digits is not a
# thousands separator or a decimal but a list ("4242424242424242,5105105105105100").
_GLUED_AFTER = re.compile(r"[\w-]|\.\d|,\d{1,3}(?!\d)", A)
_CARD_CTX = ascii_context_words(r"card|credit|debit|visa|master ?card|amex|american express|discover|jcb|diners|maestro"
                r"|unionpay|cc\b|ccn|cvv|payment|pan\b")
_CARD_WORD = ascii_context_words(r"card|credit|debit|visa|master ?card|amex|maestro|cc\b|ccn\b")  # for unknown issuers
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


def luhn_ok(d: str) -> bool:
    # Every second digit from the right is doubled (digit sum of 2*d, by table); str methods keep it fast.
    return (sum(map(int, d[::-1][::2])) + sum(map(int, d[::-1][1::2].translate(_LUHN_DOUBLE)))) % 10 == 0


def _issued(d: str, issuers: tuple[tuple[int, int, int, Collection[int]], ...]) -> bool:
    return any(lo <= int(d[:n]) <= hi and len(d) in ok for lo, hi, n, ok in issuers)


def issued_card_number(d: str) -> bool:
    """Whether the digits ``d`` are a Luhn-valid number in a card issuer's range and length (a card alone)."""
    return 13 <= len(d) <= 19 and luhn_ok(d) and _issued(d, _ISSUERS)


def _card_score(text: str, start: int, end: int, d: str, whole: bool) -> tuple[float, str] | None:
    if not (12 + (not whole) <= len(d) <= 19 and luhn_ok(d)):
        return None
    if len(d) >= 13 and _issued(d, _ISSUERS):
        return (0.98 if context_near(_CARD_CTX, text, start, end) else 0.88), "card_luhn"
    if whole and "1" <= d[0] <= "6" and context_near(_CARD_WORD, text, start, end, before=30, after=0):
        # Issuer tables go stale (and miss regional schemes); a Luhn-valid number that the text calls
        # a card, in the ranges ISO/IEC 7812 gives card issuers (major industry 1-6), still is one.
        # Without the card word, 1 digit run in 10 would pass. Only for a whole chain of groups: cut out
        # of a longer one ("4526 0181 5908" of a mistyped "4526 0181 5908 3013"), it is too weak.
        return (0.9 if _issued(d, _WEAK_ISSUERS) else 0.7), "card_luhn_context"
    return None


def find_card(text: str) -> Iterator[PiiMatch]:
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


