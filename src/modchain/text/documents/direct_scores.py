"""A document guard's detection-only check of many windows, without a chain result per window.

The guard scores every sentence window of every document (about two windows a sentence) with a chain that has
one detection-only filter at threshold 0 and keeps one number per window: the highest score. Through
:meth:`ModerationChain.moderate_batch` each window also gets an item, a filter result and a
:class:`~modchain.core.results.ModerationResult` (pydantic), which on the offline backend cost about as much as
scoring the window (measured: 7.7 vs 4.8 ms per KB of 2 KB pages, benchmarks/documents_speed.py).

:func:`max_scores` asks the filter's backend directly, in one call for all windows, when nothing else of the chain
could matter: one filter that does not rewrite text, a CPU-bound backend in this process (the offline ``local``
fast tier, which the chain never splits or runs concurrently) that scores every language itself (the chain routes
nothing away from it), and no audit handler for the filter's step. Then
the chain would do exactly this: ``backend.run(kind, texts, config)``, ``filter.select(findings)`` per text, a
result count check, and on a :class:`~modchain.core.errors.BackendError` fail open (every window marked failed,
with the chain's warning) or raise. Anything else returns None and the guard goes through the chain.
"""

from __future__ import annotations

import logging
from typing import Any

from modchain.core.errors import BackendError
from modchain.text.chain import BATCH_GROUP

logger = logging.getLogger("modchain.text.chain_rounds")  # the chain's own logger: the same warning, same place

#: A window whose check failed open (the guard flags its document ``error``).
FAILED = None


def direct_filter(chain: Any) -> tuple[Any, Any] | None:
    """``(filter, backend)`` when :func:`max_scores` may skip ``chain``'s per-text machinery, else None."""
    filters = chain.filters
    if len(filters) != 1 or filters[0].rewrites_text:
        return None
    text_filter = filters[0]
    try:
        backend = chain.backend_for(text_filter)
    except Exception:  # noqa: BLE001 - the chain raises it itself, where and as it always has
        return None
    if getattr(backend, "name", None) != "local" or getattr(backend, "io_bound", False):
        return None
    supported_languages = getattr(backend, "supported_languages", None)
    if supported_languages is not None and supported_languages(text_filter.kind) is not None:
        return None  # the chain routes texts in other languages elsewhere (or refuses them)
    if chain.dispatcher.wants(text_filter.kind):
        return None  # audit handlers get their per-window events from the chain
    return text_filter, backend


def max_scores(chain: Any, texts: list[str]) -> list[float | None] | None:
    """Per text, the highest score the chain's filter selects (0.0 when none), ``FAILED`` where the backend
    failed open; None when the chain must run instead (see :func:`direct_filter`). Texts must not be blank
    (the chain does not send blank texts to the backend; the guard's windows never are)."""
    found = direct_filter(chain)
    if found is None:
        return None
    text_filter, backend = found
    own = text_filter.config.fail_open
    fails_open = chain.config.fail_open if own is None else own
    name = getattr(backend, "name", type(backend).__name__)
    select = text_filter.select
    out: list[float | None] = []
    # In groups, as the chain sends them: a long page has thousands of windows, and the backend's intermediate
    # results for all of them at once would only raise the peak memory (and feed the garbage collector).
    for start in range(0, len(texts), BATCH_GROUP):
        group = texts[start : start + BATCH_GROUP]
        error: BackendError | None = None
        try:
            scored = backend.run(text_filter.kind, group, text_filter.config)
            if len(scored) != len(group):
                error = BackendError(f"backend {name!r} returned {len(scored)} results for {len(group)} texts",
                                     backend=name)
        except BackendError as exc:  # anything else is a configuration error: raised, as the chain raises it
            error = exc
        if error is not None:
            if not fails_open:
                raise error
            logger.warning("%s filter failed open on backend %s: %s", text_filter.kind, name,
                           type(error).__name__)
            out.extend([FAILED] * len(group))
            continue
        out.extend(max((f.score for f in select(s.findings)), default=0.0) for s in scored)
    return out
