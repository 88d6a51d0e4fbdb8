"""Screening on every core of one machine: worker processes, each loading the model once.

Workers start with the ``spawn`` context (clean processes: no inherited threads, locks or ONNX sessions,
which ``fork`` could deadlock on) and build their moderation from a picklable factory in the pool's
initializer. The parent hands out chunks of ``batch_size`` files and gets results back as chunks finish,
so it can checkpoint each one at once. Interrupting the parent cancels the chunks not yet started.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from modchain.screening.config import ScreeningConfig
from modchain.screening.dataset import DatasetItem
from modchain.screening.image_screen import ImageScreen
from modchain.screening.report import ItemResult

_worker_screen: ImageScreen | None = None


def _init_worker(factory: Any, config_data: dict[str, Any]) -> None:
    global _worker_screen
    _worker_screen = ImageScreen(factory, ScreeningConfig.model_validate(config_data))


def _screen_chunk(root: str, items: list[DatasetItem]) -> list[ItemResult]:
    assert _worker_screen is not None, "worker not initialised"
    return _worker_screen.screen(Path(root), items)


def chunked(items: Sequence[DatasetItem], size: int) -> list[list[DatasetItem]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def screen_in_processes(root: Path, items: Sequence[DatasetItem], factory: Any, config: ScreeningConfig,
                        workers: int) -> Iterator[list[ItemResult]]:
    """Yield each chunk's results as it finishes (chunk order is not preserved).

    At most ``2 * workers`` chunks are in flight, so an interrupt leaves little queued work to cancel and
    the parent's checkpoint trails the workers by a few chunks at most.
    """
    chunks = chunked(items, config.batch_size)
    if not chunks:
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context, initializer=_init_worker,
                               initargs=(factory, config.model_dump(mode="json")))
    pending: set[Future[list[ItemResult]]] = set()
    queue = iter(chunks)
    try:
        for chunk in queue:
            pending.add(pool.submit(_screen_chunk, str(root), chunk))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                chunk = next(queue, None)
                if chunk is not None:
                    pending.add(pool.submit(_screen_chunk, str(root), chunk))
    finally:
        # Normal end: nothing pending. Error or interrupt: drop queued chunks, let running ones finish.
        pool.shutdown(wait=True, cancel_futures=True)
