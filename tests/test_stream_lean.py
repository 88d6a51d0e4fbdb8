"""StreamGuard's lean path: a guard on the offline fast tier checks windows in the stream's own thread.

The worker-thread loop stays for every other guard (remote backends, guards that are not a ModerationChain).
Both loops must release exactly the same text, report exactly the same windows and raise the same
violations: these tests run one stream through both and compare, for any chunking.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessageChunk

from modchain import (
    ModerationCallbackHandler,
    ModerationChain,
    ModerationConfig,
    PiiConfig,
    ToxicityConfig,
)
from modchain.backends.aws.comprehend import ComprehendBackend
from modchain.backends.local.backend import LocalBackend
from modchain.text.streaming import StreamGuard
from modchain.text.streaming.violations import StreamViolation

SSN = "123-45-6789"
PROSE = ("The library opens at nine on weekdays and at ten on Saturdays. Members can borrow up to eight books "
         "for three weeks, and renew them online twice. The reading room on the second floor is quiet; the "
         "café downstairs serves soup and sandwiches until two. ")
TOXIC = "Shut up, you pathetic moron, nobody wants you here."
GUARD = ModerationChain()  # the offline cascade (default tier): checked in the stream's thread
PII_GUARD = ModerationChain(ModerationConfig(filters=[PiiConfig()]))
MODES = ["safety_first", "low_latency"]


class Opaque:
    """The same chain behind an object that is not a ModerationChain: the guard cannot tell what it runs
    on, so it checks in the worker thread. Only what StreamGuard uses of a chain is passed through."""

    def __init__(self, chain: ModerationChain) -> None:
        self.chain = chain
        self.config = chain.config
        self.dispatcher = chain.dispatcher

    def moderate(self, text: str, config: Any = None) -> Any:
        return self.chain.moderate(text, config)

    async def amoderate(self, text: str, config: Any = None) -> Any:
        return await self.chain.amoderate(text, config)


class Windows(ModerationCallbackHandler):
    """Records each checked window, and the thread that checked it."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, bool, str | None]] = []
        self.threads: set[int] = set()

    def on_after_stream(self, beacon, unique_id, **kwargs):
        out = beacon["moderation_output"]
        self.seen.append((out["start"], out["end"], out["final"], out["blocked_by"]))
        self.threads.add(threading.get_ident())


def split_at(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(text)}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def run(chain: Any, chunks: list[Any], **kwargs: Any) -> tuple[str, list, BaseException | None, set[int]]:
    recorder = Windows()
    guard = StreamGuard(guard=chain, callbacks=[recorder], **kwargs)
    out: list[Any] = []
    try:
        for chunk in guard.transform(iter(chunks)):
            out.append(chunk)
    except StreamViolation as exc:
        return "".join(c if isinstance(c, str) else c.content for c in out), recorder.seen, exc, recorder.threads
    return "".join(c if isinstance(c, str) else c.content for c in out), recorder.seen, None, recorder.threads


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(1, 700), max_size=25), window=st.integers(40, 240), overlap=st.integers(0, 39),
       mode=st.sampled_from(MODES), messages=st.booleans())
def test_inline_and_worker_loops_release_and_report_the_same(cuts, window, overlap, mode, messages):
    text = (PROSE + f"Call me on jo@example.com about SSN {SSN} please. " + PROSE)[:700]
    chunks: list[Any] = split_at(text, cuts)
    if messages:
        chunks = [AIMessageChunk(content=c) for c in chunks]
    kwargs = {"mode": mode, "window_chars": window, "overlap_chars": overlap}
    inline = run(PII_GUARD, chunks, **kwargs)
    worker = run(Opaque(PII_GUARD), chunks, **kwargs)
    if mode == "safety_first":
        assert inline[:3] == worker[:3] == (inline[0], inline[1], None)
        assert SSN not in inline[0] and inline[0].count("*") >= len(SSN)
    else:
        # The SSN went out at once: either loop stops the stream on it. The worker takes the verdict in at
        # the first chunk after its check finished (timing), the inline loop at the first chunk after the
        # window: never later, so its released text and windows are a prefix of the worker's.
        assert type(inline[2]) is type(worker[2]) and inline[2] is not None
        assert inline[2].window == worker[2].window
        assert worker[0].startswith(inline[0]) and worker[1][: len(inline[1])] == inline[1]


@pytest.mark.parametrize("mode", MODES)
def test_a_toxic_phrase_stops_both_loops_on_the_same_window(mode):
    text = PROSE + TOXIC + " " + PROSE
    at = len(PROSE)
    for cut in range(at, at + len(TOXIC), 7):
        chunks = split_at(text, [cut, *range(5, len(text), 13)])
        inline = run(GUARD, chunks, mode=mode, window_chars=120, overlap_chars=60)
        worker = run(Opaque(GUARD), chunks, mode=mode, window_chars=120, overlap_chars=60)
        assert isinstance(inline[2], StreamViolation) and type(inline[2]) is type(worker[2])
        assert inline[2].window == worker[2].window
        assert inline[1] == worker[1][: len(inline[1])]  # the worker may have checked later windows too
        if mode == "safety_first":
            assert len(inline[0]) <= at and len(worker[0]) <= at  # nothing of the phrase went out


def test_fast_and_cascade_checks_run_in_the_streams_thread_and_others_in_a_worker(comprehend, comprehend_client):
    chunks = split_at(PROSE * 3, list(range(9, 3 * len(PROSE), 9)))
    before = set(threading.enumerate())
    _, seen, error, threads = run(GUARD, chunks, window_chars=100, overlap_chars=30)
    assert error is None and seen and threads == {threading.get_ident()}
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("modchain-stream")]

    fast = ModerationChain(backend=LocalBackend("fast"))
    _, seen, error, threads = run(fast, chunks, window_chars=100, overlap_chars=30)
    assert error is None and seen and threads == {threading.get_ident()}

    # the accurate tier runs the encoder on every window (ONNX, off the GIL): a worker, as a remote backend
    accurate = ModerationChain(ModerationConfig(filters=[ToxicityConfig()]), backend=LocalBackend("accurate"))
    _, seen, error, threads = run(accurate, chunks, window_chars=100, overlap_chars=30)
    assert error is None and seen and threading.get_ident() not in threads
    _, seen, error, threads = run(Opaque(GUARD), chunks, window_chars=100, overlap_chars=30)
    assert error is None and seen and threading.get_ident() not in threads
    remote = ModerationChain(ModerationConfig(filters=[ToxicityConfig()]), backend=ComprehendBackend(comprehend_client))
    _, seen, error, threads = run(remote, chunks, window_chars=100, overlap_chars=30)
    assert error is None and seen and threading.get_ident() not in threads


class ChainEvents(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_chain_start(self, serialized, inputs, **kwargs):
        self.events.append(("start", kwargs.get("name")))

    def on_chain_end(self, outputs, **kwargs):
        self.events.append(("end", outputs))


def test_a_traced_stream_is_still_a_langchain_run():
    # Untraced streams skip LangChain's run bookkeeping; a handler in the config gets the run as before.
    text = PROSE + f"SSN {SSN}. " + PROSE
    chunks = split_at(text, list(range(11, len(text), 11)))
    handler = ChainEvents()
    guard = StreamGuard(guard=GUARD, window_chars=100, overlap_chars=30)
    traced = "".join(guard.transform(iter(chunks), config={"callbacks": [handler]}))
    untraced = "".join(guard.transform(iter(chunks)))
    assert traced == untraced == text.replace(SSN, "*" * len(SSN))
    assert handler.events[0] == ("start", "StreamGuard") and handler.events[-1] == ("end", traced)
