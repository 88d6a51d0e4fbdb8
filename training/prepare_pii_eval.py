"""Convert presidio-research's synthetic PII set into ``modchain eval pii`` JSON Lines.

    python training/prepare_pii_eval.py --data ../shared/data --out benchmarks/data/pii_presidio_synth.jsonl

Input: ``<data>/pii/presidio_research_synth_v2.json`` (a JSON list of ``{"full_text", "spans": [{"entity_type",
"entity_value", "start_position", "end_position"}], "template_id", ...}``; MIT, Microsoft presidio-research).
Output rows: ``{"id", "text", "spans": [[start, end, LABEL], ...], "template_id"}`` with Amazon Comprehend
label names. Presidio types with no Comprehend equivalent (organizations, job titles, nationalities, bare
place names) are dropped, and counted on standard error; an unknown type is an error, so a new version
of the file is looked at rather than silently half-converted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

SOURCE = "pii/presidio_research_synth_v2.json"

#: Presidio entity type -> Comprehend PII label (also the aliases other presidio-research files use).
TO_COMPREHEND = {
    "PERSON": "NAME", "PER": "NAME", "NAME": "NAME",
    "STREET_ADDRESS": "ADDRESS", "ADDRESS": "ADDRESS",
    # Comprehend's ADDRESS covers "street, building, city, state, country, zip code"; a zip code alone is
    # labelled as (part of) an address.
    "ZIP_CODE": "ADDRESS",
    "DATE_TIME": "DATE_TIME", "DATE": "DATE_TIME", "TIME": "DATE_TIME",
    "AGE": "AGE",
    "CREDIT_CARD": "CREDIT_DEBIT_NUMBER",
    "PHONE_NUMBER": "PHONE", "PHONE": "PHONE",
    "EMAIL_ADDRESS": "EMAIL", "EMAIL": "EMAIL",
    "IBAN_CODE": "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "US_SSN": "SSN", "SSN": "SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    "URL": "URL", "DOMAIN_NAME": "URL",  # in this set every DOMAIN_NAME value is a full http(s) URL
    "MAC_ADDRESS": "MAC_ADDRESS",
    "US_DRIVER_LICENSE": "DRIVER_ID",
    "US_PASSPORT": "PASSPORT_NUMBER",
    "US_BANK_NUMBER": "BANK_ACCOUNT_NUMBER",
    "US_ITIN": "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER",
    "UK_NHS": "UK_NATIONAL_HEALTH_SERVICE_NUMBER",
    "IN_PAN": "IN_PERMANENT_ACCOUNT_NUMBER", "IN_AADHAAR": "IN_AADHAAR",
}
#: Presidio types with no Comprehend PII label: dropped.
NO_EQUIVALENT = {"ORGANIZATION", "ORG", "TITLE", "NRP", "GPE", "LOCATION", "LOC"}


def convert(records: list[dict]) -> tuple[list[dict], Counter, Counter]:
    rows, kept, dropped = [], Counter(), Counter()
    for index, record in enumerate(records):
        text = record["full_text"]
        spans = []
        for span in record["spans"]:
            kind, start, end = span["entity_type"], span["start_position"], span["end_position"]
            if kind in NO_EQUIVALENT:
                dropped[kind] += 1
                continue
            if kind not in TO_COMPREHEND:
                raise SystemExit(f"record {index}: unknown entity type {kind!r}; add it to TO_COMPREHEND or "
                                 "NO_EQUIVALENT")
            if not (0 <= start < end <= len(text)) or text[start:end] != span["entity_value"]:
                raise SystemExit(f"record {index}: span {start}-{end} does not hold {span['entity_value']!r}")
            spans.append([start, end, TO_COMPREHEND[kind]])
            kept[TO_COMPREHEND[kind]] += 1
        spans.sort()
        rows.append({"id": f"presidio-synth-v2-{index}", "text": text, "spans": spans,
                     "template_id": record.get("template_id")})
    return rows, kept, dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the shared data folder (holds pii/)")
    parser.add_argument("--out", required=True, help="JSON Lines file to write")
    args = parser.parse_args(argv)
    records = json.loads((Path(args.data) / SOURCE).read_text(encoding="utf-8"))
    rows, kept, dropped = convert(records)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as stream:
        for row in rows:
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} texts, {sum(kept.values())} spans -> {out}", file=sys.stderr)
    print(f"kept: {dict(sorted(kept.items()))}", file=sys.stderr)
    print(f"dropped (no Comprehend label): {dict(sorted(dropped.items()))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
