"""Spelled-out digits ("four one five, five five five, ...") are normalized with exact spans (issue 17)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pii_span_checks import assert_spans_inside_disjoint_and_trimmed

from modchain import ModerationChain
from modchain.backends.local.pii_normalize import normalize_for_pii
from modchain.backends.local.pii_recognizers import find_pii
from modchain.backends.local.pii_spelled import spelled_digit_edits


def reported(text: str, threshold: float = 0.5) -> list[tuple[str, str]]:
    return [(m.label, text[m.start:m.end]) for m in find_pii(text) if m.score >= threshold]


def rewritten(text: str) -> str:
    out, cursor = [], 0
    for start, end, replacement in spelled_digit_edits(text):
        out += [text[cursor:start], replacement]
        cursor = end
    return "".join(out) + text[cursor:]


# (sentence, label, the exact original text the finding must cover)
FOUND = [
    ("Sure thing, my number is four one five, five five five, two six seven one, text after six",
     "PHONE", "four one five, five five five, two six seven one"),
    ("For the tax form my SSN is five three six, two two, one two three four if that helps",
     "SSN", "five three six, two two, one two three four"),
    ("Ring me back on 4 one 5 555 2671 after lunch", "PHONE", "4 one 5 555 2671"),
    ("Calling from London? It's oh two oh, seven nine four six, oh nine five eight",
     "PHONE", "oh two oh, seven nine four six, oh nine five eight"),
    ("Call the front desk on four one five, double five five, two six seven one",
     "PHONE", "four one five, double five five, two six seven one"),
    ("MY CELL IS SIX FIVE OH, TWO FIVE THREE, FOUR FOUR NINE OH THANKS",
     "PHONE", "SIX FIVE OH, TWO FIVE THREE, FOUR FOUR NINE OH"),
    ("Call me at (415) five five five - two six seven one tonight", "PHONE", "(415) five five five - two six seven one"),
    ("Meine Handynummer ist null eins sieben eins, zwei drei vier fünf sechs sieben acht",
     "PHONE", "null eins sieben eins, zwei drei vier fünf sechs sieben acht"),
    ("Mi móvil es seis uno dos, tres cuatro, cinco seis, siete ocho por si acaso",
     "PHONE", "seis uno dos, tres cuatro, cinco seis, siete ocho"),
    ("Mon portable : zéro six, un deux, trois quatre, cinq six, sept huit",
     "PHONE", "zéro six, un deux, trois quatre, cinq six, sept huit"),
    ("The card is four one one one, one one one one, one one one one, one one one one, expires soon",
     "CREDIT_DEBIT_NUMBER", "four one one one, one one one one, one one one one, one one one one"),
]


@pytest.mark.parametrize(("text", "label", "value"), FOUND)
def test_spelled_numbers_are_found_with_exact_spans(text, label, value):
    assert reported(text) == [(label, value)]


@pytest.mark.parametrize("text", [
    "One, two, three, four, ready or not, here I come!",
    "We need two 3-bedroom flats and one 2-bedroom flat for the team",
    "Give me five minutes, then one more coffee and two croissants",
    "Uno o dos, tres o cuatro personas como mucho",
    "I scored nine out of ten, then eight, then seven",
    "Sept 12 2023 at 10 30 in the small room",
    "Oh, one more thing: bring two pens",
])
def test_everyday_number_words_are_left_alone(text):
    assert spelled_digit_edits(text) == []
    assert reported(text) == []


def test_a_lone_digit_word_next_to_a_number_does_not_change_its_span():
    text = "Call 020 7946 0958 one more time please"
    assert reported(text) == [("PHONE", "020 7946 0958")]


@pytest.mark.parametrize(("text", "digits"), [
    ("four one five, five five five, two six seven one", "415-555-2671"),
    ("one two three - four five - six seven eight nine", "123-45-6789"),
    ("4 one 5 555 2671", "415 555 2671"),
    ("double o seven, one two three four", "007-1234"),
    ("four-one-five five-five-five two-six-seven-one", "4155552671"),
    ("NULL DREI NULL, eins zwei drei vier fünf sechs sieben acht", "030-12345678"),
])
def test_rewriting(text, digits):
    assert rewritten(text) == digits


def test_span_starting_or_ending_on_a_word_maps_to_the_whole_word():
    text = "tel five five five, two six seven one, four"
    normalized, origin = normalize_for_pii(text)
    assert origin is not None and normalized.startswith("tel 555-2671")
    start = normalized.index("5")
    assert origin.span(start, start + len("555-2671")) == (4, text.index(", four"))
    assert list(origin) == sorted(origin)  # the per-character map stays monotone


def test_redaction_through_the_chain_covers_the_words():
    text = "Sure thing, my number is four one five, five five five, two six seven one, bye"
    value = "four one five, five five five, two six seven one"
    out = ModerationChain({"filters": [{"type": "pii", "action": "redact"}]}).invoke(text)
    assert "five" not in out and "seven" not in out
    assert len(out) == len(text) and out.startswith("Sure thing, my number is ") and out.endswith(", bye")
    start = text.index(value)
    assert set(out[start:start + len(value)]) == {"*"}


def test_ssn_in_words_is_blocked_without_quoting_it():
    from modchain.core.errors import PiiViolation

    text = "For the tax form my SSN is five three six, two two, one two three four"
    guard = ModerationChain({"filters": [{"type": "pii", "labels": ["SSN"], "action": "block"}]})
    with pytest.raises(PiiViolation) as caught:
        guard.invoke(text)
    assert "five three six" not in str(caught.value) and "536" not in str(caught.value)


def _cpu_seconds(text: str) -> float:
    runs = []
    for _ in range(3):  # the fastest of three: the machine's load only ever adds time
        t0 = time.process_time()
        find_pii(text)
        runs.append(time.process_time() - t0)
    return min(runs)


@pytest.mark.parametrize("unit", [
    "one two three four five six seven eight nine zero ",
    "four one five, five five five, two six seven one; ",
    "o oh o oh one ",
    "double double five ",
    "vier eins fünf, cinco seis, six sept ",
    "4 one 5 ",
])
def test_long_runs_of_number_words_stay_linear(unit):
    find_pii(unit * 20)  # warm up
    small = _cpu_seconds(unit * (20_000 // len(unit)))
    large = _cpu_seconds(unit * (200_000 // len(unit)))
    assert large < 1.0
    assert large < 25 * small + 0.05  # 10x the input: ~10x the time, never ~100x


_PIECES = st.sampled_from([
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero", "oh", "o", "double", "triple",
    "eins", "fünf", "cinco", "zéro", "un", "uno", "dos", "sept", "SEVEN", "4", "15", "555", "2671", " ", "  ", ", ",
    " - ", "-", ".", "(", ")", " dash ", "\n", "é", "x", "phone ", "SSN ", "card ", "\u017fechs", "ZWE\u0130", "FÜNF",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_property_spans_are_inside_the_text_disjoint_and_trimmed(text):
    assert_spans_inside_disjoint_and_trimmed(text)
    edits = spelled_digit_edits(text)
    assert all(a[1] <= b[0] for a, b in zip(edits, edits[1:]))  # sorted and disjoint
    assert all(0 <= s <= e <= len(text) for s, e, _ in edits)
