"""Dev-set evaluation of the offline classifiers with the exported pure-Python models: metrics tables per
source and per hand-written category, and per-message latency (``train_text_classifiers.py``)."""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from classifier_examples import ROOT, Example

from modchain.backends.local import linear_model as lm

__all__ = ["benchmark_chat", "evaluate_prompt_safety", "evaluate_toxicity", "latency_us", "metrics", "print_table"]


def metrics(pred: list[int], gold: list[int]) -> dict:
    tp = sum(1 for p, g in zip(pred, gold) if p and g)
    fp = sum(1 for p, g in zip(pred, gold) if p and not g)
    tn = sum(1 for p, g in zip(pred, gold) if not p and not g)
    fn = sum(1 for p, g in zip(pred, gold) if not p and g)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    fpr = fp / (fp + tn) if fp + tn else 0.0
    return {"n": len(gold), "tp": tp, "fp": fp, "tn": tn, "fn": fn, "precision": prec, "recall": rec, "f1": f1, "fpr": fpr}


def print_table(title: str, rows: list[tuple[str, dict]]) -> str:
    lines = [f"\n{title}", f"{'dev set':<44} {'n':>5} {'tp':>5} {'fp':>5} {'tn':>5} {'fn':>5} {'prec':>6} {'rec':>6} {'F1':>6} {'FPR':>6}"]
    for name, m in rows:
        lines.append(f"{name:<44} {m['n']:>5} {m['tp']:>5} {m['fp']:>5} {m['tn']:>5} {m['fn']:>5} "
                     f"{m['precision']:>6.3f} {m['recall']:>6.3f} {m['f1']:>6.3f} {m['fpr']:>6.3f}")
    text = "\n".join(lines)
    print(text)
    return text


def latency_us(fn, texts: list[str], runs: int = 3000) -> float:
    for t in texts[:200]:
        fn(t)
    samples = []
    for i in range(runs):
        t = texts[i % len(texts)]
        s = time.perf_counter()
        fn(t)
        samples.append((time.perf_counter() - s) * 1e6)
    return statistics.median(samples)


def _fresh_scorers(out: Path):
    """The package scorers, pointed at the model files just written to ``out`` (wherever that is)."""
    from modchain.backends.local import prompt_safety_heuristics as psh
    from modchain.backends.local import toxicity_lexicon as tl

    cache: dict[str, lm.LinearTextModel] = {}

    def load(name: str) -> lm.LinearTextModel:
        if name not in cache:
            cache[name] = lm.model_from_bytes((out / f"{name}.json.gz").read_bytes())
        return cache[name]

    tl.load_model = psh.load_model = load
    return tl, psh


_NEW_SETS = {"everyday_chat": "everyday chat (hand-written dev pools)", "borderline": "sensitive-but-fine prompts (dev)"}
_BENCH_NAME = "benign 200-char chat (speed benchmark's)"


def benchmark_chat() -> list[str]:
    """The benign messages of benchmarks/text_filters_speed.py's generator (never trained on): a check
    that everyday multi-request chat is not flagged."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import text_filters_speed as tfs

    bad = [s[:30] for s in tfs._JAILBREAKS + tfs._INSULTS]
    return [m for m in tfs.make_messages(1000) if not any(b in m for b in bad)]


def evaluate_toxicity(exs: list[Example], path: Path) -> str:
    tl, _ = _fresh_scorers(path.parent)
    dev = [e for e in exs if e.split == "dev"]
    preds = {}
    for e in dev:
        preds[id(e)] = int(max(tl.score_toxicity(e.text).values()) >= 0.5)
    sets: dict[str, list[Example]] = defaultdict(list)
    for e in dev:
        if e.source == "cases":
            sets["hand-written dev cases"].append(e)
            if e.func.startswith("spell_"):
                sets["  of which spelling variants"].append(e)
        elif e.source.startswith("davidson") and e.source != "davidson_offensive":
            sets["shared held-out: davidson hate vs neither"].append(e)
        elif e.source == "davidson_offensive":
            sets["shared held-out: davidson offensive (label 0)"].append(e)
        elif e.source in _NEW_SETS:
            sets[_NEW_SETS[e.source]].append(e)
        else:
            sets[f"shared held-out: {e.source}"].append(e)
    rows = [(name, metrics([preds[id(e)] for e in es], [e.label for e in es])) for name, es in sets.items()]
    bench = benchmark_chat()
    rows.append((_BENCH_NAME, metrics([int(max(tl.score_toxicity(t).values()) >= 0.5) for t in bench], [0] * len(bench))))
    text = print_table("TOXICITY (flag = max label >= 0.5)", rows)
    by_func: dict[str, list[Example]] = defaultdict(list)
    for e in sets["hand-written dev cases"]:
        by_func[e.func].append(e)
    lines = ["  per category (hand-written dev): name  n  flagged-rate  (label)"]
    for f, es in sorted(by_func.items()):
        rate = sum(preds[id(e)] for e in es) / len(es)
        lines.append(f"    {f:<24} {len(es):>4}  {rate:.2f}  ({es[0].label})")
    print("\n".join(lines))
    texts = [e.text for e in dev if 150 <= len(e.text) <= 260] or [e.text for e in dev]
    texts = [t[:200] for t in texts]
    us = latency_us(tl.score_toxicity, texts)
    line = f"  score_toxicity median latency, 200-char messages: {us:.0f} us"
    print(line)
    return text + "\n" + "\n".join(lines) + "\n" + line


def evaluate_prompt_safety(exs: list[Example], path: Path) -> str:
    _, psh = _fresh_scorers(path.parent)
    dev = [e for e in exs if e.split == "dev"]
    preds = {id(e): int(psh.score_prompt_safety(e.text)[0] >= 0.5) for e in dev}
    sets: dict[str, list[Example]] = defaultdict(list)
    for e in dev:
        if e.source == "cases":
            if e.label == 0:
                sets["benign prompts that sound risky (hand-written)"].append(e)
            else:
                sets["harmful / jailbreak / injection (hand-written)"].append(e)
        elif e.source in _NEW_SETS:
            sets[_NEW_SETS[e.source]].append(e)
        else:
            sets[f"shared held-out: {e.source}"].append(e)
    rows = [(name, metrics([preds[id(e)] for e in es], [e.label for e in es])) for name, es in sorted(sets.items())]
    allsh = [e for e in dev if e.source != "cases" and e.source not in _NEW_SETS]
    rows.append(("shared held-out: all sources", metrics([preds[id(e)] for e in allsh], [e.label for e in allsh])))
    bench = benchmark_chat()
    rows.append((_BENCH_NAME, metrics([int(psh.score_prompt_safety(t)[0] >= 0.5) for t in bench], [0] * len(bench))))
    text = print_table("PROMPT SAFETY (flag = unsafe >= 0.5)", rows)
    by_func: dict[str, list[Example]] = defaultdict(list)
    for e in dev:
        if e.source == "cases":
            by_func[e.func].append(e)
    lines = ["  per category (hand-written dev): name  n  flagged-rate  (label)"]
    for f, es in sorted(by_func.items()):
        rate = sum(preds[id(e)] for e in es) / len(es)
        lines.append(f"    {f:<24} {len(es):>4}  {rate:.2f}  ({es[0].label})")
    print("\n".join(lines))
    texts = [e.text[:200] for e in dev if len(e.text) >= 200] or [e.text for e in dev]
    us = latency_us(lambda t: psh.score_prompt_safety(t), texts)
    line = f"  score_prompt_safety median latency, 200-char messages: {us:.0f} us"
    print(line)
    return text + "\n" + "\n".join(lines) + "\n" + line
