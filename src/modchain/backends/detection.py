"""What every detector backend shares, wherever it runs: query checks and box arithmetic in plain Python.

Used by the transformers detectors (:mod:`modchain.backends.hf`) and by Rekognition's
(:mod:`modchain.backends.aws.rekognition_detector`); nothing here imports a heavy library at module import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modchain.core.errors import ConfigurationError, InputError


def as_rgb(image: Any, backend: str) -> Any:
    """A PIL image in RGB mode; other inputs get a typed error (load files/bytes with ``vision.load_image``)."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise InputError(f"{backend}: expected a PIL image, got {type(image).__name__} "
                         "(use modchain.image_moderation.image_input.load_image for paths, bytes and arrays)")
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
