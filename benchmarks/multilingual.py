"""The local fast tier beyond English: per-language quality of the routed verdicts, and what a message costs.

    python benchmarks/multilingual.py [--data ../shared/data] [--runs 300]

What is measured (each verdict is what ``LocalBackend`` (fast tier) returns, at the default threshold 0.5, i.e. the
routed combination of ``multilingual_route``; the model-alone column is ``prompt_injection_multi`` /
``toxicity_zh`` by itself):
  * Prompt injection, held-out rows of ``training/train_multilingual.py`` (the same data functions, so the same
    split): CyberSecEval's multilingual injections (30% of each language), the hand-written multilingual attacks
    and benign requests (25% of each language and label) -- per language; then per source, with deepset's test
    split, COLD comments and CyberSecEval's system prompts (benign developer instructions) as benign text.
    ``injection recall`` on attacks, ``benign FPR`` on benign requests. CyberSecEval's "logic-violating" rows
    (ordinary questions outside their system prompt) are shown apart.
  * ``tests/data/multilingual_generalisation.jsonl`` and ``_2.jsonl`` (hand-written, never trained or tuned on;
    ``_2`` by a writer who read none of the training cases), per language.
  * Chinese toxicity: F1 / recall / FPR on COLD's test split (never trained or tuned on), COLD dev (tuned on), the
    hand-written other-domain dev rows, and ``tests/data/zh_toxicity_generalisation.jsonl`` (test only).
  * Latency: median / p90 ms of ``ModerationChain().moderate(text)`` (PII, toxicity, prompt safety; offline
    default) for distinct English, German and Chinese messages, interleaved, after a warm-up that loads the models.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks"), str(ROOT / "training")]

import train_multilingual as trainer  # noqa: E402
from text_filters_speed import make_messages  # noqa: E402

from modchain import ModerationChain  # noqa: E402
from modchain.backends.local.backend import LocalBackend  # noqa: E402
from modchain.backends.local.multilingual import load_multi  # noqa: E402
from modchain.core.config import PromptSafetyConfig, ToxicityConfig  # noqa: E402


def _row(name: str, flags: list[bool], labels: list[int], alone: list[bool] | None = None) -> str:
    pos = [f for f, y in zip(flags, labels) if y]
    neg = [f for f, y in zip(flags, labels) if not y]
    rec = f"{sum(pos) / len(pos):.2f} ({sum(pos)}/{len(pos)})" if pos else "-"
    fpr = f"{sum(neg) / len(neg):.2f} ({sum(neg)}/{len(neg)})" if neg else "-"
    line = f"  {name:34s} {len(flags):5d}  {rec:>16s}  {fpr:>16s}"
    if alone is not None:
        a_pos = [f for f, y in zip(alone, labels) if y]
        a_neg = [f for f, y in zip(alone, labels) if not y]
        line += f"   {(f'{sum(a_pos) / len(a_pos):.2f}' if a_pos else '-'):>5s} {(f'{sum(a_neg) / len(a_neg):.2f}' if a_neg else '-'):>5s}"
    return line


def _f1(flags: list[bool], labels: list[int]) -> str:
    tp = sum(f and y for f, y in zip(flags, labels))
    fp = sum(f and not y for f, y in zip(flags, labels))
    pos, neg = sum(labels), len(labels) - sum(labels)
    return (f"F1 {2 * tp / max(tp + pos + fp, 1):.3f}  recall {tp / max(pos, 1):.3f}  FPR {fp / max(neg, 1):.3f}"
            f"  (n={len(labels)}, toxic {pos})")


def prompt_section(data: Path, backend: LocalBackend) -> list[str]:
    cfg = PromptSafetyConfig()
    model = load_multi("prompt_injection_multi")
    exs = [e for e in trainer.prompt_data(data) if e.split == "dev" and (e.func not in ("en",) or e.source == "deepset")]
    flags = [s.findings[0].score >= 0.5 for s in backend.run("prompt_safety", [e.text for e in exs], cfg)]
    alone = [model.probability(e.text) >= 0.5 for e in exs]
    head = f"  {'':34s} {'n':>5s}  {'injection recall':>16s}  {'benign FPR':>16s}   model alone: rec / FPR"
    out = ["PROMPT INJECTION, held-out dev rows (routed fast-tier verdict)", "by language (CyberSecEval security-violating"
           " injections + hand-written attacks and benign requests)", head]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(exs):
        if e.source in ("cse_multi", "ml_cases"):
            groups[e.func].append(i)
    for key in sorted(groups):
        idx = groups[key]
        out.append(_row(key, [flags[i] for i in idx], [exs[i].label for i in idx], [alone[i] for i in idx]))
    out += ["by source", head]
    groups = defaultdict(list)
    for i, e in enumerate(exs):
        groups[e.source].append(i)
    for key in sorted(groups):
        idx = groups[key]
        out.append(_row(key, [flags[i] for i in idx], [exs[i].label for i in idx], [alone[i] for i in idx]))
    for name in ("multilingual_generalisation.jsonl", "multilingual_generalisation_2.jsonl"):  # _2: another writer
        path = ROOT / "tests" / "data" / name
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        scored = backend.run("prompt_safety", [r["text"] for r in rows], cfg)
        out += [f"{path.relative_to(ROOT)} (test only: never trained or tuned on)", head]
        by = defaultdict(list)
        for r, s in zip(rows, scored):
            by[r["lang"]].append((s.findings[0].score >= 0.5, int(r["label"] != "safe"),
                                  model.probability(r["text"]) >= 0.5))
        for lang in sorted(by):
            v = by[lang]
            out.append(_row(lang, [a for a, _, _ in v], [b for _, b, _ in v], [c for _, _, c in v]))
    return out


def toxicity_section(data: Path, backend: LocalBackend) -> list[str]:
    cfg = ToxicityConfig()
    model = load_multi("toxicity_zh")
    exs = trainer.toxicity_data(data)
    sets = {
        "COLD test (never trained or tuned on)": [e for e in exs if e.source == "cold" and e.split == "test"],
        "COLD dev (threshold tuned here)": [e for e in exs if e.source == "cold" and e.split == "dev"],
        "hand-written other domains, dev": [e for e in exs if e.source == "ml_cases_tox" and e.split == "dev"],
    }
    path = ROOT / "tests" / "data" / "zh_toxicity_generalisation.jsonl"
    if path.exists():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        sets[f"{path.name} (test only)"] = [trainer.Example(r["text"], int(r["label"] == "toxic"), "gen", "test", "")
                                            for r in rows]
    out = ["CHINESE TOXICITY (flag = any label >= 0.5)"]
    for name, group in sets.items():
        texts, labels = [e.text for e in group], [e.label for e in group]
        routed = [max(s.raw.values()) >= 0.5 for s in backend.run("toxicity", texts, cfg)]
        out.append(f"  {name}")
        out.append(f"    routed       {_f1(routed, labels)}")
        out.append(f"    model alone  {_f1([model.probability(t) >= 0.5 for t in texts], labels)}")
    return out


def latency_section(data: Path, runs: int) -> list[str]:
    english = make_messages(runs)
    german = [e.text for e in trainer.prompt_data(data) if e.func == "de" and e.label == 0]
    chinese = [e.text for e in trainer.toxicity_data(data) if e.source == "cold" and e.split == "test" and not e.label]
    sets = {"English (200-char chat messages)": english,
            "German (benign requests)": [f"{german[i % len(german)]} ({i})" for i in range(runs)],
            "Chinese (COLD test, non-offensive)": chinese[:runs]}
    chain = ModerationChain()
    for texts in sets.values():  # warm-up: every model loaded, regexes compiled
        for t in texts[:20]:
            chain.moderate(t + " warm")
    times: dict[str, list[float]] = {k: [] for k in sets}
    for i in range(runs):
        for name, texts in sets.items():
            t0 = time.perf_counter()
            chain.moderate(texts[i])
            times[name].append((time.perf_counter() - t0) * 1000)
    out = [f"LATENCY: ModerationChain() (offline default, PII + toxicity + prompt safety), {runs} distinct messages each",
           f"  {'messages':38s} {'median ms':>9s} {'p90 ms':>8s} {'mean chars':>10s}"]
    for name, ts in times.items():
        p90 = sorted(ts)[int(0.9 * len(ts))]
        chars = statistics.mean(len(t) for t in sets[name][:runs])
        out.append(f"  {name:38s} {statistics.median(ts):9.3f} {p90:8.3f} {chars:10.0f}")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--skip-latency", action="store_true")
    args = ap.parse_args(argv)
    backend = LocalBackend()
    lines = prompt_section(args.data, backend) + [""] + toxicity_section(args.data, backend)
    if not args.skip_latency:
        lines += [""] + latency_section(args.data, args.runs)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
