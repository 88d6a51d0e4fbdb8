"""Obscuring unsafe images: a strong Gaussian blur or pixelation, of the whole image or of flagged boxes.

The strength is relative to the image's longer side so a 256 px preview and a 1024 px render are equally
unreadable. Pillow is imported when an image is blurred, not at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modchain.core.image_findings import Box
from modchain.generation.config import BlurConfig


def _obscure(image: Any, config: BlurConfig, longer: int) -> Any:
    from PIL import Image, ImageFilter

    if config.method == "gaussian":
        return image.filter(ImageFilter.GaussianBlur(radius=max(2.0, config.strength * longer)))
    block = max(2, round(config.strength * longer))
    small = image.resize((max(1, image.width // block), max(1, image.height // block)), Image.Resampling.BILINEAR)
    return small.resize(image.size, Image.Resampling.NEAREST)


def _pixel_box(box: Box, size: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    width, height = size
    x, y, w, h = box
    dx, dy = w * margin, h * margin
    left, top = max(0.0, x - dx), max(0.0, y - dy)
    right, bottom = min(1.0, x + w + dx), min(1.0, y + h + dy)
    return (int(left * width), int(top * height), max(int(left * width) + 1, round(right * width)),
            max(int(top * height) + 1, round(bottom * height)))


def blur_image(image: Any, boxes: Sequence[Box | None] = (), config: BlurConfig | None = None) -> Any:
    """A blurred copy of the PIL ``image``. With ``region="boxes"`` only ``boxes`` (normalized ``x, y, w, h``)
    are obscured; an empty list or any ``None`` box (a labeler without locations) obscures the whole image."""
    config = config or BlurConfig()
    rgb = image.convert("RGB")
    if config.region == "image" or not boxes or any(box is None for box in boxes):
        return _obscure(rgb, config, max(rgb.size))
    out = rgb.copy()
    for box in boxes:
        region = _pixel_box(box, rgb.size, config.box_margin)  # type: ignore[arg-type]
        # The strength follows the whole image, so a small box is as unreadable as a large one.
        out.paste(_obscure(rgb.crop(region), config, max(rgb.size)), region[:2])
    return out


__all__ = ["blur_image"]
