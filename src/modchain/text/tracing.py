"""Moderation events for LangChain's own callback system (LangSmith and other tracers).

One custom event per filter and input, named ``modchain.<filter>``, with the filter's findings (labels,
scores, spans) but never the text: tracing backends are third parties, and personal data must not reach
them unless the user sends it there. Nothing is built when no LangChain handler is attached.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.runnables.config import patch_config


def _events(items: Sequence[Any], managers: Sequence[Any], configs: Sequence[Any], text_filter: Any,
            index: int) -> Iterator[tuple[str, dict[str, Any], Any]]:
    for item, manager, config in zip(items, managers, configs):
        if manager is None or not getattr(manager, "handlers", None) or not item.filter_results:
            continue
        result = item.filter_results[-1]
        if result.index != index:  # this input was not checked by this filter (blocked earlier)
            continue
        data = {"step": text_filter.kind, "run_id": item.run_id, "unique_id": item.unique_id,
                **result.model_dump(exclude={"findings"}),
                "findings": [f.model_dump(exclude_none=True) for f in result.findings]}
        yield f"modchain.{text_filter.kind}", data, patch_config(config, callbacks=manager.get_child())


def trace_filter(items: Sequence[Any], managers: Sequence[Any], configs: Sequence[Any], text_filter: Any,
                 index: int) -> None:
    from langchain_core.callbacks.manager import dispatch_custom_event

    for name, data, config in _events(items, managers, configs, text_filter, index):
        dispatch_custom_event(name, data, config=config)


async def atrace_filter(items: Sequence[Any], managers: Sequence[Any], configs: Sequence[Any], text_filter: Any,
                        index: int) -> None:
    from langchain_core.callbacks.manager import adispatch_custom_event

    for name, data, config in _events(items, managers, configs, text_filter, index):
        await adispatch_custom_event(name, data, config=config)
