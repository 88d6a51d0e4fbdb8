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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, PrivateAttr

from modchain.core.callbacks import CallbackDispatcher
from modchain.core.caller import caller_id
from modchain.core.config import BackendConfig, ModerationConfig
from modchain.core.config_base import coerce_config
from modchain.core.errors import ConfigurationError
from modchain.core.results import ModerationResult
from modchain.core.vault import AnonymizationVault, scope_key
from modchain.text.backend_cache import BackendCache
from modchain.text.chain_rounds import FILTER_CLASSES, FilterRounds, Item, check_capability, config_value
from modchain.text.filter_base import TextFilter
from modchain.text.filter_rounds import RoundOutcome, Step, arun_step, carry, run_step, settle_all, submit
from modchain.text.messages import unpack
from modchain.text.restore import SCOPE_KEYS, RestorePii
from modchain.text.runnable_state import PerProcessState, presigned
from modchain.text.tracing import atrace_filter, trace_filter

__all__ = ["BATCH_GROUP", "ModerationChain", "config_value"]

#: Inputs moderated together per filter pass in a batch (see _moderate_items).
BATCH_GROUP = 500


class ModerationChain(PerProcessState, FilterRounds, RunnableSerializable[Any, Any]):
    """Moderates text in, text out, keeping the shape of its input.

    Args:
        config: a :class:`ModerationConfig`, a dict in its shape, a YAML file path, or None for the defaults
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
        backend_cache: where backends built from the config are kept; leave it unset (the chain makes one and
            hands it to the copies ``configurable_fields`` / ``with_config`` build, so a per-call config does
            not build a new client or load a model on every call).

    A ``RunnableSerializable``: its fields are these arguments, so ``configurable_fields(config=
    ConfigurableField(id="moderation"))`` makes the config (thresholds, actions, filters) choosable per call
    with ``with_config(configurable={"moderation": {...}})``. It pickles and deep-copies (see
    :mod:`modchain.text.runnable_state`): backends it builds from its config are built again per process;
    backend instances passed in travel with it, so an AWS backend built around your own boto3 client refuses
    to pickle (``ConfigurationError``): give it region / profile / endpoint instead.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, defer_build=True)  # schema built on first use, not at import

    config: ModerationConfig
    backend: Any = None
    backends: dict[str, Any] = {}
    callbacks: Sequence[Any] = ()
    unique_id: Any = None  # not validated here: a scope's type is checked where it keys the vault
    vault: AnonymizationVault
    input_key: str = "input"
    raise_callback_errors: bool = False
    parallel_filters: bool = True
    backend_cache: BackendCache

    _filters: list[TextFilter] = PrivateAttr(default_factory=list)
    _dispatcher: CallbackDispatcher | None = PrivateAttr(default=None)
    _created: dict[str | None, Any] = PrivateAttr(default_factory=dict)  # backends built from the config
    _checked: set[int] = PrivateAttr(default_factory=set)  # ids of filters whose backend was checked

    _PER_PROCESS = {"_created": dict, "_checked": set, "_dispatcher": None}
    _SHARED_ON_COPY = ("vault", "callbacks", "backend", "backends", "backend_cache")

    def __init__(
        self,
        config: ModerationConfig | dict[str, Any] | str | Path | None = None,
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
        backend_cache: BackendCache | None = None,
    ) -> None:
        config = coerce_config(ModerationConfig, config)
        if isinstance(backend, str):
            config = config.model_copy(update={"backend": config.backend.model_copy(update={"name": backend})})
            backend = None
        super().__init__(
            config=config, backend=backend, backends=dict(backends or {}), callbacks=tuple(callbacks),
            unique_id=unique_id,
            # Not `vault or ...`: an empty vault has len 0 and is falsy, and a shared one must still be used.
            vault=vault if vault is not None else AnonymizationVault(),
            input_key=input_key, name=name or "ModerationChain", raise_callback_errors=raise_callback_errors,
            parallel_filters=parallel_filters,
            backend_cache=backend_cache if backend_cache is not None else BackendCache(),
        )
        self._filters = [FILTER_CLASSES[f.type](f) for f in config.filters]

    @property
    def filters(self) -> list[TextFilter]:
        """The configured filters, in order (built from ``config``)."""
        return self._filters

    @property
    def _anonymizes(self) -> bool:
        return any(getattr(f, "action", None) == "anonymize" for f in self.config.filters)

    # -- backends --------------------------------------------------------------------------------------

    def backend_for(self, text_filter: TextFilter) -> Any:
        """The backend instance a filter runs on, created (and checked against the filter) on first use."""
        backend = self._resolve_backend(text_filter)
        if id(text_filter) not in self._checked:
            check_capability(backend, text_filter)
            self._checked.add(id(text_filter))
        return backend

    def _default_backend(self) -> Any:
        """The backend of filters that name none: the one passed in, else one named by the config."""
        if self.backend is not None:
            return self.backend
        name = self.config.backend.name
        if name in self.backends:
            return self.backends[name]
        if None not in self._created:
            self._created[None] = self.backend_cache.get(self.config.backend)
        return self._created[None]

    def _resolve_backend(self, text_filter: TextFilter) -> Any:
        name = text_filter.config.backend
        if name is None:
            return self._default_backend()
        if name in self.backends:
            return self.backends[name]
        if name not in self._created:
            default = self.backend if self.backend is not None else self._created.get(None)
            if default is not None and getattr(default, "name", None) == name:
                self._created[name] = default
            else:
                self._created[name] = self.backend_cache.get(self.config.backend.model_copy(update={"name": name}))
        return self._created[name]

    def _fails_open(self, text_filter: TextFilter) -> bool:
        own = text_filter.config.fail_open
        return self.config.fail_open if own is None else own

    # -- the filter loop, shared by sync and async paths (one round's bookkeeping: chain_rounds) -------

    def _start(self, value: Any, config: RunnableConfig | None) -> Item:
        unique_id = caller_id(config, self.unique_id)
        scope = config_value(config, *SCOPE_KEYS) or unique_id
        if scope is None and self._anonymizes:
            # A shared fallback scope would let one user's placeholders restore another user's data.
            raise ConfigurationError(
                "anonymize needs a conversation scope: pass config={'configurable': {'conversation_id': ...}} "
                "(or session_id / thread_id / unique_id), or build the chain with unique_id=..."
            )
        # Type-strict when it keys the vault: str(1) == "1" would hand conversation 1 the data of "1".
        return Item(unpack(value, self.input_key), unique_id, scope_key(scope) if self._anonymizes else str(scope))

    def _moderate_items(self, items: list[Item], managers: Sequence[Any] = (), configs: Sequence[Any] = ()) -> None:
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
                for event in events:
                    self.dispatcher.emit(event)
                trace_filter(items, managers, configs, step.text_filter, step.index)

    async def _amoderate_items(
        self, items: list[Item], managers: Sequence[Any] = (), configs: Sequence[Any] = ()
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

    async def _asettle_round(self, steps: list[Step], tasks: list[Any], items: list[Item], managers: Sequence[Any],
                             configs: Sequence[Any], carried: dict[int, Any], first: RoundOutcome | None) -> int:
        """Settle an async round in order; returns the filter index the next round starts at."""
        for position, step in enumerate(steps):
            outcome = first if first is not None else await tasks[position]
            events = self._settled(step, outcome, position == 0)
            if events is None:
                for later, task in zip(steps[position:], tasks[position:]):
                    carried[later.index] = carry(later, await task)
                return step.index
            for event in events:
                await self.dispatcher.aemit(event)
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
    def _raise_error(item: Item) -> None:
        if item.error is not None:
            raise item.error

    def _outcome(self, item: Item) -> Any:
        if item.error is not None:
            return item.error
        result = self._finish(item)
        if not result.allowed:
            assert item.blocked_by is not None
            return item.blocked_by.violation(result=result)
        return result.output

    def _start_all(self, values: list[Any], managers: list[Any], configs: list[RunnableConfig]):  # type: ignore[no-untyped-def]
        """Items for the inputs that unpack, exceptions (reported per input) for those that do not."""
        started: list[Item | BaseException] = []
        for value, config in zip(values, configs):
            try:
                started.append(self._start(value, config))
            except Exception as exc:  # noqa: BLE001 - reported per input, like Runnable.batch does
                started.append(exc)
        keep = [isinstance(i, Item) for i in started]
        live = [i for i, k in zip(started, keep) if k]
        return (started, live, [m for m, k in zip(managers, keep) if k], [c for c, k in zip(configs, keep) if k])

    @presigned
    def _run_batch(self, values: list[Any], run_manager: list[Any], config: list[RunnableConfig]) -> list[Any]:
        # Parameter names are what Runnable._batch_with_config passes by keyword.
        started, live, managers, configs = self._start_all(values, run_manager, config)
        self._moderate_items(live, managers, configs)  # type: ignore[arg-type]
        return [i if isinstance(i, BaseException) else self._outcome(i) for i in started]

    @presigned
    async def _arun_batch(
        self, values: list[Any], run_manager: list[Any], config: list[RunnableConfig]
    ) -> list[Any]:
        started, live, managers, configs = self._start_all(values, run_manager, config)
        await self._amoderate_items(live, managers, configs)  # type: ignore[arg-type]
        return [i if isinstance(i, BaseException) else self._outcome(i) for i in started]

    @presigned
    def _invoke_one(self, value: Any, run_manager: Any, config: RunnableConfig) -> Any:
        outcome = self._run_batch([value], [run_manager], [config])[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    @presigned
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
        backend_config = coerce_config(BackendConfig, backend_config)
        config = coerce_config(ModerationConfig, kwargs.pop("config", None))
        return cls(config.model_copy(update={"backend": backend_config}), **kwargs)
