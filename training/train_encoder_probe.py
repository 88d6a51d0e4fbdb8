"""The accurate offline tier on a CPU budget: all-MiniLM-L6-v2 kept frozen, with trained heads on top.

    python training/train_encoder_probe.py --data ../shared/data --cache /tmp/encoder-cache \
        --out src/modchain/backends/local/models/encoder

Fine-tuning the whole encoder (``train_encoder.py``) needs about two hours of an idle 2-core CPU per epoch
over the training pool, or a GPU. This trainer needs one forward pass per window instead: it runs the frozen
encoder once over every training and held-back window, keeps the mean-pooled output of *every* layer
(``encoder_features.py``, cached), then trains small heads on those features in seconds. Because each
depth's features are there, it also chooses how many of the six layers the shipped model keeps: the
shallowest depth whose held-back quality is within ``--depth-tolerance`` of the best, since every layer
dropped is inference time saved. ``--fragments`` adds benign cut-outs (``fragment_rows``): stream and document
windows start and end mid-word, and without such pieces the heads read every fragment as an attack.

Data, decontamination, windows, thresholds and length slopes are ``train_encoder.py``'s (the same
``load_examples``, ``token_rows``, ``fit_shifts``, ``fit_slopes``, ``--dump-texts``); the exported model has the
same inputs, outputs and sidecar, so ``EncoderScorer`` runs either.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "training")]

import encoder_features as ef  # noqa: E402
import train_encoder as te  # noqa: E402
import train_text_classifiers as tc  # noqa: E402
from encoder_model import make_head  # noqa: E402

HEADS = te.HEADS


def inference_windows(tok, text: str) -> list[list[int]]:
    """The token windows ``EncoderScorer`` reads for ``text`` (byte windows, then token windows)."""
    from modchain.backends.local import long_text

    parts = long_text.windows(text) or [text]
    return [e.ids for enc in tok.encode_batch(parts) for e in (enc, *enc.overflowing)]


def digest(ids_list: list[list[int]]) -> str:
    h = hashlib.sha256()
    for ids in ids_list:
        h.update(np.asarray(ids, dtype=np.int32).tobytes() + b"|")
    return h.hexdigest()


class WindowSet:
    """Texts and their windows: ``ids`` flat, ``owner[i]`` the text of window ``i``."""

    def __init__(self, name: str, texts: list[str], ids: list[list[int]], owner: list[int]) -> None:
        self.name, self.texts, self.ids, self.owner = name, texts, ids, np.asarray(owner, dtype=np.int64)
        self.features: np.ndarray | None = None

    @classmethod
    def of_texts(cls, name: str, texts: list[str], tok) -> WindowSet:
        ids, owner = [], []
        for t, text in enumerate(texts):
            for w in inference_windows(tok, text):
                ids.append(w)
                owner.append(t)
        return cls(name, texts, ids, owner)

    def load_features(self, model, cache: Path) -> None:
        self.features = ef.cached(cache / f"{self.name}.npy", digest(self.ids),
                                  lambda: ef.pooled_layers(model, self.ids))


# ============================================================================ data and features
def prepare(args):
    """The training pool (``train_encoder``'s token rows) and the held-back train texts, with their windows'
    features at every depth, and the sampled dev texts per task."""
    import torch
    from transformers import AutoModel

    torch.manual_seed(te.SEED)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    base, tok = te.starting_point()

    data = te.load_examples(args)
    overlap = data.pop("_overlap")
    pool, fragments, held, dev = [], [], {}, {}
    for task, exs in data.items():
        train_exs, held[task] = te.train_split(exs)
        dev[task] = te.dev_sample(exs, args.dev_cap)
        rows = te.token_rows(tc.as_windows(train_exs), task, tok, overlap)
        if args.fragments:
            fragments += fragment_rows(train_exs, task, tok, overlap, args.fragments)
        pool += rows
        print(f"[{task}] {len(train_exs)} train texts -> {len(rows)} windows; {len(held[task])} held back; "
              f"{len(dev[task])} dev", flush=True)
    encoder = AutoModel.from_pretrained(str(base), attn_implementation="eager").eval()
    args.cache.mkdir(parents=True, exist_ok=True)
    sets = {name: WindowSet(name, [r.text for r in rows], [r.ids for r in rows], list(range(len(rows))))
            for name, rows in (("pool", pool), ("fragments", fragments)) if rows}
    for task in data:  # dev is scored by the exported model only (train_and_export): no features needed
        sets[f"held-{task}"] = WindowSet.of_texts(f"held-{task}", [e.text for e in held[task]], tok)
    for s in sets.values():
        print(f"features of {s.name}: {len(s.texts)} texts, {len(s.ids)} windows", flush=True)
        s.load_features(encoder, args.cache)
    if fragments:  # the training rows are the windows then the fragments, as their features are stacked
        sets["pool"].features = np.concatenate([sets["pool"].features, sets.pop("fragments").features])
    return base, pool + fragments, held, dev, sets


FRAGMENT_WEIGHT = 0.5  # of the text's own weight


def fragment_rows(exs: list, task: str, tok, overlap, per_task: int) -> list:
    """Benign cut-outs: pieces of benign train texts that start and end mid-word, as stream and document
    windows do. Without them every fragment the encoder saw in training was a window of a long jailbreak or
    prose document, and it learned that a text starting mid-sentence is an attack (a clean "...uld arrive by
    Thursday. Anything else I can help with?" scored 0.95 unsafe). Only benign texts are cut: a piece of a
    harmful request is not always harmful. Each piece is checked against the evaluation sets."""
    import types

    rng = random.Random(te.SEED + 7)
    benign = sorted((e for e in exs if e.label == 0 and len(e.text) >= 60),
                    key=lambda e: tc.stable_unit("fragment:" + e.group + e.text[:40]))[:per_task]
    rows, dropped = [], 0
    for e in benign:
        n = len(e.text)
        start = rng.randrange(1, n // 3)
        end = min(n, start + rng.randrange(30, 400))
        text = e.text[start:end]
        if overlap(text):
            dropped += 1
            continue
        ids = tok.encode(text).ids
        piece = types.SimpleNamespace(label=0, kind=None, source="fragment/" + e.source, group=e.group)
        rows.append(te.Row(piece, task, text, e.weight * FRAGMENT_WEIGHT, ids))
    print(f"  [{task}] {len(rows)} benign fragments ({dropped} dropped as overlapping)", flush=True)
    return rows


# ============================================================================ heads
HIDDEN, EPOCHS, HEAD_LR, HEAD_BATCH, WEIGHT_DECAY = 256, 30, 1e-3, 256, 1e-4


def targets(pool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, label masks and weights of the pool rows, as ``train_encoder.collate`` builds them."""
    import torch

    y, m, w = [], [], []
    for start in range(0, len(pool), 4096):
        _, _, yb, mb, wb = te.collate(pool[start:start + 4096])
        y.append(yb), m.append(mb), w.append(wb)
    return torch.cat(y).numpy(), torch.cat(m).numpy(), torch.cat(w).numpy()


def train_heads(x: np.ndarray, y: np.ndarray, m: np.ndarray, w: np.ndarray, hidden: int):
    """The heads on frozen pooled features: standardisation folded into the first layer, then one hidden layer
    of ``hidden`` units (0: linear); weighted, masked multi-task logistic loss, as ``train_encoder.train``."""
    import torch

    torch.manual_seed(te.SEED)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xs = torch.tensor((x - mean) / std, dtype=torch.float32)
    yt, mt, wt = (torch.tensor(a, dtype=torch.float32) for a in (y, m, w))
    dim = x.shape[1]
    head = make_head(dim, hidden)  # the fine-tune's heads too (train_encoder.py --hidden starts from these)
    net = head if hidden else torch.nn.Sequential(head)  # a linear head's weights are exported as heads.0.* too
    opt = torch.optim.AdamW(net.parameters(), lr=HEAD_LR, weight_decay=WEIGHT_DECAY)
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    gen = torch.Generator().manual_seed(te.SEED)
    net.train()
    for _ in range(EPOCHS):
        perm = torch.randperm(len(xs), generator=gen)
        for start in range(0, len(xs), HEAD_BATCH):
            idx = perm[start:start + HEAD_BATCH]
            loss = ((bce(net(xs[idx]), yt[idx]) * mt[idx]).sum(1) * wt[idx]).sum() / wt[idx].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():  # fold the standardisation into the first layer: the export sees raw pooled vectors
        first = net[0]
        s = torch.tensor(std, dtype=torch.float32)
        first.bias -= first.weight @ torch.tensor(mean / std, dtype=torch.float32)
        first.weight /= s
    return net


def text_logits(net, ws: WindowSet, depth: int) -> np.ndarray:
    """[texts, heads]: each text's largest window logit for toxic/unsafe (raw, no length shift)."""
    import torch

    with torch.no_grad():
        z = net(torch.tensor(ws.features[:, depth].astype(np.float32))).numpy()
    out = np.full((len(ws.texts), len(HEADS)), -np.inf)
    np.maximum.at(out, ws.owner, z)
    return out


RULES = {"toxicity": ("toxic", {"max_fpr": 0.2}), "prompt_safety": ("unsafe", {"min_recall": 0.9})}


def held_quality(net, sets, held, depth: int) -> dict[str, dict]:
    """Per task: the metrics on the held-back train texts at the threshold the trainer's rule picks there."""
    out = {}
    for task, (head, rule) in RULES.items():
        z = text_logits(net, sets[f"held-{task}"], depth)[:, HEADS.index(head)]
        y = np.array([e.label for e in held[task]])
        w = np.array([e.weight for e in held[task]])
        t = tc.pick_threshold(z, y, w, rule.get("max_fpr"), rule.get("min_recall"))
        out[task] = tc.metrics([int(v >= t) for v in z], list(y)) | {"threshold": t}
    return out


def choose(candidates: dict, tolerance: float) -> tuple:
    """The cheapest (depth, hidden) whose held-back score is within ``tolerance`` of the best; the score is the
    mean of toxicity F1 and (1 - prompt-safety FPR at the recall floor)."""
    def score(q):
        return (q["toxicity"]["f1"] + 1 - q["prompt_safety"]["fpr"]) / 2

    best = max(score(q) for q in candidates.values())
    ok = [k for k, q in candidates.items() if score(q) >= best - tolerance]
    return min(ok, key=lambda k: (k[0], k[1]))


def export_probe(base: Path, depth: int, net, out: Path, spec: dict, quantize: bool) -> Path:
    """The first ``depth + 1`` layers of the frozen encoder with the trained heads, through the fine-tuning
    trainer's own export (same graph inputs and outputs, same sidecar)."""
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(base), attn_implementation="eager")
    encoder.encoder.layer = encoder.encoder.layer[:depth + 1]
    encoder.config.num_hidden_layers = depth + 1
    return te.export_model(te.wrap_encoder(encoder, net), base / "tokenizer.json", out, spec, quantize=quantize)


def train_and_export(args, base: Path, pool, held, dev, sets) -> None:
    import shutil
    import tempfile
    import time
    from collections import Counter

    from modchain.backends.local.encoder import EncoderScorer

    y, m, w = targets(pool)
    feats = sets["pool"].features
    candidates, nets = {}, {}
    for depth in args.depths:
        for hidden in args.hidden:
            t0 = time.time()
            net = train_heads(feats[:, depth].astype(np.float32), y, m, w, hidden)
            q = held_quality(net, sets, held, depth)
            candidates[(depth, hidden)], nets[(depth, hidden)] = q, net
            print(f"depth {depth + 1} layers, hidden {hidden}: held-back toxicity F1 {q['toxicity']['f1']:.3f} "
                  f"FPR {q['toxicity']['fpr']:.3f}; prompt safety recall {q['prompt_safety']['recall']:.3f} "
                  f"FPR {q['prompt_safety']['fpr']:.3f} ({time.time() - t0:.0f}s)", flush=True)
    depth, hidden = choose(candidates, args.depth_tolerance)
    print(f"CHOSEN: {depth + 1} layers, hidden {hidden}", flush=True)
    net = nets[(depth, hidden)]

    if args.dump_texts:
        te.dump_texts(args.dump_texts, pool, held)
    meta = {"trainer": "training/train_encoder_probe.py", "seed": te.SEED,
            "base": "sentence-transformers/all-MiniLM-L6-v2 (frozen)", "layers": depth + 1, "head_hidden": hidden,
            "train_windows": len(pool), "head_epochs": EPOCHS,
            "examples": dict(sorted(Counter(f"{r.task}/{r.source}/{r.label}" for r in pool).items()))}
    with tempfile.TemporaryDirectory() as tmp:
        raw = export_probe(base, depth, net, Path(tmp) / "raw", {"shifts": {}, "slopes": {}, "meta": meta}, False)
        scorer = EncoderScorer.load(raw)
        shifts = te.fit_shifts(scorer, held)
        slopes = te.fit_slopes(scorer, shifts)
        spec = {"shifts": shifts, "slopes": slopes, "meta": meta}
        # the smallest export whose dev F1 is within 0.01 of fp32's on both tasks (int8 everywhere, int8
        # embeddings only, fp32: in that order of size)
        variants = {"int8": True, "int8-embeddings": "embeddings", "fp32": False}
        results = {}
        for name, how in variants.items():
            folder = export_probe(base, depth, net, Path(tmp) / name, spec, how)
            results[name] = (folder, *te.evaluate(EncoderScorer.load(folder), dev))
        ref = results["fp32"][1]
        name = next(n for n in variants if all(results[n][1][t] >= ref[t] - 0.01 for t in ref))
        print("dev F1 per export: " + "; ".join(f"{n} {r[1]}" for n, r in results.items())
              + f": shipping {name}", flush=True)
        chosen, table = results[name][0], results[name][2]
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ("model.onnx", "tokenizer.json", "encoder.json"):  # the model card beside them stays
            shutil.copyfile(chosen / name, args.out / name)
    size = sum((args.out / n).stat().st_size for n in ("model.onnx", "tokenizer.json", "encoder.json")) / 2**20
    line = te.speed(args.out, [e.text for exs in dev.values() for e in exs])
    summary = (f"{table}\n{line}\nmodel folder {args.out}: {size:.1f} MiB; frozen encoder, {depth + 1} layers, "
               f"head hidden {hidden}, {len(pool)} training windows")
    print(summary, flush=True)
    if args.report:
        args.report.write_text(summary + "\n", encoding="utf-8")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "src/modchain/backends/local/models/encoder")
    ap.add_argument("--cache", type=Path, required=True, help="folder for the cached features (~1 GB)")
    ap.add_argument("--decontam", type=Path, default=None)
    ap.add_argument("--dump-texts", type=Path, default=None, help="every text trained or tuned on (JSON Lines)")
    ap.add_argument("--dev-cap", type=int, default=200, help="dev rows per source scored for the tables")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--features-only", action="store_true", help="compute and cache the features, then stop")
    ap.add_argument("--fragments", type=int, default=4000,
                    help="benign cut-outs added per task (fragment_rows; 0: none)")
    ap.add_argument("--depths", type=lambda v: [int(d) - 1 for d in v.split(",")], default=[1, 2, 3, 5],
                    help="encoder depths (layers kept) to try, comma-separated (default 2,3,4,6)")
    ap.add_argument("--hidden", type=lambda v: [int(h) for h in v.split(",")], default=[0, HIDDEN],
                    help="head hidden sizes to try (0: linear)")
    ap.add_argument("--depth-tolerance", type=float, default=0.01,
                    help="keep the fewest layers whose held-back score is within this of the best")
    ap.add_argument("--report", type=Path, default=None)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prepared = prepare(args)
    if args.features_only:
        return
    train_and_export(args, *prepared)


if __name__ == "__main__":
    main()
