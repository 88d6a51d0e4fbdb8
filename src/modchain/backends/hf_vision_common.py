"""Shared plumbing of the transformers visual-chain backends (Grounding DINO, OWLv2, SAM).

Image processors: transformers' default image processors for these models need torchvision; without it
(CPU-only installs, this project's CI) the slow PIL/numpy ``*ImageProcessorPil`` classes do the same resize and
normalization. :func:`load_image_processor` picks the fast one only when torchvision imports.
Nothing here imports torch or transformers at module import time.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any, TypeVar

from modchain.backends.hf_common import LazyModel, require_hf, resolve_device
from modchain.core.errors import ConfigurationError, InputError


def has_torchvision() -> bool:
    return importlib.util.find_spec("torchvision") is not None


def resolve_dtype(torch: Any, dtype: Any, device: Any) -> Any:
    """``dtype`` as a torch floating dtype; ``None`` means float32 (fp16 on CUDA is opt-in: ``dtype="float16"``)."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        resolved = getattr(torch, str(dtype).replace("torch.", ""), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ConfigurationError(f"dtype must be a floating-point torch dtype (float16, bfloat16, float32), not {dtype!r}")
    if resolved == torch.float16 and device.type == "cpu":
        raise ConfigurationError("float16 needs a CUDA device; use float32 (or bfloat16) on CPU")
    return resolved


def load_image_processor(transformers: Any, model: str, pil_class: str, *, revision: str | None = None) -> Any:
    """The model's image processor: the default (torchvision) one when torchvision is installed, else the
    PIL/numpy class ``pil_class`` loaded from the same saved settings."""
    if has_torchvision():
        return transformers.AutoImageProcessor.from_pretrained(model, revision=revision)
    return getattr(transformers, pil_class).from_pretrained(model, revision=revision)


def as_rgb(image: Any, backend: str) -> Any:
    """A PIL image in RGB mode; other inputs get a typed error (load files/bytes with ``vision.load_image``)."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise InputError(f"{backend}: expected a PIL image, got {type(image).__name__} "
                         "(use modchain.vision.image_input.load_image for paths, bytes and arrays)")
    width, height = image.size
    if width < 1 or height < 1:
        raise InputError(f"{backend}: the image is empty ({width}x{height})")
    return image if image.mode == "RGB" else image.convert("RGB")


def check_queries(queries: Sequence[str], backend: str) -> list[str]:
    """Non-empty text queries, stripped; duplicates dropped (first kept)."""
    if isinstance(queries, str) or not isinstance(queries, Sequence):
        raise InputError(f"{backend}: queries must be a list of strings, not {type(queries).__name__}")
    cleaned: list[str] = []
    for query in queries:
        if not isinstance(query, str) or not query.strip():
            raise InputError(f"{backend}: every query must be a non-empty string")
        text = " ".join(query.split())
        if text not in cleaned:
            cleaned.append(text)
    if not cleaned:
        raise InputError(f"{backend}: no queries given")
    return cleaned


def check_threshold(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ConfigurationError(f"{name} must be between 0 and 1, not {value}")
    return value


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix0, iy0 = max(a[0], b[0]), max(a[1], b[1])
    ix1, iy1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix1 - ix0) * max(0.0, iy1 - iy0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(boxes: Sequence[Sequence[float]], scores: Sequence[float], iou_threshold: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best score first. Few boxes survive a detector's
    score threshold, so plain Python is fast enough and needs no torchvision."""
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        if all(box_iou(boxes[i], boxes[j]) <= iou_threshold for j in kept):
            kept.append(i)
    return kept


def clip_box(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = sorted((min(max(x0, 0.0), width), min(max(x1, 0.0), width)))
    y0, y1 = sorted((min(max(y0, 0.0), height), min(max(y1, 0.0), height)))
    return (x0, y0, x1, y1)


def load_checked_model(transformers: Any, model: str, model_types: dict[str, str], *, revision: str | None,
                       dtype: Any, what: str) -> Any:
    """``from_pretrained`` of the class ``model_types[config.model_type]``; another architecture is refused
    with a ConfigurationError that names it (not a stack trace from deep inside transformers)."""
    try:
        config = transformers.AutoConfig.from_pretrained(model, revision=revision)
        model_type = getattr(config, "model_type", None)
        if model_type not in model_types:
            raise ConfigurationError(f"model {model!r} is a {model_type!r} model, not {what}")
        model_class = getattr(transformers, model_types[model_type])
        return model_class.from_pretrained(model, revision=revision, dtype=dtype)
    except ConfigurationError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"cannot load {what} model {model!r}: {exc}") from exc


def to_device(model: Any, device: Any, dtype: Any, device_arg: Any) -> Any:
    try:
        return model.to(device=device, dtype=dtype).eval()
    except (RuntimeError, AssertionError, ValueError) as exc:  # e.g. "cuda" on a CPU-only torch
        raise ConfigurationError(f"cannot use device {device_arg!r}: {type(exc).__name__}: {exc}") from None


_Detector = TypeVar("_Detector", bound="TextQueryDetector")


class TextQueryDetector:
    """What the transformers detectors queried by text (Grounding DINO, OWLv2) share: settings checks, the
    model, tokenizer and image processor loaded on first use (or given), ``name``, ``load``.

    Subclasses set ``backend``, ``model_types`` (config model_type -> transformers class), ``pil_processor``
    (the image processor class used without torchvision) and ``what`` (the model's name in errors).
    """

    backend: str
    model_types: dict[str, str]
    pil_processor: str
    what: str

    def __init__(self, model: str, *, device: Any, dtype: Any, nms_threshold: float | None,
                 labels: Sequence[str] | None, max_detections: int, revision: str | None, model_obj: Any,
                 tokenizer_obj: Any, image_processor_obj: Any) -> None:
        self._given = (model_obj, tokenizer_obj, image_processor_obj)
        if any(g is None for g in self._given) and any(g is not None for g in self._given):
            raise ConfigurationError("pass model_obj, tokenizer_obj and image_processor_obj together (or none)")
        if max_detections < 1:
            raise ConfigurationError("max_detections must be at least 1")
        self.model_name = str(model)
        self.revision = revision
        self.nms_threshold = None if nms_threshold is None else check_threshold(nms_threshold, "nms_threshold")
        self.labels = None if labels is None else check_queries(list(labels), self.backend)
        self.max_detections = int(max_detections)
        self._device_arg = device
        self._dtype_arg = dtype
        self._lazy = LazyModel(self._load)

    @property
    def name(self) -> str:
        return f"{self.backend}:{self.model_name}"

    def load(self: _Detector) -> _Detector:
        """Load the model now (it is otherwise loaded on first use). Raises ConfigurationError."""
        self._lazy.get()
        return self

    def _load(self) -> tuple[Any, Any, Any, Any, Any]:
        """(model, tokenizer, image processor, device, dtype): the given objects or all three loaded."""
        torch, transformers = require_hf()
        device = resolve_device(self._device_arg)
        dtype = resolve_dtype(torch, self._dtype_arg, device)
        model, tokenizer, image_processor = self._given
        if model is None:
            model = load_checked_model(transformers, self.model_name, self.model_types, revision=self.revision,
                                       dtype=dtype, what=self.what)
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_name, revision=self.revision)
                image_processor = load_image_processor(transformers, self.model_name, self.pil_processor,
                                                       revision=self.revision)
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"cannot load the processor of {self.model_name!r}: {exc}") from exc
        return to_device(model, device, dtype, self._device_arg), tokenizer, image_processor, device, dtype
