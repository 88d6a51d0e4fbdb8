"""Running a chain's filters concurrently without changing what any of them decides.

A chain runs its filters in *rounds*. A round starts at the next filter to run and takes the filters after
it for as long as they may start at once (see ``ModerationChain._plan``); every filter of a round scores the
texts as they were when the round started, the backend calls overlap, and the results are then applied
one filter at a time, in config order, exactly as a sequential chain would apply them.

Why the verdicts stay exact: a filter's scores are used only for texts that are still what it scored. When
an earlier filter of the round rewrote a text (``redact`` or ``anonymize`` found something), the later
filters' scores for that text are set aside and the round ends there; the next round scores only the
rewritten texts again, reusing the set-aside scores of texts that did not change (so a batch does not pay
twice for its untouched messages). A text blocked by an earlier filter simply drops the later filters'
scores, as if they had never been asked.

Why no personal data reaches a service it would not have reached: a filter joins a round after a rewriting
filter only if both run on the same backend instance, which was sent the same unrewritten text by the
rewriting filter itself (with language routing: only texts that the rewriting filter sent to that backend too).

Language routing (``Step.routes``): a step may send some of its texts to its backend, some to the local
fallback (languages the backend does not support) and refuse others (``unsupported_language="block"``); the
scores are merged back in order, so the rest of the round works as if one backend had scored them all.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modchain.core.errors import BackendError

if TYPE_CHECKING:  # components do not import backends at load time (see DESIGN.md, "Layers")
    from modchain.backends.base import Scored

#: Where a step sends each text (language routing): its backend, the local fallback, or nowhere (refused).
PRIMARY, FALLBACK, REFUSED = 0, 1, 2

#: Threads that run the second and later filters of a round (the first runs in the caller's thread). They
#: only wait on a backend's own requests, so they cost memory, not CPU; shared by every chain in the process.
POOL_THREADS = 32

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="modchain-filters")
        return _pool


@dataclass
class Step:
    """One filter of a round: which texts it checks and which of them still need a backend call."""

    index: int
    text_filter: Any
    backend: Any
    owners: list[tuple[Any, int]]  # (item, text index) of every text the filter checks
    seen: list[str]  # each owner's text when the round started: what the scores are for
    send: list[int]  # owner positions to score now (all of them unless scores were carried over)
    reused: dict[int, Scored] = field(default_factory=dict)  # owner position -> a carried-over score
    carried_ms: float = 0.0  # backend time already spent on the reused scores
    routes: list[int] | None = None  # per owner position: PRIMARY / FALLBACK / REFUSED; None: all PRIMARY
    fallback: Any = None  # the backend scoring the FALLBACK texts (the local one)

    def route_of(self) -> dict[tuple[int, int], int] | None:
        """Each routed text's route by (item, text index); None when every text went to ``backend``."""
        if self.routes is None:
            return None
        return {(id(item), index): route for (item, index), route in zip(self.owners, self.routes)}


@dataclass
class RoundOutcome:
    scored: list[Scored] | None  # one per ``Step.send`` position
    error: Exception | None
    elapsed_ms: float


def make_step(index: int, text_filter: Any, backend: Any, texts: list[str], owners: list[tuple[Any, int]],
              carried: tuple[dict[tuple[int, int], tuple[str, Scored]], float] | None) -> Step:
    if carried is None:
        return Step(index, text_filter, backend, owners, texts, list(range(len(owners))))
    scores, carried_ms = carried
    reused: dict[int, Scored] = {}
    for position, (item, text_index) in enumerate(owners):
        hit = scores.get((id(item), text_index))
        if hit is not None and hit[0] == texts[position]:
            reused[position] = hit[1]
    send = [p for p in range(len(owners)) if p not in reused]
    return Step(index, text_filter, backend, owners, texts, send, reused, carried_ms if reused else 0.0)


def _payload(step: Step) -> list[str]:
    return step.seen if len(step.send) == len(step.owners) else [step.seen[p] for p in step.send]


def _split(step: Step) -> tuple[list[int], list[int]]:
    """Indexes into ``step.send`` of the texts for the primary backend and for the fallback."""
    assert step.routes is not None
    primary = [i for i, p in enumerate(step.send) if step.routes[p] == PRIMARY]
    fallback = [i for i, p in enumerate(step.send) if step.routes[p] == FALLBACK]
    return primary, fallback


def _merge(step: Step, parts: list[tuple[list[int], list[Scored], Any]]) -> list[Scored]:
    """One score per ``step.send`` text from the backends' answers; refused texts get an empty placeholder
    (never applied: their item fails with ``UnsupportedLanguageError`` when the step is settled)."""
    from modchain.backends.base import Scored  # noqa: PLC0415 - components import backends lazily

    merged = [Scored() for _ in step.send]
    for positions, scored, backend in parts:
        if len(scored) != len(positions):
            name = getattr(backend, "name", type(backend).__name__)
            raise BackendError(f"backend {name!r} returned {len(scored)} results for {len(positions)} texts",
                               backend=name)
        for position, score in zip(positions, scored):
            merged[position] = score
    return merged


def _score(step: Step) -> list[Scored]:
    kind, config = step.text_filter.kind, step.text_filter.config
    if step.routes is None:
        return step.backend.run(kind, _payload(step), config)
    primary, fallback = _split(step)
    parts = []
    for positions, backend in ((primary, step.backend), (fallback, step.fallback)):
        if positions:
            parts.append((positions, backend.run(kind, [step.seen[step.send[i]] for i in positions], config),
                          backend))
    return _merge(step, parts)


async def _ascore(step: Step) -> list[Scored]:
    kind, config = step.text_filter.kind, step.text_filter.config
    if step.routes is None:
        return await step.backend.arun(kind, _payload(step), config)
    primary, fallback = _split(step)
    calls = [(positions, backend) for positions, backend in ((primary, step.backend), (fallback, step.fallback))
             if positions]
    answers = await asyncio.gather(*(backend.arun(kind, [step.seen[step.send[i]] for i in positions], config)
                                     for positions, backend in calls))
    return _merge(step, [(positions, answer, backend) for (positions, backend), answer in zip(calls, answers)])


def run_step(step: Step) -> RoundOutcome:
    """Score a step's texts; any failure is kept in the outcome and judged when the step is settled."""
    if not step.send:
        return RoundOutcome([], None, 0.0)
    started = time.perf_counter()
    try:
        scored = _score(step)
    except Exception as exc:  # noqa: BLE001 - judged at settle time: a dropped step must not raise
        return RoundOutcome(None, exc, (time.perf_counter() - started) * 1000)
    return RoundOutcome(scored, None, (time.perf_counter() - started) * 1000)


async def arun_step(step: Step) -> RoundOutcome:
    if not step.send:
        return RoundOutcome([], None, 0.0)
    started = time.perf_counter()
    try:
        scored = await _ascore(step)
    except Exception as exc:  # noqa: BLE001 - see run_step
        return RoundOutcome(None, exc, (time.perf_counter() - started) * 1000)
    return RoundOutcome(scored, None, (time.perf_counter() - started) * 1000)


def may_follow(rewriter: Step, step: Step) -> bool:
    """Whether ``step`` may score in the same round as the earlier, text-rewriting ``rewriter``: only texts
    that ``rewriter`` sent, unrewritten, to the same backend instance may go to that backend now."""
    if step.backend is not rewriter.backend:
        return False
    if rewriter.routes is None:
        return True
    later = step.routes or [PRIMARY] * len(step.owners)
    return all(route != PRIMARY or rewriter.routes[p] == PRIMARY for p, route in enumerate(later))


def submit(step: Step) -> Future[RoundOutcome]:
    # The caller's context variables (LangChain's run context among them) travel with the call.
    return _executor().submit(contextvars.copy_context().run, run_step, step)


def scores(step: Step, outcome: RoundOutcome) -> tuple[list[Scored] | None, BackendError | None]:
    """One score per owner, or the backend error; raises any other failure (a configuration error)."""
    if outcome.error is not None:
        if isinstance(outcome.error, BackendError):
            return None, outcome.error
        raise outcome.error
    sent = outcome.scored
    assert sent is not None
    if len(sent) != len(step.send):
        name = getattr(step.backend, "name", type(step.backend).__name__)
        return None, BackendError(f"backend {name!r} returned {len(sent)} results for {len(step.send)} texts",
                                  backend=name)
    if not step.reused:
        return list(sent), None
    full: list[Scored] = [step.reused.get(p) for p in range(len(step.owners))]  # type: ignore[misc]
    for position, score in zip(step.send, sent):
        full[position] = score
    return full, None


def carry(step: Step, outcome: RoundOutcome) -> tuple[dict[tuple[int, int], tuple[str, Scored]], float] | None:
    """A set-aside step's scores by (item, text index), for the round that checks the rewritten texts."""
    try:
        full, error = scores(step, outcome)
    except Exception:  # noqa: BLE001 - not carried; the next round calls again and meets it in order
        return None
    if full is None or error is not None:
        return None
    kept = {(id(item), index): (text, score) for (item, index), text, score in zip(step.owners, step.seen, full)}
    return kept, step.carried_ms + outcome.elapsed_ms


def still_needed(step: Step) -> tuple[list[int], bool]:
    """The owner positions this filter must still settle, and whether any of their texts changed."""
    keep: list[int] = []
    stale = False
    for position, (item, index) in enumerate(step.owners):
        if not item.live:
            continue
        text = item.texts[index]
        if not text.strip():  # rewritten to blank (a space mask): a sequential chain would skip it
            continue
        keep.append(position)
        if text != step.seen[position]:
            stale = True
    return keep, stale


async def settle_all(tasks: list[asyncio.Future[RoundOutcome]]) -> None:
    """Cancel and reap the tasks of a round left unsettled (the caller is raising)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
