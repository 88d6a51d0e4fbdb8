"""The per-input state and the per-filter bookkeeping of :class:`~modchain.text.chain.ModerationChain`.

``chain.py`` holds the Runnable (construction, backends, the round loop, the public API); this module holds
what one round of that loop does with its items: which texts are pending, how a filter's scores are applied
(:meth:`FilterRounds._settle`), which filters may start together (:meth:`FilterRounds._plan`), and the
result an item ends with. The round loop itself stays in ``chain.py``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig

from modchain.core.errors import BackendError, ConfigurationError, UnsupportedLanguageError
from modchain.core.events import ModerationEvent
from modchain.core.language import UNDETERMINED, detect_language
from modchain.core.results import FilterResult, Finding, ModerationResult
from modchain.text.filter_base import TextFilter
from modchain.text.filter_rounds import (
    FALLBACK,
    PRIMARY,
    REFUSED,
    RoundOutcome,
    Step,
    make_step,
    may_follow,
    scores,
    still_needed,
)
from modchain.text.messages import Unpacked
from modchain.text.pii import PiiFilter
from modchain.text.prompt_safety import PromptSafetyFilter
from modchain.text.toxicity import ToxicityFilter

logger = logging.getLogger("modchain")

FILTER_CLASSES: dict[str, type[TextFilter]] = {
    "pii": PiiFilter,
    "toxicity": ToxicityFilter,
    "prompt_safety": PromptSafetyFilter,
}


@dataclass
class Item:
    """The state of one input while the filters run over it."""

    unpacked: Unpacked
    unique_id: str | None
    scope: str
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    findings: list[Finding] = field(default_factory=list)
    filter_results: list[FilterResult] = field(default_factory=list)
    blocked_by: TextFilter | None = None
    error: BaseException | None = None
    #: Each text's language, detected once on the input as given (routing and the result use it; redaction
    #: later does not change what language a text is in).
    languages: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.languages = [detect_language(text) for text in self.unpacked.texts]

    @property
    def texts(self) -> list[str]:
        return self.unpacked.texts

    @property
    def language(self) -> str | None:
        """The input's language: its one text's, else the detected language covering most characters."""
        if len(self.languages) == 1:
            return self.languages[0]
        weight: dict[str, int] = {}
        for language, text in zip(self.languages, self.unpacked.texts):
            if language != UNDETERMINED:
                weight[language] = weight.get(language, 0) + len(text)
        if weight:
            return max(weight, key=weight.__getitem__)
        return UNDETERMINED if self.languages else None

    @property
    def live(self) -> bool:
        return self.blocked_by is None and self.error is None


def check_capability(backend: Any, text_filter: TextFilter) -> None:
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


class FilterRounds:
    """The chain's per-round bookkeeping (a mixin: ``filters``, ``vault``, ``backend_for``, ``_fails_open`` and
    ``parallel_filters`` come from :class:`~modchain.text.chain.ModerationChain`)."""

    def _pending(self, items: list[Item]) -> tuple[list[str], list[tuple[Item, int]]]:
        """The non-empty texts of live items, flattened, and where each came from."""
        texts: list[str] = []
        owners: list[tuple[Item, int]] = []
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
        owners: list[tuple[Item, int]],
        scored: list[Any] | None,
        error: BackendError | None,
        elapsed_ms: float,
        step: Step | None = None,
    ) -> list[ModerationEvent]:
        """Apply one filter's scores to its items; returns the callback events to emit, in order.

        With language routing (``step.routes``), each item's ``FilterResult.backend`` names the backend(s)
        that scored its texts, and an item with a refused text fails with ``UnsupportedLanguageError``.
        """
        backend_name = getattr(backend, "name", type(backend).__name__)
        route_of = step.route_of() if step is not None else None
        fallback_name = getattr(step.fallback, "name", "local") if step is not None else ""
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
            scored_by, refused = backend_name, None
            if route_of is not None:
                routes = [route_of.get((key, owners[p][1]), PRIMARY) for p in positions]
                names = dict.fromkeys(fallback_name if r == FALLBACK else backend_name for r in routes)
                scored_by = "+".join(names)
                refused = next((item.languages[owners[p][1]] for p, r in zip(positions, routes) if r == REFUSED),
                               None)
            if error is None and refused is None:
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
            if refused is not None:  # fail closed whatever fail_open says: nobody scored this text
                item.error = UnsupportedLanguageError(filter=text_filter.kind, backend=backend_name,
                                                      language=refused)
            elif error is not None and not self._fails_open(text_filter):
                item.error = error
            elif error is not None:
                logger.warning("%s filter failed open on backend %s: %s", text_filter.kind, backend_name,
                               type(error).__name__)
            if blocked:
                item.blocked_by = text_filter
            item.findings.extend(selected)
            failure = item.error if refused is not None else error
            item.filter_results.append(FilterResult(
                filter=text_filter.kind, index=index, backend=scored_by, action=text_filter.config.action,
                findings=tuple(selected), blocked=blocked or item.error is not None,
                error=type(failure).__name__ if failure is not None else None, elapsed_ms=elapsed_ms,
            ))
            if wants_events:
                output = ([scored[p].raw for p in positions] if error is None  # type: ignore[index]
                          else {"error": type(error).__name__})
                events.append(ModerationEvent.of(text_filter.kind, item.run_id, bool(selected), checked, output,
                                                 unique_id=item.unique_id, error=error is not None,
                                                 elapsed_ms=elapsed_ms))
        return events

    def _finish(self, item: Item) -> ModerationResult:
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
            language=item.language,
        )

    def _plan(self, items: list[Item], start: int, carried: dict[int, Any]) -> list[Step]:
        """The next round: filter ``start`` and the filters after it that may start at the same time.

        A filter joins only if its backend waits on I/O (``io_bound``; a CPU-bound backend gains nothing
        from overlapping and runs alone, in the caller's thread, with no pool round trip), and only if every
        text-rewriting filter before it in the round runs on the same backend instance: that service was
        sent the unrewritten text anyway, while another one must only ever see the rewritten text.
        """
        texts, owners = self._pending(items)
        if not owners:
            return []
        steps = [self._route(make_step(start, self.filters[start], self.backend_for(self.filters[start]), texts,
                                       owners, carried.pop(start, None)))]
        for index in range(start + 1, len(self.filters) if self.parallel_filters else start + 1):
            text_filter = self.filters[index]
            try:
                backend = self.backend_for(text_filter)
            except ConfigurationError:
                break  # raised when the chain reaches this filter in order, as a sequential chain would
            if not getattr(backend, "io_bound", False):
                break
            step = self._route(make_step(index, text_filter, backend, texts, owners, carried.get(index)))
            if not all(may_follow(earlier, step) for earlier in steps if earlier.text_filter.rewrites_text):
                break
            carried.pop(index, None)
            steps.append(step)
        return steps

    def _route(self, step: Step) -> Step:
        """Send the texts in languages the step's backend does not support elsewhere, per the config's
        ``unsupported_language``: to the local backend (``local``), nowhere (``block``: the item fails), or
        to the backend anyway (``score``). A text of undetermined language counts as ``language_code``."""
        policy = self.config.backend.unsupported_language
        supported_languages = getattr(step.backend, "supported_languages", None)
        if policy == "score" or supported_languages is None:
            return step
        supported = supported_languages(step.text_filter.kind)
        if supported is None:
            return step
        assumed = self.config.backend.language_code
        routes = []
        for item, index in step.owners:
            language = item.languages[index]
            if language == UNDETERMINED:
                language = assumed
            routes.append(PRIMARY if language in supported else REFUSED if policy == "block" else FALLBACK)
        if all(route == PRIMARY for route in routes):
            return step
        if FALLBACK in routes:
            step.fallback = self._language_fallback(step.text_filter)
            if step.fallback is None:  # the local backend cannot run this filter as configured: fail closed
                routes = [REFUSED if route == FALLBACK else route for route in routes]
        step.routes = routes
        return step

    def _language_fallback(self, text_filter: TextFilter) -> Any:
        """The local backend (the chain's own if it has one, else built once through the backend cache), or
        None when it cannot run ``text_filter`` (labels it does not detect)."""
        backend = self.backends.get("local") or self._created.get("local")
        if backend is None:
            default = self.backend if self.backend is not None else self._created.get(None)
            if default is not None and getattr(default, "name", None) == "local":
                backend = default
            else:
                backend = self.backend_cache.get(self.config.backend.model_copy(update={"name": "local"}))
            self._created["local"] = backend
        try:
            check_capability(backend, text_filter)
        except ConfigurationError:
            return None
        return backend

    def _settled(self, step: Step, outcome: RoundOutcome, first: bool) -> list[ModerationEvent] | None:
        """Apply a step's scores; None when a text changed under it (the round must end before it)."""
        if first:  # nothing has been applied in this round yet
            scored, error = scores(step, outcome)
            return self._settle(step.index, step.text_filter, step.backend, step.owners, scored, error,
                                step.carried_ms + outcome.elapsed_ms, step)
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
                            step.carried_ms + outcome.elapsed_ms, step)
