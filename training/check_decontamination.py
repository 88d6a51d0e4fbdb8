"""Check every hand-written text in the repository against the evaluation sets (issue 12's first bar).

    python training/check_decontamination.py [--decontam ../shared/decontam]

Checks, with ``decontam.py``'s ``Overlap`` (exact and near-duplicate matches of normalized text):
  * every text of ``training/cases/`` and its subfolders (JSON Lines ``text`` / ``template`` / ``values``
    fields, and the plain-text page files), before expansion; the training scripts check the expanded texts
    themselves;
  * every string literal of at least three words in ``tests/`` (a test that asserts on an evaluation text
    measures memory of it, or leaks it into the project);
  * the generalisation sets: ``tests/fixtures/generalisation_set.jsonl`` and every ``tests/data/*.jsonl``.
Prints each overlap and exits 1 when there is any. The training texts themselves are checked by
``training/train_text_classifiers.py`` (which also writes ``--dump-texts``).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def case_texts() -> Iterator[tuple[str, str]]:
    cases = ROOT / "training" / "cases"
    for path in sorted(p for p in cases.rglob("*") if p.is_file()):
        name = str(path.relative_to(cases))
        if path.suffix == ".jsonl":
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                for key in ("text", "template"):
                    if isinstance(row.get(key), str):
                        yield f"{name}:{n}", row[key]
                for value in row.get("values", []):
                    yield f"{name}:{n}", value
        elif path.suffix == ".txt":
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip() and not line.startswith("#"):
                    yield f"{name}:{n}", line


def test_literals() -> Iterator[tuple[str, str]]:
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value.split()) >= 3:
                yield f"{path.relative_to(ROOT)}:{node.lineno}", node.value


def generalisation_texts() -> Iterator[tuple[str, str]]:
    paths = [ROOT / "tests" / "fixtures" / "generalisation_set.jsonl", *sorted((ROOT / "tests" / "data").glob("*.jsonl"))]
    for path in paths:
        if not path.exists():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                text = json.loads(line).get("text")
                if isinstance(text, str):
                    yield f"{path.relative_to(ROOT)}:{n}", text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decontam", type=Path, default=ROOT.parent / "shared" / "decontam")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(args.decontam))
    from decontam import Overlap  # noqa: PLC0415

    overlap = Overlap()
    bad = total = 0
    for group, texts in (("training cases", case_texts()), ("test literals", test_literals()),
                         ("generalisation set", generalisation_texts())):
        n = hits = 0
        for where, text in texts:
            n += 1
            reason = overlap(text)
            if reason:
                hits += 1
                print(f"{where}: {reason}: {text[:90]!r}")
        print(f"{group}: {hits} of {n} texts overlap the evaluation sets")
        bad, total = bad + hits, total + n
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
