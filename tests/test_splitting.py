"""Byte-exact splitting at service limits (property tests: spans cover the text, each fits the limit)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from modchain.text.splitting import cut_point, overlapping_windows, pack, split_spans, utf8_len

texts = st.text(alphabet=st.sampled_from(list("ab .!?\n\té€😀字")), max_size=600)


@given(texts, st.integers(min_value=4, max_value=120))
@settings(max_examples=300, deadline=None)
def test_split_spans_cover_text_and_fit(text, max_bytes):
    spans = split_spans(text, max_bytes)
    assert "".join(text[s:e] for s, e in spans) == text
    assert all(s < e for s, e in spans)
    assert all(utf8_len(text[s:e]) <= max_bytes for s, e in spans)


@given(texts, st.integers(min_value=40, max_value=200))
@settings(max_examples=200, deadline=None)
def test_windows_fit_cover_and_overlap(text, max_bytes):
    overlap = max_bytes // 4
    windows = overlapping_windows(text, max_bytes, overlap)
    assert windows[0][0] == 0 and windows[-1][1] == len(text)
    for (s1, e1), (s2, e2) in zip(windows, windows[1:]):
        assert s1 < s2 <= e1 < e2  # progress, no gap
    assert all(utf8_len(text[s:e]) <= max_bytes for s, e in windows)


@given(texts, st.integers(min_value=40, max_value=200), st.data())
@settings(max_examples=300, deadline=None)
def test_any_span_shorter_than_the_overlap_lies_whole_in_some_window(text, max_bytes, data):
    overlap = max_bytes // 4
    windows = overlapping_windows(text, max_bytes, overlap)
    start = data.draw(st.integers(min_value=0, max_value=len(text)))
    end = start
    while end < len(text) and utf8_len(text[start : end + 1]) <= overlap:
        end += 1
    end = data.draw(st.integers(min_value=start, max_value=end))
    assert any(s <= start and end <= e for s, e in windows)


def test_windows_do_not_creep_after_an_early_sentence_end():
    text = "word " * 2000 + "End. " + "word " * 8000
    windows = overlapping_windows(text, 5_000, 500)
    assert len(windows) <= 12  # 50 KB / (5 KB - 0.5 KB overlap), not hundreds


def test_cuts_prefer_sentence_then_word_boundaries():
    text = "First sentence here. Second one follows and is long"
    assert text[: cut_point(text, 0, 30)] == "First sentence here. "
    early = "Hi. " + "x" * 30 + " tail words here"
    assert cut_point(early, 0, 40) > 4  # a sentence end in the first half is not worth a tiny chunk
    words = "alpha beta gamma delta"
    assert words[: cut_point(words, 0, 13)] == "alpha beta "


def test_never_cuts_inside_a_multibyte_character():
    text = "€" * 10  # 3 bytes each
    spans = split_spans(text, 8)
    assert [utf8_len(text[s:e]) for s, e in spans] == [6, 6, 6, 6, 6]


def test_pack_respects_count_and_total():
    groups = list(pack([5, 5, 5, 5, 20, 1], max_items=3, max_total=12))
    assert groups == [[0, 1], [2, 3], [4], [5]]
