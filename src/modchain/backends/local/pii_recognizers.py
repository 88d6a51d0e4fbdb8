"""Offline PII recognizers: precompiled ``re`` patterns plus real validation.

``find_pii(text)`` returns non-overlapping :class:`PiiMatch` spans labelled with Amazon Comprehend's
PII entity names. A pattern only proposes a candidate; where a rule exists the candidate must pass
it: SSA structure (SSN), Luhn + issuer prefix and length (cards), ABA checksum (routing), NANP rules
(US phones), ``ipaddress`` (IPv6). International identifiers (IBAN with any separators, UK, Indian,
Canadian and EU national IDs, SWIFT, passport and licence numbers, libphonenumber-validated phones) live in
``pii_international`` (python-stdnum / phonenumbers); the text is first normalized with every character
mapped back (``pii_normalize``: separators such as "/" or an en dash, spelled-out digits (``pii_spelled``),
obfuscated and internationalised emails); ``find_pii(..., recognizers=...)`` also runs custom recognizers
(``pii_custom``). Scores are hand-set:
validated next to a context word ("ssn", "routing", "iban") ~0.95-0.99, validated alone
~0.85-0.9, shapes that mean little alone lower or context-only (< 0.5): bare 9/10-digit runs,
short Maestro numbers, Luhn-valid numbers of unknown issuers, digit groups that are phones only
next to a phone word. Phones also cover national formats ("020 7946 0958", "91 123 45 67"), validated by
libphonenumber for a region read from the context (``pii_phone_national``), "00" international prefixes and
extensions; URLs also bare domains with a common TLD ("example.com/path"). Cards are cut out of chains of digit groups on group boundaries,
so a trailing CVV, expiry or a second card does not hide one; SSNs typed as 3-6 or 5-4 groups count,
like bare nine digits, only next to an SSN word.

Time is linear in the input: every pattern is free of ambiguous repetition (no catastrophic
backtracking in ``re``), context checks look at a bounded window, and overlap resolution marks covered
characters instead of comparing each candidate with every kept span. ``benchmarks/linear_time.py``
measures it. (A linear-time engine such as RE2 would not help: it has no lookaround or backreferences,
which these patterns use for token boundaries, and it is a compiled extension.)

Layout: one module per family, this one runs them: ``pii_ssn_routing`` (SSN, ABA routing), ``pii_cards``,
``pii_email_url``, ``pii_phone`` and ``pii_phone_national``, ``pii_network`` (IP, MAC), ``pii_aws_keys``;
``pii_common`` holds what they share.

Limits: the built-in recognizers are US-centric (SSN, NANP, ABA) with English context words (plus a
few European phone words); see docs/international_pii.md for the others. No names, addresses or dates
(those need a model). A checksum makes a number possible, not real: test
card numbers pass. Unsupported labels in ``labels`` are ignored, so a chain configured with
Comprehend's full label list still runs. Offsets index the original ``str`` (``text[m.start:m.end]``
is the match). Measured with ``modchain eval pii`` on the files in ``benchmarks/data``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

from modchain.backends.local.pii_aws_keys import find_aws_keys
from modchain.backends.local.pii_cards import find_card
from modchain.backends.local.pii_cards import luhn_ok as _luhn_ok  # noqa: F401 (its old name here; tests use it)
from modchain.backends.local.pii_common import PiiMatch, clean_edges
from modchain.backends.local.pii_custom import PiiRecognizer, build_recognizers, run_recognizer
from modchain.backends.local.pii_email_url import find_email, find_url
from modchain.backends.local.pii_email_url import trim_url as _trim_url  # noqa: F401 (its old name here; tests use it)
from modchain.backends.local.pii_international import INTERNATIONAL_FINDERS, forget_context_gate
from modchain.backends.local.pii_network import find_ip, find_mac
from modchain.backends.local.pii_normalize import LINE_BREAK_BETWEEN_DIGITS, OriginMap, normalize_for_pii
from modchain.backends.local.pii_phone import (
    find_phone,
    intl_phone_candidates,  # noqa: F401 (pii_international imported it from here)
)
from modchain.backends.local.pii_phone_national import find_national_phone
from modchain.backends.local.pii_ssn_routing import find_bank_routing, find_ssn

__all__ = ["SUPPORTED_PII_LABELS", "PiiMatch", "PiiRecognizer", "find_pii"]


_FINDERS: tuple[tuple[frozenset[str], Callable[[str], Iterator[PiiMatch]]], ...] = tuple(
    (frozenset(labels.split()), finder) for labels, finder in (
        ("SSN", find_ssn), ("CREDIT_DEBIT_NUMBER", find_card), ("EMAIL", find_email), ("URL", find_url),
        ("PHONE", find_phone), ("PHONE", find_national_phone), ("IP_ADDRESS", find_ip), ("MAC_ADDRESS", find_mac),
        ("AWS_ACCESS_KEY AWS_SECRET_KEY", find_aws_keys), ("BANK_ROUTING", find_bank_routing),
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


def _mapped(found: tuple[list[PiiMatch], OriginMap | None]) -> list[PiiMatch]:
    matches, origin = found
    if origin is None:
        return matches
    return [PiiMatch(m.label, *origin.span(m.start, m.end), m.score, m.recognizer) for m in matches]


def _candidates(text: str, origin: OriginMap | None, wanted: Collection[str], custom: tuple[Any, ...] = (),
                custom_wanted: Collection[str] = frozenset()) -> tuple[list[PiiMatch], OriginMap | None]:
    """Every candidate in the (normalized) ``text``, in its coordinates; ``origin`` passes through."""
    try:
        candidates = [m for found, finder in _FINDERS if found & wanted for m in finder(text)
                      if m.label in wanted and clean_edges(text, m.start, m.end)]
    finally:
        forget_context_gate()  # the gate caches its verdict on this text; do not keep a long text alive
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
