"""Check the hand-written multilingual cases (issue 17): schema, counts, train/test separation, decontamination.

    python training/check_multilingual_cases.py [--decontam ../shared/decontam] [--no-decontam]

Files checked:
  * training files: ``training/cases/multilingual/{benign_requests,attacks,zh_toxicity}.jsonl``;
  * generalisation files (never trained on): ``tests/data/multilingual_generalisation.jsonl`` and
    ``tests/data/zh_toxicity_generalisation.jsonl``.
Every row is ``{"text", "lang", "label", "kind"}`` with an ISO 639-1 ``lang`` and a label allowed for its file.
Prints counts per language and label, then fails (exit 1) on a schema error, a count under the floor issue 17
asks for, a duplicate inside a file, a text shared between a training file and a generalisation file (exact
match after normalisation, or a near-duplicate by character trigrams), or an overlap with the evaluation sets
(``decontam.py``'s ``Overlap``, as training/check_decontamination.py calls it). ``tests/test_multilingual_cases.py``
runs every check but the last one (tests must not read the shared evaluation data).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "training" / "cases" / "multilingual"
DATA = ROOT / "tests" / "data"

# the 17 languages of the machine-translated injection set, plus English for code-switched rows
LANGS = {"de", "es", "zh", "fr", "it", "pt", "ja", "ko", "ru", "hi", "bn", "tr", "ar", "vi", "tl", "id", "th", "en"}
KEYS = {"text", "lang", "label", "kind"}

TRAINING = {  # file -> allowed labels
    CASES / "benign_requests.jsonl": {"safe"},
    CASES / "benign_more.jsonl": {"safe"},
    CASES / "attacks.jsonl": {"injection", "jailbreak"},
    CASES / "attacks_more.jsonl": {"injection", "jailbreak"},
    CASES / "zh_toxicity.jsonl": {"toxic", "safe"},
}
GENERALISATION = {
    DATA / "multilingual_generalisation.jsonl": {"safe", "injection", "jailbreak"},
    DATA / "multilingual_generalisation_2.jsonl": {"safe", "injection", "jailbreak"},
    DATA / "zh_toxicity_generalisation.jsonl": {"toxic", "safe"},
}

_MAJOR = ("de", "es", "zh", "fr", "it", "pt", "ja", "ko", "ru")
_MINOR = ("hi", "bn", "tr", "ar", "vi", "tl", "id", "th")
_ATTACK = ("injection", "jailbreak")
# (file, languages, labels, floor): the least count of rows of those labels, per language (issue 17's brief)
FLOORS = [
    (CASES / "benign_requests.jsonl", _MAJOR, ("safe",), 45),
    (CASES / "benign_requests.jsonl", _MINOR, ("safe",), 25),
    (CASES / "attacks.jsonl", ("de", "es", "zh"), _ATTACK, 20),
    (CASES / "attacks.jsonl", ("fr", "it", "pt", "ja", "ko", "ru"), _ATTACK, 10),
    (CASES / "zh_toxicity.jsonl", ("zh",), ("toxic",), 120),
    (CASES / "zh_toxicity.jsonl", ("zh",), ("safe",), 120),
    (DATA / "multilingual_generalisation.jsonl", ("de", "es", "zh"), ("safe",), 15),
    (DATA / "multilingual_generalisation.jsonl", ("de", "es", "zh"), _ATTACK, 10),
    (DATA / "multilingual_generalisation.jsonl", ("fr", "it", "pt", "ja", "ru"), ("safe",), 5),
    (DATA / "multilingual_generalisation.jsonl", ("fr", "it", "pt", "ja", "ru"), _ATTACK, 5),
    (DATA / "zh_toxicity_generalisation.jsonl", ("zh",), ("toxic",), 40),
    (DATA / "zh_toxicity_generalisation.jsonl", ("zh",), ("safe",), 40),
]
NEAR_DUPLICATE = 0.8  # Jaccard share of character trigrams above which two texts count as one


def normalize(text: str) -> str:
    # NFKC + casefold + words only: stricter than whitespace/case alone (also ignores punctuation), and the
    # same normalisation as the trainer's text hashes (training/classifier_decontam.py)
    return " ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()))


def trigrams(text: str) -> set[str]:
    # character trigrams work for languages without spaces (zh, ja, th) as well as for the others
    s = normalize(text).replace(" ", "")
    return {s[i:i + 3] for i in range(max(1, len(s) - 2))}


def load(path: Path, labels: set[str]) -> tuple[list[dict], list[str]]:
    """The rows of ``path`` and the schema problems found (an unreadable row is a problem, never skipped)."""
    rows, problems = [], []
    if not path.is_file():
        return rows, [f"{path.relative_to(ROOT)}: missing"]
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path.relative_to(ROOT)}:{n}"
        if not line.strip():
            problems.append(f"{where}: blank line")
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc.msg})")
            continue
        if not isinstance(row, dict) or set(row) != KEYS:
            problems.append(f"{where}: keys must be exactly {sorted(KEYS)}")
            continue
        if not all(isinstance(row[k], str) and row[k].strip() for k in KEYS):
            problems.append(f"{where}: every field must be a non-empty string")
            continue
        if row["lang"] not in LANGS:
            problems.append(f"{where}: unknown lang {row['lang']!r}")
        if row["label"] not in labels:
            problems.append(f"{where}: label {row['label']!r} not in {sorted(labels)}")
        rows.append(row)
    return rows, problems


def check(verbose: bool = True) -> tuple[dict[Path, list[dict]], list[str]]:
    """Schema, floors, duplicates and train/generalisation separation; returns the rows and the problems."""
    rows, problems = {}, []
    # a file the lists above do not name would be trained on (the trainer globs the folder) but never checked here
    unlisted = sorted(set(CASES.glob("*.jsonl")) - set(TRAINING)) + sorted(
        set(DATA.glob("*generalisation*.jsonl")) - set(GENERALISATION))
    problems += [f"{path.relative_to(ROOT)}: not listed in TRAINING / GENERALISATION" for path in unlisted]
    for path, labels in {**TRAINING, **GENERALISATION}.items():
        rows[path], found = load(path, labels)
        problems += found
        seen = Counter(normalize(r["text"]) for r in rows[path])
        problems += [f"{path.relative_to(ROOT)}: duplicate text {t[:60]!r}" for t, c in seen.items() if c > 1]
        if verbose:
            counts = Counter((r["lang"], r["label"]) for r in rows[path])
            print(f"{path.relative_to(ROOT)}: {len(rows[path])} rows")
            for lang in sorted({lang for lang, _ in counts}):
                print(f"  {lang}: " + ", ".join(f"{lab}={c}" for (lg, lab), c in sorted(counts.items()) if lg == lang))
    for path, langs, labels, floor in FLOORS:
        for lang in langs:
            got = sum(r["lang"] == lang and r["label"] in labels for r in rows[path])
            if got < floor:
                problems.append(f"{path.relative_to(ROOT)}: {lang} {'/'.join(labels)}: {got} rows, want >= {floor}")
    train = [r["text"] for p in TRAINING for r in rows[p]]
    train_norm = {normalize(t) for t in train}
    train_grams = [trigrams(t) for t in train]
    for path in GENERALISATION:
        for r in rows[path]:
            if normalize(r["text"]) in train_norm:
                problems.append(f"{path.relative_to(ROOT)}: text shared with a training file: {r['text'][:60]!r}")
                continue
            grams = trigrams(r["text"])
            best = max((len(grams & g) / len(grams | g) for g in train_grams), default=0.0)
            if best >= NEAR_DUPLICATE:
                problems.append(f"{path.relative_to(ROOT)}: near-duplicate ({best:.2f}) of a training text: "
                                f"{r['text'][:60]!r}")
    return rows, problems


def decontam_problems(rows: dict[Path, list[dict]], decontam_dir: Path) -> list[str]:
    """Overlaps of every text with the evaluation sets (``decontam.py``; fails closed without it)."""
    if not (decontam_dir / "decontam.py").is_file():
        return [f"no decontam.py in {decontam_dir}: pass --decontam DIR (or --no-decontam in a test-only check)"]
    sys.path.insert(0, str(decontam_dir))
    from decontam import Overlap  # noqa: PLC0415

    overlap, problems = Overlap(), []
    for path, items in rows.items():
        hits = [(r["text"], reason) for r in items if (reason := overlap(r["text"]))]
        print(f"{path.relative_to(ROOT)}: {len(hits)} of {len(items)} texts overlap the evaluation sets")
        problems += [f"{path.relative_to(ROOT)}: {reason}: {text[:60]!r}" for text, reason in hits]
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decontam", type=Path, default=ROOT.parent / "shared" / "decontam")
    ap.add_argument("--no-decontam", action="store_true", help="skip the evaluation-overlap check")
    args = ap.parse_args(argv)
    rows, problems = check()
    if not args.no_decontam:
        problems += decontam_problems(rows, args.decontam)
    for p in problems:
        print(f"PROBLEM: {p}", file=sys.stderr)
    print("OK" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
