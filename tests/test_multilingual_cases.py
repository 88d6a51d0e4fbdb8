"""The hand-written multilingual cases of issue 17: schema, floors, and no text shared between the training files
(``training/cases/multilingual/``) and the generalisation files (``tests/data/``).

The evaluation-overlap check (``decontam.py``) is not run here: tests must not read the shared evaluation data;
``python training/check_multilingual_cases.py`` runs it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    # loaded by path: training/ is a folder of scripts, not a package
    spec = importlib.util.spec_from_file_location("check_multilingual_cases",
                                                  ROOT / "training" / "check_multilingual_cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECK = _checker()


def test_schema_floors_and_separation():
    rows, problems = CHECK.check(verbose=False)
    assert problems == []
    assert set(rows) == set(CHECK.TRAINING) | set(CHECK.GENERALISATION)


def test_no_generalisation_text_in_training_files():
    # stated on its own (the check above covers it too) so a failure names the bar it breaks
    rows, _ = CHECK.check(verbose=False)
    train = {CHECK.normalize(r["text"]) for p in CHECK.TRAINING for r in rows[p]}
    held_out = [r["text"] for p in CHECK.GENERALISATION for r in rows[p]]
    assert held_out
    assert not [t for t in held_out if CHECK.normalize(t) in train]


def test_normalisation_ignores_case_space_and_punctuation():
    assert CHECK.normalize("  Hallo,   WELT! ") == CHECK.normalize("hallo welt")
    assert CHECK.normalize("Ｈｅｌｌｏ") == CHECK.normalize("hello")  # NFKC folds full-width forms


@pytest.mark.parametrize("row, complaint", [
    ({"text": "x", "lang": "xx", "label": "safe", "kind": "k"}, "unknown lang"),
    ({"text": "x", "lang": "de", "label": "toxic", "kind": "k"}, "label"),
    ({"text": "", "lang": "de", "label": "safe", "kind": "k"}, "non-empty"),
    ({"text": "x", "lang": "de", "label": "safe"}, "keys"),
])
def test_bad_rows_are_reported(tmp_path, monkeypatch, row, complaint):
    monkeypatch.setattr(CHECK, "ROOT", tmp_path)
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    _, problems = CHECK.load(path, {"safe"})
    assert len(problems) == 1 and complaint in problems[0]


def test_unreadable_line_is_a_problem_not_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(CHECK, "ROOT", tmp_path)
    path = tmp_path / "cases.jsonl"
    path.write_text('{"text": \n', encoding="utf-8")
    rows, problems = CHECK.load(path, {"safe"})
    assert rows == [] and "not JSON" in problems[0]
