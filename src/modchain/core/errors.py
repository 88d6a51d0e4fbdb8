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


class UnsupportedLanguageError(InputError):
    """A text is in a language its filter's backend does not support, and the chain may not score it elsewhere.

    Raised with ``BackendConfig(unsupported_language="block")``, or when the local fallback cannot run the
    filter (labels it does not detect). The message names the filter, the backend and the language code,
    never the text. ``fail_open`` does not apply: failing open would let through a text nobody scored.
    """

    def __init__(self, message: str = "", *, filter: str = "", backend: str = "", language: str = "") -> None:
        super().__init__(message or f"the {filter} filter's backend {backend!r} does not support language "
                                    f"{language!r}")
        self.filter = filter
        self.backend = backend
        self.language = language


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


# -- image inputs ---------------------------------------------------------------------------------------------
# Messages name the kind of source, its size and format only; never image bytes, base64 text or pixels.

class ImageInputError(InputError):
    """An image source that cannot be used: wrong type, missing file, undecodable, too large, ..."""


class CorruptImageError(ImageInputError):
    """The data claims to be an image of an allowed format but cannot be decoded (truncated, damaged)."""


class UnsupportedImageFormatError(ImageInputError):
    """Not an image, or an image format that is not allowed (allowed: JPEG, PNG, WebP, GIF, BMP, TIFF)."""


class ImageTooLargeError(ImageInputError):
    """The encoded image is larger than the configured ``max_bytes``."""


class DecompressionBombError(ImageTooLargeError):
    """The image declares more pixels than ``max_pixels`` (or Pillow's own limit): decoding could exhaust memory."""


# -- image generation -----------------------------------------------------------------------------------------
# Messages name labels, categories and counts only, never the prompt or image data.

class PromptRejectedViolation(ModerationViolation):
    """The image prompt was rejected (denylist, toxicity or prompt safety). ``result`` is the
    :class:`~modchain.generation.results.PromptCheck`."""

    default_message = "The image prompt violates the moderation policy and cannot be processed"
    filter_type = "prompt_guard"

    def _describe(self, result: Any) -> str:
        findings = getattr(result, "findings", ()) or ()
        labels = sorted({f"{f.filter}:{f.label}" for f in findings})
        return f"{self.default_message} ({', '.join(labels)})" if labels else self.default_message


class UnsafeGenerationViolation(ModerationViolation):
    """Every attempt produced an image the output moderation flagged and the policy is to raise.
    ``result`` is the :class:`~modchain.generation.results.GenerationResult` (without an image)."""

    default_message = "The generated image violates the moderation policy"
    filter_type = "generation"

    def _describe(self, result: Any) -> str:
        attempts = getattr(result, "attempts", ()) or ()
        categories = sorted({c for a in attempts for c in a.categories})
        detail = f" after {len(attempts)} attempt(s)" if attempts else ""
        return f"{self.default_message}{detail}" + (f" ({', '.join(categories)})" if categories else "")


class UnsafeImageViolation(ModerationViolation):
    """An image was flagged in ``mode="block"``. ``result`` is the
    :class:`~modchain.image_moderation.image_chain.ImageModerationResult`."""

    default_message = "The image violates the moderation policy"
    filter_type = "image"

    def _describe(self, result: Any) -> str:
        category = getattr(result, "category", None)
        return f"{self.default_message} ({category})" if category else self.default_message


class ToolOutputViolation(ModerationViolation):
    """A tool's output was blocked (``on_block="raise"``). ``verdict`` holds kinds and scores, no text."""

    default_message = "The tool output was blocked by content moderation"
    filter_type = "tool_output"

    def __init__(self, message: str | None = None, *, verdict: Any = None, tool: str = "") -> None:
        self.verdict = verdict
        self.tool = tool
        reasons = ", ".join(verdict.flags) if verdict is not None else ""
        super().__init__(message or f"{self.default_message} (tool {tool!r}: {reasons})")

    def __reduce__(self) -> tuple[Any, ...]:
        # The base class rebuilds with ``result=``; this violation carries a verdict and a tool name instead.
        return (_rebuild_tool_violation, (self.message, self.verdict, self.tool))


def _rebuild_tool_violation(message: str, verdict: Any, tool: str) -> ToolOutputViolation:
    return ToolOutputViolation(message, verdict=verdict, tool=tool)


# -- streaming ------------------------------------------------------------------------------------------------
# Each stream violation is also the plain violation of its kind (``except ToxicityViolation`` catches a toxic
# stream too) and a StreamViolation (catch every stopped stream at once). It carries the window's result
# (labels, scores, spans relative to the window) and a message that names labels only, never the streamed text.

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
        return (_rebuild_stream_violation,
                (type(self), self.message, self.result, self.window, self.released_chars, self.mode))


def _rebuild_stream_violation(cls: type[StreamViolation], message: str, result: Any, window: Any, released: int,
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
