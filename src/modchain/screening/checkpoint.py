"""The resume log: finished items appended as JSON Lines, flushed and fsync'd after every batch.

Line 1 is a header naming the dataset and the settings fingerprint; each further line is one
:class:`~modchain.screening.report.ItemResult`. A crash can at worst leave a partial last line (the batch
being written); it is cut off when the checkpoint is reopened, so the items before it are never lost and
the broken one is screened again (a crash before the header's line was whole leaves nothing to resume: the
run starts over). A checkpoint written under other settings is never resumed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from modchain.core.errors import ConfigurationError
from modchain.screening.report import ItemResult, dumps_json

CHECKPOINT = "screening_checkpoint.jsonl"
_FORMAT = 1


class Checkpoint:
    """Append-only log of finished items in ``out_dir``; use :meth:`open` and as a context manager."""

    def __init__(self, path: Path, handle: IO[str], finished: dict[str, ItemResult]) -> None:
        self.path = path
        self._handle = handle
        self.finished = finished

    @classmethod
    def open(cls, out_dir: str | os.PathLike[str], *, dataset: str, fingerprint: str, resume: bool) -> Checkpoint:
        """Open the checkpoint in ``out_dir``: with ``resume``, keep the finished items of a compatible one
        (raises :class:`ConfigurationError` for one from another dataset or other settings); without,
        start a new one."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / CHECKPOINT
        finished: dict[str, ItemResult] = {}
        if resume and _has_header_line(path):  # no whole first line: a crash before the header landed
            finished = _load(path, dataset, fingerprint)
            handle = path.open("a", encoding="utf-8")
        else:
            created = not path.exists()
            handle = path.open("w", encoding="utf-8")
            handle.write(dumps_json({"modchain_checkpoint": _FORMAT, "dataset": dataset,
                                     "fingerprint": fingerprint}) + "\n")
            _sync(handle)
            if created:
                _sync_folder(out)  # the new file's name is durable too, not only its content
        return cls(path, handle, finished)

    @staticmethod
    def compatible(out_dir: str | os.PathLike[str], *, dataset: str, fingerprint: str) -> bool:
        """Whether ``out_dir`` holds a checkpoint that :meth:`open` would resume."""
        header = _header(Path(out_dir) / CHECKPOINT)
        return header is not None and header.get("dataset") == dataset and header.get("fingerprint") == fingerprint

    def append(self, items: Iterable[ItemResult]) -> None:
        """Record a finished batch durably (written, flushed and fsync'd before returning)."""
        items = list(items)
        lines = [item.to_json_line() + "\n" for item in items]
        if not lines:
            return
        self._handle.write("".join(lines))
        _sync(self._handle)
        for item in items:
            self.finished[item.key] = item

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sync(handle: IO[str]) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _sync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on every OS (Windows); the file's own fsync still holds
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _has_header_line(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.readline().endswith(b"\n")
    except OSError:
        return False


def _header(path: Path) -> dict[str, Any] | None:
    try:
        with path.open(encoding="utf-8") as handle:
            header = json.loads(handle.readline())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return header if isinstance(header, dict) and header.get("modchain_checkpoint") == _FORMAT else None


def _load(path: Path, dataset: str, fingerprint: str) -> dict[str, ItemResult]:
    header = _header(path)
    if header is None:
        raise ConfigurationError(f"{path} is not a modchain screening checkpoint")
    if header.get("dataset") != dataset:
        raise ConfigurationError(f"{path} belongs to another dataset; use another --out folder or start over")
    if header.get("fingerprint") != fingerprint:
        raise ConfigurationError(f"{path} was written with other screening settings; start over to use these")
    finished: dict[str, ItemResult] = {}
    good_end = 0
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # a partial last line: the batch a crash interrupted
            if good_end:  # skip the header line
                try:
                    item = ItemResult.from_json_line(raw)
                except ValueError:  # not JSON, not UTF-8, or not an item (ValidationError is a ValueError)
                    break
                finished[item.key] = item
            good_end += len(raw)
    if good_end < path.stat().st_size:
        with path.open("r+b") as handle:  # cut the broken tail so new lines start on a clean line
            handle.truncate(good_end)
    return finished
