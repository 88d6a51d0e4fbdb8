"""One exception tree for every component.

Violations carry the structured result so callers can inspect findings, but their messages name only
labels and counts: raw personal data never reaches an exception message or a log line. Backend errors are
mapped at the backend boundary (``raise ... from``) into timeout / throttled / unavailable so callers can
retry or fail over without knowing which SDK sits underneath.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from modchain.core.results import ModerationResult


class ModchainError(Exception):
    """Base of every error this library raises on purpose."""


class ConfigurationError(ModchainError, ValueError):
    """A config, argument or environment that cannot work (unknown backend, missing credentials, ...)."""


class InputError(ModchainError, TypeError):
    """An input of a shape or type the component does not accept."""


class BackendError(ModchainError):
    """A backend failed to score content. Subclasses say whether retrying could help."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, backend: str = "", operation: str = "") -> None:
        super().__init__(message)
        self.backend = backend
        self.operation = operation


class BackendTimeoutError(BackendError):
    retryable = True


class BackendThrottledError(BackendError):
    retryable = True


class BackendUnavailableError(BackendError):
    retryable = True


class ModerationViolation(ModchainError):
    """Content was blocked by a filter. ``result`` holds the findings (spans, scores, labels)."""

    default_message: ClassVar[str] = "The content violates the moderation policy and cannot be processed"
    filter_type: ClassVar[str] = ""

    def __init__(self, message: str | None = None, *, result: ModerationResult | None = None) -> None:
        self.result = result
        self.message = message or self._describe(result)
        super().__init__(self.message)

    def _describe(self, result: ModerationResult | None) -> str:
        if result is None:
            return self.default_message
        labels = sorted({f.label for f in result.findings if f.filter == self.filter_type})
        detail = f" ({len(labels)} label(s): {', '.join(labels)})" if labels else ""
        return f"{self.default_message}{detail}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep violations picklable (multiprocessing, Ray) with their result.
        return (_rebuild_violation, (type(self), self.message, self.result))


def _rebuild_violation(cls: type[ModerationViolation], message: str, result: Any) -> ModerationViolation:
    return cls(message, result=result)


class PiiViolation(ModerationViolation):
    default_message = "The prompt contains PII entities and cannot be processed"
    filter_type = "pii"


class ToxicityViolation(ModerationViolation):
    default_message = "The prompt contains toxic content and cannot be processed"
    filter_type = "toxicity"


class PromptSafetyViolation(ModerationViolation):
    default_message = "The prompt is unsafe and cannot be processed"
    filter_type = "prompt_safety"


VIOLATION_BY_FILTER: dict[str, type[ModerationViolation]] = {
    "pii": PiiViolation,
    "toxicity": ToxicityViolation,
    "prompt_safety": PromptSafetyViolation,
}
