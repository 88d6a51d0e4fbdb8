"""Dev metrics and speed of an exported encoder model, for the encoder trainer (``train_encoder.py``)."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from pathlib import Path

from classifier_eval import metrics, print_table
from classifier_examples import stable_unit

from modchain.backends.local.encoder import EncoderScorer

__all__ = ["dev_sample", "evaluate", "speed"]


def dev_sample(exs: list, cap: int) -> list:
    by: dict[str, list] = defaultdict(list)
    for e in exs:
        if e.split == "dev":
            by[e.source].append(e)
    out = []
    for name in sorted(by):
        group = sorted(by[name], key=lambda e: stable_unit("encoder-dev:" + e.group + e.text[:50]))
        out += group[:cap]
    return out


def evaluate(scorer: EncoderScorer, dev: dict[str, list]) -> tuple[dict[str, float], str]:
    f1s, tables = {}, []
    for task, head in (("toxicity", "toxic"), ("prompt_safety", "unsafe")):
        exs = dev[task]
        preds = [int(s[head] >= 0.5) for s in scorer.score_batch([e.text for e in exs])]
        by: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(exs):
            by[e.source].append(i)
        rows = [(f"{task}: {src}", metrics([preds[i] for i in idx], [exs[i].label for i in idx]))
                for src, idx in sorted(by.items())]
        overall = metrics(preds, [e.label for e in exs])
        rows.append((f"{task}: ALL (sampled dev)", overall))
        f1s[task] = overall["f1"]
        tables.append(print_table(f"{task.upper()} dev ({head} >= 0.5)", rows))
    return f1s, "\n".join(tables)


def speed(folder: Path, texts: list[str]) -> str:
    one = EncoderScorer.load(folder, threads=1)
    msgs = [t[:200] for t in texts if len(t) >= 200][:300] or texts[:300]
    for t in msgs[:20]:
        one.score(t)
    lat = []
    for t in msgs[:300]:
        s = time.perf_counter()
        one.score(t)
        lat.append((time.perf_counter() - s) * 1000)
    two = EncoderScorer.load(folder, threads=2)
    batch = (msgs * 4)[:1000]
    s = time.perf_counter()
    for i in range(0, len(batch), 64):
        two.score_batch(batch[i:i + 64])
    thr = len(batch) / (time.perf_counter() - s)
    return (f"latency per 200-char message (1 thread, median of {len(lat)}): {statistics.median(lat):.2f} ms; "
            f"batch throughput (2 threads, batches of 64): {thr:.0f} messages/s")
