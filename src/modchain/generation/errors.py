"""Errors of safe image generation, in the library's one exception tree.

Messages name labels, categories and counts only, never the prompt or image data.
"""

from __future__ import annotations

from typing import Any

from modchain.core.errors import ModerationViolation


class PromptRejected(ModerationViolation):
    """The image prompt was rejected (denylist, toxicity or prompt safety). ``result`` is the
    :class:`~modchain.generation.results.PromptCheck`."""

    default_message = "The image prompt violates the moderation policy and cannot be processed"
    filter_type = "prompt_guard"

    def _describe(self, result: Any) -> str:
        findings = getattr(result, "findings", ()) or ()
        labels = sorted({f"{f.filter}:{f.label}" for f in findings})
        return f"{self.default_message} ({', '.join(labels)})" if labels else self.default_message


class UnsafeGenerationError(ModerationViolation):
    """Every attempt produced an image the output moderation flagged and the policy is to raise.
    ``result`` is the :class:`~modchain.generation.results.GenerationResult` (without an image)."""

    default_message = "The generated image violates the moderation policy"
    filter_type = "generation"

    def _describe(self, result: Any) -> str:
        attempts = getattr(result, "attempts", ()) or ()
        categories = sorted({c for a in attempts for c in a.categories})
        detail = f" after {len(attempts)} attempt(s)" if attempts else ""
        return f"{self.default_message}{detail}" + (f" ({', '.join(categories)})" if categories else "")


__all__ = ["PromptRejected", "UnsafeGenerationError"]
