"""Decontamination of the offline classifiers' training texts against the evaluation sets, and the record of
what was trained on (``--dump-texts``, the normalized hashes the test suite compares with)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path

from classifier_examples import Example

from modchain.backends.local import long_text

__all__ = ["HAND_WRITTEN", "OVERLAP", "as_windows", "decontaminate", "dump_texts", "overlap_checker", "text_hash",
           "write_hashes"]

OVERLAP = None  # the evaluation-overlap checker, set by main() (windows are texts trained on too)


def as_windows(exs: list[Example]) -> list[Example]:
    """Texts longer than one inference window become their windows (same label and group, the weight shared),
    so the model learns on what it will score: long texts are scored window by window (long_text.py). A window
    is a new text, so it is checked against the evaluation sets again (a public jailbreak's window can repeat
    an evaluation prompt that the whole did not): such windows are dropped."""
    out, dropped = [], 0
    for e in exs:
        parts = long_text.windows(e.text)
        if parts is None:
            out.append(e)
            continue
        for part in parts:
            if OVERLAP is not None and OVERLAP(part):
                if e.source in HAND_WRITTEN or e.source.startswith("prose"):
                    raise SystemExit(f"a window of a hand-written text overlaps the evaluation sets: {part[:80]!r}")
                dropped += 1
                continue
            out.append(Example(part, e.label, e.source, e.split, e.group, e.weight / len(parts), e.func, e.kind,
                               e.labels))
    if dropped:
        print(f"  windows of long shared-data texts dropped as overlapping: {dropped}", flush=True)
    return out


def overlap_checker(decontam_dir: Path):
    """The evaluation-overlap checker of ``decontam_dir`` (shared/decontam): text -> reason or None."""
    if not (decontam_dir / "decontam.py").is_file():
        raise SystemExit(f"no decontam.py in {decontam_dir}: pass --decontam DIR (training never runs unchecked)")
    sys.path.insert(0, str(decontam_dir))
    from decontam import Overlap  # noqa: PLC0415

    return Overlap()


HAND_WRITTEN = {"cases", "borderline", "everyday_chat"}  # sources written for modchain (training/cases)


def decontaminate(name: str, exs: list[Example], overlap) -> list[Example]:
    """Every text to train or tune on, checked against the evaluation sets after all expansion. A hand-written
    text that overlaps stops the script before any model is written (fix the case file); a row of the public
    shared data that overlaps is dropped and counted (some public sets share items with evaluation sets)."""
    keep, dropped, bad = [], Counter(), []
    for e in exs:
        reason = overlap(e.text)
        if reason is None:
            keep.append(e)
        elif e.source in HAND_WRITTEN or e.source.startswith("prose"):
            bad.append((e, reason))
        else:
            dropped[e.source] += 1
    print(f"[{name}] decontamination: {len(exs)} texts; shared-data rows dropped as overlapping: "
          f"{dict(sorted(dropped.items())) or 0}; hand-written overlaps: {len(bad)}", flush=True)
    if bad:
        for e, reason in bad[:20]:
            print(f"  {reason}: {e.source}/{e.split}/{e.func}: {e.text[:100]!r}", file=sys.stderr)
        raise SystemExit(f"{name}: {len(bad)} hand-written training texts overlap the evaluation sets; rewrite them")
    assert not any(overlap(e.text) for e in keep)
    return keep


def text_hash(text: str) -> str:
    """The normalized-text hash the test suite compares its generalisation set with (NFKC, casefold, words)."""
    import unicodedata

    norm = " ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()))
    return hashlib.sha256(norm.encode()).hexdigest()[:16]


def dump_texts(path: Path, named: dict[str, list[Example]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for model, exs in named.items():
            for e in exs:
                f.write(json.dumps({"text": e.text, "label": e.label, "source": e.source, "split": e.split,
                                    "model": model}, ensure_ascii=False) + "\n")


def write_hashes(path: Path, named: dict[str, list[Example]]) -> None:
    hashes = sorted({text_hash(e.text) for exs in named.values() for e in exs})
    with open(path, "wb") as f:
        f.write(gzip.compress(("\n".join(hashes) + "\n").encode(), compresslevel=9, mtime=0))
