"""Typed results of the prompt guard and of safe generation. No prompt text in any ``repr``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modchain.core.results import Finding
from modchain.vision.results import ImageFinding


class PromptCheck(BaseModel):
    """What the prompt guard found in one prompt and what it decided."""

    model_config = ConfigDict(frozen=True)

    allowed: bool = Field(description="False only when the action is reject and something was found.")
    action: Literal["reject", "warn"]
    findings: tuple[Finding, ...] = Field((), description="filter is denylist, toxicity or prompt_safety.")
    warnings: tuple[str, ...] = Field((), description="Readable notes (labels only) when the action is warn.")
    errors: tuple[str, ...] = Field((), description="Checks that failed open, as 'step: ErrorType'.")
    prompt: str = Field("", repr=False, description="The checked prompt (kept out of repr and logs).")
    timings_ms: dict[str, float] = Field(default_factory=dict)
    unique_id: str | None = None

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


class GenerationResult(BaseModel):
    """The outcome of one guarded generation.

    ``status``: ``safe`` (the image passed), ``blurred`` (unsafe after every attempt, returned blurred),
    ``withheld`` (unsafe after every attempt, ``image`` is None), ``unchecked`` (moderation failed open).
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
    unique_id: str | None = None

    @property
    def safe(self) -> bool:
        return self.status == "safe"

    @property
    def seeds(self) -> list[int]:
        return [a.seed for a in self.attempts]

    @property
    def timings_ms(self) -> dict[str, float]:
        return {"generation": self.generation_ms, "moderation": self.moderation_ms, "total": self.total_ms,
                "prompt_guard": sum((self.prompt_check.timings_ms if self.prompt_check else {}).values())}


__all__ = ["GenerationAttempt", "GenerationResult", "PromptCheck"]
