"""Typed results, the same shape from every backend.

A :class:`Finding` never holds the matched text itself, only where it is (message index and character
span), so results can be logged, serialized and attached to exceptions without leaking personal data.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Finding(BaseModel):
    """One thing a backend found: a PII entity, a toxic segment, an unsafe prompt."""

    model_config = ConfigDict(frozen=True)

    filter: str = Field(description="pii, toxicity, prompt_safety, ...")
    label: str = Field(description="Comprehend-style label: SSN, INSULT, UNSAFE_PROMPT, ...")
    score: float
    start: int | None = Field(None, description="Character offset into the checked text (inclusive).")
    end: int | None = Field(None, description="Character offset into the checked text (exclusive).")
    text_index: int = Field(0, description="Index into the checked texts (one per message or text part).")
    backend: str = ""
    category: str | None = Field(None, description="Finer kind where known, e.g. jailbreak vs injection.")
    explanation: str = ""

    def shifted(self, offset: int, text_index: int | None = None) -> Finding:
        """The same finding with its span moved by ``offset`` (used when texts were split or packed)."""
        update: dict[str, Any] = {}
        if self.start is not None and self.end is not None:
            update = {"start": self.start + offset, "end": self.end + offset}
        if text_index is not None:
            update["text_index"] = text_index
        return self.model_copy(update=update)


class FilterResult(BaseModel):
    """What one filter of a chain did."""

    model_config = ConfigDict(frozen=True)

    filter: str
    index: int = Field(description="Position of the filter in the chain's filters list.")
    backend: str
    action: str
    findings: tuple[Finding, ...] = ()
    blocked: bool = False
    error: str | None = Field(None, description="Backend error type when the filter failed open.")
    elapsed_ms: float = 0.0


class ModerationResult(BaseModel):
    """The outcome of moderating one input."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    allowed: bool
    blocked_by: str | None = Field(None, description="Filter type that blocked the input, if any.")
    findings: tuple[Finding, ...] = ()
    filters: tuple[FilterResult, ...] = ()
    # repr=False: these hold the user's text, which must not leak into logs through a repr.
    texts: tuple[str, ...] = Field((), repr=False, description="The sanitized texts, one per checked text.")
    output: Any = Field(None, repr=False, description="The sanitized input, in the shape it was given.")
    unique_id: str | None = None

    @property
    def sanitized_text(self) -> str:
        """All sanitized texts joined by newlines (the single text for a plain-string input)."""
        return "\n".join(self.texts)

    @property
    def timings_ms(self) -> dict[str, float]:
        """Milliseconds per filter, keyed ``"<index>:<filter>"`` since a filter type may repeat."""
        return {f"{f.index}:{f.filter}": f.elapsed_ms for f in self.filters}

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view without the output object (findings hold spans, never matched text)."""
        return {
            "allowed": self.allowed,
            "blocked_by": self.blocked_by,
            "findings": [f.model_dump(exclude_none=True) for f in self.findings],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }
