"""Run one filter of a :class:`ModerationChain` over labelled examples and report metrics and timings.

The prediction is exactly what the chain does: a chain with the single filter under test, ``action=
"detect"``, the given threshold and labels; a text is predicted positive when ``result.findings`` is not
empty (PII: each finding is a predicted span). Each text is moderated on its own, so the latency is a
per-message latency; a second, batched pass over the same texts gives the throughput a file or a server
batch would see.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modchain.core.config import (
    BackendConfig,
    ModerationConfig,
    PiiConfig,
    PromptSafetyConfig,
    ToxicityConfig,
)
from modchain.core.errors import ConfigurationError
from modchain.eval.data import Example, read_examples
from modchain.eval.metrics import Counts, Span, binary_counts, span_report
from modchain.text.chain import ModerationChain

#: Task name on the command line -> the filter config it evaluates.
TASKS: dict[str, type[Any]] = {"toxicity": ToxicityConfig, "prompt-safety": PromptSafetyConfig, "pii": PiiConfig}
BATCH_SIZE = 64


def build_chain(task: str, backend: BackendConfig, threshold: float = 0.5, labels: Sequence[str] = ()) -> ModerationChain:
    """A chain holding only the filter under test, detecting (never blocking or rewriting)."""
    if task not in TASKS:
        raise ConfigurationError(f"unknown task {task!r}; known: {sorted(TASKS)}")
    settings: dict[str, Any] = {"action": "detect", "threshold": threshold}
    if labels:
        if task == "prompt-safety":
            raise ConfigurationError("prompt safety has a single label (UNSAFE_PROMPT); --labels does not apply")
        settings["labels"] = tuple(labels)
    try:
        filter_config = TASKS[task](**settings)
    except ValueError as exc:  # pydantic's ValidationError: an unknown label, a threshold outside [0, 1]
        raise ConfigurationError(f"invalid {task} settings: {exc}") from None
    return ModerationChain(ModerationConfig(filters=[filter_config], backend=backend))


@dataclass
class Timings:
    backend_ms: list[float]  # the filter's backend call, one text at a time
    chain_ms: list[float]  # the whole moderate() call, one text at a time
    batch_s: float  # the batched pass over all texts


def predict(chain: ModerationChain, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> tuple[list[Any], Timings]:
    """The chain's result for each text (moderated one at a time) and the timings of both passes."""
    # Warm up (backend creation, client setup, lazy imports are not latency) on a text not in the set,
    # then start each pass with cold per-text caches, so neither pass times a cache instead of a model.
    chain.moderate(_WARM_UP)
    _clear_caches(chain)
    results, backend_ms, chain_ms = [], [], []
    for text in texts:
        started = time.perf_counter()
        result = chain.moderate(text)
        chain_ms.append((time.perf_counter() - started) * 1000)
        backend_ms.extend(f.elapsed_ms for f in result.filters)  # none for a blank text: nothing was called
        results.append(result)
    _clear_caches(chain)
    started = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        chain.moderate_batch(list(texts[i : i + batch_size]))
    return results, Timings(backend_ms, chain_ms, time.perf_counter() - started)


_WARM_UP = "A warm-up message for the evaluation run, not part of the data set."


def _clear_caches(chain: ModerationChain) -> None:
    for text_filter in chain.filters:
        clear = getattr(chain.backend_for(text_filter), "clear_cache", None)
        if callable(clear):
            clear()


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 4) if values else 0.0


def _p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4)


def _timing_fields(n: int, timings: Timings) -> dict[str, float]:
    return {
        "latency_ms_median": _median(timings.backend_ms),
        "latency_ms_p95": _p95(timings.backend_ms),
        "chain_latency_ms_median": _median(timings.chain_ms),
        "throughput_per_s": round(n / timings.batch_s, 2) if timings.batch_s > 0 else 0.0,
    }


def _predicted_spans(result: Any) -> list[Span]:
    # A finding without offsets cannot match a gold span: it still counts, as a false positive at (0, 0).
    return [(f.start or 0, f.end or 0, f.label) for f in result.findings]


def _span_fields(counts: Counts) -> dict[str, Any]:
    return {**counts.as_dict(), "fp_texts": counts.fp_texts, "gold_spans": counts.tp + counts.fn,
            "predicted_spans": counts.tp + counts.fp}


def evaluate_examples(
    task: str,
    examples: Sequence[Example],
    chain: ModerationChain,
    labels: Sequence[str] = (),
    batch_size: int = BATCH_SIZE,
) -> dict[str, Any]:
    """Metrics and timings of ``chain`` on ``examples`` (see :mod:`modchain.eval.metrics`)."""
    results, timings = predict(chain, [e.text for e in examples], batch_size)
    report: dict[str, Any] = {"task": task, "n": len(examples)}
    if task == "pii":
        overall, per_label = span_report(
            ((e.spans, _predicted_spans(r)) for e, r in zip(examples, results)), labels or None)
        report.update(_span_fields(overall))
        report.update(_timing_fields(len(examples), timings))
        report["per_label"] = {label: _span_fields(c) for label, c in per_label.items()}
    else:
        counts = binary_counts([e.unsafe for e in examples], [bool(r.findings) for r in results])
        report.update(counts.as_dict())
        report["positives"] = counts.tp + counts.fn
        report.update(_timing_fields(len(examples), timings))
    return report


def evaluate(
    task: str,
    path: str | Path,
    backend: BackendConfig | None = None,
    threshold: float = 0.5,
    labels: Sequence[str] = (),
    limit: int | None = None,
) -> dict[str, Any]:
    """Read ``path``, run the ``task`` filter on ``backend`` and return the report ``modchain eval`` prints."""
    backend = backend or BackendConfig()
    chain = build_chain(task, backend, threshold, labels)
    chain.backend_for(chain.filters[0])  # a backend that cannot run the filter or its labels fails here, first
    labels = tuple(getattr(chain.config.filters[0], "labels", ()))
    examples = read_examples(path, task, limit)
    report = evaluate_examples(task, examples, chain, labels)
    head = {"task": task, "file": str(path), "backend": backend.name, "threshold": threshold, "labels": list(labels)}
    return {**head, **report}
