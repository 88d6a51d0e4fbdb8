"""The typed result of screening a dataset, and how it is written: JSON plus a readable summary.

Items are sorted by path, so a report does not depend on which process or Ray actor screened what, and
scores are rounded to 4 decimals, so the same folder screened by 1 process, N processes or Ray gives the
same report (:meth:`ScreeningReport.verdicts` is what to compare: everything but timings).
A report holds paths, labels and scores; never image data, and never the instance prompt's text.

File names that are not valid UTF-8 (Python keeps their bytes as lone surrogates) are kept exactly: JSON
holds them as ``\\udcXX`` escapes, which ``json.loads`` turns back into the same name; the summary shows
them as ``\\xNN``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from modchain.core.results import Outcome

Status = Literal["clean", "flagged", "error"]
REPORT_JSON = "screening_report.json"
REPORT_SUMMARY = "screening_summary.md"
_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps_json(data: Any, **options: Any) -> str:
    """``json.dumps`` that keeps non-ASCII text readable and still writes valid UTF-8: lone surrogates (file
    names that are not UTF-8) become ``\\udcXX`` escapes, which read back as the same name."""
    text = json.dumps(data, ensure_ascii=False, **options)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def display_path(path: str) -> str:
    """``path`` printable on any terminal or UTF-8 file: bytes that are not UTF-8 shown as ``\\xNN``."""
    try:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # surrogates that did not come from undecodable bytes
        return path.encode("utf-8", "backslashreplace").decode("utf-8")


#: The key order of an item in reports and checkpoints (as before items extended Outcome).
_REPORT_ORDER = ("path", "kind", "status", "labels", "scores", "findings", "error", "transient", "size", "mtime_ns",
                 "elapsed_ms")


class ItemResult(Outcome):
    """The verdict on one dataset item: an image, or the instance prompt (``kind="prompt"``).

    The :class:`~modchain.core.results.Outcome` fields are derived (and left out of the JSON report, whose
    format they do not change): ``allowed`` only when clean; ``errors`` the error, if any; ``timings_ms``
    ``{"moderation": elapsed_ms}``. ``findings`` stay the report's JSON records (dicts), not
    :class:`~modchain.core.results.Finding` objects: they are what checkpoints and reports hold, rounded.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="Relative to the dataset root, '/'-separated.")
    kind: Literal["image", "prompt"] = "image"
    status: Status
    labels: tuple[str, ...] = Field((), description="The labels that flagged the item, sorted.")
    scores: dict[str, float] = Field(default_factory=dict, description="Highest score per label found.")
    findings: tuple[dict[str, Any], ...] = Field((), description="label, category, score (and box) per finding.")  # type: ignore[assignment]
    error: str | None = Field(None, description="Why the item could not be screened (type: reason).")
    transient: bool = Field(False, description=(
        "The error may pass (a backend failure, a file that could not be read): a resumed run tries again."))
    size: int = -1
    mtime_ns: int = -1
    elapsed_ms: float = Field(0.0, description="Model time for the item (its share of a batch).")
    allowed: bool = Field(False, exclude=True, description="Derived: True only when the item is clean.")
    errors: tuple[str, ...] = Field((), exclude=True)
    timings_ms: dict[str, float] = Field(default_factory=dict, exclude=True)
    unique_id: str | None = Field(None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _derive_outcome(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        error = data.get("error")
        derived = {"errors": (error,) if error else (), "timings_ms": {"moderation": data.get("elapsed_ms", 0.0)}}
        return {**derived, **data, "allowed": data.get("status") == "clean"}

    @model_serializer(mode="wrap")
    def _report_order(self, handler: Any) -> Any:
        # The base class puts ``findings`` first; reports and checkpoints keep their published key order.
        data = handler(self)
        if not isinstance(data, dict):
            return data
        return {key: data[key] for key in _REPORT_ORDER if key in data} | data

    @property
    def key(self) -> str:
        return f"{self.path}|{self.size}|{self.mtime_ns}"

    def verdict(self) -> dict[str, Any]:
        """Everything but timing: what two runs on the same data must agree on."""
        return self.model_dump(exclude={"elapsed_ms"})

    def to_json_line(self) -> str:
        """One JSON line (checkpoints, Ray); unlike ``model_dump_json`` it takes any file name."""
        return dumps_json(self.model_dump(mode="json"))

    @classmethod
    def from_json_line(cls, line: str | bytes) -> ItemResult:
        return cls.model_validate(json.loads(line))


class ScreeningReport(BaseModel):
    """Per-item verdicts, totals and timings for one dataset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    fingerprint: str = Field(description="Hash of the settings that decide verdicts (see ScreeningConfig).")
    items: tuple[ItemResult, ...]
    timings: dict[str, float] = Field(default_factory=dict, description=(
        "wall_s, images_per_s (this run), screened (this run), resumed (from the checkpoint)."))
    quarantined: tuple[dict[str, str], ...] = Field((), description=(
        "Files moved or copied to quarantine since the last report that listed them: path, to, mode."))

    @property
    def images(self) -> list[ItemResult]:
        return [item for item in self.items if item.kind == "image"]

    @property
    def prompt(self) -> ItemResult | None:
        return next((item for item in self.items if item.kind == "prompt"), None)

    @property
    def flagged(self) -> list[ItemResult]:
        return [item for item in self.items if item.status == "flagged"]

    @property
    def errors(self) -> list[ItemResult]:
        return [item for item in self.items if item.status == "error"]

    @property
    def all_clean(self) -> bool:
        return all(item.status == "clean" for item in self.items)

    @property
    def totals(self) -> dict[str, int]:
        images = self.images
        return {"images": len(images),
                "clean": sum(i.status == "clean" for i in images),
                "flagged": sum(i.status == "flagged" for i in images),
                "errors": sum(i.status == "error" for i in images),
                "prompt_flagged": int(self.prompt is not None and self.prompt.status == "flagged"),
                "prompt_errors": int(self.prompt is not None and self.prompt.status == "error")}

    def verdicts(self) -> dict[str, Any]:
        """The report without timings: equal for equal data and settings, however it was computed."""
        return {"fingerprint": self.fingerprint, "items": [item.verdict() for item in self.items],
                "totals": self.totals}

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["totals"] = self.totals
        return data

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> ScreeningReport:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data.pop("totals", None)
        return cls.model_validate(data)

    def summary(self) -> str:
        """A readable Markdown summary: totals, then the flagged and unreadable items."""
        totals = self.totals
        lines = [f"# Dataset screening: {display_path(self.dataset)}", "",
                 f"- images: {totals['images']} (clean {totals['clean']}, flagged {totals['flagged']}, "
                 f"errors {totals['errors']})"]
        prompt = self.prompt
        if prompt is not None:
            detail = f" ({', '.join(prompt.labels) or display_path(prompt.error or '')})" if prompt.status != "clean" else ""
            lines.append(f"- instance prompt: {prompt.status}{detail}")
        if self.timings:
            lines.append(f"- time: {self.timings.get('wall_s', 0):.1f} s, {self.timings.get('images_per_s', 0):.1f} "
                         f"images/s; screened now {int(self.timings.get('screened', 0))}, resumed "
                         f"{int(self.timings.get('resumed', 0))}")
        lines.append(f"- verdict: {'all clean' if self.all_clean else 'NOT clean'}")
        flagged = [i for i in self.flagged if i.kind == "image"]
        if flagged:
            lines += ["", "## Flagged", "", "| file | labels | top score |", "|---|---|---|"]
            lines += [f"| {display_path(i.path)} | {', '.join(i.labels)} | {max(i.scores.values(), default=0):.2f} |" for i in flagged]
        if self.quarantined:
            lines += ["", "## Quarantined", "", "| file | to | mode |", "|---|---|---|"]
            lines += [f"| {display_path(q['path'])} | {display_path(q['to'])} | {q['mode']} |" for q in self.quarantined]
        errors = [i for i in self.errors if i.kind == "image"]
        if errors:
            lines += ["", "## Errors (not screened, not clean)", "", "| file | error |", "|---|---|"]
            lines += [f"| {display_path(i.path)} | {display_path(i.error or '')} |" for i in errors]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``screening_report.json`` and ``screening_summary.md`` into ``out_dir`` (atomically)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        json_path, summary_path = out / REPORT_JSON, out / REPORT_SUMMARY
        _write_atomic(json_path, dumps_json(self.to_dict(), indent=2) + "\n")
        _write_atomic(summary_path, self.summary())
        return json_path, summary_path


def _write_atomic(path: Path, text: str) -> None:
    # A crash mid-write must not leave half a report where a whole one was.
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())  # the new content is on disk before it replaces the old
    os.replace(tmp, path)
