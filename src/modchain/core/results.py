"""Typed results, the same shape from every backend.

A :class:`Finding` never holds the matched text itself, only where it is (message index and character
span), so results can be logged, serialized and attached to exceptions without leaking personal data.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


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


class Outcome(BaseModel):
    """What every component's result has: the decision, what was found, what failed, how long it took.

    Every result extends this (the text chain's :class:`ModerationResult`, the image chain's, the document
    guard's, the prompt guard's, generation, the visual chain, screening), so code that only needs the
    decision reads ``outcome.allowed`` / ``outcome.findings`` whatever produced it.

    ``allowed`` is False when something was blocked: the input as a whole (``invoke`` raises the component's
    ``*Violation`` when it is set to block), or, for a result over many items, at least one item (a
    :class:`~modchain.text.documents.report.DocumentReport` whose guard dropped a document from the list).
    Content that goes on sanitized (redacted, masked, blurred) is allowed. A component in a report-only mode (the image
    chain's ``mode="detect"``) still says ``allowed=False`` for what it would have blocked, so code reading
    results never passes flagged content by mistake; only ``invoke`` lets it through. A result whose component
    already kept these facts in fields of its own *derives* the base fields from them and leaves them out of
    ``model_dump`` (``Field(exclude=True)``), so its serialized form stays what it was.
    """

    model_config = ConfigDict(frozen=True)

    allowed: bool = Field(
        description="The input goes on (possibly sanitized); False: it, or one of its items, was blocked.")
    findings: tuple[Finding, ...] = ()
    errors: tuple[str, ...] = Field((), description="Steps that failed open, as 'step: ErrorType'.")
    timings_ms: dict[str, float] = Field(default_factory=dict, description="Milliseconds per step.")
    unique_id: str | None = None


def field_of(item: Any, name: str, default: Any = None) -> Any:
    """``item.name`` or ``item[name]``: before-validators see models, or dicts when read back from JSON."""
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


class ModerationResult(Outcome):
    """The outcome of moderating one input (the text chain's, and the stream guard's)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    blocked_by: str | None = Field(None, description="Filter type that blocked the input, if any.")
    filters: tuple[FilterResult, ...] = ()
    language: str | None = Field(None, description=(
        'Detected language of the input (ISO 639-1, e.g. "en", "zh"); "und" when the detector was unsure (short '
        "text); with several texts, the language of most of their characters. None where nothing was detected. "
        "See docs/languages.md."))
    # repr=False: these hold the user's text, which must not leak into logs through a repr.
    texts: tuple[str, ...] = Field((), repr=False, description="The sanitized texts, one per checked text.")
    output: Any = Field(None, repr=False, description="The sanitized input, in the shape it was given.")
    # Derived from ``filters`` (kept out of model_dump: the filters already carry them).
    errors: tuple[str, ...] = Field((), exclude=True, description="Filters that failed open, as "
                                    "'filter: ErrorType'.")
    timings_ms: dict[str, float] = Field(default_factory=dict, exclude=True, description=(
        'Milliseconds per filter, keyed "<index>:<filter>" since a filter type may repeat.'))

    @model_validator(mode="before")
    @classmethod
    def _derive_from_filters(cls, data: Any) -> Any:
        if not isinstance(data, dict) or ("errors" in data and "timings_ms" in data):
            return data
        filters = data.get("filters") or ()
        derived = {
            "errors": tuple(f"{field_of(f, 'filter')}: {field_of(f, 'error')}" for f in filters
                            if field_of(f, "error")),
            "timings_ms": {f"{field_of(f, 'index')}:{field_of(f, 'filter')}": float(field_of(f, "elapsed_ms", 0.0))
                           for f in filters},
        }
        return {**derived, **data}

    @property
    def sanitized_text(self) -> str:
        """All sanitized texts joined by newlines (the single text for a plain-string input)."""
        return "\n".join(self.texts)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view without the output object (findings hold spans, never matched text)."""
        return {
            "allowed": self.allowed,
            "blocked_by": self.blocked_by,
            "language": self.language,
            "findings": [f.model_dump(exclude_none=True) for f in self.findings],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }
