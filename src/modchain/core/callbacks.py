"""Audit callbacks: the typed ``on_event`` hook and the beacon hooks ``on_after_pii``, ``on_after_toxicity``,
``on_after_prompt_safety`` (and the later steps' ``on_after_<step>``).

Every step of every component builds one :class:`~modchain.core.events.ModerationEvent` (only when a handler
wants it) and hands it to :class:`CallbackDispatcher`, which calls, for each handler in registration order,
its ``on_event(event)`` if it defines one, then its ``on_after_<step>(beacon, unique_id)`` if it overrides
that, with ``beacon = event.to_beacon()`` (the Comprehend moderation chain's dict, built once per event).

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
from collections.abc import Iterator, Sequence
from typing import Any

from modchain.core.events import BEACON_TYPES, ModerationEvent, make_beacon

__all__ = ["BEACON_TYPES", "CallbackDispatcher", "ModerationCallbackHandler", "ModerationEvent", "make_beacon",
           "register_base_handler_class"]

logger = logging.getLogger("modchain.callbacks")


class ModerationCallbackHandler:
    """Override ``on_event`` (every step, typed) and/or any ``on_after_<step>`` method (one step, beacon dict),
    sync or async. Unoverridden hooks cost nothing: no event is built for a step nobody listens to."""

    def on_event(self, event: ModerationEvent) -> Any:
        """Called after every step with its typed :class:`~modchain.core.events.ModerationEvent`."""

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
    """Calls the handlers of a component for each event, in registration order (see the module docstring)."""

    def __init__(self, handlers: Sequence[Any] = (), *, raise_errors: bool = False) -> None:
        self.handlers = [h for h in handlers if h is not None]
        self.raise_errors = raise_errors

    def wants(self, step: str) -> bool:
        """Whether any handler listens to ``step`` (emitters build no event otherwise)."""
        return any(_wants_events(h) or _handles(h, step) for h in self.handlers)

    def emit(self, event: ModerationEvent | str, beacon: dict[str, Any] | None = None,
             unique_id: str | None = None) -> None:
        """Deliver ``event`` from synchronous code; async handlers run to completion before this returns.

        The older form ``emit(step, beacon, unique_id)`` still works (its beacon is passed on as given).
        """
        for handler, hook, args in self._calls(event, beacon, unique_id):
            try:
                outcome = getattr(handler, hook)(*args)
                if inspect.isawaitable(outcome):
                    _background.run(_await(outcome))
            except Exception as exc:  # noqa: BLE001 - a handler must not break moderation
                self._failed(handler, hook, exc)

    async def aemit(self, event: ModerationEvent | str, beacon: dict[str, Any] | None = None,
                    unique_id: str | None = None) -> None:
        """Deliver ``event`` on the caller's loop; each async handler is awaited before the next is called."""
        for handler, hook, args in self._calls(event, beacon, unique_id):
            try:
                outcome = getattr(handler, hook)(*args)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as exc:  # noqa: BLE001
                self._failed(handler, hook, exc)

    def _calls(self, event: ModerationEvent | str, beacon: dict[str, Any] | None,
               unique_id: str | None) -> Iterator[tuple[Any, str, tuple[Any, ...]]]:
        """``(handler, hook name, arguments)`` in delivery order, building the beacon at most once."""
        if isinstance(event, str):  # the older (step, beacon, unique_id) form
            if beacon is None:
                raise TypeError("emit(step, beacon, unique_id) needs the beacon")
            event = _event_of_beacon(event, beacon, unique_id)
        hook = f"on_after_{event.step}"
        for handler in self.handlers:
            if _wants_events(handler):
                yield handler, "on_event", (event,)
            if _handles(handler, event.step):
                if beacon is None:
                    # One dict for all handlers, as before: a handler sees what an earlier one saw.
                    beacon = event.to_beacon()
                yield handler, hook, (beacon, event.unique_id)

    def _failed(self, handler: Any, hook: str, exc: Exception) -> None:
        if self.raise_errors:
            raise exc
        logger.warning("moderation callback %s.%s failed with %s", type(handler).__name__, hook,
                       type(exc).__name__)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _handles(handler: Any, step: str) -> bool:
    if callable(getattr(handler, "handles", None)):
        return bool(handler.handles(step))
    return callable(getattr(handler, f"on_after_{step}", None))


def _wants_events(handler: Any) -> bool:
    """Whether ``handler`` has an ``on_event`` of its own (the base class's is a no-op)."""
    method = getattr(handler, "on_event", None)
    return callable(method) and getattr(method, "__func__", None) is not ModerationCallbackHandler.on_event


def _event_of_beacon(step: str, beacon: dict[str, Any], unique_id: str | None) -> ModerationEvent:
    return ModerationEvent(step=step, chain_id=beacon["moderation_chain_id"], status=beacon["moderation_status"],
                           unique_id=unique_id, input=beacon.get("moderation_input"),
                           output=beacon.get("moderation_output"))
