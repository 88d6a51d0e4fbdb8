"""Acting on a report: move or copy flagged images into a quarantine folder, crash-safe and resumable.

Relative paths are kept (``a/b.jpg`` -> ``QUARANTINE/a/b.jpg``) so a reviewer sees where each file came
from, and nothing is ever overwritten: a name already taken gets a numbered suffix (``b.1.jpg``).
The quarantine folder may not lie inside the dataset, where the next screening would find it again.

No file is ever lost or left twice, whatever interrupts a move (an exception, Ctrl-C, a killed process, a
power cut). Each move is first recorded in the quarantine journal (:mod:`.journal`, fsync'd, in the report
folder) with the name it is about to take. On one file system a move is a hard link under that name (which
fails rather than replace a file that appeared meanwhile; ``os.replace`` would overwrite it) and then the
removal of the old name. Across file systems, and for flagged symbolic links (replaced by a copy of the image
they point to; their target stays), the content is copied to a hidden ``.NAME.ID.partial`` file beside its
destination, fsync'd, read back and compared (SHA-256) with what was read from the source, given its final
name, and only then is the source removed. The outcome is journaled too. :func:`recover`, which every
quarantine and every screening of the dataset runs first, settles a move a crash left half done from what is
on disk: finished (the source removed) when the destination holds the source's content, otherwise rolled back
(a ``.partial`` or reserved name removed); the next run moves that file again. Finished moves stay in the
report (:func:`~modchain.screening.journal.with_quarantine`) until one written after them lists them.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from modchain.core.errors import ConfigurationError
from modchain.screening.journal import QuarantineJournal, _sync_folder
from modchain.screening.report import ItemResult, ScreeningReport

#: Tests only: called with the name of each step of a move ("linked", "unlinked", "copied", "placed"), e.g.
#: to kill the process there and check what the next run makes of it. Never set in production.
_fault_hook: Callable[[str], None] | None = None


def quarantine(report: ScreeningReport, dest: str | os.PathLike[str], *, mode: Literal["move", "copy"] = "move",
               state_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, Path]]:
    """Move (or copy) the report's flagged images under ``dest``; returns ``(relative path, new path)``.

    ``state_dir``: where the journal goes, the screening report folder (default: the dataset's
    ``.modchain-screening``). Half-done moves an interrupted run left there are settled first. Files that
    no longer exist where the report saw them, or that changed since (another size or modification time: not
    the content the report judged), are skipped (not in the returned list), and so are files this journal
    already copied to ``dest`` with ``mode="copy"``.
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
    with QuarantineJournal.open(state_dir if state_dir is not None else root / ".modchain-screening") as journal:
        settle(journal)
        copied = {(e["item"]["path"], e["item"]["size"], e["item"]["mtime_ns"]) for e in journal.entries.values()
                  if e["state"] == "done" and e["mode"] == "copy" and Path(e["dest"]).exists()
                  and target in Path(e["dest"]).parents}
        for item, source in flagged:
            if not _as_screened(source, item) or (mode == "copy" and (item.path, item.size, item.mtime_ns) in copied):
                continue
            wanted = target.joinpath(*item.path.split("/"))
            wanted.parent.mkdir(parents=True, exist_ok=True)
            facts = {"mode": mode, "dataset": str(root), "source": str(source),
                     "item": item.model_dump(mode="json"), "fingerprint": report.fingerprint}
            done.append((item.path, _place(journal, facts, source, wanted, move=mode == "move")))
    return sorted(done)


def recover(state_dir: str | os.PathLike[str]) -> None:
    """Settle the moves an interrupted quarantine left half done in ``state_dir``'s journal (if any)."""
    if QuarantineJournal.exists(state_dir):
        with QuarantineJournal.open(state_dir) as journal:
            settle(journal)


def settle(journal: QuarantineJournal) -> None:
    """Finish each pending move whose destination already holds the content, roll back the others."""
    for entry in journal.pending():
        source, dest = Path(entry["source"]), Path(entry["dest"])
        if entry.get("partial"):
            Path(entry["partial"]).unlink(missing_ok=True)
        source_there = os.path.lexists(source)
        if not dest.is_file() or dest.is_symlink():
            journal.mark(entry, "undone")  # never placed (or not by us): the source is where it was
        elif not source_there:
            journal.mark(entry, "done")  # placed, and the source already removed: only the record was missing
        elif (os.path.samefile(source, dest) if entry["via"] == "link" else _same_content(source, dest)):
            if entry["mode"] == "move":
                source.unlink()
                _sync_folder(source.parent)
            journal.mark(entry, "done")
        else:
            if entry["via"] == "copy" and dest.stat().st_size == 0 < entry["item"]["size"]:
                dest.unlink()  # the name reserved on a file system without hard links, never filled
            journal.mark(entry, "undone")


def _place(journal: QuarantineJournal, facts: dict[str, Any], source: Path, wanted: Path, *, move: bool) -> Path:
    if move and not source.is_symlink():
        while True:  # same file system: no copy, and atomic
            candidate = _free_name(wanted)
            entry = journal.intent(**facts, via="link", dest=str(candidate))
            try:
                os.link(source, candidate)
            except FileExistsError:  # taken since we looked: try the next name
                journal.mark(entry, "undone")
                continue
            except OSError:  # EXDEV (another file system), EPERM, ENOTSUP: copy instead
                journal.mark(entry, "undone")
                break
            try:
                _sync_folder(candidate.parent)
                _fault("linked")
                source.unlink()
                _sync_folder(source.parent)
            except BaseException:
                if os.path.lexists(source):  # not removed: take the new name back, leaving no duplicate
                    candidate.unlink(missing_ok=True)
                    journal.mark(entry, "undone")
                raise
            _fault("unlinked")
            journal.mark(entry, "done")
            return candidate
    while True:
        candidate = _free_name(wanted)
        partial = candidate.with_name(f".{candidate.name}.{uuid.uuid4().hex[:12]}.partial")
        entry = journal.intent(**facts, via="copy", dest=str(candidate), partial=str(partial))
        placed = False
        try:
            _copy_verified(source, partial)
            _fault("copied")
            placed = _put(partial, candidate)
            if not placed:
                journal.mark(entry, "undone")
                continue
            _sync_folder(candidate.parent)
            _fault("placed")
            if move:
                source.unlink()
                _sync_folder(source.parent)
        except BaseException:
            partial.unlink(missing_ok=True)
            if entry["state"] == "pending":
                if placed and os.path.lexists(source):  # the source stays: take the copy back
                    candidate.unlink(missing_ok=True)
                journal.mark(entry, "done" if placed and not os.path.lexists(source) else "undone")
            raise
        journal.mark(entry, "done")
        return candidate


def _fault(point: str) -> None:
    if _fault_hook is not None:
        _fault_hook(point)


def _as_screened(source: Path, item: ItemResult) -> bool:
    try:
        now = source.stat()  # through a link: the content that was screened
    except OSError:
        return False
    return stat.S_ISREG(now.st_mode) and now.st_size == item.size and now.st_mtime_ns == item.mtime_ns


def _candidates(path: Path) -> Iterator[Path]:
    yield path
    for n in range(1, 100_000):
        yield path.with_name(f"{path.stem}.{n}{path.suffix}")
    raise ConfigurationError(f"no free name for {path.name} in the quarantine folder")


def _free_name(wanted: Path) -> Path:
    return next(candidate for candidate in _candidates(wanted) if not os.path.lexists(candidate))


def _put(partial: Path, candidate: Path) -> bool:
    """Give ``partial`` the name ``candidate`` unless that name is taken meanwhile (then ``False``)."""
    try:
        os.link(partial, candidate)
    except FileExistsError:
        partial.unlink(missing_ok=True)
        return False
    except OSError:  # a file system without hard links (FAT, some network shares): reserve the name, then fill it
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            partial.unlink(missing_ok=True)
            return False
        os.replace(partial, candidate)  # replaces only the empty file reserved just now
        return True
    partial.unlink()
    return True


def _copy_verified(source: Path, partial: Path) -> None:
    """The content of ``source`` (through a link) in ``partial``, on disk and read back identical."""
    digest = hashlib.sha256()
    with open(partial, "xb") as out, source.open("rb") as src:
        while block := src.read(1 << 20):
            digest.update(block)
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    shutil.copystat(source, partial)  # modification time and permissions, as a move keeps them
    if _digest(partial) != digest.digest():  # a bad disk or a source rewritten while we read it
        raise OSError(errno.EIO, "the quarantine copy does not match its source; the source was left in place")


def _digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.digest()


def _same_content(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and _digest(a) == _digest(b)
    except OSError:
        return False
