"""Labelled evaluation files: JSON Lines, one example per line, validated as read.

Binary tasks (toxicity, prompt safety): ``{"text": ..., "unsafe": 0 | 1}``; a null ``unsafe`` means "not
labelled for this" and the row is skipped. PII: ``{"text": ..., "spans": [[start, end, LABEL], ...]}``
with Comprehend label names and character offsets into ``text`` (end exclusive); null ``spans`` is skipped.
Other keys are ignored and blank lines skipped; anything else malformed is an :class:`InputError` naming
the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modchain.core.config import PII_LABELS
from modchain.core.errors import InputError
from modchain.eval.metrics import Span


@dataclass(frozen=True)
class Example:
    text: str
    unsafe: bool = False  # binary tasks
    spans: tuple[Span, ...] = field(default=())  # PII


def _rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as stream:
        for line_no, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}, line {line_no}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise InputError(f"{path}, line {line_no}: expected an object with a string 'text'")
            yield line_no, row


def _binary(row: dict[str, Any], where: str) -> Example | None:
    if "unsafe" not in row:
        raise InputError(f"{where}: no 'unsafe' key (0, 1, or null to skip the row)")
    value = row["unsafe"]
    if value is None:
        return None
    if value not in (0, 1) or isinstance(value, float):  # True/False pass (bool is an int), 0.5 does not
        raise InputError(f"{where}: 'unsafe' must be 0, 1 or null, not {value!r}")
    return Example(row["text"], unsafe=bool(value))


def _span(item: Any, text: str, where: str) -> Span:
    ok = (isinstance(item, (list, tuple)) and len(item) == 3 and all(type(v) is int for v in item[:2])
          and isinstance(item[2], str))
    if not ok:
        raise InputError(f"{where}: each span must be [start, end, LABEL], not {item!r}")
    start, end, label = item
    if not 0 <= start < end <= len(text):
        raise InputError(f"{where}: span {item!r} is not inside the text (length {len(text)})")
    if label not in PII_LABELS:
        raise InputError(f"{where}: unknown PII label {label!r}; use Comprehend names such as SSN, EMAIL")
    return (start, end, label)


def _pii(row: dict[str, Any], where: str) -> Example | None:
    if "spans" not in row:
        raise InputError(f"{where}: no 'spans' key (a list of [start, end, LABEL], or null to skip the row)")
    spans = row["spans"]
    if spans is None:
        return None
    if not isinstance(spans, list):
        raise InputError(f"{where}: 'spans' must be a list of [start, end, LABEL]")
    return Example(row["text"], spans=tuple(_span(item, row["text"], where) for item in spans))


def read_examples(path: str | Path, task: str, limit: int | None = None) -> list[Example]:
    """The labelled examples of ``path`` for ``task`` (``pii``, or a binary task), at most ``limit``."""
    parse = _pii if task == "pii" else _binary
    examples: list[Example] = []
    if limit is not None and limit <= 0:
        return examples
    for line_no, row in _rows(path):
        example = parse(row, f"{path}, line {line_no}")
        if example is not None:
            examples.append(example)
            if limit is not None and len(examples) >= limit:
                break
    return examples
