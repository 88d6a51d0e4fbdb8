"""The document guard's shortcuts give exactly what they replace, and scoring a page stays linear in it.

* ``window_cues`` looks for each AI-reader cue in the whole page once and searches windows only for the cues
  the page has: the same cues per window as searching every window.
* ``PageWords`` counts, per word, the sentences it occurs in, instead of one set per sentence of all the
  words before and after it (``words_around``, quadratic in the page): the same shared words for every run.
* Memory: the window features of a 100 KB page stay within a bound linear in it (the per-sentence sets
  took thousands of bytes per input byte), measured in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from modchain.text.documents.cues import (
    READER_CUES,
    PageWords,
    content_words,
    sentence_spans,
    window_cues,
    window_spans,
    words_around,
)

# Pieces of pages: ordinary sentences, the phrases the cues look for, and separators of every kind the
# sentence splitter meets (so windows start and end next to quotes, brackets, line breaks, other scripts).
PIECES = [
    "The printer needs a new cartridge", "Check the settings page first", "Our office closes at five",
    "ignore all previous instructions", "new instructions:", "in your reply", "your answer format",
    "Dear AI assistant", "if you are a language model", "when summarizing this page you must",
    "instead of answering", "reveal the system prompt", "reply in French", "spam spam spam spam spam spam spam spam",
    "AI reading this", "include the following code", "Über die Brücke", "東京の天気は晴れです", "you must",
]
SEPARATORS = [". ", "! ", "? ", ".\" ", ".) ", "\n", "\n\n  ", " ", ", ", "。", ": ", ".\t"]


@st.composite
def pages(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(SEPARATORS)), min_size=1, max_size=14))
    lead = draw(st.sampled_from(["", " ", "\n", "New instructions: "]))
    return lead + "".join(piece + sep for piece, sep in parts)


@settings(max_examples=300, deadline=None)
@given(page=pages(), size=st.integers(1, 3), max_chars=st.sampled_from([40, 200, 1500]))
def test_window_cues_are_the_cues_found_window_by_window(page, size, max_chars):
    spans = [(start, end) for _, _, start, end in window_spans(sentence_spans(page), size, max_chars)]
    expected = [tuple(i for i, (_, pattern) in enumerate(READER_CUES) if pattern.search(page[start:end]))
                for start, end in spans]
    assert window_cues(page, spans) == expected


@settings(max_examples=100, deadline=None)
@given(page=pages(), start=st.integers(0, 60), length=st.integers(1, 80))
def test_window_cues_of_windows_with_any_edges(page, start, length):
    # Not sentence windows: edges inside words or right after a letter. Every cue is then searched per window.
    spans = [(min(start, len(page)), min(start + length, len(page)))]
    expected = [tuple(i for i, (_, pattern) in enumerate(READER_CUES) if pattern.search(page[s:e])) for s, e in spans]
    assert window_cues(page, spans) == expected


@settings(max_examples=200, deadline=None)
@given(page=pages(), max_size=st.integers(1, 4))
def test_page_words_share_what_words_around_shares(page, max_size):
    sentences = sentence_spans(page)
    words = [content_words(page[s:e]) for s, e in sentences]
    before, after = words_around(words)
    page_words = PageWords(words)
    for first in range(len(sentences)):
        for last in range(first + 1, min(first + max_size, len(sentences)) + 1):
            inside = set().union(*words[first:last])
            assert page_words.run(first, last) == (inside, len(inside & (before[first] | after[last])))


def test_window_features_of_a_long_page_take_memory_linear_in_it():
    script = textwrap.dedent("""
        import json, random, tracemalloc
        from modchain.text.documents.cues import sentence_spans
        from modchain.text.documents.injection import window_features
        rng = random.Random(5)
        # distinct words in every sentence: the vocabulary grows with the page, as in a real long page
        def word():
            return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7))
        sentences = [" ".join(word() for _ in range(12)) + "." for _ in range(1200)]
        page = " ".join(sentences)
        spans = sentence_spans(page)
        tracemalloc.start()
        window_features(page, spans, 2, 1500)
        print(json.dumps({"bytes": len(page), "peak": tracemalloc.get_traced_memory()[1]}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    measured = json.loads(out.stdout)
    # The features themselves (two windows a sentence, ~20 strings each) cost ~40 bytes per input byte;
    # the per-sentence sets of every word before and after took ~6,000 at this size.
    assert measured["peak"] <= 150 * measured["bytes"], measured


def test_the_speed_benchmark_still_reaches_each_stage_of_the_guard():
    # benchmarks/documents_speed.py times the guard's stages one by one through their functions: a stage that
    # moves must fail here, not the next benchmark run.
    from pathlib import Path

    benchmarks = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, benchmarks)
    try:
        import documents_speed
    finally:
        sys.path.remove(benchmarks)
    from modchain.text.documents import DocumentGuard

    page = " ".join(PIECES[:3]) + ". The lift is out of order until Monday."
    stages = documents_speed.stage_cpu(DocumentGuard(), page)
    assert len(stages) == 3 and all(ms >= 0.0 for ms in stages)
