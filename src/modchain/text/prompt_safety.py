"""Prompt-safety filter: block (or only report) jailbreaks, prompt injection and unsafe intent."""

from __future__ import annotations

from modchain.core.results import Finding
from modchain.text.filter_base import TextFilter


class PromptSafetyFilter(TextFilter):
    kind = "prompt_safety"

    def select(self, findings: list[Finding]) -> list[Finding]:
        # Only the unsafe class counts; a backend may also report SAFE_PROMPT scores.
        return [f for f in findings if f.label == "UNSAFE_PROMPT" and f.score >= self.config.threshold]
