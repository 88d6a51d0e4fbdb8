"""Build the hand-written PII sets: pii_handwritten.txt -> .jsonl, pii_peer_style.txt -> .jsonl.

    python benchmarks/data/build_pii_handwritten.py

``[[LABEL|value]]`` marks a gold span, ``\\n`` is a line break, ``#`` starts a comment line.
Each non-comment line becomes ``{"id", "text", "spans": [[start, end, LABEL], ...]}`` with Comprehend labels.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
LABELS = {
    "SSN": "SSN", "CARD": "CREDIT_DEBIT_NUMBER", "EMAIL": "EMAIL", "PHONE": "PHONE", "IP": "IP_ADDRESS",
    "IBAN": "INTERNATIONAL_BANK_ACCOUNT_NUMBER", "URL": "URL", "MAC": "MAC_ADDRESS", "AKEY": "AWS_ACCESS_KEY",
    "SKEY": "AWS_SECRET_KEY", "ABA": "BANK_ROUTING",
}
_MARK = re.compile(r"\[\[([A-Z]+)\|(.+?)\]\]")


def parse(line: str) -> tuple[str, list[list]]:
    text, spans, pos = [], [], 0
    length = 0
    for m in _MARK.finditer(line):
        before = line[pos : m.start()]
        text.append(before)
        length += len(before)
        label, value = m.group(1), m.group(2)
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r} in {line!r}")
        spans.append([length, length + len(value), LABELS[label]])
        text.append(value)
        length += len(value)
        pos = m.end()
    text.append(line[pos:])
    out = "".join(text)
    if "[[" in out and "|" in out.split("[[", 1)[1]:
        raise ValueError(f"unparsed markup in {line!r}")
    return out, spans


SOURCES = ("pii_handwritten", "pii_peer_style")


def main() -> int:
    for name in SOURCES:
        build(name)
    return 0


def build(name: str) -> None:
    rows = []
    for line_no, line in enumerate((HERE / f"{name}.txt").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        text, spans = parse(line.replace("\\n", "\n"))
        rows.append({"id": f"{name.removeprefix('pii_')}-{line_no}", "text": text, "spans": spans})
    with (HERE / f"{name}.jsonl").open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for row in rows:
        for _, _, label in row["spans"]:
            counts[label] = counts.get(label, 0) + 1
    negatives = sum(1 for row in rows if not row["spans"])
    print(f"{name}: {len(rows)} texts ({negatives} without PII), {sum(counts.values())} spans: {counts}",
          file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
