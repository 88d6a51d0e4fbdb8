"""Draw what a visual chain found: semi-transparent masks, boxes, and "label score" tags (PIL only).

    overlay(image, result).show()                 # in a notebook: display(overlay(image, result))
    save_overlay(image, result, "out/5X3349.png")

One color per label (stable across images: chosen from the label's hash), so "car" is the same color in
every frame of a feed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modchain.core.errors import InputError
from modchain.core.masks import decode_mask
from modchain.visual_chain.results import ImageChainResult

if TYPE_CHECKING:
    from PIL import Image as PILImage

#: Distinct, saturated colors (RGB) that read on photos.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40), (128, 0, 0),
)


def label_color(label: str | None) -> tuple[int, int, int]:
    digest = hashlib.md5((label or "").lower().encode(), usedforsecurity=False).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def overlay(image: Any, result: ImageChainResult, *, alpha: float = 0.45, boxes: bool = True, masks: bool = True,
            labels: bool = True, line_width: int | None = None) -> PILImage.Image:
    """An RGB copy of ``image`` with the result's masks (``alpha`` opacity), boxes and labels drawn on it.

    Boxes are the detections' (or, for a segmenter-only result, the masks' tight boxes)."""
    import numpy as np
    from PIL import Image, ImageDraw

    from modchain.core.images import load_image

    picture = load_image(image)
    if picture.size != tuple(result.image_size):
        raise InputError(f"the image is {picture.width}x{picture.height} but the result is for "
                         f"{result.image_size[0]}x{result.image_size[1]}")
    if not 0.0 <= alpha <= 1.0:
        raise InputError("alpha is an opacity between 0 and 1")
    canvas = np.asarray(picture, dtype=np.float32).copy()
    if masks:
        for segment in result.segments:
            region = decode_mask(segment.mask)
            color = np.array(label_color(segment.label), dtype=np.float32)
            canvas[region] = canvas[region] * (1 - alpha) + color * alpha
    drawn = Image.fromarray(canvas.round().astype(np.uint8))
    if not (boxes or labels):
        return drawn
    draw = ImageDraw.Draw(drawn)
    width = line_width or max(1, min(drawn.size) // 200)
    tagged = [(d.label, d.score, d.box) for d in result.detections] or [
        (s.label, s.score, s.box) for s in result.segments if s.box is not None]
    for label, score, box in tagged:
        color = label_color(label)
        if boxes:
            # Boxes end exclusive (x1 = one past the last column); PIL's rectangle includes its far corner.
            x0, y0, x1, y1 = box
            draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=color, width=width)
        if labels:
            text = f"{label or '?'} {score:.2f}"
            left, top, right, bottom = draw.textbbox((0, 0), text)
            x, y = box[0], max(0.0, box[1] - (bottom - top) - 2)
            draw.rectangle((x, y, x + right - left + 4, y + bottom - top + 2), fill=color)
            draw.text((x + 2, y), text, fill=(0, 0, 0) if sum(color) > 400 else (255, 255, 255))
    return drawn


def save_overlay(image: Any, result: ImageChainResult, path: str | Path, **options: Any) -> Path:
    """Write :func:`overlay` as a PNG to ``path`` (folders created); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    overlay(image, result, **options).save(target, format="PNG")
    return target
