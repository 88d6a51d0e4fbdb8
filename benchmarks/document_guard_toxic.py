"""Does ``DocumentGuard`` still catch one abusive sentence in a benign page? Old and new toxicity check, side by side.

    python benchmarks/document_guard_toxic.py [--docs 100] [--sizes 0,2000] [--data ../shared/data]

Hosts: benign prose of training/prose.py's held-out ("dev") half, the support pages, FAQs and recipes that
benchmarks/document_guard_benign.py uses (passages about attacks left out); size 0 is one paragraph as written
(about 200-250 characters), 2000 a page of joined paragraphs cut to 2,000 characters. Into each host one toxic
text is planted at a random sentence boundary. The toxic texts are dev-split rows only, never a row the
toxicity model trained on, split as training/train_text_classifiers.py splits them (``toxicity_data``):
``cases`` are the hand-written dev cases (training/cases/toxicity_cases.jsonl), ``shared`` the dev rows of
the public sets in ``--data`` (HateXplain hate, ToxiGen, Davidson hate, OpenAI moderation; at most 300
characters). When ``--data`` (default ../shared/data) is not there, only ``cases`` is run.

Both guards run with injection and PII off, so that only the toxicity check decides. Columns:

  alone      the toxic texts by themselves through the toxicity chain (>= threshold): the model's own recall,
             the ceiling for the rows to its right
  dropped    planted pages dropped by the default guard (``toxicity="drop"``)
  cut        ``toxicity="redact"``: pages whose planted text was removed whole (or that were dropped)
  lost       ``toxicity="redact"``: host sentences removed with it, per page (neighbours lost)
  benign     the hosts without a planted text: share dropped for toxicity (false positives)

``old`` is the guard's previous toxicity check, replicated here (every sentence window through the toxicity
chain, maximum at the threshold; redact cuts every window at or over it, the shortest first; checked against the
previous guard itself: the same decisions and cuts on 240 of 240 pages); ``new`` is ``DocumentGuard`` as it is
in this tree. No bar in an issue: this keeps the recall side of the benign benchmark honest.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "training")]

import prose  # noqa: E402  (held-out prose only)
from classifier_examples import CASES, SEED, read_jsonl  # noqa: E402
from langchain_core.documents import Document  # noqa: E402

from modchain.text.documents import DocumentGuard  # noqa: E402
from modchain.text.documents.cues import sentence_spans, window_spans  # noqa: E402

_ABOUT_ATTACKS = {"ai_safety", "prompting"}
_SHARED = {"hatexplain_hate", "toxigen", "davidson_hate", "openai_moderation"}
OFF = {"injection": "off", "pii": "off"}


def toxic_texts(data: Path | None) -> dict[str, list[str]]:
    """Dev-split toxic texts per source (the trainer's own split; no train row)."""
    if data is None or not data.is_dir():
        return {"cases": [r["text"] for r in read_jsonl(CASES / "toxicity_cases.jsonl")
                          if r.get("split") == "dev" and r.get("label") == 1 and "text" in r]}
    from classifier_datasets import toxicity_data  # reads every file of --data

    dev = [e for e in toxicity_data(data, random.Random(SEED)) if e.split == "dev" and e.label == 1]
    return {"cases": [e.text for e in dev if e.source == "cases"],
            "shared": sorted({e.text for e in dev if e.source in _SHARED and len(e.text) <= 300})}


def plant(host: str, text: str, rng: random.Random) -> tuple[str, tuple[int, int]]:
    spans = sentence_spans(host)
    at = spans[rng.randrange(len(spans))][0] if spans else 0
    return host[:at] + text + " " + host[at:], (at, at + len(text))


def old_check(guard: DocumentGuard, text: str) -> tuple[bool, list[tuple[int, int]]]:
    """The previous toxicity check: (toxic, character spans redact cut)."""
    sentences = sentence_spans(text)
    windows = window_spans(sentences, guard.config.window_sentences, guard.config.max_window_chars)
    results = guard._toxicity.moderate_batch([text[s:e] for _, _, s, e in windows]) if windows else []
    hits = [(first, last) for (first, last, _, _), r in zip(windows, results)
            if max((f.score for f in r.findings), default=0.0) >= guard.config.toxicity_threshold]
    removed: set[int] = set()
    for first, last in sorted(hits, key=lambda run: run[1] - run[0]):
        if not set(range(first, last)) & removed:
            removed |= set(range(first, last))
    return bool(hits), [sentences[i] for i in sorted(removed)]


def new_check(drop: DocumentGuard, redact: DocumentGuard, texts: list[str]
              ) -> list[tuple[bool, list[tuple[int, int]] | None]]:
    """(dropped by the default action, spans removed by redact; None when redact dropped it)."""
    dropped = [r.verdicts[0].action == "drop" for r in drop.moderate_lists([[Document(t)] for t in texts])]
    cut = [None if r.verdicts[0].action == "drop" else list(r.verdicts[0].removed_spans)
           for r in redact.moderate_lists([[Document(t)] for t in texts])]
    return list(zip(dropped, cut))


def covered(span: tuple[int, int], removed: list[tuple[int, int]]) -> bool:
    start, end = span
    return any(s <= start and end <= e for s, e in _merged(removed))


def lost(text: str, planted: tuple[int, int], removed: list[tuple[int, int]]) -> int:
    """Host sentences (outside the planted text) inside the removed spans."""
    return sum(1 for s, e in sentence_spans(text)
               if (e <= planted[0] or s >= planted[1]) and covered((s, e), removed))


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1] + 1:  # sentences are joined by a space
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100, help="planted pages per row (and hosts per size)")
    ap.add_argument("--sizes", default="0,2000")
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = ap.parse_args(argv)
    drop, redact = DocumentGuard(OFF), DocumentGuard({**OFF, "toxicity": "redact"})
    chain, threshold = drop._toxicity, drop.config.toxicity_threshold
    pool = [t for k, t in prose.rag_passages()["dev"] if k not in _ABOUT_ATTACKS]
    toxic = toxic_texts(args.data)
    print(f"DocumentGuard toxicity (injection and PII off), {args.docs} pages per row; old | new")
    print(f"{'toxic':<8}{'size':>6}{'n':>5}{'alone':>7}  {'dropped':>13}  {'cut':>13}  {'lost':>13}  {'benign':>13}")
    for size in (int(s) for s in args.sizes.split(",")):
        rng = random.Random(f"guard-toxic:{size}")
        hosts = (rng.sample(pool, min(args.docs, len(pool))) if size == 0 else
                 [prose.concatenate(pool, rng, size)[:size] for _ in range(args.docs)])
        benign_old = sum(old_check(drop, h)[0] for h in hosts) / len(hosts)
        benign_new = sum(d for d, _ in new_check(drop, redact, hosts)) / len(hosts)
        for name, texts in toxic.items():
            sample = [texts[i % len(texts)] for i in rng.sample(range(max(len(texts), args.docs)), args.docs)]
            alone = sum(max((f.score for f in r.findings), default=0.0) >= threshold
                        for r in chain.moderate_batch(sample)) / len(sample)
            pages = [plant(hosts[i % len(hosts)], text, rng) for i, text in enumerate(sample)]
            old = [old_check(drop, page) for page, _ in pages]
            new = new_check(drop, redact, [page for page, _ in pages])
            n = len(pages)
            cells = []
            for results in (old, new):
                cut = [removed is None or covered(span, removed) for (_, span), (_, removed) in zip(pages, results)]
                gone = [0 if removed is None else lost(page, span, removed)
                        for (page, span), (_, removed) in zip(pages, results)]
                cells.append((sum(d for d, _ in results) / n, sum(cut) / n, sum(gone) / n))
            # the old check decides drop and redact from the same hits: its "dropped" is "any window hit"
            print(f"{name:<8}{size:>6}{n:>5}{alone:>7.2f}  {cells[0][0]:>6.2f} |{cells[1][0]:>5.2f}  "
                  f"{cells[0][1]:>6.2f} |{cells[1][1]:>5.2f}  {cells[0][2]:>6.2f} |{cells[1][2]:>5.2f}  "
                  f"{benign_old:>6.2f} |{benign_new:>5.2f}", flush=True)


if __name__ == "__main__":
    main()
