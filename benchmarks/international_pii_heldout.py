"""International PII on held-out cases (issue 17): per-label precision / recall on the dev or test split.

The cases (``benchmarks/data/international_pii_heldout_{dev,test}.jsonl``, built by
``benchmarks/data/make_international_pii_heldout.py``) were written by someone who read neither the recognizers
nor the development cases of ``benchmarks/international_pii.py``; dev and test use different sentence frames.

The chain is the one ``benchmarks/international_pii.py`` runs (one detect-only PII filter, offline ``local``
backend, threshold 0.5, every label) and the scoring is ``modchain.eval.metrics.span_report``: one-to-one
matching of spans of the same label, greedily by IoU. Three rules for a match, all shown:

- overlap: same label and the spans share at least one character (the primary rule here);
- IoU >= 0.5 (what ``modchain eval`` and ``benchmarks/international_pii.py`` use);
- exact: start and end both right.

Every predicted span counts, whatever its label (a SIN reported as PHONE is one FP for PHONE and one FN for the
SIN). A look-alike is flagged when anything at all is reported in it. Bars (issue 17): precision >= 0.95,
recall >= 0.90 overall, recall >= 0.80 for each label in five or more cases, no look-alike flagged.

    python benchmarks/international_pii_heldout.py --split dev [--errors]
    python benchmarks/international_pii_heldout.py --data PATH.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from modchain import ModerationChain
from modchain.eval.metrics import span_report

DATA = Path(__file__).parent / "data"
RULES = (("overlap", 1e-9), ("IoU >= 0.5", 0.5), ("exact", 1.0))


def load(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        if not isinstance(row.get("text"), str) or row.get("kind") not in ("identifier", "lookalike"):
            raise ValueError(f"{path}: a row without text or with an unknown kind")
        if (row["kind"] == "lookalike") != (not row["spans"]):
            raise ValueError(f"{path}: look-alikes must have no span, identifier cases at least one")
    return rows


def predict(rows: list[dict]) -> list[list[tuple[int, int, str]]]:
    chain = ModerationChain({"filters": [{"type": "pii", "action": "detect", "threshold": 0.5}]})
    results = chain.moderate_batch([r["text"] for r in rows])
    return [[(f.start, f.end, f.label) for f in res.findings if f.filter == "pii" and f.start is not None]
            for res in results]


def report(rows: list[dict], preds: list[list[tuple[int, int, str]]], errors: bool = False) -> bool:
    pairs = [([tuple(s) for s in r["spans"]], p) for r, p in zip(rows, preds)]
    cases: dict[str, int] = {}
    for gold, _ in pairs:
        for label in {s[2] for s in gold}:
            cases[label] = cases.get(label, 0) + 1
    look = [(r, p) for r, p in zip(rows, preds) if r["kind"] == "lookalike"]
    flagged = [(r, p) for r, p in look if p]
    print(f"cases: {len(rows)} ({len(rows) - len(look)} with an identifier, {len(look)} look-alikes)")

    reports = {name: span_report(pairs, None, iou) for name, iou in RULES}
    for name, _ in RULES:
        o = reports[name][0]
        print(f"{name:<11} precision {o.precision:.3f}  recall {o.recall:.3f}  (tp {o.tp}, fp {o.fp}, fn {o.fn})")
    for style in sorted({r.get("style", "direct") for r in rows} - {None}):
        sub = [pair for r, pair in zip(rows, pairs) if r.get("style", "direct") == style and r["kind"] != "lookalike"]
        o = span_report(sub, None, 1e-9)[0]
        print(f"  {style} context, overlap: precision {o.precision:.3f}  recall {o.recall:.3f}  "
              f"({len(sub)} cases; tp {o.tp}, fp {o.fp}, fn {o.fn})")
    per_label = reports["overlap"][1]
    print("\nper label, overlap rule (last two columns: recall under IoU >= 0.5 and exact spans)")
    print(f"  {'label':<36} {'cases':>5} {'gold':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'prec':>6} {'recall':>6}"
          f" {'r@0.5':>6} {'r@ex':>6}")
    ok = True
    for label, c in sorted(per_label.items()):
        r05, rex = reports["IoU >= 0.5"][1][label].recall, reports["exact"][1][label].recall
        gold = c.tp + c.fn
        mark = ""
        if cases.get(label, 0) >= 5 and c.recall < 0.80:
            ok, mark = False, "  < 0.80"
        print(f"  {label:<36} {cases.get(label, 0):>5} {gold:>4} {c.tp:>4} {c.fp:>4} {c.fn:>4} "
              f"{c.precision if c.tp + c.fp else float('nan'):>6.3f} {c.recall if gold else float('nan'):>6.3f} "
              f"{r05 if gold else float('nan'):>6.3f} {rex if gold else float('nan'):>6.3f}{mark}")
    overall = reports["overlap"][0]
    ok = ok and overall.precision >= 0.95 and overall.recall >= 0.90 and not flagged
    print(f"\nlook-alikes flagged: {len(flagged)} of {len(look)}"
          + (f" (labels: {sorted({s[2] for _, p in flagged for s in p})})" if flagged else ""))
    if errors:
        for r, p in zip(rows, preds):
            gold = sorted(tuple(s) for s in r["spans"])
            if gold != sorted(p):
                t = r["text"]
                print(f"  [{r.get('frame', '')}] {t!r}\n    gold {[(t[s:e], lab) for s, e, lab in gold]}\n"
                      f"    pred {[(t[s:e], lab) for s, e, lab in p]}")
    print("bars (overlap rule): " + ("met" if ok else "NOT met"))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--split", choices=["dev", "test"])
    group.add_argument("--data", type=Path)
    parser.add_argument("--errors", action="store_true", help="print every case whose spans are not all right")
    args = parser.parse_args(argv)
    path = args.data or DATA / f"international_pii_heldout_{args.split}.jsonl"
    rows = load(path)
    return 0 if report(rows, predict(rows), args.errors) else 1


if __name__ == "__main__":
    sys.exit(main())
