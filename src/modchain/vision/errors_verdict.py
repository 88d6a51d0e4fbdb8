"""The error an :class:`~modchain.vision.verdict.LlmVerdict` raises when the model never gave a usable verdict.

Kept in its own module (not ``core/errors.py``) so the vision package can grow without touching the core.
The model's raw answers are kept on the exception (``attempts``) for debugging, but never in its message:
an answer can quote the evidence, and the evidence can quote text found in a user's image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modchain.core.errors import BackendError


@dataclass(frozen=True)
class VerdictAttempt:
    """One answer of the model and why it could not be used."""

    output: str
    error: str

    def __repr__(self) -> str:  # the output may hold user content: show its size only
        return f"VerdictAttempt(output=<{len(self.output)} chars>, error={self.error!r})"


class VerdictError(BackendError):
    """No valid ``{flag, category, reason}`` verdict after ``len(attempts)`` answers.

    ``attempts`` holds every answer (``.output``) with the reason it was refused (``.error``); the message
    names only the number of attempts and the last reason, which never quotes the answer.
    """

    def __init__(self, message: str, *, attempts: Sequence[VerdictAttempt] = (), backend: str = "llm-verdict",
                 operation: str = "parse") -> None:
        super().__init__(message, backend=backend, operation=operation)
        self.attempts: tuple[VerdictAttempt, ...] = tuple(attempts)

    @property
    def outputs(self) -> list[str]:
        """The raw answers, in order."""
        return [a.output for a in self.attempts]

    def __reduce__(self) -> tuple[Any, ...]:  # picklable with its attempts (multiprocessing, Ray)
        return (_rebuild, (type(self), str(self), self.attempts, self.backend, self.operation))


def _rebuild(cls: type[VerdictError], message: str, attempts: tuple[VerdictAttempt, ...], backend: str,
             operation: str) -> VerdictError:
    return cls(message, attempts=attempts, backend=backend, operation=operation)
