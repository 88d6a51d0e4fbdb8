"""The CPU-bound work behind each endpoint (runs in worker threads; no web framework here).

Every failure is raised as a :class:`ServiceError` carrying an HTTP status and a message that never holds
request content, so the app can answer it in OpenAI's error format without logging anything sensitive.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modchain.core.config import ModerationConfig, PromptSafetyConfig, ToxicityConfig
from modchain.core.errors import (
    BackendError,
    BackendThrottledError,
    ConfigurationError,
    ImageTooLargeError,
    InputError,
)
from modchain.serving.moderation.guard import ServiceLimits
from modchain.serving.moderation.openai_mapping import InputScores, Thresholds, to_openai_result

logger = logging.getLogger("modchain.serving.moderation")

#: Only inline images: a remote URL would make the server fetch arbitrary addresses (SSRF), and a plain
#: string would be read as a server-side file path by ``load_image``.
_DATA_URI = re.compile(r"^data:image/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)


class ServiceError(Exception):
    """An HTTP error answer; ``message`` is shown to the client and must not contain request content."""

    def __init__(self, status: int, message: str, code: str, kind: str = "invalid_request_error",
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.kind = status, message, code, kind
        self.headers = dict(headers or {})


@dataclass
class OpenAIInput:
    """One entry of OpenAI's results: its texts and its images (data URIs)."""

    texts: list[str]
    images: list[str]


def check_text(text: str, limits: ServiceLimits) -> None:
    if len(text) > limits.max_text_chars:
        raise ServiceError(413, f"A text input is over the limit of {limits.max_text_chars} characters.",
                           "text_too_long")


def check_inputs(inputs: Sequence[OpenAIInput], limits: ServiceLimits) -> None:
    if not inputs or not any(item.texts or item.images for item in inputs):
        raise ServiceError(400, "input must not be empty.", "empty_input")
    if sum(len(item.texts) for item in inputs) > limits.max_inputs:
        raise ServiceError(413, f"More than {limits.max_inputs} texts in one request.", "too_many_inputs")
    images = [url for item in inputs for url in item.images]
    if len(images) > limits.max_images:
        raise ServiceError(413, f"More than {limits.max_images} images in one request.", "too_many_images")
    for item in inputs:
        for text in item.texts:
            check_text(text, limits)
    for url in images:
        match = _DATA_URI.match(url)
        if match is None:
            raise ServiceError(400, "image_url.url must be a data:image/...;base64,... URI; remote URLs are "
                               "not fetched.", "invalid_image_url")
        # Refuse an oversized payload from its length, before decoding it (4 base64 characters = 3 bytes).
        if (len(url) - match.end()) * 3 // 4 > limits.max_image_bytes + 2:
            raise ServiceError(413, f"An image is over the limit of {limits.max_image_bytes} bytes.",
                               "image_too_large")


def mapped_errors(operation: str) -> Any:
    """A context manager turning modchain and unexpected errors into ServiceErrors (type names only)."""
    from contextlib import contextmanager

    @contextmanager
    def scope() -> Any:
        try:
            yield
        except ServiceError:
            raise
        except BackendThrottledError:
            raise ServiceError(429, "The moderation backend is throttling; retry shortly.", "backend_throttled",
                               "rate_limit_error", {"retry-after": "1"}) from None
        except BackendError as exc:
            logger.warning("%s: backend failed (%s)", operation, type(exc).__name__)
            raise ServiceError(503, "The moderation backend is unavailable (fail closed).", "backend_error",
                               "server_error", {"retry-after": "5"}) from None
        except (InputError, ConfigurationError) as exc:
            # Library messages never carry user text (project rule), so they can guide the client.
            status = 413 if isinstance(exc, ImageTooLargeError) else 400
            raise ServiceError(status, str(exc), type(exc).__name__) from None
        except Exception as exc:
            logger.error("%s failed: %s", operation, type(exc).__name__)
            raise ServiceError(500, "Internal error.", "internal_error", "server_error") from None

    return scope()


class OpenAIScorer:
    """Scores OpenAI-style inputs with one config's backends: every toxicity label and UNSAFE_PROMPT."""

    def __init__(self, config: ModerationConfig, labeler: Any, limits: ServiceLimits, *,
                 image_threshold: float = 0.5, flag_prompt_attacks: bool = True) -> None:
        from modchain.text.chain import ModerationChain

        tox = next((f for f in config.filters if isinstance(f, ToxicityConfig)), None)
        safety = next((f for f in config.filters if isinstance(f, PromptSafetyConfig)), None)
        # Threshold 0 and detect: the scorer wants every score; the config's thresholds decide the flags.
        filters: list[Any] = [ToxicityConfig(threshold=0.0, action="detect", backend=tox.backend if tox else None)]
        if safety is not None:
            filters.append(PromptSafetyConfig(threshold=0.0, action="detect", backend=safety.backend))
        self.chain = ModerationChain(ModerationConfig(filters=filters, backend=config.backend))
        self.thresholds = Thresholds(
            toxicity=tox.threshold if tox else 0.5, prompt_safety=safety.threshold if safety else 0.5,
            image=image_threshold, toxicity_labels=frozenset(tox.labels) if tox else frozenset(),
            prompt_safety_enabled=safety is not None, flag_prompt_attacks=flag_prompt_attacks)
        self.labeler = labeler
        self.limits = limits

    def score(self, inputs: Sequence[OpenAIInput]) -> list[dict[str, Any]]:
        scores = [InputScores() for _ in inputs]
        flat = [(i, text) for i, item in enumerate(inputs) for text in item.texts]
        if flat:
            for (i, _), result in zip(flat, self.chain.moderate_batch([text for _, text in flat])):
                scores[i].add_text((f.label, f.score, f.category) for f in result.findings)
        images = [(i, url) for i, item in enumerate(inputs) for url in item.images]
        if images:
            decoded = [self._decode(url) for _, url in images]
            for (i, _), findings in zip(images, self.labeler.get().label_batch(decoded)):
                scores[i].add_image((f.label, f.score) for f in findings)
        return [to_openai_result(s, self.thresholds) for s in scores]

    def _decode(self, url: str) -> Any:
        try:
            from modchain.core.images import decode_image, load_image_bytes
        except ImportError as exc:
            raise ConfigurationError(f"image moderation needs pip install 'modchain[image]' ({exc.name})") from None

        # The URI was checked against _DATA_URI, so load_image_bytes takes its data-URI branch.
        data = load_image_bytes(url, max_bytes=self.limits.max_image_bytes)
        return decode_image(data, max_pixels=self.limits.max_image_pixels)


class LazyLabeler:
    """The image labeler, built on first use (NudeNet loads onnxruntime and OpenCV)."""

    def __init__(self, labeler: Any = None) -> None:
        self._labeler = labeler
        import threading

        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock:
            if self._labeler is None:
                from modchain.backends.local.nudenet import NudeNetLabeler

                # 0.2: NudeNet's own floor, so weak detections still show as scores; flags use image_threshold.
                self._labeler = NudeNetLabeler(threshold=0.2)
            return self._labeler
