"""Benign long documents through the default chain: how many are blocked at each size, and by which filter.

Issue 12's bar: benign prose documents of 2 KB, 20 KB and 200 KB, <= 5% blocked at each size by
``ModerationChain()`` (default config, default thresholds). A verdict on a long benign document must be as
reliable as on a sentence: false positives must not grow with length.

Documents are built by concatenating benign prose, seeded, until each reaches its size:
  passages   the benign passages of ``benchmarks/data/rag_*.txt`` (written for this project: support pages,
             FAQs, recipes, forum threads, emails, reference notes, a few non-English) in the held-out half of
             benchmarks/rag_injection.py's split (the offline models train on the other half), without the
             pages *about* AI safety and prompting (kinds ai_safety, prompting), which quote jailbreaks and
             injections verbatim and score like them (a documented limit, measured by rag_injection.py).
  pydoc      the Python language reference and library topics shipped with CPython (``pydoc_data.topics``),
             technical English prose cut at paragraph breaks, from the topics the trainer holds out, less the
             paragraphs CPython repeats under a train-half topic too (``prose.pydoc_held_out``).
  (both)     the mixed row draws each paragraph from either source.
The default chain's PII filter redacts; only a block counts here (toxicity or prompt safety).

Run:  python benchmarks/long_documents.py [--docs 60] [--sizes 2000,20000,200000] [--tier cascade]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "training")]

import prose  # noqa: E402  (the trainer's prose sources and splits: this benchmark uses only the held-out half)

from modchain import ModerationChain, ModerationConfig  # noqa: E402

ABOUT_ATTACKS = {"ai_safety", "prompting"}


def rag_passages() -> list[str]:
    return [text for kind, text in prose.rag_passages()["dev"] if kind not in ABOUT_ATTACKS]


def pydoc_paragraphs() -> list[str]:
    return prose.pydoc_held_out()  # no paragraph that CPython repeats under a train-half topic


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=60, help="documents per size and source (default 60)")
    ap.add_argument("--sizes", default="2000,20000,200000")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--tier", default=None, help="the local backend's tier (default: the default config's)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    sources = {"passages": rag_passages(), "pydoc": pydoc_paragraphs()}
    sources["mixed"] = sources["passages"] + sources["pydoc"]
    chain = ModerationChain() if args.tier is None else ModerationChain(ModerationConfig.from_dict(
        {"backend": {"name": "local", "tier": args.tier}}))
    print(f"{'source':<10} {'size':>8} {'docs':>5} {'blocked':>8} {'rate':>6}  {'by filter':<28} {'median ms':>9}")
    for name, paragraphs in sources.items():
        for size in sizes:
            rng = random.Random(f"{args.seed}:{name}:{size}")
            n = args.docs if size < 100_000 else max(10, args.docs // 3)
            blocked, by, times = 0, Counter(), []
            for _ in range(n):
                doc = prose.concatenate(paragraphs, rng, size)[:size]
                t0 = time.perf_counter()
                result = chain.moderate(doc)
                times.append((time.perf_counter() - t0) * 1000)
                if not result.allowed:
                    blocked += 1
                    by[result.blocked_by] += 1
            by_text = ", ".join(f"{k}: {v}" for k, v in sorted(by.items())) or "-"
            print(f"{name:<10} {size:>8} {n:>5} {blocked:>8} {blocked / n:>6.1%}  {by_text:<28} "
                  f"{statistics.median(times):>9.1f}", flush=True)


if __name__ == "__main__":
    main()
