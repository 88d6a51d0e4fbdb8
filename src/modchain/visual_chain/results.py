"""The result of one :class:`~modchain.visual_chain.chain.ImageChain` run: boxes, masks and timings.

Frozen and typed like every modchain result; ``to_dict()`` is JSON-serializable with masks as COCO RLE
(compressed strings by default), so a result for a 1280x720 frame with a dozen masks is a few KB.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modchain.core.image_findings import ImageFinding
from modchain.core.results import Outcome, field_of
from modchain.visual_chain.types import Detection, Segment, VisualPrompt


class StageTiming(BaseModel):
    """Wall time of one stage. ``cache_hit`` is set for the embedding stage only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str = Field(description="detection, embedding or segmentation")
    backend: str = ""
    ms: float = Field(ge=0.0)
    items: int = Field(0, ge=0, description="Boxes found, or masks returned.")
    cache_hit: bool | None = None


class ImageChainResult(Outcome):
    """What a text query (and/or explicit prompts) found in one image.

    The :class:`~modchain.core.results.Outcome` fields are derived (and left out of ``model_dump``): the
    visual chain finds, it never blocks, so ``allowed`` is True; ``findings`` are the detections as
    :class:`ImageFinding` with boxes normalized to the image; ``timings_ms`` is ``{stage: ms}`` plus total.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: str = ""
    queries: tuple[str, ...] = Field((), description="The phrases the query was split into for the detector.")
    image_id: str | None = None
    image_size: tuple[int, int] = Field(description="(width, height) in pixels.")
    detections: tuple[Detection, ...] = ()
    prompts: tuple[VisualPrompt, ...] = Field((), description="What the segmenter was asked, in order.")
    segments: tuple[Segment, ...] = ()
    segmented_detections: int = Field(0, ge=0, description="How many detections (the best first) prompted the "
                                      "segmenter; the rest (past max_detections) keep their boxes only.")
    timings: tuple[StageTiming, ...] = ()
    errors: tuple[str, ...] = Field((), description="Stages that failed open, as 'stage: ErrorType'.")
    unique_id: str | None = None
    allowed: bool = Field(True, exclude=True, description="Always True: the visual chain never blocks.")
    findings: tuple[ImageFinding, ...] = Field((), exclude=True, description="The detections, boxes normalized.")
    timings_ms: dict[str, float] = Field(default_factory=dict, exclude=True, description="{stage: ms} plus total.")

    @model_validator(mode="before")
    @classmethod
    def _derive_outcome(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        timings = data.get("timings") or ()
        stage_ms = {field_of(t, "stage"): float(field_of(t, "ms", 0.0)) for t in timings}
        size = data.get("image_size")
        derived = {"timings_ms": {**stage_ms, "total": sum(float(field_of(t, "ms", 0.0)) for t in timings)},
                   "findings": _detection_findings(data.get("detections") or (), size) if size else ()}
        return {**derived, **data, "allowed": True}

    # -- convenience ---------------------------------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        """Distinct labels of the segments (or detections when nothing was segmented), in order."""
        seen: dict[str, None] = {}
        for item in self.segments or self.detections:
            if item.label:
                seen.setdefault(item.label, None)
        return list(seen)

    @property
    def embedding_cache_hit(self) -> bool | None:
        return next((t.cache_hit for t in self.timings if t.cache_hit is not None), None)

    def segments_for(self, labels: Any = None) -> list[Segment]:
        """Segments whose label is one of ``labels`` (case-insensitive); all segments for None."""
        wanted = _wanted(labels)
        return [s for s in self.segments if _chosen(s.label, wanted)]

    def detections_for(self, labels: Any = None) -> list[Detection]:
        wanted = _wanted(labels)
        return [d for d in self.detections if _chosen(d.label, wanted)]

    def unmasked_detections(self, labels: Any = None) -> list[Detection]:
        """Detections (of ``labels``) with no mask: past ``max_detections``, or whose segmentation failed or
        came back empty. Redaction covers their boxes, so a capped or failed mask never leaves one uncovered."""
        masked = {s.prompt_index for s in self.segments if s.prompt_index < self.segmented_detections and s.area}
        wanted = _wanted(labels)
        return [d for index, d in enumerate(self.detections) if index not in masked and _chosen(d.label, wanted)]

    def to_dict(self, *, compressed: bool = True) -> dict[str, Any]:
        """JSON-ready: boxes as lists, masks as COCO RLE (``compressed=False``: counts as int lists)."""
        return {
            "query": self.query,
            "queries": list(self.queries),
            "image_id": self.image_id,
            "image_size": list(self.image_size),
            "detections": [{"label": d.label, "score": d.score, "box": list(d.box), "backend": d.backend}
                           for d in self.detections],
            "segments": [segment_to_dict(s, compressed=compressed) for s in self.segments],
            "segmented_detections": self.segmented_detections,
            "timings_ms": self.timings_ms,
            "embedding_cache_hit": self.embedding_cache_hit,
            "errors": list(self.errors),
            "unique_id": self.unique_id,
        }


def _detection_findings(detections: Any, image_size: Any) -> tuple[ImageFinding, ...]:
    """Pixel-corner detection boxes as normalized ``(x, y, w, h)`` image findings, clipped to the image."""
    width, height = (max(float(v), 1.0) for v in image_size)
    findings = []
    for detection in detections:
        x0, y0, x1, y1 = (float(v) for v in field_of(detection, "box"))
        x, y = min(max(x0 / width, 0.0), 1.0), min(max(y0 / height, 0.0), 1.0)
        box = (x, y, min(max(x1 / width, x), 1.0) - x, min(max(y1 / height, y), 1.0) - y)
        findings.append(ImageFinding(filter="detection", label=field_of(detection, "label"),
                                     score=field_of(detection, "score"), backend=field_of(detection, "backend", ""),
                                     box=box))
    return tuple(findings)


def segment_to_dict(segment: Segment, *, compressed: bool = True) -> dict[str, Any]:
    box = segment.box
    return {"label": segment.label, "score": segment.score, "detection_score": segment.detection_score,
            "prompt_index": segment.prompt_index, "area": segment.area,
            "box": list(box) if box is not None else None, "mask": segment.mask.to_coco(compressed=compressed)}


def _wanted(labels: Any) -> set[str] | None:
    """The normalized names of ``labels`` (a name, or an iterable of names, read once); None: every label."""
    if labels is None:
        return None
    return {normalize_label(label) for label in ([labels] if isinstance(labels, str) else labels)}


def _chosen(label: str | None, wanted: set[str] | None) -> bool:
    return wanted is None or (label is not None and normalize_label(label) in wanted)


def normalize_label(label: str) -> str:
    """Labels compare case- and space-insensitively: ``"License  Plate"`` == ``"license plate"``."""
    return " ".join(str(label).lower().split())
