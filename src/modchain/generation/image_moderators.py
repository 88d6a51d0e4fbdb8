"""One interface over the image moderation the library has: chains and labelers.

:class:`SafeImageGenerator` accepts either

* anything with the image chain's API, ``moderate(image) -> ImageModerationResult`` (an
  :class:`~modchain.image_moderation.image_chain.ImageModerationChain` with NudeNet, Rekognition and/or VQA + verdict):
  the chain's own ``flagged`` decision is used; or
* a labeler, ``label(image) -> list[ImageFinding]`` (:class:`~modchain.backends.local.nudenet.NudeNetLabeler`,
  :class:`~modchain.backends.aws.rekognition_moderation.RekognitionModerationLabeler`): findings at or above ``threshold``
  in ``unsafe_categories`` (empty: any) make the image unsafe.

Both become an :class:`ImageModerator` with ``check(image) -> ImageCheck``; async callers get a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modchain.core.errors import ConfigurationError
from modchain.core.image_findings import ImageFinding


@dataclass(frozen=True)
class ImageCheck:
    """The verdict on one generated image."""

    safe: bool
    categories: tuple[str, ...] = ()
    findings: tuple[ImageFinding, ...] = field(default=())
    errors: tuple[str, ...] = ()  # steps of a fail-open chain that failed: "safe" then means "not fully checked"


class ImageModerator:
    """Base: ``check`` one image (a PIL image); ``acheck`` runs ``check`` in a worker thread."""

    name = "image-moderator"

    def check(self, image: Any) -> ImageCheck:  # pragma: no cover - interface
        raise NotImplementedError

    async def acheck(self, image: Any) -> ImageCheck:
        return await asyncio.to_thread(self.check, image)


class LabelerModerator(ImageModerator):
    """A labeler's findings, thresholded and filtered by category."""

    def __init__(self, labeler: Any, *, threshold: float = 0.5, unsafe_categories: Sequence[str] = ()) -> None:
        self.labeler = labeler
        self.threshold = float(threshold)
        self.unsafe_categories = frozenset(unsafe_categories)
        self.name = str(getattr(labeler, "name", type(labeler).__name__))

    def counts(self, finding: ImageFinding) -> bool:
        return finding.score >= self.threshold and (not self.unsafe_categories or finding.label in self.unsafe_categories)

    def check(self, image: Any) -> ImageCheck:
        findings = tuple(self.labeler.label(image))
        unsafe = [f for f in findings if self.counts(f)]
        return ImageCheck(safe=not unsafe, categories=tuple(sorted({f.label for f in unsafe})), findings=findings)


class ChainModerator(ImageModerator):
    """An image moderation chain's decision (``flagged``), category and findings."""

    def __init__(self, chain: Any) -> None:
        self.chain = chain
        self.name = str(getattr(chain, "name", None) or type(chain).__name__)

    def check(self, image: Any) -> ImageCheck:
        result = self.chain.moderate(image)
        flagged = bool(getattr(result, "flagged", not getattr(result, "allowed", True)))
        category = getattr(result, "category", None)
        categories = (category,) if flagged and category else ()
        return ImageCheck(safe=not flagged, categories=categories, findings=tuple(getattr(result, "findings", ())),
                          errors=tuple(getattr(result, "errors", ()) or ()))


def as_image_moderator(moderation: Any, *, threshold: float = 0.5,
                       unsafe_categories: Sequence[str] = ()) -> ImageModerator:
    """Wrap a chain (``moderate``) or a labeler (``label``) as an :class:`ImageModerator`."""
    if isinstance(moderation, ImageModerator):
        return moderation
    if callable(getattr(moderation, "moderate", None)):
        return ChainModerator(moderation)
    if callable(getattr(moderation, "label", None)):
        return LabelerModerator(moderation, threshold=threshold, unsafe_categories=unsafe_categories)
    raise ConfigurationError(
        "image moderation must have moderate(image) (an ImageModerationChain) or label(image) (a labeler such "
        f"as NudeNetLabeler); got {type(moderation).__name__}")


__all__ = ["ChainModerator", "ImageCheck", "ImageModerator", "LabelerModerator", "as_image_moderator"]
