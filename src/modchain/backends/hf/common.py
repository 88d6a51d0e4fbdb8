"""Shared plumbing of the Hugging Face backends: lazy imports, checked model loading, token windows.

Nothing here imports torch or transformers at module import time; :func:`require_hf` does, on first use, so
``import modchain`` (and the registry) stay light. Long texts are cut by the tokenizer itself into windows of
``max_length`` tokens that overlap by ``stride`` tokens (``return_overflowing_tokens``), and every token keeps
its character offsets into the original text (fast tokenizers only, which is why slow ones are refused).
"""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modchain.core.errors import BackendError, ConfigurationError
from modchain.core.per_process import PerProcess

INSTALL_HINT = "pip install 'modchain[local]' (torch and transformers)"

# Models whose absolute positions start after the padding index (so 514 position embeddings hold 512 tokens).
_OFFSET_POSITION_MODELS = frozenset({
    "roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "data2vec-text", "luke", "ernie_m",
})


def require_hf() -> tuple[Any, Any]:
    """``(torch, transformers)``, or a ConfigurationError that says what to install."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ConfigurationError(f"Hugging Face backends need torch and transformers: {INSTALL_HINT} ({exc})") from exc
    return torch, transformers


def resolve_device(device: Any = None) -> Any:
    torch, _ = require_hf()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigurationError(f"invalid torch device {device!r}: {exc}") from exc


def normalize_label(label: str) -> str:
    """A label as a lookup key: upper case, only letters and digits (``phone_number`` == ``PHONE-NUMBER``)."""
    return re.sub(r"[^0-9A-Z]", "", str(label).upper())


def load_model(
    model: str,
    auto_class_name: str,
    head_suffix: str,
    *,
    revision: str | None = None,
    model_obj: Any = None,
    tokenizer_obj: Any = None,
    device: Any = None,
) -> tuple[Any, Any, Any]:
    """``(model, tokenizer, device)``: loaded with ``from_pretrained`` (or the objects given), checked, in eval
    mode on ``device``.

    Refused with :class:`ConfigurationError`: a slow tokenizer (no character offsets), a checkpoint saved for
    another head (``architectures`` names no ``*{head_suffix}``), and a checkpoint missing weights of the
    model (a base model would get a randomly initialized head and score noise without a word).
    """
    torch, transformers = require_hf()
    if (model_obj is None) != (tokenizer_obj is None) and model_obj is not None:
        # A tokenizer loaded from another model id would not match the given model's vocabulary.
        raise ConfigurationError("pass tokenizer_obj together with model_obj (or neither)")
    try:
        if tokenizer_obj is None:
            tokenizer_obj = transformers.AutoTokenizer.from_pretrained(model, revision=revision)
        if model_obj is None:
            auto_class = getattr(transformers, auto_class_name)
            config = transformers.AutoConfig.from_pretrained(model, revision=revision)
            architectures = getattr(config, "architectures", None) or []
            if architectures and not any(a.endswith(head_suffix) for a in architectures):
                raise ConfigurationError(
                    f"model {model!r} was saved as {architectures}, not a *{head_suffix} model; use a model "
                    f"fine-tuned for this task (is BackendConfig.model meant for another backend? give each "
                    f"backend its own with model: {{backend name: model}})"
                )
            model_obj, info = auto_class.from_pretrained(model, revision=revision, output_loading_info=True)
            parameters = dict(model_obj.named_parameters())
            missing = sorted(k for k in (info or {}).get("missing_keys", ()) if k in parameters)
            mismatched = list((info or {}).get("mismatched_keys", ()))
            if missing or mismatched:
                raise ConfigurationError(
                    f"model {model!r} lacks trained weights for {(missing + [str(m) for m in mismatched])[:5]}; "
                    f"it is not a fine-tuned *{head_suffix} checkpoint (its scores would be noise)"
                )
    except ConfigurationError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigurationError(f"cannot load Hugging Face model {model!r}: {exc}") from exc
    if not getattr(tokenizer_obj, "is_fast", False):
        raise ConfigurationError(
            f"model {model!r} has no fast (Rust) tokenizer; character offsets need one (pass a "
            "PreTrainedTokenizerFast as tokenizer_obj, or convert the tokenizer with transformers)"
        )
    try:
        torch_device = resolve_device(device)
        model_obj = model_obj.to(torch_device)
    except (RuntimeError, AssertionError, ValueError) as exc:  # e.g. "cuda" on a CPU-only torch
        raise ConfigurationError(f"cannot use device {device!r}: {type(exc).__name__}: {exc}") from None
    model_obj.eval()
    return model_obj, tokenizer_obj, torch_device


def given_model_refusal(backend: Any) -> str | None:
    """Why ``backend`` cannot be pickled when it was built around the caller's loaded model or tokenizer
    (``model_obj=`` / ``tokenizer_obj=``), else None.

    Shipping the weights with every pickled guard would be slow and silent, and a model moved to a device
    cannot follow to another process; the backend's ``_pickle_refusal`` returns this
    (see :mod:`modchain.core.per_process`).
    """
    if getattr(backend, "_model_obj", None) is None and getattr(backend, "_tokenizer_obj", None) is None:
        return None
    return (f"{type(backend).__name__} was given an in-memory model (model_obj= / tokenizer_obj=), which it "
            f"does not pickle; build it with the model id or local path ({backend.model_id!r}, saved with "
            "save_pretrained) instead (it then loads the model in each process), or build the guard inside "
            "the worker")


def window_limits(tokenizer: Any, model: Any, max_length: int, stride: int | None) -> tuple[int, int]:
    """``(max_length, stride)`` that the model and tokenizer can take (positions, special tokens)."""
    limit = int(max_length)
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < 1_000_000:
        limit = min(limit, model_max)
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        if getattr(config, "model_type", "") in _OFFSET_POSITION_MODELS:
            positions -= (getattr(config, "pad_token_id", None) or 0) + 1
        limit = min(limit, positions)
    specials = tokenizer.num_special_tokens_to_add(pair=False)
    content = limit - specials
    if content < 2:
        raise ConfigurationError(f"max_length {max_length} leaves no room for text after {specials} special tokens")
    if stride is None:
        stride = content // 4
    if not 0 <= stride < content:
        raise ConfigurationError(f"stride must be between 0 and {content - 1} tokens for max_length {limit}, not {stride}")
    return limit, stride


@dataclass
class Window:
    """One model input: a slice of one text's tokens, with special tokens around it."""

    sample: int                        # index of the text it comes from
    inputs: dict[str, list[int]]       # model inputs (input_ids, attention_mask, ...)
    offsets: list[tuple[int, int]]     # character span of each token in the text; specials excluded below
    special: list[int]                 # 1 for special tokens ([CLS], [SEP], <s>, ...)
    word_ids: list[int | None]         # word index in the whole text (None for specials)
    first_token: int = 0               # index in the whole text's tokens of the window's first non-special token


def encode_windows(tokenizer: Any, texts: Sequence[str], max_length: int, stride: int) -> list[Window]:
    """All windows of all texts, in text order; every text has at least one window."""
    enc = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        padding=False,
    )
    samples = enc.get("overflow_to_sample_mapping")
    if samples is None:
        samples = list(range(len(enc["input_ids"])))
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in enc]
    windows = []
    seen: dict[int, list[tuple[int, int]]] = {}  # per text: offsets of its tokens so far, in order
    for i, sample in enumerate(samples):
        window = Window(
            sample=int(sample),
            inputs={n: list(enc[n][i]) for n in names},
            offsets=[(int(s), int(e)) for s, e in enc["offset_mapping"][i]],
            special=list(enc["special_tokens_mask"][i]),
            word_ids=list(enc.word_ids(i)),
        )
        content = [o for o, s in zip(window.offsets, window.special) if not s]
        window.first_token = _place(seen.setdefault(window.sample, []), content, stride)
        windows.append(window)
    return windows


def _place(tokens: list[tuple[int, int]], content: list[tuple[int, int]], stride: int) -> int:
    """Where a window's tokens start among its text's tokens (windows overlap by ``stride`` tokens), and
    extend ``tokens`` with the new ones. Checked against the offsets of the overlap, so tokens are never
    mis-assigned (two tokens may share a span, e.g. SentencePiece's lone "▁" and the next piece)."""
    if not tokens:
        tokens.extend(content)
        return 0
    expected = max(0, len(tokens) - stride)
    last = len(tokens) + 1 if stride == 0 else len(tokens)  # no overlap at all only when none was asked for
    candidates = [expected] + [g for g in range(max(0, len(tokens) - len(content)), last) if g != expected]
    for start in candidates:
        overlap = len(tokens) - start
        if overlap <= len(content) and tokens[start:] == content[:overlap]:
            tokens.extend(content[overlap:])
            return start
    raise BackendError("the tokenizer's overflowing windows do not overlap as expected; cannot align tokens")


def forward_accepts(model: Any) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return frozenset({"input_ids", "attention_mask"})


def run_windows(
    model: Any,
    tokenizer: Any,
    windows: Sequence[Window],
    *,
    batch_size: int,
    device: Any,
    accepts: frozenset[str],
    backend: str,
    post: Callable[[Any], Any],
) -> list[Any]:
    """The model's logits for each window (padding removed), passed through ``post`` (softmax, sigmoid),
    as CPU float tensors in window order. Windows are batched by similar length to pad little."""
    torch, _ = require_hf()
    order = sorted(range(len(windows)), key=lambda i: len(windows[i].inputs["input_ids"]))
    results: list[Any] = [None] * len(windows)
    pad_id = tokenizer.pad_token_id
    step = max(1, batch_size) if pad_id is not None else 1  # no pad token (GPT-style): one window at a time
    left = getattr(tokenizer, "padding_side", "right") == "left"
    try:
        with torch.inference_mode():
            for begin in range(0, len(order), step):
                chunk = order[begin:begin + step]
                batch = _pad([windows[i].inputs for i in chunk], pad_id or 0, left)
                mask = batch["attention_mask"].bool()
                inputs = {k: v.to(device) for k, v in batch.items() if k in accepts}
                logits = post(model(**inputs).logits.float()).cpu()
                for row, i in enumerate(chunk):
                    out = logits[row]
                    if out.dim() == 2:  # per-token logits: drop the padding
                        out = out[mask[row]]
                    results[i] = out
    except RuntimeError as exc:  # out of memory, device errors: the content was not scored
        raise BackendError(f"{backend}: model inference failed: {type(exc).__name__}", backend=backend) from exc
    return results


def _pad(features: Sequence[dict[str, list[int]]], pad_id: int, left: bool) -> dict[str, Any]:
    """Tensors of equal width: ``input_ids`` padded with the pad token, the rest with 0; an attention
    mask always (it also tells which logits belong to real tokens)."""
    torch, _ = require_hf()
    width = max(len(f["input_ids"]) for f in features)
    names = list(features[0])
    if "attention_mask" not in names:
        features = [{**f, "attention_mask": [1] * len(f["input_ids"])} for f in features]
        names.append("attention_mask")
    batch = {}
    for name in names:
        fill = pad_id if name == "input_ids" else 0
        rows = []
        for f in features:
            padding = [fill] * (width - len(f[name]))
            rows.append(padding + list(f[name]) if left else list(f[name]) + padding)
        batch[name] = torch.tensor(rows, dtype=torch.long)
    return batch


class LazyModel(PerProcess):
    """Loads a model once, on first use, from any thread.

    Pickles without the model and its lock: the receiving process loads it again on first use (the loader
    must pickle: a backend's bound ``_load`` method does, a lambda does not)."""

    _PER_PROCESS = {"_value": None, "_lock": threading.Lock}

    def __init__(self, loader: Callable[[], Any]) -> None:
        self._loader = loader
        self._value: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._value is not None

    def get(self) -> Any:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._loader()
        return self._value


class PretrainedLoader:
    """What the transformers text backends (classifier, NER) share about their model: the loader's arguments
    kept as plain attributes, so the backend pickles and loads the model again in each process, and the
    refusal to pickle a model object the caller loaded (:func:`given_model_refusal`)."""

    model_id: str

    def _keep_loader(self, model: str, *, revision: str | None, device: Any, model_obj: Any,
                     tokenizer_obj: Any) -> None:
        self.model_id = str(model)
        self._revision = revision
        self._device = device
        self._model_obj = model_obj
        self._tokenizer_obj = tokenizer_obj
        self._state = LazyModel(self._load)

    def _load(self) -> Any:  # the backend's own: load_pretrained, then its label set-up
        raise NotImplementedError

    def _load_pretrained(self, auto_class_name: str, head_suffix: str) -> tuple[Any, Any, Any]:
        return load_model(self.model_id, auto_class_name, head_suffix, revision=self._revision,
                          model_obj=self._model_obj, tokenizer_obj=self._tokenizer_obj, device=self._device)

    def _pickle_refusal(self) -> str | None:
        return given_model_refusal(self)
