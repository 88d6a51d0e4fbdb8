"""DatasetScreener: screen every image (and the instance prompt) of a fine-tuning dataset folder.

    screener = DatasetScreener(threshold=0.4, workers=2)         # NudeNet offline by default
    report = screener.screen("my_dataset", out_dir="screening")  # JSON + Markdown summary written there
    for item in report.flagged: print(item.path, item.labels)

Durable and resumable: finished items go to a checkpoint (see :mod:`.checkpoint`) batch by batch, before
callbacks run and before the progress bar moves, so an interrupted run (crash, Ctrl-C, a callback raising)
loses no finished work, and the next ``screen(..., resume=True)`` screens only what is left. The same
report comes out of one process, ``workers=N`` processes (:mod:`.parallel`) or Ray (``engine="ray"``,
:mod:`.ray_runner`).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from modchain.core.callbacks import CallbackDispatcher
from modchain.core.errors import ConfigurationError
from modchain.core.events import ModerationEvent
from modchain.screening.checkpoint import Checkpoint
from modchain.screening.config import ScreeningConfig
from modchain.screening.dataset import Dataset, DatasetItem
from modchain.screening.image_screen import ImageScreen, describe_moderator, portable_factory
from modchain.screening.journal import QuarantineJournal, with_quarantine
from modchain.screening.parallel import chunked, screen_in_processes
from modchain.screening.prompt_check import PromptChecker, TextChainPromptChecker, check_prompt, checker_name
from modchain.screening.report import ItemResult, ScreeningReport

#: Default report folder, inside the dataset; hidden, so it is never screened itself.
DEFAULT_OUT = ".modchain-screening"
_DEFAULT: Any = object()


class DatasetScreener:
    """Screens dataset folders with one image moderation and one prompt checker.

    ``moderation``: ``None`` (NudeNet at ``threshold``), a labeler, an ``ImageModerationChain``, or a factory
    building one (what ``workers > 1`` and Ray need for anything but NudeNet, which is converted for you).
    ``prompt_checker``: a callable (see :mod:`.prompt_check`); default: the offline text chain; ``None``
    skips the prompt. ``config`` and keyword overrides (``threshold=``, ``labels=``, ``workers=``, ...) are
    :class:`ScreeningConfig` fields. ``callbacks``: handlers whose ``on_after_screen`` runs once per item.
    """

    def __init__(self, moderation: Any = None, *, config: ScreeningConfig | dict[str, Any] | None = None,
                 prompt_checker: PromptChecker | None = _DEFAULT, callbacks: Sequence[Any] = (),
                 unique_id: str | None = None, progress: bool = False, **overrides: Any) -> None:
        data = config.model_dump() if isinstance(config, ScreeningConfig) else dict(config or {})
        self.config = ScreeningConfig.from_dict({**data, **overrides})
        self.moderation = moderation
        self.prompt_checker = TextChainPromptChecker() if prompt_checker is _DEFAULT else prompt_checker
        self.dispatcher = CallbackDispatcher(callbacks)
        self.unique_id = unique_id
        self.progress = progress
        self._screen: ImageScreen | None = None  # built on first use, kept for later runs

    @property
    def fingerprint(self) -> str:
        checks_prompt = self.config.check_prompt and self.prompt_checker is not None
        return self.config.verdict_fingerprint(describe_moderator(self.moderation, self.config),
                                               checker_name(self.prompt_checker if checks_prompt else None))

    def screen(self, dataset_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None, *,
               resume: bool = True, engine: Literal["local", "ray"] = "local",
               ray_options: dict[str, Any] | None = None) -> ScreeningReport:
        """Screen ``dataset_dir``; write the report, summary and checkpoint into ``out_dir``.

        ``resume``: skip items a compatible checkpoint in ``out_dir`` already holds (a checkpoint from other
        settings raises :class:`~modchain.core.errors.ConfigurationError`); ``False`` starts over.
        ``engine="ray"`` runs the images on Ray Data (``ray_options``: ``concurrency``, ``num_gpus``).
        """
        if engine not in ("local", "ray"):
            raise ConfigurationError('engine must be "local" or "ray"')
        started = time.perf_counter()
        dataset = Dataset(dataset_dir, recursive=self.config.recursive, extensions=self.config.extensions,
                          exclude=(out_dir,) if out_dir is not None else ())
        out = Path(out_dir) if out_dir is not None else dataset.root / DEFAULT_OUT
        run_id = str(uuid.uuid4())
        # Moves an interrupted quarantine left half done are finished or rolled back before the folder is
        # listed, so a file is never screened in the dataset and reported in quarantine at once.
        from modchain.screening.quarantine import recover

        journals = list(dict.fromkeys([out.resolve(), dataset.root / DEFAULT_OUT]))
        for folder in journals:
            recover(folder)
        images = dataset.images()
        with Checkpoint.open(out, dataset=str(dataset.root), fingerprint=self.fingerprint, resume=resume) as log:
            wanted = {item.key for item in images}
            self._screen_prompt(dataset, log, run_id, wanted)
            todo = [item for item in images if not _done(log, item.key)]
            batches = self._batches(dataset.root, todo, engine, ray_options)
            try:
                for batch in self._progress(batches, len(todo)):
                    log.append(batch)  # durable before anyone hears of it
                    for result in batch:
                        self._emit(run_id, result)
            finally:
                close = getattr(batches, "close", None)
                if close is not None:  # stop worker pools / Ray at once on an error or interrupt
                    close()
            items = [log.finished[key] for key in wanted if key in log.finished]
        wall = time.perf_counter() - started
        timings = {"wall_s": round(wall, 3), "screened": float(len(todo)),
                   "resumed": float(len(images) - len(todo)),
                   "images_per_s": round(len(todo) / wall, 2) if wall > 0 else 0.0}
        report = ScreeningReport(dataset=str(dataset.root), fingerprint=self.fingerprint,
                                 items=tuple(sorted(items, key=lambda i: (i.kind != "prompt", i.path))),
                                 timings=timings)
        # Files quarantined since the last report are listed (with where they went) in the first one written
        # after their move, however the run that moved them ended; then they count as reported.
        opened = [QuarantineJournal.open(folder) for folder in journals if QuarantineJournal.exists(folder)]
        try:
            reported = [(journal, journal.unreported(str(dataset.root))) for journal in opened]
            for _, entries in reported:
                report = with_quarantine(report, entries)
            report.write(out)
            for journal, entries in reported:
                journal.mark_reported(entries)
        finally:
            for journal in opened:
                journal.close()
        return report

    # -- internals -------------------------------------------------------------------------------------
    def _screen_prompt(self, dataset: Dataset, log: Checkpoint, run_id: str, wanted: set[str]) -> None:
        info = dataset.prompt() if self.config.check_prompt and self.prompt_checker is not None else None
        if info is None:
            return
        wanted.add(info.item.key)
        if _done(log, info.item.key):
            return
        item = info.item
        if info.error is not None:
            result = ItemResult(path=item.path, kind="prompt", status="error", error=info.error, size=item.size,
                                mtime_ns=item.mtime_ns)
        else:
            result = check_prompt(self.prompt_checker, info.text or "", path=item.path, size=item.size,
                                  mtime_ns=item.mtime_ns, backend_errors=self.config.backend_errors)
        log.append([result])
        self._emit(run_id, result, prompt_chars=len(info.text or ""))

    def _batches(self, root: Path, todo: list[DatasetItem], engine: str,
                 ray_options: dict[str, Any] | None) -> Iterator[list[ItemResult]]:
        if not todo:
            return iter(())
        if engine == "ray":
            from modchain.screening.ray_runner import screen_with_ray

            factory = portable_factory(self.moderation, (ray_options or {}).get("concurrency") or self.config.workers)
            return screen_with_ray(root, todo, factory, self.config, **(ray_options or {}))
        if self.config.workers > 1:
            return screen_in_processes(root, todo, portable_factory(self.moderation, self.config.workers), self.config,
                                       self.config.workers)
        if self._screen is None:
            self._screen = ImageScreen(self.moderation, self.config)
        screen = self._screen
        return (screen.screen(root, chunk) for chunk in chunked(todo, self.config.batch_size))

    def _progress(self, batches: Iterator[list[ItemResult]], total: int) -> Iterator[list[ItemResult]]:
        if not self.progress:
            yield from batches
            return
        from tqdm import tqdm

        with tqdm(total=total, unit="img", file=sys.stderr, desc="screening") as bar:
            for batch in batches:
                yield batch
                bar.update(len(batch))

    def _emit(self, run_id: str, result: ItemResult, prompt_chars: int | None = None) -> None:
        if not self.dispatcher.wants("screen"):
            return
        # The beacon names the file (or the prompt's length), never image bytes or the prompt's text.
        described: dict[str, Any] = {"path": result.path, "kind": result.kind}
        if prompt_chars is not None:
            described["chars"] = prompt_chars
        self.dispatcher.emit(ModerationEvent.of("screen", run_id, result.status == "flagged", described,
                                                result.verdict(), unique_id=self.unique_id,
                                                error=result.status == "error"))


def _done(log: Checkpoint, key: str) -> bool:
    """Finished for good: in the checkpoint, and not a passing error (backend failure, unreadable file)."""
    item = log.finished.get(key)
    return item is not None and not item.transient
