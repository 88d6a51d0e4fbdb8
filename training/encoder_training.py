"""Fine-tuning and calibration of the encoder trainer (``train_encoder.py``): the training loop with its
time-budget plan, then per-head thresholds and length slopes fitted with the exported model."""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter

import numpy as np
import prose
from classifier_examples import pydoc_paragraphs, rag_passages
from classifier_fit import pick_threshold, tail_scale
from encoder_data import Row, collate, length_buckets, stratified_order
from encoder_settings import BATCH, HEADS, LR, SEED

from modchain.backends.local.encoder import EncoderScorer

__all__ = ["fit_shifts", "fit_slopes", "train"]


def train(model, pool: list[Row], args) -> tuple[int, float]:
    import torch

    rng = random.Random(SEED)
    order = stratified_order(pool, rng)
    # the heads may learn faster than the encoder (--head-lr: fresh hidden-layer heads need it); frozen
    # weights (--freeze-embeddings) are left out of the optimizer altogether
    head_lr = getattr(args, "head_lr", None) or LR
    enc_params = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("heads.")]
    head_params = [p for p in model.heads.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": enc_params, "lr": getattr(args, "lr", None) or LR},
                             {"params": head_params, "lr": head_lr}], weight_decay=0.01)
    warmup = 50
    total = {"steps": max(warmup + 1, (len(order) * args.epochs) // BATCH)}
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total["steps"] - s) / max(1, total["steps"] - warmup))))
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    n_train = args.max_train or len(order)
    model.train()
    t0, step, losses = time.time(), 0, []
    epoch_rows = order[:n_train]
    for epoch in range(args.epochs):
        if epoch > 0:
            epoch_rows = list(epoch_rows)
            random.Random(SEED + epoch).shuffle(epoch_rows)
        for batch in length_buckets(lambda: epoch_rows, random.Random(SEED + 100 + epoch)):  # noqa: B023 (late binding on purpose: the plan shortens the list)
            ids, mask, y, m, w = collate(batch)
            logits = model(ids, mask)
            loss = ((bce(logits, y) * m).sum(1) * w).sum() / w.sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(enc_params + head_params, 1.0)
            opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
            if step == warmup and epoch == 0:
                per_step = (time.time() - t0) / step
                if args.max_train is None:
                    steps_left = max(0, int((args.budget_min * 60 - (time.time() - t0)) / per_step))
                    n_train = min(len(order), (step + steps_left) * BATCH // args.epochs)
                    epoch_rows = order[:n_train]
                total["steps"] = max(warmup + 1, (n_train * args.epochs) // BATCH)
                src = Counter(r.task + "/" + r.source for r in epoch_rows)
                print(f"PLAN: {per_step:.2f} s/step over the first {warmup} steps; pool {len(order)} windows; "
                      f"training on {n_train} (stratified by source) x {args.epochs} epochs = {total['steps']} steps, "
                      f"~{total['steps'] * per_step / 60:.0f} min (reproduce with --max-train {n_train})", flush=True)
                print("  per source: " + ", ".join(f"{k}={v}" for k, v in sorted(src.items())), flush=True)
            if step % 50 == 0:
                print(f"  epoch {epoch + 1} step {step}/{total['steps']} loss {statistics.fmean(losses[-50:]):.4f} "
                      f"({time.time() - t0:.0f}s)", flush=True)
            if time.time() - t0 > args.budget_min * 60 * 1.25:  # other processes slowed us: stop, still export
                print(f"  stopping at step {step}: over the time budget", flush=True)
                return n_train, time.time() - t0
    print(f"  {step} steps, {(time.time() - t0) / max(1, step):.2f} s/step", flush=True)
    return n_train, time.time() - t0


def fit_shifts(scorer: EncoderScorer, held: dict[str, list]) -> dict[str, float]:
    """Per-head logit thresholds on the held-back train rows, by the fast trainer's rules, as shifts."""
    shifts = {h: 0.0 for h in HEADS}
    for task, head, rule in (("toxicity", "toxic", {"max_fpr": 0.2}), ("prompt_safety", "unsafe", {"min_recall": 0.9})):
        exs = held[task]
        if task == "toxicity":  # the hand-written cases when there are enough, as the fast trainer
            cases = [e for e in exs if e.source == "cases"]
            exs = cases if len(cases) >= 40 and len({e.label for e in cases}) == 2 else exs
        z = np.array([max(w[head] for w in ws) for ws in scorer.raw_window_logits([e.text for e in exs])])
        y = np.array([e.label for e in exs])
        w = np.array([e.weight for e in exs])
        t = pick_threshold(z, y, w, rule.get("max_fpr"), rule.get("min_recall"))
        shifts[head] = float(f"{-t:.5g}")
        print(f"  {head}: threshold logit {t:.3f} on {len(exs)} held-back rows", flush=True)
    return shifts


def fit_slopes(scorer: EncoderScorer, shifts: dict[str, float], docs: int = 12, size: int = 20_000) -> dict[str, float]:
    """The upper-tail scale of benign prose windows' calibrated logits (see long_text.py), per head."""
    rng = random.Random(SEED + 13)
    pool = rag_passages()["train"] + pydoc_paragraphs()["train"]
    texts = [prose.concatenate(pool, rng, size) for _ in range(docs)]
    windows = [w for ws in scorer.raw_window_logits(texts) for w in ws]
    slopes = {h: 0.0 for h in HEADS}
    for h in ("toxic", "unsafe"):
        z = np.array([w[h] + shifts[h] for w in windows])
        slopes[h] = float(f"{tail_scale(z):.3g}")
        print(f"  {h}: {len(z)} benign windows, above threshold {float(np.mean(z >= 0)):.4f}, slope {slopes[h]}")
    return slopes
