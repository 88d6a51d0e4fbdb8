"""PII filter: detect, block, redact (mask every character) or anonymize (reversible placeholders)."""

from __future__ import annotations

from typing import Any

from modchain.core.results import Finding
from modchain.text.filter_base import TextFilter


def merged_spans(findings: list[Finding]) -> list[tuple[int, int, Finding]]:
    """Non-overlapping spans, left to right; overlapping findings merge into one span (first finding wins)."""
    spans: list[tuple[int, int, Finding]] = []
    for finding in sorted((f for f in findings if f.start is not None and f.end is not None),
                          key=lambda f: (f.start, -(f.end or 0))):
        start, end = finding.start, finding.end
        assert start is not None and end is not None
        if spans and start < spans[-1][1]:
            prev_start, prev_end, prev = spans[-1]
            spans[-1] = (prev_start, max(prev_end, end), prev)
        else:
            spans.append((start, end, finding))
    return spans


class PiiFilter(TextFilter):
    kind = "pii"

    def blocks(self, selected: list[Finding]) -> bool:
        if self.config.action in ("redact", "anonymize"):
            # PII we cannot locate cannot be masked: block rather than pass it through.
            return any(f.start is None or f.end is None for f in selected)
        return super().blocks(selected)

    def apply(self, text: str, selected: list[Finding], *, vault: Any = None, scope: str = "") -> str:
        action = self.config.action
        if action == "anonymize":
            # Through the vault even with nothing selected: placeholder-shaped text the user typed must be
            # reserved so this scope never mints it (restoring would turn the user's text into real data).
            spans = [(start, end, finding.label) for start, end, finding in self._clipped(text, selected)]
            return vault.anonymize(text, spans, scope)
        if action != "redact" or not selected:
            return text
        pieces: list[str] = []
        cursor = 0
        for start, end, _ in self._clipped(text, selected):
            pieces.append(text[cursor:start])
            # Exactly one mask character per original character: offsets stay valid.
            pieces.append(self.config.mask_character * (end - start))
            cursor = end
        pieces.append(text[cursor:])
        return "".join(pieces)

    @staticmethod
    def _clipped(text: str, selected: list[Finding]) -> list[tuple[int, int, Finding]]:
        """Merged spans, cut to the text and to each other, empty ones dropped."""
        spans: list[tuple[int, int, Finding]] = []
        cursor = 0
        for start, end, finding in merged_spans(selected):
            start, end = max(start, cursor), min(end, len(text))
            if start >= end:
                continue
            spans.append((start, end, finding))
            cursor = end
        return spans
