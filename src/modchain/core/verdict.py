"""The judge core: one verdict type, one ask-and-re-ask loop, one error for "no usable verdict".

Two components ask an LLM for a verdict: the text judge (:class:`~modchain.backends.llm_judge.LlmJudgeBackend`,
Llama Guard's ``safe`` / ``unsafe`` plus category codes) and the image verdict
(:class:`~modchain.image_moderation.verdict.LlmVerdict`, a JSON ``{flag, category, reason}``). They differ in their prompt
and their answer format; everything else is here, written once:

- :class:`Verdict`, the base of both verdicts (``flag``, ``reason``, ``categories``);
- :func:`verdict_text`, the answer's text whatever LangChain shape it came in, and :func:`strip_reasoning`;
- :func:`ask_for_verdict` / :func:`aask_for_verdict`: ask, parse, and send an unusable answer back in the
  same conversation with the reason, up to ``max_attempts`` answers in all; a failed model call becomes a
  :class:`~modchain.core.errors.BackendError` (a timeout a ``BackendTimeoutError``), and running out of
  attempts raises :class:`VerdictError` carrying every refused answer.

The JSON answer reader lives in :mod:`modchain.core.verdict_json`. Both modules are light (no langchain at
import), so backends and components alike may import them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modchain.core.errors import BackendError, BackendTimeoutError, ConfigurationError
from modchain.core.llm_output import answer_text

__all__ = [
    "Verdict",
    "VerdictAttempt",
    "VerdictError",
    "VerdictParseError",
    "aask_for_verdict",
    "ask_for_verdict",
    "check_max_attempts",
    "continue_conversation",
    "model_call_failed",
    "strip_reasoning",
    "verdict_text",
]

V = TypeVar("V")
Conversation = TypeVar("Conversation")

_TRUE = {"true", "yes", "y", "1", "unsafe", "flag", "flagged", "block", "blocked"}
_FALSE = {"false", "no", "n", "0", "safe", "none", "allow", "allowed", "ok", "not flagged"}


class VerdictParseError(ValueError):
    """An answer that is not a valid verdict; the message says why and never quotes the answer (it is sent
    back to the model as the reason, and may end up in logs)."""


class Verdict(BaseModel):
    """A judge's decision about one piece of content: does it violate the policy, under which categories, why.

    The base of every judge's verdict; each answer format adds its own fields in a thin subclass (the text
    judge's category codes, the image verdict's single category) and names them through :attr:`categories`,
    so code that only needs the decision reads any verdict alike. ``flag`` accepts the spellings models use
    (``"yes"``, ``"unsafe"``, ``1``, ...).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    flag: bool = Field(description="True when the content violates the policy.")
    reason: str = Field("", description="The judge's short justification ('' when its answer format has none).")

    @property
    def categories(self) -> tuple[str, ...]:
        """The violated policy categories, as the judge's policy names or codes them (empty when not flagged)."""
        return ()

    @field_validator("flag", mode="before")
    @classmethod
    def _tolerant_flag(cls, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            key = " ".join(value.strip().strip(".!").lower().split())
            if key in _TRUE:
                return True
            if key in _FALSE:
                return False
        raise ValueError('flag must be true or false (or "yes"/"no")')

    @field_validator("reason", mode="before")
    @classmethod
    def _tolerant_reason(cls, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, (list, tuple)):
            return " ".join(str(v) for v in value)
        if not isinstance(value, str):
            raise ValueError("reason must be a string")
        return value.strip()


# -- errors -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictAttempt:
    """One answer of the model and why it could not be used."""

    output: str
    error: str

    def __repr__(self) -> str:  # the output may hold user content: show its size only
        return f"VerdictAttempt(output=<{len(self.output)} chars>, error={self.error!r})"


class VerdictError(BackendError):
    """The model gave no usable verdict in ``len(attempts)`` answers.

    ``attempts`` holds every answer (``.output``) with the reason it was refused (``.error``); the message
    names only the number of attempts and the last reason, which never quotes the answer: an answer can
    quote the content under review.
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


def model_call_failed(exc: BaseException, backend: str) -> BackendError:
    """A judge model's failure as a BackendError (the SDK's exception is chained by the caller, not quoted)."""
    if isinstance(exc, BackendError):
        return exc
    # asyncio.TimeoutError is TimeoutError only from Python 3.11 on
    kind = BackendTimeoutError if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) else BackendError
    return kind(f"{backend}: the model call failed ({type(exc).__name__})", backend=backend, operation="invoke")


def check_max_attempts(max_attempts: int) -> int:
    if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 1:
        raise ConfigurationError("max_attempts must be an integer >= 1")
    return max_attempts


# -- reading answers ----------------------------------------------------------------------------------------


def strip_reasoning(output: str) -> str:
    """The answer without a reasoning model's ``<think>...</think>`` block (it may mention any verdict)."""
    return re.sub(r"<think>.*?</think>", " ", output, flags=re.DOTALL | re.IGNORECASE)


def verdict_text(output: Any) -> str:
    """The text of a model's answer: a string, a message's text, or a ``Generation``'s ``.text``."""
    text = answer_text(output)
    if text is None:
        text = getattr(output, "text", None)  # a Generation
    if not isinstance(text, str):
        raise VerdictParseError(f"the model returned {type(output).__name__}, not text or a message")
    return text


def continue_conversation(messages: Sequence[Any], answer: str, instruction: str) -> list[Any]:
    """The conversation so far, the model's refused answer, and the instruction to answer again."""
    from langchain_core.messages import AIMessage, HumanMessage

    return [*messages, AIMessage(content=answer), HumanMessage(content=instruction)]


# -- the loop -----------------------------------------------------------------------------------------------


@dataclass
class _Rounds(Generic[V, Conversation]):
    """The state of one ask-and-re-ask exchange, shared by the sync and async loops."""

    conversation: Conversation
    parse: Callable[[str], V]
    re_ask: Callable[[Conversation, str, VerdictParseError], Conversation]
    max_attempts: int
    backend: str
    attempts: list[VerdictAttempt] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return len(self.attempts) < self.max_attempts

    def read(self, output: Any) -> tuple[bool, V | None]:
        """``(True, verdict)``, or ``(False, None)`` after recording the refusal and preparing the re-ask."""
        answer = ""
        try:
            answer = verdict_text(output)
            return True, self.parse(answer)
        except VerdictParseError as error:
            self.attempts.append(VerdictAttempt(answer, str(error)))
            if self.open:
                self.conversation = self.re_ask(self.conversation, answer, error)
            return False, None

    def exhausted(self) -> VerdictError:
        return VerdictError(f"{self.backend}: no valid verdict after {len(self.attempts)} attempt(s); last error: "
                            f"{self.attempts[-1].error}", attempts=self.attempts, backend=self.backend)


def ask_for_verdict(ask: Callable[[Conversation], Any], conversation: Conversation, *,
                    parse: Callable[[str], V],
                    re_ask: Callable[[Conversation, str, VerdictParseError], Conversation],
                    max_attempts: int, backend: str) -> V:
    """Ask the model (``ask(conversation)``) until ``parse`` accepts its answer's text.

    ``parse`` raises :class:`VerdictParseError` for an unusable answer; ``re_ask(conversation, answer, error)``
    is then the next conversation. Raises :class:`VerdictError` after ``max_attempts`` refused answers, and a
    :class:`~modchain.core.errors.BackendError` (chained to the SDK's exception) when the model call fails.
    """
    rounds = _Rounds(conversation, parse, re_ask, check_max_attempts(max_attempts), backend)
    while rounds.open:
        try:
            output = ask(rounds.conversation)
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001 - any SDK's failure becomes a BackendError
            raise model_call_failed(exc, backend) from exc
        done, verdict = rounds.read(output)
        if done:
            return verdict  # type: ignore[return-value]
    raise rounds.exhausted()


async def aask_for_verdict(ask: Callable[[Conversation], Awaitable[Any]], conversation: Conversation, *,
                           parse: Callable[[str], V],
                           re_ask: Callable[[Conversation, str, VerdictParseError], Conversation],
                           max_attempts: int, backend: str) -> V:
    """:func:`ask_for_verdict` with an async ``ask``."""
    rounds = _Rounds(conversation, parse, re_ask, check_max_attempts(max_attempts), backend)
    while rounds.open:
        try:
            output = await ask(rounds.conversation)
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise model_call_failed(exc, backend) from exc
        done, verdict = rounds.read(output)
        if done:
            return verdict  # type: ignore[return-value]
    raise rounds.exhausted()
