"""Checking one window of a stream with a ModerationChain: verdict, callback event, violation.

Shared by both modes of :class:`StreamGuard` and by its sync and async paths. Runs on whatever thread
checks the window (low-latency mode checks in a worker), so it touches no per-stream state but the
window it is given.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig

from modchain.core.callbacks import CallbackDispatcher
from modchain.core.errors import (
    STREAM_VIOLATION_BY_FILTER,
    BackendError,
    ConfigurationError,
    StreamPiiViolation,
    StreamViolation,
)
from modchain.core.events import ModerationEvent
from modchain.core.results import ModerationResult
from modchain.text.streaming.windows import StreamConfig, StreamWindows, Window


@dataclass
class StreamRun:
    """The state of one guarded stream."""

    windows: StreamWindows
    config: RunnableConfig | None
    unique_id: str | None
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    pending: deque[tuple[Any, str, int, int]] = field(default_factory=deque)  # chunk, its text, start, end
    sent: int = 0  # characters handed on so far

    def stopped(self, exc: BaseException) -> BaseException:
        """``exc``, with how much had been released when the stream stopped (for violations)."""
        if isinstance(exc, StreamViolation):
            exc.released_chars = self.sent
        return exc


class WindowChecker:
    """Moderates windows with ``guard`` under ``config`` and reports each to ``on_after_stream``."""

    def __init__(self, guard: Any, config: StreamConfig, dispatcher: CallbackDispatcher) -> None:
        self.guard = guard
        self.config = config
        self.dispatcher = dispatcher

    def begin(self, config: RunnableConfig | None) -> StreamRun:
        configurable = (config or {}).get("configurable") or {}
        unique_id = (configurable.get("unique_id") or configurable.get("user_id")
                     or getattr(self.guard, "unique_id", None))
        return StreamRun(StreamWindows(self.config), config, unique_id)

    def _judge(self, run: StreamRun, window: Window,
               result: ModerationResult) -> tuple[ModerationEvent | None, StreamViolation | None, str]:
        """The event to emit (None if no handler wants it), the violation to raise, the sanitized text."""
        sanitized = result.texts[0] if result.allowed and result.texts else window.text
        if len(sanitized) != len(window.text):
            raise ConfigurationError("the guard changed the length of streamed text; use redact, not anonymize")
        violation: StreamViolation | None = None
        span = (window.index, window.start, window.end)
        if not result.allowed:
            kind = STREAM_VIOLATION_BY_FILTER.get(result.blocked_by or "", StreamViolation)
            violation = kind(result=result, window=span, mode=self.config.mode)
        elif sanitized != window.text and self.config.mode == "low_latency" and self.config.low_latency_pii == "stop":
            # The PII already went out: stop the stream. The result keeps no text, like any blocked result.
            blocked = result.model_copy(update={"allowed": False, "blocked_by": "pii", "texts": (), "output": None})
            violation = StreamPiiViolation(result=blocked, window=span, mode=self.config.mode)
        event = None
        if self.dispatcher.wants("stream"):
            event = ModerationEvent.of("stream", run.run_id, bool(result.findings), [window.text], {
                "window": window.index, "start": window.start, "end": window.end, "final": window.final,
                "mode": self.config.mode, "allowed": violation is None, "blocked_by": result.blocked_by,
                "findings": [f.model_dump(exclude_none=True) for f in result.findings]}, unique_id=run.unique_id)
        return event, violation, sanitized

    def _error_event(self, run: StreamRun, window: Window, exc: BackendError) -> ModerationEvent | None:
        if not self.dispatcher.wants("stream"):
            return None
        return ModerationEvent.of("stream", run.run_id, False, [window.text],
                                  {"window": window.index, "error": type(exc).__name__}, unique_id=run.unique_id,
                                  error=True)

    def check(self, run: StreamRun, window: Window) -> str:
        """Check a window; returns its sanitized text, or raises its violation (or the backend error)."""
        try:
            result = self.guard.moderate(window.text, run.config)
        except BackendError as exc:
            if (event := self._error_event(run, window, exc)) is not None:
                self.dispatcher.emit(event)
            raise
        event, violation, sanitized = self._judge(run, window, result)
        if event is not None:
            self.dispatcher.emit(event)
        if violation is not None:
            raise violation
        return sanitized

    async def acheck(self, run: StreamRun, window: Window) -> str:
        try:
            result = await self.guard.amoderate(window.text, run.config)
        except BackendError as exc:
            if (event := self._error_event(run, window, exc)) is not None:
                await self.dispatcher.aemit(event)
            raise
        event, violation, sanitized = self._judge(run, window, result)
        if event is not None:
            await self.dispatcher.aemit(event)
        if violation is not None:
            raise violation
        return sanitized
