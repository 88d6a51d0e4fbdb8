"""Audit callbacks: ``on_after_pii``, ``on_after_toxicity``, ``on_after_prompt_safety`` (and later steps).

A handler method may be ``def`` or ``async def``. Every call is awaited before the chain moves on, in the
order the steps ran, so no event is lost or reordered:

* from ``ainvoke``/``abatch`` a coroutine is awaited on the caller's own event loop;
* from ``invoke``/``batch`` (scripts, threads, and Jupyter, where a loop already runs in the main thread)
  a coroutine runs on one private background loop and the caller waits for it. The earlier design,
  ``asyncio.create_task`` from sync code, crashed outside a running loop and dropped events inside one.

A failing handler is logged (its exception type only: a message may hold personal data) and the chain
goes on; pass ``raise_errors=True`` to the dispatcher to make handler failures fatal.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger("modchain.callbacks")

#: moderation_type values in beacons, kept from the Comprehend moderation chain for compatibility.
BEACON_TYPES = {"pii": "PII", "toxicity": "Toxicity", "prompt_safety": "PromptSafety",
                "image_labels": "ImageLabels", "vqa": "VisualQuestionAnswering", "verdict": "ImageVerdict",
                "documents": "RetrievedDocuments", "tool_output": "ToolOutput", "stream": "StreamWindow",
                "prompt_guard": "PromptGuard", "generation": "ImageGeneration", "screen": "DatasetScreening",
                "detection": "ObjectDetection", "segmentation": "Segmentation"}


def make_beacon(chain_id: str, step: str, found: bool, moderation_input: Any, backend_output: Any,
                status: str | None = None) -> dict:
    """The dict every handler receives: chain id, step, status, the checked input, the backend's output.

    Status is LABELS_FOUND, LABELS_NOT_FOUND, or ERROR when the backend failed (output then names the error).
    """
    return {
        "moderation_chain_id": chain_id,
        "moderation_type": BEACON_TYPES.get(step, step),
        "moderation_status": status or ("LABELS_FOUND" if found else "LABELS_NOT_FOUND"),
        "moderation_input": moderation_input,
        "moderation_output": backend_output,
    }


class ModerationCallbackHandler:
    """Override any ``on_after_<step>`` method, sync or async. Unoverridden steps cost nothing."""

    def on_after_pii(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
        """Called after the PII filter ran."""

    def on_after_toxicity(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
        """Called after the toxicity filter ran."""

    def on_after_prompt_safety(
        self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any
    ) -> Any:
        """Called after the prompt-safety filter ran."""

    def on_after_image_labels(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
        """Called after an image labeler (NudeNet, Rekognition) ran."""

    def on_after_vqa(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
        """Called after visual question answering produced the evidence."""

    def on_after_verdict(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
        """Called after the LLM verdict on an image."""

    def on_after_documents(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
        """Called after retrieved documents were moderated (kept, redacted, dropped)."""

    def on_after_tool_output(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
        """Called after a tool's output was moderated, before the agent sees it."""

    def on_after_stream(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
        """Called after a window of streamed output was moderated."""

    def on_after_prompt_guard(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
        """Called after an image-generation prompt was checked (denylist, toxicity, prompt safety)."""

    def on_after_generation(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
        """Called after a generated image was moderated (once per attempt)."""

    def on_after_screen(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
        """Called after one dataset item (an image or the instance prompt) was screened."""

    def on_after_detection(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
        """Called after a visual chain's detector stage (text query -> boxes)."""

    def on_after_segmentation(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
        """Called after a visual chain's segmenter stage (prompts -> masks)."""

    def handles(self, step: str) -> bool:
        """Whether this handler overrides ``on_after_<step>`` (so the chain can skip building beacons)."""
        method = getattr(type(self), f"on_after_{step}", None)
        if method is None:
            return False
        for base in type(self).__mro__:
            if f"on_after_{step}" in base.__dict__:
                return base not in _BASE_HANDLER_CLASSES
        return False


#: Classes whose on_after_* methods are no-op defaults (extended by compat's handler base).
_BASE_HANDLER_CLASSES: set[type] = {ModerationCallbackHandler}


def register_base_handler_class(cls: type) -> None:
    _BASE_HANDLER_CLASSES.add(cls)


class _BackgroundLoop:
    """One daemon thread running an event loop, for async handlers called from synchronous code."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, coro: Any) -> Any:
        if threading.current_thread() is self._thread:
            # A handler running on this loop called a sync chain: waiting on our own loop would deadlock,
            # so run this one coroutine to completion on a loop (and thread) of its own.
            return _run_in_fresh_thread(coro)
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="modchain-callbacks", daemon=True)
                self._thread.start()
                self._loop = loop
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()


def _run_in_fresh_thread(coro: Any) -> Any:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="modchain-callbacks-nested", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


_background = _BackgroundLoop()


class CallbackDispatcher:
    """Calls the handlers of a chain for one step, in registration order."""

    def __init__(self, handlers: Sequence[Any] = (), *, raise_errors: bool = False) -> None:
        self.handlers = [h for h in handlers if h is not None]
        self.raise_errors = raise_errors

    def wants(self, step: str) -> bool:
        return any(_handles(h, step) for h in self.handlers)

    def emit(self, step: str, beacon: dict[str, Any], unique_id: str | None) -> None:
        for handler in self.handlers:
            if not _handles(handler, step):
                continue
            try:
                outcome = getattr(handler, f"on_after_{step}")(beacon, unique_id)
                if inspect.isawaitable(outcome):
                    _background.run(_await(outcome))
            except Exception as exc:  # noqa: BLE001 - a handler must not break moderation
                self._failed(handler, step, exc)

    async def aemit(self, step: str, beacon: dict[str, Any], unique_id: str | None) -> None:
        for handler in self.handlers:
            if not _handles(handler, step):
                continue
            try:
                outcome = getattr(handler, f"on_after_{step}")(beacon, unique_id)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as exc:  # noqa: BLE001
                self._failed(handler, step, exc)

    def _failed(self, handler: Any, step: str, exc: Exception) -> None:
        if self.raise_errors:
            raise exc
        logger.warning("moderation callback %s.on_after_%s failed with %s", type(handler).__name__, step,
                       type(exc).__name__)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _handles(handler: Any, step: str) -> bool:
    if callable(getattr(handler, "handles", None)):
        return bool(handler.handles(step))
    return callable(getattr(handler, f"on_after_{step}", None))
