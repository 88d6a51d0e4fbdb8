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
        if action not in ("redact", "anonymize") or not selected:
            return text
        pieces: list[str] = []
        cursor = 0
        for start, end, finding in merged_spans(selected):
            start, end = max(start, cursor), min(end, len(text))
            if start >= end:
                continue
            pieces.append(text[cursor:start])
            if action == "redact":
                # Exactly one mask character per original character: offsets stay valid.
                pieces.append(self.config.mask_character * (end - start))
            else:
                pieces.append(vault.placeholder(text[start:end], finding.label, scope))
            cursor = end
        pieces.append(text[cursor:])
        return "".join(pieces)
