"""Typed results of the prompt guard and of safe generation. No prompt text in any ``repr``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modchain.core.image_findings import ImageFinding
from modchain.core.results import Finding, Outcome, field_of


class PromptCheck(Outcome):
    """What the prompt guard found in one prompt and what it decided."""

    allowed: bool = Field(description="False only when the action is reject and something was found.")
    action: Literal["reject", "warn"]
    findings: tuple[Finding, ...] = Field((), description="filter is denylist, toxicity or prompt_safety.")
    warnings: tuple[str, ...] = Field((), description="Readable notes (labels only) when the action is warn.")
    errors: tuple[str, ...] = Field((), description="Checks that failed open, as 'step: ErrorType'.")
    prompt: str = Field("", repr=False, description="The checked prompt (kept out of repr and logs).")

    @property
    def flagged(self) -> bool:
        return bool(self.findings)

    @property
    def labels(self) -> list[str]:
        return sorted({f"{f.filter}:{f.label}" for f in self.findings})


class GenerationAttempt(BaseModel):
    """One call of the generator and the moderation of its image."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    seed: int
    safe: bool
    categories: tuple[str, ...] = Field((), description="Categories that made the image unsafe.")
    findings: tuple[ImageFinding, ...] = ()
    generation_ms: float = 0.0
    moderation_ms: float = 0.0
    error: str | None = Field(None, description="Moderation error type when it failed open.")


#: ``allowed`` per status: an image comes back (blurred is sanitized, unchecked failed open) or it does not.
_ALLOWED = {"safe": True, "blurred": True, "unchecked": True, "withheld": False}


class GenerationResult(Outcome):
    """The outcome of one guarded generation.

    ``status``: ``safe`` (the image passed), ``blurred`` (unsafe after every attempt, returned blurred),
    ``withheld`` (unsafe after every attempt, ``image`` is None), ``unchecked`` (moderation failed open).
    The :class:`~modchain.core.results.Outcome` fields are derived (and left out of ``model_dump``):
    ``allowed`` is False only when withheld; ``findings`` are the last attempt's; ``errors`` the prompt
    check's and the attempts'; ``timings_ms`` generation, moderation, total and prompt_guard.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    image: Any = Field(None, repr=False, description="A PIL image, or None when withheld.")
    status: Literal["safe", "blurred", "withheld", "unchecked"]
    seed: int | None = Field(None, description="Seed of the returned image.")
    attempts: tuple[GenerationAttempt, ...] = ()
    warnings: tuple[str, ...] = ()
    prompt_check: PromptCheck | None = None
    negative_prompt: str = Field("", repr=False)
    generation_ms: float = Field(0.0, description="Time in the generator, all attempts.")
    moderation_ms: float = Field(0.0, description="Time in the prompt guard, output moderation and blurring.")
    total_ms: float = 0.0
    allowed: bool = Field(True, exclude=True, description="Derived from status: False only when withheld.")
    findings: tuple[ImageFinding, ...] = Field((), exclude=True, description="The last attempt's findings.")
    errors: tuple[str, ...] = Field((), exclude=True)
    timings_ms: dict[str, float] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _derive_outcome(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        attempts, check = data.get("attempts") or (), data.get("prompt_check")
        check_errors = tuple(field_of(check, "errors", ())) if check is not None else ()
        derived = {
            "findings": tuple(field_of(attempts[-1], "findings", ())) if attempts else (),
            "errors": check_errors + tuple(f"moderation: {field_of(a, 'error')}" for a in attempts
                                           if field_of(a, "error")),
            "timings_ms": {"generation": data.get("generation_ms", 0.0), "moderation": data.get("moderation_ms", 0.0),
                           "total": data.get("total_ms", 0.0),
                           "prompt_guard": sum((field_of(check, "timings_ms", {}) if check else {}).values())},
        }
        # allowed always follows status, so the two cannot disagree
        return {**derived, **data, "allowed": _ALLOWED.get(data.get("status"), False)}

    @property
    def safe(self) -> bool:
        return self.status == "safe"

    @property
    def seeds(self) -> list[int]:
        return [a.seed for a in self.attempts]


__all__ = ["GenerationAttempt", "GenerationResult", "PromptCheck"]
