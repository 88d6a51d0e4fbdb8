"""Frozen-encoder features for ``train_encoder_probe.py``: the mean-pooled output of every layer of
all-MiniLM-L6-v2 for each token window, computed once and cached.

One forward pass per window gives all six depths, so the probe trainer can choose how many layers the
shipped model keeps (fewer layers, faster inference) without running the encoder again. The windows are
exactly ``train_encoder.token_rows``'s (same tokenizer settings, same evaluation-overlap checks).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

BATCH = 64


def pooled_layers(model, ids_list: list[list[int]], *, log_every: int = 50) -> np.ndarray:
    """[n, layers, hidden] float16: mean over real tokens of each layer's output, for each window's ids."""
    import torch

    n = len(ids_list)
    layers, hidden = model.config.num_hidden_layers, model.config.hidden_size
    out = np.zeros((n, layers, hidden), dtype=np.float16)
    order = sorted(range(n), key=lambda i: len(ids_list[i]))  # similar lengths share a batch: little padding
    t0 = time.time()
    with torch.inference_mode():
        for b, start in enumerate(range(0, n, BATCH)):
            idx = order[start:start + BATCH]
            width = max(len(ids_list[i]) for i in idx)
            ids = torch.zeros((len(idx), width), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(idx):
                ids[row, :len(ids_list[i])] = torch.tensor(ids_list[i])
                mask[row, :len(ids_list[i])] = 1
            res = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids),
                        output_hidden_states=True)
            m = mask.unsqueeze(-1).float()
            denom = m.sum(1).clamp(min=1.0)
            for layer in range(layers):  # hidden_states[0] is the embedding layer: skipped
                pooled = (res.hidden_states[layer + 1] * m).sum(1) / denom
                out[idx, layer] = pooled.numpy().astype(np.float16)
            if log_every and b % log_every == 0:
                print(f"  features: {min(start + BATCH, n)}/{n} windows ({time.time() - t0:.0f}s)", flush=True)
    return out


def cached(path: Path, key: str, compute) -> np.ndarray:
    """``compute()`` once per ``key`` (a digest of the inputs): stored as ``path`` (.npy) beside ``path.key``."""
    keyfile = path.with_suffix(".key")
    if path.is_file() and keyfile.is_file() and keyfile.read_text() == key:
        return np.load(path)
    arr = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, arr)
    keyfile.write_text(key)
    return arr
