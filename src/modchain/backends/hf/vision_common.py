"""Shared plumbing of the transformers visual-chain backends (Grounding DINO, OWLv2, SAM): loading, devices.

Image processors: transformers' default image processors for these models need torchvision; without it
(CPU-only installs, this project's CI) the slow PIL/numpy ``*ImageProcessorPil`` classes do the same resize and
normalization. :func:`load_image_processor` picks the fast one only when torchvision imports.
Nothing here imports torch or transformers at module import time.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any, TypeVar

from modchain.backends.detection import (  # noqa: F401  (re-exported: the old names of this module)
    as_rgb,
    box_iou,
    check_queries,
    check_threshold,
    clip_box,
    nms,
)
from modchain.backends.hf.common import LazyModel, require_hf, resolve_device
from modchain.core.errors import ConfigurationError


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
