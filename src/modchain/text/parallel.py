"""Moderate large batches on every core: one chain per worker process, results back in input order.

For screening datasets with CPU-bound backends (the offline ``local`` one): a Python process runs one
core, so ``chain.moderate_batch`` on 10,000 texts leaves the other cores idle. Each worker builds its own
:class:`ModerationChain` from the (picklable) config once, then moderates chunks of the input.

Not for every chain: callbacks and anonymization keep state in the calling process (handler objects, the
vault), so a config that anonymizes is refused here; moderate those in one process. Remote backends gain
little (they are I/O-bound and already fan requests out); use ``moderate_batch`` for them.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from modchain.core.config import ModerationConfig
from modchain.core.config_base import coerce_config
from modchain.core.errors import ConfigurationError
from modchain.core.results import ModerationResult

_worker_chain: Any = None


def _init_worker(config_data: dict[str, Any]) -> None:
    global _worker_chain
    from modchain.text.chain import ModerationChain

    _worker_chain = ModerationChain(ModerationConfig.model_validate(config_data))


def _moderate_chunk(values: list[Any]) -> list[ModerationResult]:
    return _worker_chain.moderate_batch(values)


class ProcessModerator:
    """A pool of worker processes, each holding a chain built from ``config``; use as a context manager.

    ``moderate_batch(values)`` splits the values across the workers and returns results in input order.
    """

    def __init__(self, config: ModerationConfig | dict[str, Any] | str | Path | None = None, *,
                 processes: int | None = None, chunk_size: int = 500) -> None:
        config = coerce_config(ModerationConfig, config)
        if any(getattr(f, "action", None) == "anonymize" for f in config.filters):
            raise ConfigurationError("anonymize keeps its vault in the calling process: moderate in one process")
        self.config = config
        self.processes = processes or os.cpu_count() or 1
        self.chunk_size = chunk_size
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ProcessModerator:
        # spawn: workers start clean (no inherited threads or locks from the caller, which fork could deadlock).
        self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker, initargs=(self.config.model_dump(mode="json"),))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def moderate_batch(self, values: Sequence[Any]) -> list[ModerationResult]:
        if self._pool is None:
            raise RuntimeError("use ProcessModerator as a context manager: with ProcessModerator(...) as m: ...")
        # Chunks no bigger than chunk_size, and enough of them to keep every worker busy.
        size = max(1, min(self.chunk_size, -(-len(values) // self.processes)))
        chunks = [list(values[i : i + size]) for i in range(0, len(values), size)]
        return [result for results in self._pool.map(_moderate_chunk, chunks) for result in results]


def moderate_in_processes(
    config: ModerationConfig | dict[str, Any] | str | Path | None,
    values: Sequence[Any],
    *,
    processes: int | None = None,
    chunk_size: int = 500,
) -> list[ModerationResult]:
    """One :class:`ModerationResult` per value, in order, moderated by ``processes`` worker processes
    (default: one per CPU). Starting the workers costs about a second; worth it from a few thousand texts."""
    with ProcessModerator(config, processes=processes, chunk_size=chunk_size) as moderator:
        return moderator.moderate_batch(values)
