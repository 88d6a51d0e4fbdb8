"""A fine-tuning dataset on disk: a folder of images plus an optional ``dataset_info.json``.

This is the DreamBooth-style layout the seeds screen before training::

    my_dataset/
      dataset_info.json        {"instance_prompt": "a photo of sks dog"}
      img_001.jpg
      more/img_002.png         (sub-folders too, unless recursive=False)

Each image is a :class:`DatasetItem` keyed by its relative path, size and modification time, so a resumed
run recognises work already done on an unchanged file and screens a changed file again. Hidden files and
folders (names starting with ".") are skipped, and so is a report folder inside the dataset. Symbolic links
to folders are followed (datasets are often assembled from linked folders), each real folder once, so a
link loop cannot make the walk endless.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from modchain.core.errors import ConfigurationError
from modchain.screening.config import IMAGE_EXTENSIONS

DATASET_INFO = "dataset_info.json"
#: The relative "path" of the instance-prompt item in reports and checkpoints.
PROMPT_ITEM = f"{DATASET_INFO}#instance_prompt"


@dataclass(frozen=True)
class DatasetItem:
    """One thing to screen: an image file, or the instance prompt (``kind="prompt"``)."""

    path: str  # relative to the dataset root, "/"-separated on every OS
    size: int
    mtime_ns: int
    kind: str = "image"

    @property
    def key(self) -> str:
        """Identity for resuming: the same path with the same size and mtime is the same content."""
        return f"{self.path}|{self.size}|{self.mtime_ns}"


@dataclass(frozen=True)
class PromptInfo:
    """The instance prompt read from ``dataset_info.json``: its text, or why it could not be read."""

    item: DatasetItem
    text: str | None
    error: str | None = None


class Dataset:
    """The images (and instance prompt) of the folder ``root``; files are listed in sorted order."""

    def __init__(self, root: str | os.PathLike[str], *, recursive: bool = True,
                 extensions: tuple[str, ...] = IMAGE_EXTENSIONS, exclude: tuple[str | os.PathLike[str], ...] = ()) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ConfigurationError(f"dataset folder not found: {root}")
        self.recursive = recursive
        self.extensions = frozenset(e.lower() for e in extensions)
        self.exclude = tuple(Path(p).resolve() for p in exclude)

    def images(self) -> list[DatasetItem]:
        items = []
        for path in self._walk():
            try:
                stat = path.stat()
            except OSError:  # vanished or unreadable: listed anyway, screening reports the error
                items.append(DatasetItem(self.relative(path), -1, -1))
                continue
            items.append(DatasetItem(self.relative(path), stat.st_size, stat.st_mtime_ns))
        return sorted(items, key=lambda item: item.path)

    def prompt(self) -> PromptInfo | None:
        """The ``instance_prompt`` of ``dataset_info.json``; ``None`` when there is no such file or key.

        A file that is not valid JSON, or a prompt that is not a string, comes back with an ``error``
        (screened as an error item): a broken dataset description is something to fix before training.
        """
        info = self.root / DATASET_INFO
        if not info.is_file():
            return None
        stat = info.stat()
        item = DatasetItem(PROMPT_ITEM, stat.st_size, stat.st_mtime_ns, kind="prompt")
        try:
            data = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return PromptInfo(item, None, f"{DATASET_INFO} cannot be read as JSON ({type(exc).__name__})")
        if not isinstance(data, dict):
            return PromptInfo(item, None, f"{DATASET_INFO} holds a {type(data).__name__}, not an object")
        if "instance_prompt" not in data:
            return None
        prompt = data["instance_prompt"]
        if not isinstance(prompt, str):
            return PromptInfo(item, None, f"instance_prompt is a {type(prompt).__name__}, not a string")
        return PromptInfo(item, prompt)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def absolute(self, relative: str) -> Path:
        return self.root.joinpath(*relative.split("/"))

    def _walk(self) -> list[Path]:
        found = []
        seen: set[tuple[int, int]] = set()  # (device, inode) of every folder walked
        for folder, dirs, files in os.walk(self.root, followlinks=True):
            here = Path(folder)
            try:
                folder_stat = os.stat(folder)
            except OSError:
                dirs[:] = []
                continue
            if (folder_stat.st_dev, folder_stat.st_ino) in seen:  # reached again through a link
                dirs[:] = []
                continue
            seen.add((folder_stat.st_dev, folder_stat.st_ino))
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not self._excluded(here / d))
            if not self.recursive:
                dirs[:] = []
            found.extend(here / name for name in files
                         if not name.startswith(".") and Path(name).suffix.lower() in self.extensions)
        return found

    def _excluded(self, folder: Path) -> bool:
        resolved = folder.resolve()
        return any(resolved == ex or ex in resolved.parents for ex in self.exclude)
