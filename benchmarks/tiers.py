"""The local backend's tiers side by side: quality on the dev sets, latency and batch throughput (issue 13).

    python benchmarks/tiers.py [--data ../shared/data] [--quick] [--tiers fast,cascade,accurate]

Quality (flag = toxicity: any label >= 0.5; prompt safety: UNSAFE_PROMPT >= 0.5), per tier:
  * the dev split of ``training/train_text_classifiers.py`` (its own data functions and seeds, so the same
    rows it reports; the encoder's trainer uses the same split), per source, then all dev rows;
  * the same dev rows in context: the hand-written cases (and ToxiGen; harmful instructions and WildGuard
    benign prompts for prompt safety), each between benign dev chat messages, as users write one abusive
    sentence or one harmful request among ordinary ones;
  * ``tests/fixtures/generalisation_set.jsonl`` (hand-written, decontaminated), per kind.
  Each cell is ``F1 recall FPR`` (``-`` where a set has no positives / negatives to measure that on).
  For ``cascade`` the share of texts the fast models found uncertain (sent to the encoder) is printed too.
Speed, per tier, in this one process (all three filters through ``ModerationChain``, PII -> toxicity ->
prompt safety, on deterministic 200-character chat messages from ``text_filters_speed.make_messages``):
  * latency: median / p90 milliseconds per ``chain.moderate(text)``, distinct messages, after a warm-up;
  * throughput: messages/s of ``chain.moderate_batch`` over 1,000 messages (median of 3 passes, caches cleared).
Tiers whose encoder cannot run here (no onnxruntime / tokenizers / packaged model) are printed as skipped.
The bars of issue 13 are checked at the end (exit 0 either way; ``--check`` exits 1 on a failed bar).
``--quick``: at most 40 dev rows per source, 100 latency runs, 200 messages per batch, 1 pass.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks"), str(ROOT / "training")]

from text_filters_speed import make_messages  # noqa: E402

from modchain import ModerationChain  # noqa: E402
from modchain.backends.local import backend as local_backend  # noqa: E402
from modchain.backends.local.backend import TIERS, LocalBackend  # noqa: E402
from modchain.core.config import BackendConfig, ModerationConfig, PromptSafetyConfig, ToxicityConfig  # noqa: E402
from modchain.core.errors import ConfigurationError  # noqa: E402

GENERALISATION = ROOT / "tests" / "fixtures" / "generalisation_set.jsonl"
TASKS = {"toxicity": ToxicityConfig(action="detect", threshold=0.0),
         "prompt_safety": PromptSafetyConfig(action="detect", threshold=0.0)}
BARS = {"cascade_ms": 2.0, "accurate_ms": 8.0, "cascade_over_fast": 4.0, "accurate_per_s": 300.0}


class CountingScorer:
    """Wraps the encoder to count the texts it is asked to score (the cascade's encoder share)."""

    def __init__(self, scorer: Any) -> None:
        self.scorer, self.texts = scorer, 0

    def score_batch(self, texts: list[str], *, sentences: bool = False) -> list[dict[str, float]]:
        self.texts += len(texts)
        return self.scorer.score_batch(texts, sentences=sentences)


def build_backend(tier: str, config: BackendConfig) -> tuple[LocalBackend | None, CountingScorer | None, str]:
    """(backend, its counting encoder or None, why skipped or "")."""
    cfg = config.model_copy(update={"tier": tier})
    try:
        backend = LocalBackend.from_config(cfg)
        if tier == "fast":
            return backend, None, ""
        counter = CountingScorer(local_backend._load_scorer(cfg.encoder_path, cfg.device))
        return LocalBackend(tier, encoder=counter), counter, ""
    except ConfigurationError as exc:
        return None, None, str(exc)


# -- data -------------------------------------------------------------------------------------------------

def dev_sets(data: Path, per_source: int | None) -> dict[str, list[tuple[str, str, int]]]:
    """task -> [(set name, text, label)] from the trainer's own dev split."""
    import train_text_classifiers as ttc

    out: dict[str, list[tuple[str, str, int]]] = {}
    for task, make, seed in (("toxicity", ttc.toxicity_data, ttc.SEED), ("prompt_safety", ttc.prompt_data, ttc.SEED + 1)):
        rows = [(e.source, e.text, e.label) for e in make(data, random.Random(seed)) if e.split == "dev"]
        if per_source:
            kept: dict[str, int] = defaultdict(int)
            picked = []
            for row in random.Random(7).sample(rows, len(rows)):
                if kept[(row[0], row[2])] < per_source:  # type: ignore[index]
                    kept[(row[0], row[2])] += 1  # type: ignore[index]
                    picked.append(row)
            rows = picked
        out[task] = rows
    return out


#: Dev sets planted into benign context by :func:`in_context_sets`: a row's label holds in any benign context.
PLANTED = {"toxicity": ("cases", "toxigen"), "prompt_safety": ("cases", "harmful_instructions", "wildguard_benign")}


def in_context_sets(dev: dict[str, list[tuple[str, str, int]]]) -> dict[str, list[tuple[str, str, int]]]:
    """The rows of :data:`PLANTED`, each between benign dev chat messages (``everyday_chat``, hand-written pools
    the trainer keeps out of training): before, after or both, seeded. A message with one abusive sentence or
    one harmful request among ordinary ones is what chat users send; a model that judges a text by its average
    (mean-pooled) meaning lets the one sentence drown."""
    out: dict[str, list[tuple[str, str, int]]] = {}
    for task, rows in dev.items():
        context = [text for name, text, _ in rows if name == "everyday_chat"]
        if not context:
            continue
        rng = random.Random(f"in-context:{task}")
        planted = []
        for name, text, label in rows:
            if name in PLANTED[task]:
                before, after = rng.choice([(1, 0), (0, 1), (1, 1)])
                parts = [rng.choice(context)] * before + [text] + [rng.choice(context)] * after
                planted.append((name, " ".join(parts), label))
        out[task] = planted
    return out


def generalisation_sets() -> dict[str, list[tuple[str, str, int]]]:
    out: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for line in GENERALISATION.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            out[r["task"]].append((r["kind"], r["text"], int(r["label"])))
    return out


# -- quality ----------------------------------------------------------------------------------------------

def flags(backend: LocalBackend, task: str, texts: list[str], batch: int = 256) -> list[int]:
    out = []
    for i in range(0, len(texts), batch):
        for scored in backend.run(task, texts[i:i + batch], TASKS[task]):
            out.append(int(max((f.score for f in scored.findings), default=0.0) >= 0.5))
    return out


def cell(pairs: list[tuple[int, int]]) -> str:
    tp = sum(1 for p, y in pairs if p and y)
    fp = sum(1 for p, y in pairs if p and not y)
    pos = sum(y for _, y in pairs)
    neg = len(pairs) - pos
    recall = tp / pos if pos else None
    fpr = fp / neg if neg else None
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if pos and neg and precision + recall else None
    return " ".join("   -" if v is None else f"{v:.2f}" for v in (f1, recall, fpr))


def quality(backends: dict[str, LocalBackend], sets: dict[str, list[tuple[str, str, int]]], title: str,
            counters: dict[str, CountingScorer | None]) -> None:
    tiers = list(backends)
    print(f"\n{title}: F1 recall FPR per tier")
    print(f"  {'set':<42}{'n':>6}  " + "".join(f"{t:<18}" for t in tiers))
    for task, rows in sets.items():
        texts = [text for _, text, _ in rows]
        before = {t: (c.texts if c else 0) for t, c in counters.items()}
        preds = {t: flags(b, task, texts) for t, b in backends.items()}
        by_set: dict[str, list[int]] = defaultdict(list)
        for i, (name, _, _) in enumerate(rows):
            by_set[name].append(i)
        for name, idx in sorted(by_set.items()) + [(f"ALL {task}", list(range(len(rows))))]:
            line = f"  {(task[:5] + ' ' + name)[:42]:<42}{len(idx):>6}  "
            line += "".join(f"{cell([(preds[t][i], rows[i][2]) for i in idx]):<18}" for t in tiers)
            print(line)
        for t, c in counters.items():
            if c is not None and t == "cascade":
                share = (c.texts - before[t]) / max(1, len(texts))
                print(f"  cascade: {share:.1%} of the {task} texts went to the encoder")


# -- speed ------------------------------------------------------------------------------------------------

def chain_for(backend: LocalBackend) -> ModerationChain:
    return ModerationChain(ModerationConfig(), backends={"local": backend})


def clear(chain: ModerationChain) -> None:
    for text_filter in chain.filters:
        chain.backend_for(text_filter).clear_cache()


def latency_ms(chain: ModerationChain, messages: list[str]) -> tuple[float, float]:
    for text in messages[:20]:
        chain.moderate(text)  # warm-up: model loads, first-call allocations
    clear(chain)
    samples = []
    for text in messages[20:]:
        start = time.perf_counter()
        chain.moderate(text)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]


def throughput(chain: ModerationChain, messages: list[str], passes: int) -> float:
    rates = []
    for _ in range(passes):
        clear(chain)
        start = time.perf_counter()
        chain.moderate_batch(messages)
        rates.append(len(messages) / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--tiers", default=",".join(TIERS), help="comma-separated tiers (default: all three)")
    ap.add_argument("--encoder-path", default=None, help="another encoder model folder (default: the packaged one)")
    ap.add_argument("--device", default=None, help="encoder device (cpu, cuda)")
    ap.add_argument("--quick", action="store_true", help="a small run: 40 dev rows per source, 100 latency runs")
    ap.add_argument("--no-quality", action="store_true", help="speed only")
    ap.add_argument("--check", action="store_true", help="exit 1 when a bar fails")
    args = ap.parse_args(argv)

    config = BackendConfig(encoder_path=args.encoder_path, device=args.device)
    backends: dict[str, LocalBackend] = {}
    counters: dict[str, CountingScorer | None] = {}
    for tier in [t.strip() for t in args.tiers.split(",") if t.strip()]:
        if tier not in TIERS:
            ap.error(f"unknown tier {tier!r}; known: {', '.join(TIERS)}")
        backend, counter, why = build_backend(tier, config)
        if backend is None:
            print(f"{tier}: skipped ({why})")
            continue
        backends[tier], counters[tier] = backend, counter
    if not backends:
        return 0

    if not args.no_quality:
        if args.data.is_dir():
            dev = dev_sets(args.data, 40 if args.quick else None)
            quality(backends, dev, "DEV SPLIT (training data functions)", counters)
            quality(backends, in_context_sets(dev), "IN CONTEXT (dev rows between benign dev chat messages)",
                    counters)
        else:
            print(f"\ndev split: skipped ({args.data} not found; pass --data)")
        quality(backends, generalisation_sets(), "GENERALISATION SET (tests/fixtures)", counters)

    runs, batch, passes = (100, 200, 1) if args.quick else (1000, 1000, 3)
    latency_messages = make_messages(runs + 20, seed=11)
    batch_messages = make_messages(batch, seed=23)
    speed: dict[str, tuple[float, float, float]] = {}
    print(f"\nSPEED: all three filters, 200-character messages ({runs} latency runs, batches of {batch})")
    print(f"  {'tier':<10}{'median ms':>10}{'p90 ms':>9}{'batch msg/s':>13}")
    for tier, backend in backends.items():
        chain = chain_for(backend)
        median, p90 = latency_ms(chain, latency_messages)
        rate = throughput(chain, batch_messages, passes)
        speed[tier] = (median, p90, rate)
        print(f"  {tier:<10}{median:>10.3f}{p90:>9.3f}{rate:>13.0f}")

    failed = []
    checks = []
    if "cascade" in speed:
        checks.append(("cascade median <= 2 ms", speed["cascade"][0] <= BARS["cascade_ms"]))
        if "fast" in speed:
            ratio = speed["cascade"][0] / speed["fast"][0]
            checks.append((f"cascade <= 4x fast (x{ratio:.1f})", ratio <= BARS["cascade_over_fast"]))
    if "accurate" in speed:
        checks.append(("accurate median <= 8 ms", speed["accurate"][0] <= BARS["accurate_ms"]))
        checks.append(("accurate batch >= 300 msg/s", speed["accurate"][2] >= BARS["accurate_per_s"]))
    if checks:
        print("\nBARS (issue 13, this machine, one process)")
        for name, ok in checks:
            print(f"  {'PASS' if ok else 'FAIL'}  {name}")
            if not ok:
                failed.append(name)
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
