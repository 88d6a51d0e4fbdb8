"""The values that flow between visual-chain stages: detections (boxes), prompts and segments (masks).

Shared by the detector and segmenter backends and the visual chain, so they live in ``core``. Coordinates
are pixels of the image as given (not normalized), ``(x0, y0, x1, y1)`` corners: the form transformers'
detector post-processing returns and SAM's box prompts take, so no stage converts.
Masks travel run-length encoded (:class:`~modchain.core.masks.EncodedMask`), never as full arrays.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modchain.core.masks import EncodedMask

#: (x0, y0, x1, y1) in pixels.
PixelBox = tuple[float, float, float, float]


def _valid_box(box: PixelBox) -> PixelBox:
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):  # JSON's 1e999 parses as inf
        raise ValueError("box coordinates must be finite numbers")
    if not (x1 >= x0 and y1 >= y0):
        raise ValueError("box must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0")
    return (x0, y0, x1, y1)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Detection(_Frozen):
    """One box a detector found for a text query."""

    label: str = Field(description="The query phrase (or managed label) the box matched.")
    score: float = Field(ge=0.0, le=1.0)
    box: PixelBox
    backend: str = ""

    @field_validator("box")
    @classmethod
    def _box_ok(cls, box: PixelBox) -> PixelBox:
        return _valid_box(box)

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return ((x0 + x1) / 2.0, (y0 + y1) / 2.0)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)


class VisualPrompt(_Frozen):
    """One SAM prompt: points (positive 1 / negative 0), a box, a low-resolution mask, or a mix.

    Every prompt form in the SAM paper: a point, several points, a box, a box plus points, a mask. With
    ``multimask`` SAM returns three candidate masks with predicted IoU scores (useful for an ambiguous
    single point); otherwise one.
    """

    points: tuple[tuple[float, float], ...] = ()
    point_labels: tuple[int, ...] = ()
    box: PixelBox | None = None
    mask: EncodedMask | None = None
    multimask: bool = False
    label: str | None = Field(None, description="Carried to the masks, e.g. the detection's label.")
    detection_score: float | None = None

    @field_validator("box")
    @classmethod
    def _box_ok(cls, box: PixelBox | None) -> PixelBox | None:
        return None if box is None else _valid_box(box)

    @field_validator("points")
    @classmethod
    def _points_ok(cls, points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        if not all(math.isfinite(v) for point in points for v in point):
            raise ValueError("point coordinates must be finite numbers")
        return points

    @field_validator("mask", mode="before")
    @classmethod
    def _coco_mask(cls, mask: Any) -> Any:
        """Accept a COCO RLE dict with compressed string counts too (as JSON requests carry them)."""
        if isinstance(mask, dict) and isinstance(mask.get("counts"), (str, bytes)):
            return EncodedMask.from_coco(mask)
        return mask

    @model_validator(mode="after")
    def _consistent(self) -> VisualPrompt:
        if not self.points and self.box is None and self.mask is None:
            raise ValueError("a visual prompt needs points, a box or a mask")
        if self.point_labels and len(self.point_labels) != len(self.points):
            raise ValueError("point_labels must have one label per point")
        if any(label not in (0, 1) for label in self.point_labels):
            raise ValueError("point labels are 1 (positive, on the object) or 0 (negative, background)")
        return self

    @property
    def labels_or_default(self) -> tuple[int, ...]:
        """Point labels, all positive when none were given."""
        return self.point_labels or (1,) * len(self.points)

    @classmethod
    def point(cls, x: float, y: float, *, positive: bool = True, multimask: bool = True) -> VisualPrompt:
        return cls(points=((x, y),), point_labels=(1 if positive else 0,), multimask=multimask)

    @classmethod
    def from_detection(cls, detection: Detection, *, with_center: bool = False) -> VisualPrompt:
        """The detector -> SAM hand-off: the box, optionally with its center as a positive point."""
        points = (detection.center,) if with_center else ()
        return cls(box=detection.box, points=points, point_labels=(1,) * len(points), label=detection.label,
                   detection_score=detection.score)


class Segment(_Frozen):
    """One mask SAM returned for a prompt."""

    mask: EncodedMask
    score: float = Field(description="SAM's predicted IoU for this mask (0-1 for trained models).")
    prompt_index: int = Field(ge=0, description="Which prompt of the request produced it.")
    label: str | None = None
    detection_score: float | None = None

    @property
    def area(self) -> int:
        return self.mask.area

    @property
    def box(self) -> PixelBox | None:
        return self.mask.bbox
