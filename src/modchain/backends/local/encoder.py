"""The accurate offline tier: a fine-tuned MiniLM encoder with five heads, run by onnxruntime (no torch).

One forward pass per window yields five logits -- ``toxic`` (hate, threats, severe abuse), ``unsafe``
(harmful request, jailbreak or prompt injection) and the kind heads ``jailbreak`` / ``injection`` /
``harmful`` (trained on unsafe prompts only: they name the kind of an unsafe prompt and mean nothing on a safe
one). ``training/train_encoder.py`` trains, exports and quantizes it; the model folder holds ``model.onnx``,
``tokenizer.json`` and ``encoder.json`` (head order, per-head logit shifts that put the decision at 0.5,
per-head length slopes, ``max_len``, provenance).

Long texts: the fast tier's byte windows (``long_text.windows``) first, then each is cut into token windows
of ``max_len`` tokens with ``stride`` tokens of overlap (a 4000-byte window is ~900 tokens, seven times what
the encoder reads). ``toxic`` and ``unsafe`` take the largest window logit, lowered by
``long_text.length_shift(n, slope)`` so that false positives do not grow with the number of windows; the kind
heads are read from the window that is most unsafe. On request (the cascade's), the sentences of a one-window
text are scored too, for ``toxic`` (``EncoderScorer.score_batch``).

onnxruntime and tokenizers are imported when a model is loaded, so ``import modchain`` stays light.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modchain.backends.local import long_text
from modchain.backends.local.linear_model import sigmoid
from modchain.core.errors import BackendError

__all__ = ["MODEL_DIR", "EncoderScorer", "encoder_available"]

MODEL_DIR = Path(__file__).resolve().parent / "models" / "encoder"
_FILES = ("model.onnx", "tokenizer.json", "encoder.json")
_CHUNK = 64  # windows per onnxruntime call: large enough for throughput, small enough to bound padding waste
#: The head that a decisive sentence decides (see ``EncoderScorer.score_batch``). Not ``unsafe``: a request is
#: judged with its context, as on the fast tier (``long_text``); on dev, sentence units took WildGuard's benign
#: prompts blocked from 0.148 to 0.165 in the cascade.
SENTENCE_HEAD = "toxic"


def encoder_available() -> bool:
    """Whether the accurate tier can run here: onnxruntime and tokenizers importable and the model shipped."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("tokenizers") is None:
        return False
    return all((MODEL_DIR / name).is_file() for name in _FILES)


def _reload(path: str | None, device: str, threads: int | None) -> EncoderScorer:
    return EncoderScorer.load(path, device=device, threads=threads)


class EncoderScorer:
    HEADS = ("toxic", "unsafe", "jailbreak", "injection", "harmful")
    _AGGREGATED = ("toxic", "unsafe")  # max over windows with the length shift; the kind heads follow ``unsafe``

    def __init__(self, session: Any, tokenizer: Any, spec: dict[str, Any]) -> None:
        self._session, self._tok, self.spec = session, tokenizer, spec
        heads = tuple(spec["heads"])
        if sorted(heads) != sorted(self.HEADS):
            raise BackendError("encoder model: unexpected head set")
        self._index = {h: heads.index(h) for h in self.HEADS}
        self._shift = {h: float(spec["shifts"].get(h, 0.0)) for h in self.HEADS}
        self._slope = {h: float(spec["slopes"].get(h, 0.0)) for h in self.HEADS}
        self.max_len = int(spec["max_len"])
        self._inputs = {i.name for i in session.get_inputs()}

    @classmethod
    def load(cls, path: str | Path | None = None, *, device: str = "cpu", threads: int | None = None) -> EncoderScorer:
        """The model in ``path`` (a folder of model.onnx, tokenizer.json, encoder.json); ``None``: the packaged one.
        ``device="cuda"`` runs on onnxruntime's CUDA provider and fails when it is not available."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(path) if path is not None else MODEL_DIR
        missing = [name for name in _FILES if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"encoder model folder {folder} lacks {', '.join(missing)}")
        spec = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError("device='cuda' needs onnxruntime-gpu with a CUDA device")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        elif device == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise ValueError(f"device must be 'cpu' or 'cuda', not {device!r}")
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(folder / "model.onnx"), sess_options=opts, providers=providers)
        if device == "cuda" and "CUDAExecutionProvider" not in session.get_providers():
            raise RuntimeError("onnxruntime could not start its CUDA provider")
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tok.no_padding()  # padding is done per chunk of windows, to the longest in it
        tok.enable_truncation(max_length=int(spec["max_len"]), stride=int(spec.get("stride", 32)))
        scorer = cls(session, tok, spec)
        scorer._loaded_from = (None if path is None else str(path), device, threads)
        return scorer

    #: ``(path, device, threads)`` when built by :meth:`load`: what pickling sends instead of the session.
    _loaded_from: tuple[str | None, str, int | None] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # An onnxruntime session and a tokenizer belong to one process: a loaded scorer pickles as its load
        # arguments and loads again where it is unpickled (once per process via the local backend's cache).
        if self._loaded_from is None:
            raise TypeError("an EncoderScorer built from a session object cannot be pickled; use EncoderScorer.load")
        return (_reload, self._loaded_from)

    # ------------------------------------------------------------------ windows and raw logits
    def token_windows(self, text: str) -> list[tuple[list[int], list[int]]]:
        """(input_ids, attention_mask) of every window of ``text``: byte windows, then token windows."""
        parts = long_text.windows(text) or [text]
        out = []
        for enc in self._tok.encode_batch(parts):
            for e in (enc, *enc.overflowing):
                out.append((e.ids, e.attention_mask))
        return out

    def _run(self, windows: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        import numpy as np

        logits: list[list[float] | None] = [None] * len(windows)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i][0]))  # similar lengths share a chunk
        for start in range(0, len(order), _CHUNK):
            idx = order[start:start + _CHUNK]
            width = max(len(windows[i][0]) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                w_ids, w_mask = windows[i]
                ids[row, :len(w_ids)] = w_ids
                mask[row, :len(w_mask)] = w_mask
            feed = {"input_ids": ids, "attention_mask": mask}
            out = self._session.run(["logits"], {k: v for k, v in feed.items() if k in self._inputs})[0]
            if out.shape != (len(idx), len(self.HEADS)) or not np.all(np.isfinite(out)):
                raise BackendError("encoder model returned malformed logits")
            for row, i in enumerate(idx):
                logits[i] = [float(x) for x in out[row]]
        return logits  # type: ignore[return-value]

    def raw_window_logits(self, texts: list[str]) -> list[list[dict[str, float]]]:
        """Uncalibrated per-window logits of each text (the trainer fits shifts and slopes on these)."""
        return self._logits_of_units([[text] for text in texts])[0] if texts else []

    def _logits_of_units(self, groups: list[list[str]]) -> list[list[list[dict[str, float]]]]:
        """Per unit index k, per group: the window logits of unit k of each group ([] where a group has no unit
        k). All windows of all units go through the model together, so a batch stays one set of chunked runs."""
        depth = max(len(g) for g in groups)
        spans: list[list[tuple[int, int]]] = [[] for _ in range(depth)]
        windows: list[tuple[list[int], list[int]]] = []
        for group in groups:
            for k in range(depth):
                ws = self.token_windows(group[k]) if k < len(group) else []
                spans[k].append((len(windows), len(windows) + len(ws)))
                windows.extend(ws)
        logits = self._run(windows) if windows else []
        named = [{h: row[self._index[h]] for h in self.HEADS} for row in logits]
        return [[named[a:b] for a, b in per_unit] for per_unit in spans]

    # ------------------------------------------------------------------ public scoring
    def score_batch(self, texts: list[str], *, sentences: bool = False) -> list[dict[str, float]]:
        """Calibrated probabilities per head for each text; 0.5 is each head's decision threshold.

        ``sentences=True``: a text that fits in one window and has several sentences is also scored sentence by
        sentence for ``toxic`` (:data:`SENTENCE_HEAD`): one pooled vector per text lets an insult among ordinary
        sentences drown, as the fast tier's features do (``long_text``, "One insult among ordinary sentences").
        The same rule as there: each sentence is held to the threshold raised for their number of sentences, and
        one that is then decisive (``long_text.DECISIVE_SENTENCE``) decides ``toxic``. Such a text's result also
        has ``toxic_sentence``, its most toxic sentence's probability without that raise (the cascade's
        agreement check, ``backend.AGREEING_SENTENCE``). It costs a forward pass per sentence: the cascade asks
        for it on the few texts it sends here, the accurate tier does not (with it, the accurate tier took 27 ms
        instead of 9 per 200-character chat message in ``benchmarks/tiers.py``)."""
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise TypeError("score_batch takes a list of str")
        if not texts:
            return []
        groups = [[text, *((sentences and long_text.sentence_parts(text)) or ())] for text in texts]
        by_unit = self._logits_of_units(groups)
        h = SENTENCE_HEAD
        results = []
        for i, per_window in enumerate(by_unit[0]):
            agg = self._aggregate(per_window)
            extra = {}
            sentence_z = [max(w[h] for w in by_unit[k][i]) + self._shift[h] for k in range(1, len(groups[i]))]
            if sentence_z:
                raised = max(sentence_z) - long_text.length_shift(len(sentence_z), self._slope[h])
                if sigmoid(raised) >= long_text.DECISIVE_SENTENCE:
                    agg[h] = max(agg[h], raised)
                extra[f"{h}_sentence"] = sigmoid(max(sentence_z))
            results.append({**{k: sigmoid(agg[k]) for k in self.HEADS}, **extra})
        return results

    def _aggregate(self, per_window: list[dict[str, float]]) -> dict[str, float]:
        """Calibrated logits of a text from its windows: ``toxic`` and ``unsafe`` from the largest window logit
        with the length shift, the kind heads from the most unsafe window."""
        n = len(per_window)
        agg = {h: max(w[h] for w in per_window) + self._shift[h] - long_text.length_shift(n, self._slope[h])
               for h in self._AGGREGATED}
        top = max(per_window, key=lambda w: w["unsafe"])
        agg.update({h: top[h] + self._shift[h] for h in self.HEADS if h not in agg})
        return agg

    def score(self, text: str, *, sentences: bool = False) -> dict[str, float]:
        if not isinstance(text, str):
            raise TypeError("score takes a str")
        return self.score_batch([text], sentences=sentences)[0]
