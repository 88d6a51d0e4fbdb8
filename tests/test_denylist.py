"""Denylist: written evasions of listed terms are caught, innocent look-alikes pass, spans map back."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modchain.core.errors import ConfigurationError, InputError
from modchain.generation.denylist import DEFAULT_EXPLICIT_TERMS, Denylist, DenyTerm

TERMS = ["nude", "naked", "porn*", "sex", "rape", "rapist", "ass", "cock", "cunt", "tits", "anal", "hentai",
         "nsfw", "gore", "cum", DenyTerm(text="blow job", category="SEXUAL")]
ALLOW = ["naked mole rat", "naked eye"]

# (prompt, the listed term it hides, the exact original substring that must be reported)
EVASIONS = [
    ("a NUDE woman on a beach", "nude", "NUDE"),
    ("a Nude portrait", "nude", "Nude"),
    ("a n u d e statue", "nude", "n u d e"),
    ("a n.u.d.e statue", "nude", "n.u.d.e"),
    ("n-u-d-e model", "nude", "n-u-d-e"),
    ("n_u_d_e model", "nude", "n_u_d_e"),
    ("n . u . d . e photo", "nude", "n . u . d . e"),
    ("nud3 selfie", "nude", "nud3"),
    ("p0rn scene", "porn*", "p0rn"),
    ("pr0n? no: p0rnography", "porn*", "p0rnography"),
    ("pornographic drawing", "porn*", "pornographic"),
    ("$ex scene", "sex", "$ex"),
    ("s3x tape", "sex", "s3x"),
    ("S E X scene", "sex", "S E X"),
    ("nice a$$ photo", "ass", "a$$"),
    ("@ss shot", "ass", "@ss"),
    ("ｎｕｄｅ figure", "nude", "ｎｕｄｅ"),  # full-width
    ("nu\u200bde figure", "nude", "nu\u200bde"),  # zero-width space
    ("na\u200dked man", "naked", "na\u200dked"),  # zero-width joiner
    ("p\u00adorn art", "porn*", "p\u00adorn"),  # soft hyphen
    ("nud\u0435 woman", "nude", "nud\u0435"),  # Cyrillic ie
    ("\u0441ock picture", "cock", "\u0441ock"),  # Cyrillic es
    ("\u039dUDE poster", "nude", "\u039dUDE"),  # Greek capital nu
    ("n\u03c5de model", "nude", "n\u03c5de"),  # Greek upsilon
    ("nuuuude beach", "nude", "nuuuude"),
    ("seeexxx", "sex", "seeexxx"),
    ("n\u0301u\u0308d\u0303e statue", "nude", "n\u0301u\u0308d\u0303e"),  # combining marks
    ("h3nt4i girl", "hentai", "h3nt4i"),
    ("N$FW content", "nsfw", "N$FW"),
    ("t1ts out", "tits", "t1ts"),
    ("4n4l scene", "anal", "4n4l"),
    ("g0re everywhere", "gore", "g0re"),
    ("a r4pe scene", "rape", "r4pe"),
    ("the rapist", "rapist", "rapist"),
    ("two nudes", "nude", "nudes"),
    ("a blow-job", "blow job", "blow-job"),
    ("a blow  job", "blow job", "blow  job"),
    ("c.u.n.t", "cunt", "c.u.n.t"),
    ("NAKED!!!", "naked", "NAKED"),
    ("(nude)", "nude", "nude"),
]

BENIGN = [
    "A postcard from Scunthorpe at dusk",
    "Assassin's Creed fan art of a rooftop chase",
    "a cocktail on a bar counter",
    "a therapist's office with plants",
    "rolling hills of Sussex in spring",
    "a bunch of grapes on a table",
    "a grape vine",
    "Middlesex and Essex county map",
    "a classic car in the rain",
    "a bass guitar on a stage",
    "an embassy building at night",
    "a passenger train crossing a bridge",
    "the cockpit of an airliner",
    "a peacock spreading its tail",
    "Hancock Tower in Boston",
    "a document on a desk",
    "a cucumber salad",
    "circumstances of the era, in oil paint",
    "a sextant on a nautical chart",
    "a church sexton ringing the bell",
    "drape curtains in a living room",
    "scraped knees on a playground",
    "an analysis chart of the stock market",
    "a canal in Amsterdam",
    "a gorgeous sunset over the sea",
    "the Gorge amphitheatre",
    "a naked mole rat in a burrow",
    "stars visible to the naked eye",
    "Titian's painting style",
    "a titmouse on a branch",
    "a pass in the mountains",
    "a glass of water",
    "a harassed-looking commuter",
    "Dickens and his cocker spaniel",
    "grassland with sheep",
    "a class photo of students",
    "an altitude chart",
    "a gorilla in the jungle",
    "denuded hills after a wildfire",
    "a nudge on the shoulder",
    "cumulus clouds above a field",
    "a scumbled oil painting technique",
    "hentaigana calligraphy on paper",  # historic kana; the listed word is only part of it
    "an ass and a donkey in a field",  # a real listed word: must be caught (checked below)
]
BENIGN_LIST = BENIGN[:-1]


@pytest.fixture(scope="module")
def denylist() -> Denylist:
    return Denylist(TERMS, allow=ALLOW)


@pytest.mark.parametrize(("prompt", "term", "original"), EVASIONS, ids=[e[0] for e in EVASIONS])
def test_evasion_is_caught_with_its_original_span(denylist, prompt, term, original):
    matches = denylist.find(prompt)
    assert [m.term for m in matches] == [term]
    assert prompt[matches[0].start:matches[0].end] == original


@pytest.mark.parametrize("prompt", BENIGN_LIST)
def test_benign_look_alike_passes(denylist, prompt):
    assert denylist.find(prompt) == []


def test_counts_meet_the_bar():
    assert len(EVASIONS) >= 30 and len(BENIGN_LIST) >= 30


def test_plain_listed_word_is_caught(denylist):
    assert [m.term for m in denylist.find(BENIGN[-1])] == ["ass"]


def test_allowlist_only_cancels_matches_inside_it(denylist):
    text = "a naked mole rat next to a naked man"
    matches = denylist.find(text)
    assert len(matches) == 1 and matches[0].start == text.rindex("naked")


def test_phrase_mode_matches_inside_words():
    word = Denylist(["porn"], plurals=False)
    phrase = Denylist([DenyTerm(text="porn", mode="phrase")])
    assert word.find("softporn") == []
    assert [m.term for m in phrase.find("softporn")] == ["porn"]


def test_category_and_several_matches_in_order(denylist):
    matches = denylist.find("nude and a blow job and p0rn")
    assert [m.term for m in matches] == ["nude", "blow job", "porn*"]
    assert matches[1].category == "SEXUAL" and matches[0].category == "DENYLIST"


def test_default_terms_catch_explicit_prompts():
    default = Denylist()
    assert default.terms[0].text == DEFAULT_EXPLICIT_TERMS[0]
    assert default.matches("a n.u.d.e woman, NSFW")
    assert not default.matches("a watercolor of a lighthouse at dawn")


def test_bad_terms_are_configuration_errors():
    with pytest.raises(ConfigurationError):
        Denylist([])
    with pytest.raises(ConfigurationError):
        Denylist([42])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError):
        Denylist([{"text": "x", "mode": "fuzzy"}])
    with pytest.raises(ValueError):
        DenyTerm(text="***")


def test_non_text_input_is_an_error(denylist):
    with pytest.raises(InputError):  # bad input, like everywhere else in the library
        denylist.find(b"nude")  # type: ignore[arg-type]


def test_fast_enough_for_every_prompt(denylist):
    prompt = "a photo of a cat on a red couch in the afternoon sun, highly detailed, 4k, " * 4
    denylist.find(prompt)
    started = time.perf_counter()
    for _ in range(200):
        denylist.find(prompt)
    assert (time.perf_counter() - started) / 200 < 0.005  # generous: ~0.2 ms measured


@pytest.mark.parametrize("prompt", ["x" * 1000 + "a", "x " * 1000 + "a", "genital" + "i" * 3000 + "q",
                                    "@" * 5000, "l1|!i " * 1000, "s.e." * 2000 + "q"])
def test_adversarial_prompts_match_in_linear_time(prompt):
    # Unbounded repetition over look-alike classes took 20 s on "x" * 1000 + "a" (minutes at 2000).
    matcher = Denylist([*DEFAULT_EXPLICIT_TERMS, "ass", "anal", "blow job"], allow=["naked mole rat"])
    phrase = Denylist(["xxx", "nipple", "genitalia"], mode="phrase")
    started = time.perf_counter()
    matcher.find(prompt)
    phrase.find(prompt)
    assert time.perf_counter() - started < 0.5


def test_squeezed_elongation_keeps_the_whole_span():
    matcher = Denylist(["xxx", "nude"])
    text = "a xxxxxxx and a nuuuuuuude"
    assert [text[m.start:m.end] for m in matcher.find(text)] == ["xxxxxxx", "nuuuuuuude"]
    assert matcher.find("xx marks the spot") == []


@given(st.text(max_size=60), st.sampled_from(["nude", "p0rn", "n.u.d.e", "ＳＥＸ"]), st.text(max_size=60))
def test_spans_always_index_the_original(denylist, left, hidden, right):
    text = f"{left} {hidden} {right}"
    for match in denylist.find(text):
        assert 0 <= match.start < match.end <= len(text)
    assert any(text[m.start:m.end] == hidden for m in denylist.find(text))
