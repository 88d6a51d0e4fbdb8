"""Violations raised when a moderated stream is stopped.

Each one is also the plain violation of its kind (``except ToxicityViolation`` catches a toxic stream
too) and a :class:`StreamViolation` (catch every stopped stream at once). Like every violation it carries
the window's :class:`ModerationResult` (labels, scores, spans relative to the window) and a message that
names labels only, never the streamed text.
"""

from __future__ import annotations

from typing import Any, ClassVar

from modchain.core.errors import (
    ModerationViolation,
    PiiViolation,
    PromptSafetyViolation,
    ToxicityViolation,
)


class StreamViolation(ModerationViolation):
    """A window of streamed output violated the policy; the stream was stopped.

    Attributes:
        window: ``(index, start, end)`` of the offending window, offsets into the stream's text.
        released_chars: how many characters had been handed on before the stream stopped.
        mode: ``safety_first`` (nothing unchecked was released) or ``low_latency`` (text up to
            ``released_chars`` already went out; remove it from the screen).
    """

    default_message: ClassVar[str] = "The streamed output violates the moderation policy and was stopped"

    def __init__(
        self,
        message: str | None = None,
        *,
        result: Any = None,
        window: tuple[int, int, int] | None = None,
        released_chars: int = 0,
        mode: str = "",
    ) -> None:
        super().__init__(message, result=result)
        self.window = window
        self.released_chars = released_chars
        self.mode = mode

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.result, self.window, self.released_chars, self.mode))


def _rebuild(cls: type[StreamViolation], message: str, result: Any, window: Any, released: int,
             mode: str) -> StreamViolation:
    return cls(message, result=result, window=window, released_chars=released, mode=mode)


class StreamPiiViolation(StreamViolation, PiiViolation):
    default_message = "The streamed output contains PII entities and was stopped"


class StreamToxicityViolation(StreamViolation, ToxicityViolation):
    default_message = "The streamed output contains toxic content and was stopped"


class StreamPromptSafetyViolation(StreamViolation, PromptSafetyViolation):
    default_message = "The streamed output is unsafe (prompt injection or jailbreak) and was stopped"


STREAM_VIOLATION_BY_FILTER: dict[str, type[StreamViolation]] = {
    "pii": StreamPiiViolation,
    "toxicity": StreamToxicityViolation,
    "prompt_safety": StreamPromptSafetyViolation,
}
