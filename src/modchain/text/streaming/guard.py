"""StreamGuard: moderate ``stream`` / ``astream`` output while it streams, window by window.

Wrap any streaming Runnable (``StreamGuard(llm, guard=chain)``) or pipe after one (``llm | StreamGuard(
guard=chain)``). The stream's text is checked in overlapping windows laid over the text, not the chunks
(:mod:`modchain.text.streaming.windows`), so a phrase split across chunks is still seen whole. Two modes:

* ``safety_first`` holds each chunk back until every window touching it was checked, and hands it on with
  the chain's PII redactions applied: nothing unchecked, and no half of an SSN, ever goes out. It adds at
  most one window of latency.
* ``low_latency`` hands each chunk on at once and checks windows behind it, in a worker thread (a task under
  ``astream``) so a slow remote backend never delays a token; a violation stops the stream with a
  :class:`StreamViolation` before the chunk after its check finished (chunks that went out meanwhile were
  already released: ``released_chars`` says how much).

In both modes the tail is checked before the stream completes and every checked window reaches the
``on_after_stream`` callbacks. A backend error stops the stream (fail closed) unless the chain fails open.

Where a window is checked: a guard whose filters all run on the offline fast or cascade tier (pure-Python CPU
work, and on the cascade the encoder for the few windows the fast models are unsure of) is checked in the stream's
own thread, between chunks. Under the GIL a worker thread could not check it beside the stream anyway, only hand
the interpreter back and forth (that round trip cost more CPU than the checks themselves), so this gives the same
release order and hold time at less cost. A window the cascade sends to the encoder holds the stream for that one
call (a few ms on a CPU). Every other guard (remote backends, the accurate tier, which runs the encoder on every
window, any guard that is not a ModerationChain) is checked in the worker as above.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import ensure_config, get_callback_manager_for_config
from pydantic import ConfigDict, PrivateAttr

from modchain.core.callbacks import CallbackDispatcher
from modchain.core.config_base import coerce_config
from modchain.core.errors import ConfigurationError
from modchain.text.runnable_state import PerProcessState
from modchain.text.streaming.checks import StreamRun, WindowChecker
from modchain.text.streaming.chunks import ChunkText, join_chunks, split_chunk
from modchain.text.streaming.violations import (
    StreamPiiViolation,
    StreamPromptSafetyViolation,
    StreamToxicityViolation,
    StreamViolation,
)
from modchain.text.streaming.windows import StreamConfig, Window

__all__ = ["StreamConfig", "StreamGuard", "StreamPiiViolation", "StreamPromptSafetyViolation",
           "StreamToxicityViolation", "StreamViolation"]


def _combine(values: list[Any]) -> Any:
    """A wrapped runnable's input from an upstream stream (usually one value): the values added up."""
    total = values[0]
    for value in values[1:]:
        try:
            total = total + value
        except TypeError:
            total = value
    return total


#: Backends whose checks are in-process CPU work, mostly under the GIL: the offline fast tier, and the cascade, which
#: adds the encoder for the windows the fast models are unsure of (benchmarks/streaming.py --only cpu: in a worker
#: the cascade cost 1.7-2.1x the direct checks per KB, on the direct checks' own scale the fast tier's).
_INLINE_BACKENDS = frozenset({"local", "local:cascade"})


def _cpu_only(guard: Any) -> bool:
    """Whether every filter of ``guard`` runs on :data:`_INLINE_BACKENDS`: in this process, never waiting for a
    service, and calling the encoder for few windows if any (``local:accurate`` runs it on every window, and a
    service may take any time). Anything unknown counts as not: it keeps the worker thread."""
    filters, backend_for = getattr(guard, "filters", None), getattr(guard, "backend_for", None)
    if not filters or not callable(backend_for):
        return False
    try:
        return all(getattr(backend_for(f), "name", None) in _INLINE_BACKENDS for f in filters)
    except Exception:  # noqa: BLE001 - a backend that cannot be built fails at the first check, as before
        return False


class StreamGuard(PerProcessState, RunnableSerializable[Any, Any]):
    """Moderates a stream of ``str`` or message chunks, handing on each chunk as the type it came in.

    Args:
        runnable: the streaming Runnable to wrap (a chat model, LLM or chain); None to use the guard as a
            step after one (``llm | StreamGuard(guard=chain)``).
        guard: the :class:`ModerationChain` that checks each window (default: the default chain, offline).
            Its ``redact`` PII filters redact the stream; ``anonymize`` filters are refused (placeholders
            change lengths mid-stream; restore answers with ``guard.restorer()`` instead).
        config: the guard's settings, the one place the guard reads them: a :class:`StreamConfig`, a dict in its
            shape, or a YAML file path.
        mode / window_chars / overlap_chars: shorthands that build ``config`` (``StreamGuard(mode="low_latency")``
            is ``StreamGuard(config={"mode": "low_latency"})``); one given wins over the same key of ``config``.
            The guard keeps them as given only so that ``configurable_fields`` can rebuild it; read
            ``guard.config`` for the settings in force.
        callbacks: handlers for ``on_after_stream`` (default: the guard's own handlers).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, defer_build=True)  # schema built on first use, not at import

    runnable: Any = None
    guard: Any = None
    config: StreamConfig
    mode: str | None = None
    window_chars: int | None = None
    overlap_chars: int | None = None
    callbacks: Sequence[Any] | None = None

    _checker: WindowChecker | None = PrivateAttr(default=None)
    _chunks: ChunkText | None = PrivateAttr(default=None)
    _inline: bool | None = PrivateAttr(default=None)  # decided on first use: building a backend may fail there

    _PER_PROCESS = {"_checker": None, "_chunks": None, "_inline": None}
    _SHARED_ON_COPY = ("callbacks", "runnable")

    def __init__(
        self,
        runnable: Runnable[Any, Any] | None = None,
        *,
        guard: Any = None,
        config: StreamConfig | dict[str, Any] | str | None = None,
        mode: str | None = None,
        window_chars: int | None = None,
        overlap_chars: int | None = None,
        callbacks: Sequence[Any] | None = None,
        name: str | None = None,
    ) -> None:
        from modchain.text.chain import ModerationChain

        settings = coerce_config(StreamConfig, config, mode=mode, window_chars=window_chars,
                                 overlap_chars=overlap_chars)
        guard = guard if guard is not None else ModerationChain()
        if not (callable(getattr(guard, "moderate", None)) and callable(getattr(guard, "amoderate", None))):
            raise ConfigurationError("guard must be a ModerationChain (something with moderate and amoderate)")
        if any(getattr(f, "action", None) == "anonymize" for f in getattr(guard.config, "filters", ())):
            raise ConfigurationError("a stream cannot be anonymized (placeholders change lengths mid-stream); "
                                     "give the StreamGuard a chain whose PII filters redact")
        super().__init__(runnable=runnable, guard=guard, config=settings, mode=mode,
                         window_chars=window_chars, overlap_chars=overlap_chars,
                         callbacks=None if callbacks is None else tuple(callbacks), name=name or "StreamGuard")

    @property
    def checker(self) -> WindowChecker:
        """Checks one window with the guard (built once per process, on first use)."""
        if self._checker is None:
            dispatcher = getattr(self.guard, "dispatcher", None)
            handlers = self.callbacks if self.callbacks is not None else getattr(dispatcher, "handlers", ())
            self._checker = WindowChecker(self.guard, self.config, CallbackDispatcher(handlers))
        return self._checker

    @property
    def chunks(self) -> ChunkText:
        """Reads and rewrites the text of a chunk (per the reasoning policy)."""
        if self._chunks is None:
            self._chunks = ChunkText(self.config.reasoning)
        return self._chunks

    def _checks_inline(self) -> bool:
        """Whether windows are checked in the stream's thread: every filter on the offline fast or cascade tier."""
        if self._inline is None:
            self._inline = _cpu_only(self.guard)
        return self._inline

    # -- holding and releasing (safety first) ---------------------------------------------------------

    def _hold(self, run: StreamRun, chunk: Any) -> None:
        text = self.chunks.text(chunk)
        start, end = run.windows.append(text)
        run.pending.append((chunk, text, start, end))

    def _passed(self, run: StreamRun, window: Window, sanitized: str) -> None:
        if self.config.mode == "safety_first":
            if sanitized != window.text:
                run.windows.redact(window, sanitized)
            run.windows.passed(window)

    def _release(self, run: StreamRun) -> Iterator[Any]:
        """The held text up to the release point, redacted, in order. A chunk that straddles the release
        point is cut there: holding it whole could add a second window of latency."""
        released = run.windows.released
        while run.pending and (run.pending[0][3] <= released
                               or run.pending[0][2] < released and self.chunks.splittable(run.pending[0][0])):
            chunk, text, start, end = run.pending.popleft()
            if end > released:
                chunk, rest = split_chunk(chunk, released - start)
                run.pending.appendleft((rest, text[released - start:], released, end))
                text, end = text[: released - start], released
            masked = run.windows.masked(start, end)
            run.sent += end - start
            yield chunk if masked == text else self.chunks.with_text(chunk, masked)
        run.windows.trim(run.pending[0][2] if run.pending else None)

    # -- the stream loop: windows are checked behind the stream, one at a time, in order ---------------
    # Checks run in one worker thread (sync) or a chain of tasks (async), so the stream keeps flowing while
    # a window is checked: low-latency mode never waits for a check, and safety-first mode waits only for
    # the window's own check, not for the model to stall while a remote backend answers.

    def _guard(self, chunks: Iterator[Any], run: StreamRun) -> Iterator[Any]:
        return (self._guard_inline if self._checks_inline() else self._guard_worker)(chunks, run)

    def _guard_inline(self, chunks: Iterator[Any], run: StreamRun) -> Iterator[Any]:
        """The stream loop of a CPU-only guard: each window is checked here, as soon as its text is in.

        The same order as the worker loop: safety-first releases text once the windows touching it passed
        (window by window, so the head of a long chunk goes out after its first window); low-latency hands
        a chunk on first and checks the windows it completed when the consumer asks for the next one, so a
        violation stops the stream before the chunk after it."""
        holding = self.config.mode == "safety_first"
        windows, check, chunks_text = run.windows, self.checker.check, self.chunks
        try:
            for chunk in chunks:
                chunk = chunks_text.prepare(chunk)
                if holding:
                    self._hold(run, chunk)
                    while (window := windows.next_window()) is not None:
                        windows.schedule(window)
                        self._passed(run, window, check(run, window))
                        yield from self._release(run)
                    yield from self._release(run)  # a chunk without text, when nothing is held before it
                    continue
                text = chunks_text.text(chunk)
                windows.append(text)
                yield chunk  # released before any window holding it is checked
                run.sent += len(text)
                while (window := windows.next_window()) is not None:
                    windows.schedule(window)
                    check(run, window)  # raises the violation; released text is never redacted afterwards
                windows.trim()
            while (window := windows.next_window(final=True)) is not None:  # the tail, before the stream ends
                windows.schedule(window)
                self._passed(run, window, check(run, window))
            yield from self._release(run)
        except Exception as exc:
            raise run.stopped(exc)  # noqa: B904 - the violation itself is the error

    def _guard_worker(self, chunks: Iterator[Any], run: StreamRun) -> Iterator[Any]:
        holding = self.config.mode == "safety_first"
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modchain-stream")
        checks: deque[tuple[Window, Future[str]]] = deque()

        def schedule(final: bool = False) -> None:
            while (window := run.windows.next_window(final)) is not None:
                run.windows.schedule(window)
                checks.append((window, executor.submit(self.checker.check, run, window)))

        def settle(block: bool = False) -> None:
            """Take in finished checks, in order (raising a violation); with block, wait for the first."""
            while checks and (block or checks[0][1].done()):
                window, check = checks.popleft()
                self._passed(run, window, check.result())
                block = False

        try:
            for chunk in chunks:
                chunk = self.chunks.prepare(chunk)
                if holding:
                    self._hold(run, chunk)
                    schedule()
                    settle()
                    yield from self._release(run)
                    continue
                text = self.chunks.text(chunk)
                settle()  # a violation found so far stops the stream before this chunk goes out
                run.windows.append(text)
                yield chunk  # released before any window holding it is checked
                run.sent += len(text)
                schedule()
                run.windows.trim()
            schedule(final=True)  # the tail is always checked before the stream completes
            while checks:
                settle(block=True)
                yield from self._release(run)
        except Exception as exc:
            raise run.stopped(exc)  # noqa: B904 - the violation itself is the error
        finally:
            # Queued checks are dropped; a running one is waited for, so nothing of this stream (a request,
            # a callback) happens after it ended.
            executor.shutdown(wait=True, cancel_futures=True)

    async def _after(self, previous: asyncio.Future[str] | None, run: StreamRun, window: Window) -> str:
        if previous is not None:
            await asyncio.wait([previous])  # stream order; a failed predecessor is raised by the stream
        return await self.checker.acheck(run, window)

    async def _aguard(self, chunks: AsyncIterator[Any], run: StreamRun) -> AsyncIterator[Any]:
        holding = self.config.mode == "safety_first"
        checks: deque[tuple[Window, asyncio.Future[str]]] = deque()

        def schedule(final: bool = False) -> None:
            while (window := run.windows.next_window(final)) is not None:
                run.windows.schedule(window)
                last = checks[-1][1] if checks else None
                checks.append((window, asyncio.ensure_future(self._after(last, run, window))))

        async def settle(block: bool = False) -> None:
            while checks and (block or checks[0][1].done()):
                window, check = checks.popleft()
                self._passed(run, window, await check)
                block = False

        try:
            async for chunk in chunks:
                chunk = self.chunks.prepare(chunk)
                if holding:
                    self._hold(run, chunk)
                    schedule()
                    await settle()
                    for out in self._release(run):
                        yield out
                    continue
                text = self.chunks.text(chunk)
                await settle()
                run.windows.append(text)
                yield chunk
                run.sent += len(text)
                schedule()
                run.windows.trim()
            schedule(final=True)
            while checks:
                await settle(block=True)
                for out in self._release(run):
                    yield out
        except Exception as exc:
            raise run.stopped(exc)  # noqa: B904
        finally:
            for _, check in checks:
                check.cancel()

    # -- Runnable API ----------------------------------------------------------------------------------

    def _source(self, inputs: Iterator[Any], config: RunnableConfig) -> Iterator[Any]:
        if self.runnable is None:
            yield from inputs
        elif values := list(inputs):  # an upstream that yielded nothing gives the wrapped runnable no input
            yield from self.runnable.stream(_combine(values), config)

    async def _asource(self, inputs: AsyncIterator[Any], config: RunnableConfig) -> AsyncIterator[Any]:
        if self.runnable is None:
            async for value in inputs:
                yield value
        elif values := [v async for v in inputs]:
            async for chunk in self.runnable.astream(_combine(values), config):
                yield chunk

    def _transform(self, inputs: Iterator[Any], config: RunnableConfig) -> Iterator[Any]:
        return self._guard(self._source(inputs, config), self.checker.begin(config))

    async def _atransform(self, inputs: AsyncIterator[Any], config: RunnableConfig) -> AsyncIterator[Any]:
        async for chunk in self._aguard(self._asource(inputs, config), self.checker.begin(config)):
            yield chunk

    def transform(self, input: Iterator[Any], config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        config = ensure_config(config)
        if get_callback_manager_for_config(config).handlers:
            yield from self._transform_stream_with_config(input, self._transform, config)
        else:
            # Nobody traces this run (no handler, no tracer from the environment): skip LangChain's per-chunk
            # run bookkeeping (a tee of the input, and the input and output chunks added up for on_chain_end),
            # which cost about as much CPU as the guard itself.
            yield from self._transform(input, config)

    async def atransform(
        self, input: AsyncIterator[Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        async for chunk in self._atransform_stream_with_config(input, self._atransform, config):
            yield chunk

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        """Moderated chunks of the wrapped runnable's stream (or of ``input``, when wrapping nothing)."""
        yield from self.transform(iter([input]), config, **kwargs)

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        async def one() -> AsyncIterator[Any]:
            yield input

        async for chunk in self.atransform(one(), config, **kwargs):
            yield chunk

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """The moderated stream, added up: a ``str`` or a message chunk."""
        return join_chunks(list(self.stream(input, config, **kwargs)))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return join_chunks([chunk async for chunk in self.astream(input, config, **kwargs)])
