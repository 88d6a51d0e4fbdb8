"""What a dataset screening checks and how: :class:`ScreeningConfig`.

The config is data only (no model objects), so it is picklable and hashable into a fingerprint: a
checkpoint written under one config is never resumed under another, where its verdicts could differ.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, field_validator

from modchain.core.config import StrictModel
from modchain.core.image_findings import REKOGNITION_TOP_LEVEL_CATEGORIES

#: Extensions screened as images (lower case); anything else in the folder is ignored.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")

#: Labels that flag an image by default: nudity. Swimwear is reported but does not flag a training image.
DEFAULT_FLAG_LABELS: tuple[str, ...] = ("Explicit", "Non-Explicit Nudity of Intimate parts and Kissing")


class ScreeningConfig(StrictModel):
    """Settings of a :class:`~modchain.screening.screener.DatasetScreener`.

    ``threshold`` and ``labels`` decide when a labeler's finding flags an image (an
    :class:`~modchain.image_moderation.image_chain.ImageModerationChain` decides for itself and ignores them).
    """

    threshold: float = Field(0.4, ge=0.0, le=1.0, description="Minimum finding score that flags an image.")
    labels: tuple[str, ...] = Field(DEFAULT_FLAG_LABELS, description=(
        "Rekognition top-level categories that flag an image; empty: any label flags."))
    recursive: bool = Field(True, description="Screen images in sub-folders too.")
    extensions: tuple[str, ...] = Field(IMAGE_EXTENSIONS, description="File extensions screened as images.")
    batch_size: int = Field(8, ge=1, description="Images per model call and per checkpoint flush.")
    workers: int = Field(1, ge=1, description="Worker processes, each loading the model once.")
    check_prompt: bool = Field(True, description="Check dataset_info.json's instance_prompt.")
    backend_errors: Literal["raise", "record"] = Field("raise", description=(
        "On a model/backend failure: stop the run (fail closed; finished work stays in the checkpoint) "
        "or record the batch's images as errors and go on. Errors never count as clean."))

    @field_validator("labels")
    @classmethod
    def _known_labels(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [label for label in labels if label not in REKOGNITION_TOP_LEVEL_CATEGORIES]
        if unknown:
            raise ValueError(f"unknown label(s) {unknown}; known: {list(REKOGNITION_TOP_LEVEL_CATEGORIES)}")
        return tuple(dict.fromkeys(labels))

    @field_validator("extensions")
    @classmethod
    def _dotted(cls, extensions: tuple[str, ...]) -> tuple[str, ...]:
        if not extensions:
            raise ValueError("give at least one image extension")
        return tuple(dict.fromkeys(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions))

    def verdict_fingerprint(self, moderator: str, prompt_checker: str) -> str:
        """A short hash of everything that changes a verdict (not workers or batch size, which do not)."""
        data = {"threshold": self.threshold, "labels": list(self.labels), "moderator": moderator,
                "prompt_checker": prompt_checker if self.check_prompt else None}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
