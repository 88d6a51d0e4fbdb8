"""Findings for images: the shared :class:`~modchain.core.results.Finding` plus a normalized box.

Shared by the image labeler backends and the image-moderation component, so it lives in ``core``.

Image labelers (NudeNet, Amazon Rekognition, ...) report ``filter="image"`` findings whose ``label`` is a
top-level category of the Amazon Rekognition moderation taxonomy (version 7), so a policy means the same
thing on every labeler. ``category`` holds the finer label, ``explanation`` the full path.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from modchain.core.results import Finding

#: Top-level categories of the Amazon Rekognition content moderation taxonomy, version 7.
REKOGNITION_TOP_LEVEL_CATEGORIES: tuple[str, ...] = (
    "Explicit",
    "Non-Explicit Nudity of Intimate parts and Kissing",
    "Swimwear or Underwear",
    "Violence",
    "Visually Disturbing",
    "Drugs & Tobacco",
    "Alcohol",
    "Rude Gestures",
    "Gambling",
    "Hate Symbols",
)

Box = tuple[float, float, float, float]


class ImageFinding(Finding):
    """A finding about an image; ``box`` is ``(x, y, width, height)`` as fractions of the image (0-1),
    or ``None`` when the labeler reports no location (e.g. Rekognition moderation labels)."""

    filter: str = "image"
    box: Box | None = Field(None, description="(x, y, w, h), normalized to the image size, 0-1.")

    @field_validator("box")
    @classmethod
    def _normalized(cls, box: Box | None) -> Box | None:
        if box is None:
            return None
        x, y, w, h = (float(v) for v in box)
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 and w >= 0.0 and h >= 0.0
                and x + w <= 1.0 + 1e-6 and y + h <= 1.0 + 1e-6):
            raise ValueError("box must be (x, y, w, h) normalized to [0, 1] and inside the image")
        return (x, y, min(w, 1.0 - x), min(h, 1.0 - y))


__all__ = ["REKOGNITION_TOP_LEVEL_CATEGORIES", "Box", "ImageFinding"]
