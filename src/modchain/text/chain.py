"""ModerationChain: the text guard you pipe around any LLM (``prompt | guard | llm | guard``).

One call runs the configured filters in order over every text of the input (all messages, all text parts),
each filter deciding on the previous one's output. A batch is moderated as one unit per filter: the texts of
all inputs go to the backend together, so a remote backend can pack and parallelize requests across messages.

Filters on I/O-bound backends (Comprehend, Bedrock) overlap their requests within one call (see
``filter_rounds``): with PII, toxicity and prompt safety on Comprehend, one message costs about one round trip
instead of three. What a filter decides, and everything a caller observes, is what the sequential order gives:
results, findings and their order, the text each callback beacon reports, callback and tracing order, and
which filter's error or violation ends the call. What stays sequential, and why:

* a filter after a ``redact``/``anonymize`` filter whose backend is a *different* instance (say local PII
  redaction, then toxicity on Comprehend): that service must only ever receive the rewritten text;
* a filter whose text an earlier filter of the same call did rewrite: its early scores were for the old text,
  so it is asked again with the rewritten one (one more round trip, only for the texts that changed;
  e.g. a message with an email redacted, then scored for toxicity);
* filters on CPU-bound backends (the offline ``local`` one, Hugging Face models): overlapping gains nothing
  under the interpreter lock, so they run one after another in the caller's thread, with no thread pool.

Overlapping filters may send a request whose answer is then not needed (the message was blocked by an
earlier filter); it is dropped as if never made: no finding, callback or trace event comes from it, and its
failure does not fail the call. ``FilterResult.elapsed_ms`` is each filter's own backend time, so with
overlapping filters they add up to more than the call took. ``parallel_filters=False`` turns overlapping off.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig

from modchain.core.callbacks import CallbackDispatcher, make_beacon
from modchain.core.config import BackendConfig, ModerationConfig
from modchain.core.errors import BackendError, ConfigurationError
from modchain.core.registry import create_backend
from modchain.core.results import FilterResult, Finding, ModerationResult
from modchain.core.vault import AnonymizationVault, scope_key
from modchain.text.filter_base import TextFilter
from modchain.text.filter_rounds import (
    Outcome,
    Step,
    arun_step,
    carry,
    make_step,
    run_step,
    scores,
    settle_all,
    still_needed,
    submit,
)
from modchain.text.messages import Unpacked, unpack
from modchain.text.pii import PiiFilter
from modchain.text.prompt_safety import PromptSafetyFilter
from modchain.text.restore import SCOPE_KEYS, RestorePii
from modchain.text.toxicity import ToxicityFilter
from modchain.text.tracing import atrace_filter, trace_filter

logger = logging.getLogger("modchain")

#: Inputs moderated together per filter pass in a batch (see _moderate_items).
BATCH_GROUP = 500

_FILTER_CLASSES: dict[str, type[TextFilter]] = {
    "pii": PiiFilter,
    "toxicity": ToxicityFilter,
    "prompt_safety": PromptSafetyFilter,
}


@dataclass
class _Item:
    """The state of one input while the filters run over it."""

    unpacked: Unpacked
    unique_id: str | None
    scope: str
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    findings: list[Finding] = field(default_factory=list)
    filter_results: list[FilterResult] = field(default_factory=list)
    blocked_by: TextFilter | None = None
    error: BaseException | None = None

    @property
    def texts(self) -> list[str]:
        return self.unpacked.texts

    @property
    def live(self) -> bool:
        return self.blocked_by is None and self.error is None


def _check_capability(backend: Any, text_filter: TextFilter) -> None:
    """Fail at first use, not silently, when a backend cannot do what a filter asks."""
    name = getattr(backend, "name", type(backend).__name__)
    if hasattr(backend, "supports") and not backend.supports(text_filter.kind):
        raise ConfigurationError(f"backend {name!r} cannot run the {text_filter.kind!r} filter")
    if getattr(text_filter.config, "recognizers", ()) and not getattr(backend, "runs_custom_recognizers", False):
        # Fail closed: a custom entity the backend would silently not look for is a leak, not a config detail.
        raise ConfigurationError(f"backend {name!r} cannot run custom PII recognizers; use the local backend "
                                 "for this filter (backend='local')")
    known = getattr(backend, "labels", {}).get(text_filter.kind)
    if known is not None:
        known = known | frozenset(getattr(text_filter.config, "custom_labels", ()))
    missing = sorted(set(getattr(text_filter.config, "labels", ())) - known) if known is not None else []
    if missing:
        raise ConfigurationError(
            f"backend {name!r} cannot detect {missing} for the {text_filter.kind!r} filter; it detects "
            f"{sorted(known)}. Use another backend for this filter (backend=...) or drop those labels."
        )


def config_value(config: RunnableConfig | None, *keys: str) -> Any:
    """The first of ``keys`` set (not None) in ``config["configurable"]``, else None."""
    configurable = (config or {}).get("configurable") or {}
    for key in keys:
        if configurable.get(key) is not None:
            return configurable[key]
    return None


class ModerationChain(Runnable[Any, Any]):
    """Moderates text in, text out, keeping the shape of its input.

    Args:
        config: a :class:`ModerationConfig`, a dict in its shape, or None for the defaults
            (redact PII, block toxicity, block unsafe prompts, offline ``local`` backend).
        backend: a backend instance (e.g. ``ComprehendBackend(client=...)``) or name used by every filter
            that does not name its own.
        backends: backend instances by name, for filters whose config sets ``backend=...``.
        callbacks: audit handlers (:class:`ModerationCallbackHandler` subclasses), sync or async.
        unique_id: the user or session id passed to callbacks; per call, set
            ``config={"configurable": {"unique_id": ...}}`` instead.
        vault: where anonymized placeholders are kept (shared with :meth:`restorer`).
        input_key: the key holding the text when the input is a dict.
        parallel_filters: let filters on I/O-bound backends (Comprehend, Bedrock) of one call overlap their
            requests (default); False runs every filter after the previous one settled.
    """

    def __init__(
        self,
        config: ModerationConfig | dict[str, Any] | None = None,
        *,
        backend: Any = None,
        backends: dict[str, Any] | None = None,
        callbacks: Sequence[Any] = (),
        unique_id: str | None = None,
        vault: AnonymizationVault | None = None,
        input_key: str = "input",
        name: str | None = None,
        raise_callback_errors: bool = False,
        parallel_filters: bool = True,
    ) -> None:
        if config is None:
            config = ModerationConfig()
        elif isinstance(config, dict):
            config = ModerationConfig.from_dict(config)
        elif not isinstance(config, ModerationConfig):
            raise ConfigurationError(f"config must be a ModerationConfig or dict, not {type(config).__name__}")
        self.config = config
        self.filters = [_FILTER_CLASSES[f.type](f) for f in config.filters]
        self._anonymizes = any(getattr(f, "action", None) == "anonymize" for f in config.filters)
        self._backends: dict[str, Any] = dict(backends or {})
        if isinstance(backend, str):
            config = config.model_copy(update={"backend": config.backend.model_copy(update={"name": backend})})
            self.config = config
            backend = None
        self._default_backend = backend
        self._checked: set[int] = set()
        self.dispatcher = CallbackDispatcher(callbacks, raise_errors=raise_callback_errors)
        self.unique_id = unique_id
        # Not `vault or ...`: an empty vault has len 0 and is falsy, and a shared one must still be used.
        self.vault = vault if vault is not None else AnonymizationVault()
        self.input_key = input_key
        self.name = name or "ModerationChain"
        self.parallel_filters = parallel_filters

    # -- backends --------------------------------------------------------------------------------------

    def backend_for(self, text_filter: TextFilter) -> Any:
        """The backend instance a filter runs on, created (and checked against the filter) on first use."""
        backend = self._resolve_backend(text_filter)
        if id(text_filter) not in self._checked:
            _check_capability(backend, text_filter)
            self._checked.add(id(text_filter))
        return backend

    def _resolve_backend(self, text_filter: TextFilter) -> Any:
        name = text_filter.config.backend
        if name is None:
            if self._default_backend is None:
                self._default_backend = self._backends.get(self.config.backend.name) or create_backend(
                    self.config.backend
                )
            return self._default_backend
        if name not in self._backends:
            if self._default_backend is not None and getattr(self._default_backend, "name", None) == name:
                self._backends[name] = self._default_backend
            else:
                self._backends[name] = create_backend(self.config.backend.model_copy(update={"name": name}))
        return self._backends[name]

    def _fails_open(self, text_filter: TextFilter) -> bool:
        own = text_filter.config.fail_open
        return self.config.fail_open if own is None else own

    # -- the filter loop, shared by sync and async paths ----------------------------------------------

    def _start(self, value: Any, config: RunnableConfig | None) -> _Item:
        unique_id = config_value(config, "unique_id", "user_id") or self.unique_id
        scope = config_value(config, *SCOPE_KEYS) or unique_id
        if scope is None and self._anonymizes:
            # A shared fallback scope would let one user's placeholders restore another user's data.
            raise ConfigurationError(
                "anonymize needs a conversation scope: pass config={'configurable': {'conversation_id': ...}} "
                "(or session_id / thread_id / unique_id), or build the chain with unique_id=..."
            )
        # Type-strict when it keys the vault: str(1) == "1" would hand conversation 1 the data of "1".
        return _Item(unpack(value, self.input_key), unique_id, scope_key(scope) if self._anonymizes else str(scope))

    def _pending(self, items: list[_Item]) -> tuple[list[str], list[tuple[_Item, int]]]:
        """The non-empty texts of live items, flattened, and where each came from."""
        texts: list[str] = []
        owners: list[tuple[_Item, int]] = []
        for item in items:
            if item.live:
                for index, text in enumerate(item.texts):
                    if text.strip():
                        texts.append(text)
                        owners.append((item, index))
        return texts, owners

    def _settle(
        self,
        index: int,
        text_filter: TextFilter,
        backend: Any,
        owners: list[tuple[_Item, int]],
        scored: list[Any] | None,
        error: BackendError | None,
        elapsed_ms: float,
    ) -> list[tuple[_Item, dict[str, Any]]]:
        """Apply one filter's scores to its items; returns the callback events to emit, in order."""
        backend_name = getattr(backend, "name", type(backend).__name__)
        if scored is not None and len(scored) != len(owners):
            scored, error = None, BackendError(
                f"backend {backend_name!r} returned {len(scored)} results for {len(owners)} texts",
                backend=backend_name)
        wants_events = self.dispatcher.wants(text_filter.kind)
        per_item: dict[int, list[int]] = {}
        for position, (item, _) in enumerate(owners):
            per_item.setdefault(id(item), []).append(position)
        items = {id(item): item for item, _ in owners}
        events = []
        for key, positions in per_item.items():
            item = items[key]
            selected: list[Finding] = []
            checked = [item.texts[owners[p][1]] for p in positions] if wants_events else []
            if error is None:
                assert scored is not None
                for position in positions:
                    text_index = owners[position][1]
                    chosen = text_filter.select(scored[position].findings)
                    if text_index:
                        chosen = [f.model_copy(update={"text_index": text_index}) for f in chosen]
                    selected.extend(chosen)
                    item.texts[text_index] = text_filter.apply(
                        item.texts[text_index], chosen, vault=self.vault, scope=item.scope
                    )
            blocked = text_filter.blocks(selected)
            if error is not None and not self._fails_open(text_filter):
                item.error = error
            elif error is not None:
                logger.warning("%s filter failed open on backend %s: %s", text_filter.kind, backend_name,
                               type(error).__name__)
            if blocked:
                item.blocked_by = text_filter
            item.findings.extend(selected)
            item.filter_results.append(FilterResult(
                filter=text_filter.kind, index=index, backend=backend_name, action=text_filter.config.action,
                findings=tuple(selected), blocked=blocked or item.error is not None,
                error=type(error).__name__ if error is not None else None, elapsed_ms=elapsed_ms,
            ))
            if wants_events:
                if error is None:
                    beacon = make_beacon(item.run_id, text_filter.kind, bool(selected), checked,
                                         [scored[p].raw for p in positions])  # type: ignore[index]
                else:
                    beacon = make_beacon(item.run_id, text_filter.kind, False, checked,
                                         {"error": type(error).__name__}, status="ERROR")
                events.append((item, beacon))
        return events

    def _finish(self, item: _Item) -> ModerationResult:
        blocked = item.blocked_by.kind if item.blocked_by else (
            item.filter_results[-1].filter if item.error is not None else None)
        allowed = blocked is None
        return ModerationResult(
            allowed=allowed,
            blocked_by=blocked,
            findings=tuple(item.findings),
            filters=tuple(item.filter_results),
            # A blocked result travels with the violation (logged, pickled): it keeps no text at all.
            texts=tuple(item.texts) if allowed else (),
            output=item.unpacked.rebuild(item.texts) if allowed else None,
            unique_id=item.unique_id,
        )

    def _plan(self, items: list[_Item], start: int, carried: dict[int, Any]) -> list[Step]:
        """The next round: filter ``start`` and the filters after it that may start at the same time.

        A filter joins only if its backend waits on I/O (``io_bound``; a CPU-bound backend gains nothing
        from overlapping and runs alone, in the caller's thread, with no pool round trip), and only if every
        text-rewriting filter before it in the round runs on the same backend instance: that service was
        sent the unrewritten text anyway, while another one must only ever see the rewritten text.
        """
        texts, owners = self._pending(items)
        if not owners:
            return []
        steps = [make_step(start, self.filters[start], self.backend_for(self.filters[start]), texts, owners,
                           carried.pop(start, None))]
        for index in range(start + 1, len(self.filters) if self.parallel_filters else start + 1):
            text_filter = self.filters[index]
            try:
                backend = self.backend_for(text_filter)
            except ConfigurationError:
                break  # raised when the chain reaches this filter in order, as a sequential chain would
            if not getattr(backend, "io_bound", False) or any(
                    step.backend is not backend for step in steps if step.text_filter.rewrites_text):
                break
            steps.append(make_step(index, text_filter, backend, texts, owners, carried.pop(index, None)))
        return steps

    def _settled(self, step: Step, outcome: Outcome, first: bool) -> list[tuple[_Item, dict[str, Any]]] | None:
        """Apply a step's scores; None when a text changed under it (the round must end before it)."""
        if first:  # nothing has been applied in this round yet
            scored, error = scores(step, outcome)
            return self._settle(step.index, step.text_filter, step.backend, step.owners, scored, error,
                                step.carried_ms + outcome.elapsed_ms)
        keep, stale = still_needed(step)
        if stale:
            return None
        if not keep:
            return []  # every text it checked was blocked earlier: as if it had never been asked
        scored, error = scores(step, outcome)
        owners = step.owners if len(keep) == len(step.owners) else [step.owners[p] for p in keep]
        if scored is not None and len(keep) != len(step.owners):
            scored = [scored[p] for p in keep]
        return self._settle(step.index, step.text_filter, step.backend, owners, scored, error,
                            step.carried_ms + outcome.elapsed_ms)

    def _moderate_items(self, items: list[_Item], managers: Sequence[Any] = (), configs: Sequence[Any] = ()) -> None:
        if len(items) > BATCH_GROUP:
            # Large batches go through in groups: a backend's intermediate results for 10,000 texts at once
            # only feed the garbage collector (measured: ~20% slower offline), and remote backends already
            # fill their largest requests with a group this size.
            for i in range(0, len(items), BATCH_GROUP):
                self._moderate_items(items[i : i + BATCH_GROUP], managers[i : i + BATCH_GROUP],
                                     configs[i : i + BATCH_GROUP])
            return
        start, carried = 0, {}
        while start < len(self.filters) and any(item.live for item in items):
            steps = self._plan(items, start, carried)
            if not steps:
                return
            futures = [submit(step) for step in steps[1:]]
            outcomes = [run_step(steps[0])]
            start = steps[-1].index + 1
            for position, step in enumerate(steps):
                if position:
                    outcomes.append(futures[position - 1].result())
                events = self._settled(step, outcomes[position], position == 0)
                if events is None:
                    for later, future in zip(steps[position:], futures[position - 1:]):
                        carried[later.index] = carry(later, future.result())
                    start = step.index
                    break
                for item, beacon in events:
                    self.dispatcher.emit(step.text_filter.kind, beacon, item.unique_id)
                trace_filter(items, managers, configs, step.text_filter, step.index)

    async def _amoderate_items(
        self, items: list[_Item], managers: Sequence[Any] = (), configs: Sequence[Any] = ()
    ) -> None:
        if len(items) > BATCH_GROUP:
            for i in range(0, len(items), BATCH_GROUP):
                await self._amoderate_items(items[i : i + BATCH_GROUP], managers[i : i + BATCH_GROUP],
                                            configs[i : i + BATCH_GROUP])
            return
        start, carried = 0, {}
        while start < len(self.filters) and any(item.live for item in items):
            steps = self._plan(items, start, carried)
            if not steps:
                return
            if len(steps) == 1:
                await self._asettle_round(steps, [], items, managers, configs, carried, await arun_step(steps[0]))
                start = steps[0].index + 1
                continue
            tasks = [asyncio.ensure_future(arun_step(step)) for step in steps]
            try:
                start = await self._asettle_round(steps, tasks, items, managers, configs, carried, None)
            finally:
                await settle_all([task for task in tasks if not task.done()])

    async def _asettle_round(self, steps: list[Step], tasks: list[Any], items: list[_Item], managers: Sequence[Any],
                             configs: Sequence[Any], carried: dict[int, Any], first: Outcome | None) -> int:
        """Settle an async round in order; returns the filter index the next round starts at."""
        for position, step in enumerate(steps):
            outcome = first if first is not None else await tasks[position]
            events = self._settled(step, outcome, position == 0)
            if events is None:
                for later, task in zip(steps[position:], tasks[position:]):
                    carried[later.index] = carry(later, await task)
                return step.index
            for item, beacon in events:
                await self.dispatcher.aemit(step.text_filter.kind, beacon, item.unique_id)
            await atrace_filter(items, managers, configs, step.text_filter, step.index)
        return steps[-1].index + 1

    # -- public API ------------------------------------------------------------------------------------

    def moderate(self, value: Any, config: RunnableConfig | None = None) -> ModerationResult:
        """Moderate and return the full result instead of raising on a violation.

        A backend error still raises (fail closed) unless the filter is configured to fail open.
        """
        return self.moderate_batch([value], config)[0]

    def moderate_batch(self, values: Sequence[Any], config: RunnableConfig | None = None) -> list[ModerationResult]:
        items = [self._start(value, config) for value in values]
        self._moderate_items(items)
        return [self._raise_error(item) or self._finish(item) for item in items]

    async def amoderate(self, value: Any, config: RunnableConfig | None = None) -> ModerationResult:
        return (await self.amoderate_batch([value], config))[0]

    async def amoderate_batch(
        self, values: Sequence[Any], config: RunnableConfig | None = None
    ) -> list[ModerationResult]:
        items = [self._start(value, config) for value in values]
        await self._amoderate_items(items)
        return [self._raise_error(item) or self._finish(item) for item in items]

    @staticmethod
    def _raise_error(item: _Item) -> None:
        if item.error is not None:
            raise item.error

    def _outcome(self, item: _Item) -> Any:
        if item.error is not None:
            return item.error
        result = self._finish(item)
        if not result.allowed:
            assert item.blocked_by is not None
            return item.blocked_by.violation(result=result)
        return result.output

    def _start_all(self, values: list[Any], managers: list[Any], configs: list[RunnableConfig]):  # type: ignore[no-untyped-def]
        """Items for the inputs that unpack, exceptions (reported per input) for those that do not."""
        started: list[_Item | BaseException] = []
        for value, config in zip(values, configs):
            try:
                started.append(self._start(value, config))
            except Exception as exc:  # noqa: BLE001 - reported per input, like Runnable.batch does
                started.append(exc)
        keep = [isinstance(i, _Item) for i in started]
        live = [i for i, k in zip(started, keep) if k]
        return (started, live, [m for m, k in zip(managers, keep) if k], [c for c, k in zip(configs, keep) if k])

    def _run_batch(self, values: list[Any], run_manager: list[Any], config: list[RunnableConfig]) -> list[Any]:
        # Parameter names are what Runnable._batch_with_config passes by keyword.
        started, live, managers, configs = self._start_all(values, run_manager, config)
        self._moderate_items(live, managers, configs)  # type: ignore[arg-type]
        return [i if isinstance(i, BaseException) else self._outcome(i) for i in started]

    async def _arun_batch(
        self, values: list[Any], run_manager: list[Any], config: list[RunnableConfig]
    ) -> list[Any]:
        started, live, managers, configs = self._start_all(values, run_manager, config)
        await self._amoderate_items(live, managers, configs)  # type: ignore[arg-type]
        return [i if isinstance(i, BaseException) else self._outcome(i) for i in started]

    def _invoke_one(self, value: Any, run_manager: Any, config: RunnableConfig) -> Any:
        outcome = self._run_batch([value], [run_manager], [config])[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def _ainvoke_one(self, value: Any, run_manager: Any, config: RunnableConfig) -> Any:
        outcome = (await self._arun_batch([value], [run_manager], [config]))[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        """Moderate ``input``; returns it sanitized in the same shape, or raises a violation."""
        return self._call_with_config(self._invoke_one, input, config, run_type="chain")

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self._acall_with_config(self._ainvoke_one, input, config, run_type="chain")

    def batch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """Moderate many inputs with one backend pass per filter (requests packed across inputs)."""
        if not inputs:
            return []
        return self._batch_with_config(
            self._run_batch, inputs, config, return_exceptions=return_exceptions, run_type="chain"
        )

    async def abatch(
        self,
        inputs: list[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        if not inputs:
            return []
        return await self._abatch_with_config(
            self._arun_batch, inputs, config, return_exceptions=return_exceptions, run_type="chain"
        )

    def restorer(self) -> Runnable[Any, Any]:
        """A Runnable that puts anonymized originals back: ``guard | llm | guard.restorer()``."""
        return RestorePii(self.vault, input_key=self.input_key, default_scope=self.unique_id)

    @classmethod
    def with_backend(cls, backend_config: BackendConfig | dict[str, Any], **kwargs: Any) -> ModerationChain:
        """A chain with default filters on the given backend config (``{"name": "comprehend", ...}``)."""
        if isinstance(backend_config, dict):
            backend_config = BackendConfig.model_validate(backend_config)
        config = kwargs.pop("config", None) or ModerationConfig()
        if isinstance(config, dict):
            config = ModerationConfig.from_dict(config)
        return cls(config.model_copy(update={"backend": backend_config}), **kwargs)
