"""Overhead of the text chain itself over the detectors it runs (local backend, fast tier, 200-character messages).

    python benchmarks/chain_overhead.py [--runs 2000]

For each message it times, side by side in one run:
  detectors  the three offline detectors called directly (find_pii, score_toxicity, score_prompt_safety)
  moderate   ModerationChain(backend=LocalBackend("fast")).moderate(text): structured result, no run tracking
  invoke     ModerationChain.invoke(text): the Runnable path (run manager, config, callbacks machinery)
and prints medians and the overhead (chain median minus detectors median). Bar: invoke overhead < 1 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from modchain import ModerationChain
from modchain.backends.local.backend import LocalBackend
from modchain.backends.local.pii_recognizers import find_pii
from modchain.backends.local.prompt_safety_heuristics import score_prompt_safety
from modchain.backends.local.toxicity_lexicon import score_toxicity

TEMPLATES = [
    "Hi team, the quarterly report is attached. Please review the revenue numbers for the northeast region "
    "before Thursday's meeting and send comments to {email} so we can finalize the deck on time.",
    "Can you help me write a polite reply to a customer who asked about our refund policy? They bought the "
    "premium plan last month and want to downgrade, their number is {phone} if that matters.",
    "Summarize the following meeting notes in three bullet points: budget approved, hiring paused until "
    "March, new office opens in spring. Keep it short and friendly for the whole company newsletter.",
]


def messages(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = rng.choice(TEMPLATES).format(email=f"user{i}@example.com", phone=f"206-555-{1000 + i % 9000:04d}")
        out.append(f"#{i} {text}"[:200])  # every text distinct: the detectors cache per-text features
    return out


_cursor = 0


def median_us(fn, texts, runs):  # type: ignore[no-untyped-def]
    global _cursor
    samples = []
    for _ in range(runs):
        text = texts[_cursor % len(texts)]
        _cursor += 1
        started = time.perf_counter()
        fn(text)
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    # Distinct texts for every call of every path, so no path profits from a per-text cache.
    texts = messages(args.runs * 4 + 800)
    # the fast tier: the detectors above are its models, so the difference is the chain's own work (on the default
    # cascade it would also count the encoder's calls for the texts the fast models are unsure of)
    chain = ModerationChain(backend=LocalBackend("fast"))

    def detectors(text: str) -> None:
        find_pii(text)
        score_toxicity(text)
        score_prompt_safety(text)

    for fn in (detectors, chain.moderate, chain.invoke):  # warm up caches and lazy imports
        median_us(fn, texts, 200)
    rows = []
    # Interleave repetitions so machine noise hits every variant alike.
    results: dict[str, list[float]] = {"detectors": [], "moderate": [], "invoke": []}
    for _ in range(5):
        results["detectors"].append(median_us(detectors, texts, args.runs // 5))
        results["moderate"].append(median_us(chain.moderate, texts, args.runs // 5))
        results["invoke"].append(median_us(chain.invoke, texts, args.runs // 5))
    base = statistics.median(results["detectors"])
    for name, values in results.items():
        med = statistics.median(values)
        rows.append((name, med, med - base))
    print(f"{'path':<10} {'median µs/msg':>14} {'overhead µs':>12}")
    for name, med, overhead in rows:
        print(f"{name:<10} {med:>14.1f} {overhead:>12.1f}")
    invoke_overhead_ms = (rows[2][1] - base) / 1000
    print(f"\ninvoke overhead: {invoke_overhead_ms:.3f} ms (bar: < 1 ms) -> {'PASS' if invoke_overhead_ms < 1 else 'FAIL'}")


if __name__ == "__main__":
    main()
