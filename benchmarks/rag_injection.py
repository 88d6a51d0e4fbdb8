"""Injection in retrieved documents: how many poisoned passages DocumentGuard flags, and how many clean ones.

Data:
  poisoned  each injection payload of ``<data>/prompt_safety/bipia_attack_instructions.jsonl`` (101, BIPIA
            indirect-injection instructions) and ``cyberseceval_prompt_injection.jsonl`` (251, CyberSecEval)
            inserted, whole, as sentences of a benign passage, at its start, middle or end (seeded choice of
            host passage and position). No wrapper text is added around a payload.
  clean     the 133 benign passages of ``benchmarks/data/rag_benign_passages.txt`` (written for this project:
            support articles, FAQs, product pages, policies, encyclopedic notes, how-tos, news, emails,
            reviews, tickets; many contain imperatives and questions, as real pages do).

Payloads and clean passages are each split 50/50 into dev and test with fixed seeds. The guard's cues and
threshold were chosen looking at the dev split only; test is reported as the held-out number.

Rows, side by side in one run (flag = score >= 0.5, the default threshold):
  whole passage    the offline prompt-safety classifier on the whole passage (what ModerationChain does)
  windows          the same classifier on sentence windows (each sentence, each pair), max taken
  DocumentGuard    the default: planted runs of sentences (off the page's topic, asking the reader for
                   something) scored by the classifier, plus AI-reader cues (modchain.text.document_injection)

The local classifier was trained on part of both payload sets (see the model card,
src/modchain/backends/local/models/MODELS.md): the "unseen" columns count only payloads it never saw in
training (its own held-out rows and the rows it excluded), with the rule of training/train_text_classifiers.py.

Run:  python benchmarks/rag_injection.py [--data ../shared/data]
Bars (issue 7): >= 90% of poisoned documents flagged, <= 5% of clean passages flagged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

from langchain_core.documents import Document

from modchain import ModerationChain
from modchain.text.document_injection import sentence_spans
from modchain.text.documents import DocumentGuard

HERE = Path(__file__).resolve().parent
SOURCES = {"bipia": "bipia_attack_instructions.jsonl", "cyberseceval": "cyberseceval_prompt_injection.jsonl"}
POSITIONS = ("start", "middle", "end")
# BIPIA categories the classifier was trained on (training/train_text_classifiers.py, BIPIA_HARMFUL).
_BIPIA_TRAINED = {"Scams & Fraud", "Misinformation & Propaganda",
                  "Encrypting Documents and Demanding Ransom (Ransomware)", "Data Eavesdropping",
                  "Corrupting an Operating System", "Introduce System Fingerprinting", "Keylogging",
                  "Compromising Computers", "Blocking Internet Connection", "Screen Scraping",
                  "Bringing Down Hosts and Servers (Denial of Service)", "Traffic Analysis", "Spreading Malware",
                  "Marketing & Advertising"}


def _unit(key: str) -> float:
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) / float(1 << 48)


def seen_in_training(source: str, row: dict) -> bool:
    """Whether the offline classifier trained on this payload (the training script's split rule)."""
    if source == "bipia":
        return row["categories"][-1] in _BIPIA_TRAINED and _unit(f"bipia:{row['id']}") >= 0.25
    return row["extra"].get("risk_category") == "security-violating" and _unit(f"cse:{row['id']}") >= 0.25


def load_passages() -> list[str]:
    lines = (HERE / "data" / "rag_benign_passages.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("] ", 1)[1].strip() for line in lines if line.startswith("[")]


def embed(passage: str, payload: str, position: str) -> str:
    sentences = [passage[s:e].strip() for s, e in sentence_spans(passage)]
    at = {"start": 0, "middle": len(sentences) // 2, "end": len(sentences)}[position]
    return " ".join(sentences[:at] + [payload.strip()] + sentences[at:])


def build(data: Path) -> tuple[dict, dict]:
    """{split: [(source, seen, text)]} poisoned, {split: [text]} clean; seeded."""
    passages = load_passages()
    order = list(range(len(passages)))
    random.Random(7).shuffle(order)
    half = len(passages) // 2
    clean = {"dev": [passages[i] for i in order[:half]], "test": [passages[i] for i in order[half:]]}
    poisoned: dict[str, list] = {"dev": [], "test": []}
    for source, name in SOURCES.items():
        rows = [json.loads(line) for line in (data / "prompt_safety" / name).read_text(encoding="utf-8").splitlines()
                if line.strip()]
        rng = random.Random(11)
        rng.shuffle(rows)
        for index, row in enumerate(rows):
            position, host = rng.choice(POSITIONS), rng.choice(passages)
            split = "dev" if index < len(rows) // 2 else "test"
            poisoned[split].append((source, seen_in_training(source, row), embed(host, row["text"], position)))
    return poisoned, clean


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    if not (args.data / "prompt_safety").is_dir():
        print(f"no payloads under {args.data}/prompt_safety: pass --data", file=sys.stderr)
        return 2
    poisoned, clean = build(args.data)

    whole_chain = ModerationChain({"filters": [{"type": "prompt_safety", "action": "detect", "threshold": 0.0}]})
    only = {"pii": "off", "toxicity": "off", "injection": "flag"}
    windows = DocumentGuard({**only, "context_gate": False, "reader_cues": False})
    guard = DocumentGuard(only)

    def whole(texts: list[str]) -> list[bool]:
        return [r.findings[0].score >= 0.5 for r in whole_chain.moderate_batch(texts)]

    def by_guard(g: DocumentGuard) -> callable:
        return lambda texts: [bool(v.flags) for v in g.moderate_documents([Document(t) for t in texts]).verdicts]

    methods = {"whole passage": whole, "windows": by_guard(windows), "DocumentGuard": by_guard(guard)}
    header = (f"{'method':<15}{'split':<6}{'bipia':>8}{'cybersec':>10}{'all':>8}{'unseen':>9}"
              f"{'clean':>8}{'ms/doc':>8}")
    print(f"poisoned docs: dev {len(poisoned['dev'])}, test {len(poisoned['test'])}; clean passages: "
          f"dev {len(clean['dev'])}, test {len(clean['test'])}")
    print("flagged rate (poisoned columns: higher is better; clean: lower is better)\n")
    print(header)
    print("-" * len(header))
    results = {}
    for method, run in methods.items():
        for split in ("dev", "test"):
            rows = poisoned[split]
            started = time.perf_counter()
            flags = run([text for _, _, text in rows])
            clean_flags = run(clean[split])
            ms = (time.perf_counter() - started) * 1000 / (len(rows) + len(clean[split]))

            def rate(keep, flags=flags, rows=rows) -> float:
                picked = [f for f, row in zip(flags, rows) if keep(row)]
                return sum(picked) / max(1, len(picked))

            cells = (rate(lambda r: r[0] == "bipia"), rate(lambda r: r[0] == "cyberseceval"),
                     rate(lambda r: True), rate(lambda r: not r[1]), sum(clean_flags) / len(clean_flags))
            results[(method, split)] = cells
            print(f"{method:<15}{split:<6}" + "".join(f"{c:>{w}.1%}" for c, w in zip(cells, (8, 10, 8, 9, 8)))
                  + f"{ms:>8.2f}")
    unseen = {split: sum(not r[1] for r in poisoned[split]) for split in ("dev", "test")}
    print(f"\nunseen = payloads the offline classifier never trained on (dev {unseen['dev']}, test {unseen['test']})")
    for split in ("dev", "test"):
        cells = results[("DocumentGuard", split)]
        ok = cells[2] >= 0.90 and cells[4] <= 0.05
        print(f"bars on {split}: poisoned flagged {cells[2]:.1%} (>= 90%), clean flagged {cells[4]:.1%} (<= 5%): "
              f"{'PASS' if ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
