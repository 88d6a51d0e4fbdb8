"""The quarantine journal: every move or copy is recorded (fsync'd) before it starts and after it ends.

``quarantine_journal.jsonl`` in the screening report folder holds one JSON line per event:

* ``intent``: a file is about to be placed at ``dest`` (how: ``via`` a hard link or a verified copy, through
  a hidden ``partial`` file), with the item's verdict, so the report can still list it once it has left
  the dataset;
* ``done`` / ``undone``: the move finished, or was rolled back (nothing changed on disk);
* ``reported``: these finished moves are in a report written after them (a later screening of the now
  smaller dataset does not list them again).

An ``intent`` with no outcome is a move a crash interrupted; :func:`modchain.screening.quarantine.recover`
settles it from what is on disk. As with the checkpoint, a crash can at worst leave a partial last line,
which is cut off when the journal is reopened.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import IO, Any

from modchain.screening.report import ItemResult, ScreeningReport, dumps_json

JOURNAL = "quarantine_journal.jsonl"


class QuarantineJournal:
    """Append-only, fsync'd log of quarantine moves in ``state_dir``; use :meth:`open` as a context manager."""

    def __init__(self, path: Path, handle: IO[str], entries: dict[str, dict[str, Any]]) -> None:
        self.path = path
        self._handle = handle
        self.entries = entries  # id -> the intent, with "state" (pending, done, undone) and "reported"

    @classmethod
    def open(cls, state_dir: str | os.PathLike[str]) -> QuarantineJournal:
        folder = Path(state_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / JOURNAL
        created = not path.exists()
        entries = _load(path) if not created else {}
        handle = path.open("a", encoding="utf-8")
        if created:
            _sync_folder(folder)
        return cls(path, handle, entries)

    @staticmethod
    def exists(state_dir: str | os.PathLike[str]) -> bool:
        return (Path(state_dir) / JOURNAL).is_file()

    def intent(self, **fields: Any) -> dict[str, Any]:
        """Record (durably) a move about to start; returns the entry, whose ``id`` the outcome names."""
        entry = {"op": "intent", "id": uuid.uuid4().hex, **fields}
        self._write(entry)
        self.entries[entry["id"]] = {**entry, "state": "pending", "reported": False}
        return self.entries[entry["id"]]

    def mark(self, entry: dict[str, Any], state: str) -> None:
        self._write({"op": state, "id": entry["id"]})
        entry["state"] = state

    def mark_reported(self, entries: list[dict[str, Any]]) -> None:
        ids = [entry["id"] for entry in entries if not entry["reported"]]
        if ids:
            self._write({"op": "reported", "ids": ids})
            for entry in entries:
                entry["reported"] = True

    def pending(self) -> list[dict[str, Any]]:
        return [entry for entry in self.entries.values() if entry["state"] == "pending"]

    def unreported(self, dataset: str) -> list[dict[str, Any]]:
        """Finished moves and copies of ``dataset`` that no report written after them lists yet."""
        return [entry for entry in self.entries.values()
                if entry["state"] == "done" and not entry["reported"] and entry.get("dataset") == dataset]

    def _write(self, record: dict[str, Any]) -> None:
        self._handle.write(dumps_json(record) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())  # on disk before the file operation it announces (or after it ends)

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()

    def __enter__(self) -> QuarantineJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def with_quarantine(report: ScreeningReport, entries: list[dict[str, Any]]) -> ScreeningReport:
    """``report`` plus the finished moves and copies in ``entries``: listed under ``quarantined``, and a moved
    file that has left the dataset listed again as the item it was (when screened under the same settings)."""
    if not entries:
        return report
    paths = {item.path for item in report.items}
    items = list(report.items)
    listed = {(q["path"], q["to"]) for q in report.quarantined}
    quarantined = list(report.quarantined)
    for entry in sorted(entries, key=lambda e: (e["item"]["path"], e["dest"])):
        item = ItemResult.model_validate(entry["item"])
        if (item.path, entry["dest"]) not in listed:
            quarantined.append({"path": item.path, "to": entry["dest"], "mode": entry["mode"]})
            listed.add((item.path, entry["dest"]))
        if entry["mode"] == "move" and item.path not in paths and entry.get("fingerprint") == report.fingerprint:
            items.append(item)
            paths.add(item.path)
    items.sort(key=lambda i: (i.kind != "prompt", i.path))
    return report.model_copy(update={"items": tuple(items), "quarantined": tuple(quarantined)})


def _load(path: Path) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    good_end = 0
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # a partial last line: the record a crash interrupted (its operation had not begun)
            try:
                record = json.loads(raw)
            except ValueError:
                break
            op = record.get("op") if isinstance(record, dict) else None
            if op == "intent":
                entries[record["id"]] = {**record, "state": "pending", "reported": False}
            elif op in ("done", "undone") and record.get("id") in entries:
                entries[record["id"]]["state"] = op
            elif op == "reported":
                for key in record.get("ids", ()):
                    if key in entries:
                        entries[key]["reported"] = True
            good_end += len(raw)
    if good_end < path.stat().st_size:
        with path.open("r+b") as handle:  # new records start on a clean line
            handle.truncate(good_end)
    return entries


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so a name created, linked or removed in it is durable (not possible on every OS)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
