"""The span invariant every PII property test checks (imported by the test modules beside it)."""

from __future__ import annotations

from modchain.backends.local.pii_recognizers import find_pii


def assert_spans_inside_disjoint_and_trimmed(text: str) -> None:
    """Every match of ``find_pii(text)`` lies inside the text, after the previous one, and has no blank edge."""
    previous_end = 0
    for m in find_pii(text):
        assert previous_end <= m.start < m.end <= len(text)
        piece = text[m.start:m.end]
        assert piece == piece.strip() and piece
        previous_end = m.end
