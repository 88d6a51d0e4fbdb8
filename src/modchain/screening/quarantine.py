"""Acting on a report: move or copy flagged images into a quarantine folder.

Relative paths are kept (``a/b.jpg`` -> ``QUARANTINE/a/b.jpg``) so a reviewer sees where each file came
from, and nothing is ever overwritten: a name already taken gets a numbered suffix (``b.1.jpg``).
The quarantine folder may not lie inside the dataset, where the next screening would find it again.

No file is ever lost, whatever interrupts a move. On one file system a move is a hard link under a free name
(which fails rather than replace a file that appeared meanwhile) and then the removal of the old name. Across
file systems the content is first copied to a hidden ``.NAME.*.partial`` file beside its destination,
fsync'd, given its final name, and only then is the source removed; an interruption leaves the source in
place (and at worst a ``.partial`` file to delete). A flagged symbolic link is replaced by a copy of the image
it points to (the link itself leaves the dataset; its target stays where it is).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from modchain.core.errors import ConfigurationError
from modchain.screening.report import ItemResult, ScreeningReport


def quarantine(report: ScreeningReport, dest: str | os.PathLike[str], *,
               mode: Literal["move", "copy"] = "move") -> list[tuple[str, Path]]:
    """Move (or copy) the report's flagged images under ``dest``; returns ``(relative path, new path)``.

    Files that no longer exist where the report saw them, or that changed since (another size or
    modification time: not the content the report judged), are skipped (not in the returned list).
    """
    if mode not in ("move", "copy"):
        raise ConfigurationError('mode must be "move" or "copy"')
    root = Path(report.dataset).resolve()
    target = Path(dest).resolve()
    if target == root or root in target.parents:
        raise ConfigurationError("the quarantine folder must be outside the dataset folder")
    flagged = [(item, root.joinpath(*item.path.split("/"))) for item in report.flagged if item.kind == "image"]
    # Links first: moving the image a link points to first would leave the link dangling in the dataset.
    flagged.sort(key=lambda pair: not pair[1].is_symlink())
    done: list[tuple[str, Path]] = []
    for item, source in flagged:
        if not _as_screened(source, item):
            continue
        wanted = target.joinpath(*item.path.split("/"))
        wanted.parent.mkdir(parents=True, exist_ok=True)
        done.append((item.path, _place(source, wanted, move=mode == "move")))
    return sorted(done)


def _as_screened(source: Path, item: ItemResult) -> bool:
    try:
        now = source.stat()  # through a link: the content that was screened
    except OSError:
        return False
    return stat.S_ISREG(now.st_mode) and now.st_size == item.size and now.st_mtime_ns == item.mtime_ns


def _place(source: Path, wanted: Path, *, move: bool) -> Path:
    if move and not source.is_symlink():
        try:
            placed = _link_free(source, wanted)  # same file system: no copy, and atomic
        except _CannotLink:
            pass
        else:
            source.unlink()
            return placed
    partial = _copy_beside(source, wanted)
    try:
        try:
            placed = _link_free(partial, wanted)
        except _CannotLink:  # a file system without hard links (FAT, some network shares)
            placed = _reserve_free(wanted)
            os.replace(partial, placed)  # replaces only the empty file reserved just now
    finally:
        partial.unlink(missing_ok=True)
    if move:
        source.unlink()
    return placed


class _CannotLink(Exception):
    pass


def _candidates(path: Path) -> Iterator[Path]:
    yield path
    for n in range(1, 100_000):
        yield path.with_name(f"{path.stem}.{n}{path.suffix}")
    raise ConfigurationError(f"no free name for {path.name} in the quarantine folder")


def _link_free(existing: Path, wanted: Path) -> Path:
    """Hard-link ``existing`` under the first free name; never replaces a file."""
    for candidate in _candidates(wanted):
        try:
            os.link(existing, candidate)
        except FileExistsError:
            continue
        except OSError as exc:  # EXDEV (another file system), EPERM, ENOTSUP: copy instead
            raise _CannotLink from exc
        return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def _reserve_free(wanted: Path) -> Path:
    for candidate in _candidates(wanted):
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def _copy_beside(source: Path, wanted: Path) -> Path:
    """The content of ``source`` (through a link) in a hidden file in ``wanted``'s folder, on disk."""
    descriptor, name = tempfile.mkstemp(dir=wanted.parent, prefix=f".{wanted.name}.", suffix=".partial")
    partial = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        shutil.copystat(source, partial)  # modification time and permissions, as a move keeps them
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial
