"""Pixel-level precision and recall of predicted masks against COCO ground truth, bucketed by object size.

Ground truth is a COCO annotation file (``images``, ``annotations``, ``categories``); segmentations may be
polygons (rasterized pixel for pixel as the COCO tools do: :mod:`modchain.visual_chain.polygons`) or RLE, with list
or compressed string counts. Predictions are per image and category: :class:`ImageChainResult` segments whose label names
a category (case-insensitive), or a COCO *results* file (``[{"image_id", "category_id", "segmentation":
RLE, "score"}]``).

Size buckets follow the visual-prompting post: an object's share of the image area is **small** below
0.11% (COCO's 32x32 px on a 1280x720 frame), **medium** from 0.11% to 1% inclusive, **large** above 1%.
Per bucket:

* **recall** = pixels of the bucket's ground-truth objects covered by the union of same-category
  predictions / pixels of those objects;
* **precision** = predicted pixels on same-category ground truth / predicted pixels, each predicted
  mask counted in the bucket of the object it overlaps most (unmatched masks: the bucket of their own area).

The ``all`` row uses per-(image, category) unions, so overlapping predictions are not counted twice.
Crowd regions (``iscrowd``) count as ground truth for precision but are not objects to recall.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modchain.core.errors import InputError
from modchain.core.masks import EncodedMask, decode_mask
from modchain.visual_chain.results import normalize_label

if TYPE_CHECKING:
    import numpy as np

BUCKETS = ("small", "medium", "large")


def size_bucket(area: int, image_area: int) -> str:
    """``small`` (< 0.11% of the image), ``medium`` (0.11%-1%, both ends included) or ``large`` (> 1%).

    Integer arithmetic, so the edges are exact: ``area / image_area < 11 / 10000`` and ``> 1 / 100``."""
    if image_area <= 0:
        raise InputError("image area must be positive")
    if area * 10_000 < 11 * image_area:
        return "small"
    if area * 100 > image_area:
        return "large"
    return "medium"


def rasterize_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """A COCO ``segmentation`` (polygons, or RLE with list or compressed counts) as a boolean mask."""
    import numpy as np

    from modchain.visual_chain.polygons import polygon_mask

    if isinstance(segmentation, Mapping):
        try:
            mask = EncodedMask.from_coco(dict(segmentation))
        except (TypeError, ValueError):  # pydantic's ValidationError is a ValueError
            raise InputError("a COCO RLE segmentation with bad 'size' or 'counts'") from None
        if tuple(mask.size) != (height, width):
            raise InputError(f"an RLE of size {mask.size} in a {width}x{height} image")
        return decode_mask(mask)
    if not isinstance(segmentation, Sequence) or isinstance(segmentation, str):
        raise InputError("a COCO segmentation is a list of polygons or an RLE object")
    mask = np.zeros((height, width), dtype=bool)
    for polygon in segmentation:  # the parts of an object: their union, as the COCO tools merge them
        if not isinstance(polygon, Sequence) or isinstance(polygon, str) or len(polygon) < 6 or len(polygon) % 2:
            raise InputError("a COCO polygon is a flat list of at least 3 x, y pairs")
        try:
            coords = [float(value) for value in polygon]
        except (TypeError, ValueError):
            raise InputError("a COCO polygon holds numbers only") from None
        if not all(math.isfinite(value) for value in coords):
            raise InputError("a COCO polygon holds finite numbers only")
        mask |= polygon_mask(coords, height, width)
    return mask


@dataclass
class CocoDataset:
    """The parts of a COCO annotation file the evaluation needs."""

    images: dict[int, dict[str, Any]]
    categories: dict[int, str]
    annotations: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by image id

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any]) -> CocoDataset:
        import json

        try:
            data = source if isinstance(source, Mapping) else json.loads(Path(source).read_text(encoding="utf-8"))
            images = {int(i["id"]): dict(i) for i in data["images"]}
            categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
            annotations: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for annotation in data.get("annotations", []):
                annotations[int(annotation["image_id"])].append(annotation)
            for image in images.values():
                int(image["width"]), int(image["height"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a COCO annotation file (missing or bad {exc.__class__.__name__}: {exc})"[:200]) from None
        unknown = {int(a["category_id"]) for anns in annotations.values() for a in anns} - set(categories)
        if unknown:
            raise InputError(f"annotations use {len(unknown)} category id(s) not in 'categories'")
        return cls(images, categories, dict(annotations))

    def category_id(self, label: str | None) -> int | None:
        wanted = normalize_label(label or "")
        return next((cid for cid, name in self.categories.items() if normalize_label(name) == wanted), None)


@dataclass
class BucketStats:
    objects: int = 0
    predictions: int = 0
    gt_pixels: int = 0
    recalled_pixels: int = 0
    predicted_pixels: int = 0
    correct_pixels: int = 0

    @property
    def precision(self) -> float | None:
        return self.correct_pixels / self.predicted_pixels if self.predicted_pixels else None

    @property
    def recall(self) -> float | None:
        return self.recalled_pixels / self.gt_pixels if self.gt_pixels else None

    def as_dict(self) -> dict[str, Any]:
        return {"objects": self.objects, "predictions": self.predictions, "pixel_precision": self.precision,
                "pixel_recall": self.recall, "gt_pixels": self.gt_pixels, "predicted_pixels": self.predicted_pixels}


@dataclass
class SegmentationReport:
    buckets: dict[str, BucketStats]
    images: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "buckets": {name: stats.as_dict() for name, stats in self.buckets.items()}}

    def table(self) -> str:
        rows = [f"{'bucket':<8} {'objects':>8} {'preds':>7} {'pixel precision':>16} {'pixel recall':>13}"]
        for name, stats in self.buckets.items():
            rows.append(f"{name:<8} {stats.objects:>8} {stats.predictions:>7} {_fmt(stats.precision):>16} "
                        f"{_fmt(stats.recall):>13}")
        return "\n".join(rows)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


class SegmentationEvaluator:
    """Accumulates images: ``add(image_id, predictions)`` with ``predictions = [(category_id, mask)]``."""

    def __init__(self, dataset: CocoDataset) -> None:
        self.dataset = dataset
        self.buckets = {name: BucketStats() for name in (*BUCKETS, "all")}
        self.images = 0

    def add(self, image_id: int, predictions: Iterable[tuple[int, np.ndarray | EncodedMask]]) -> None:
        import numpy as np

        info = self.dataset.images.get(int(image_id))
        if info is None:
            raise InputError(f"image id {image_id} is not in the annotation file")
        height, width = int(info["height"]), int(info["width"])
        image_area = height * width
        gt: dict[int, list[tuple[np.ndarray, bool]]] = defaultdict(list)
        for annotation in self.dataset.annotations.get(int(image_id), []):
            if "segmentation" not in annotation:
                raise InputError(f"annotation {str(annotation.get('id'))[:20]} of image {image_id} has no segmentation")
            mask = rasterize_segmentation(annotation["segmentation"], height, width)
            gt[int(annotation["category_id"])].append((mask, bool(annotation.get("iscrowd", 0))))
        preds: dict[int, list[np.ndarray]] = defaultdict(list)
        for category_id, mask in predictions:
            if int(category_id) not in self.dataset.categories:
                raise InputError(f"a prediction for category id {int(category_id)}, not in the annotation file")
            array = decode_mask(mask) if isinstance(mask, EncodedMask) else np.asarray(mask, dtype=bool)
            if array.shape != (height, width):
                raise InputError(f"a predicted mask of shape {array.shape} for a {width}x{height} image")
            preds[int(category_id)].append(array)
        total = self.buckets["all"]
        for category_id in set(gt) | set(preds):
            objects = gt.get(category_id, [])
            masks = preds.get(category_id, [])
            gt_union = np.zeros((height, width), dtype=bool)
            for mask, _ in objects:
                gt_union |= mask
            pred_union = np.zeros((height, width), dtype=bool)
            for mask in masks:
                pred_union |= mask
            for mask, crowd in objects:
                if crowd:
                    continue
                stats = self.buckets[size_bucket(int(mask.sum()), image_area)]
                stats.objects += 1
                stats.gt_pixels += int(mask.sum())
                stats.recalled_pixels += int((mask & pred_union).sum())
                total.objects += 1
            for mask in masks:
                overlaps = [int((mask & g).sum()) if not crowd else -1 for g, crowd in objects]
                best = max(range(len(objects)), key=lambda i: overlaps[i], default=None)
                owner = objects[best][0] if best is not None and overlaps[best] > 0 else mask
                stats = self.buckets[size_bucket(int(owner.sum()), image_area)]
                stats.predictions += 1
                stats.predicted_pixels += int(mask.sum())
                stats.correct_pixels += int((mask & gt_union).sum())
                total.predictions += 1
            crowd_free = np.zeros((height, width), dtype=bool)
            for mask, crowd in objects:
                if not crowd:
                    crowd_free |= mask
            total.gt_pixels += int(crowd_free.sum())
            total.recalled_pixels += int((crowd_free & pred_union).sum())
            total.predicted_pixels += int(pred_union.sum())
            total.correct_pixels += int((pred_union & gt_union).sum())
        self.images += 1

    def add_result(self, image_id: int, result: Any) -> None:
        """Add an :class:`ImageChainResult`: segments whose label names a category (others are ignored)."""
        pairs = []
        for segment in result.segments:
            category_id = self.dataset.category_id(segment.label)
            if category_id is not None:
                pairs.append((category_id, segment.mask))
        self.add(image_id, pairs)

    def report(self) -> SegmentationReport:
        return SegmentationReport(dict(self.buckets), self.images)


def evaluate_predictions(dataset: CocoDataset, predictions: Sequence[Mapping[str, Any]], *,
                         min_score: float = 0.0) -> SegmentationReport:
    """Score a COCO results list against ``dataset`` (every annotated image, with or without predictions)."""
    by_image: dict[int, list[tuple[int, EncodedMask]]] = defaultdict(list)
    for i, row in enumerate(predictions):
        try:
            if float(row.get("score", 1.0)) < min_score:
                continue
            by_image[int(row["image_id"])].append((int(row["category_id"]),
                                                   EncodedMask.from_coco(dict(row["segmentation"]))))
        except (KeyError, TypeError, ValueError):
            raise InputError(f"prediction {i} is not a COCO result with an RLE 'segmentation'") from None
    evaluator = SegmentationEvaluator(dataset)
    for image_id in sorted(dataset.images):
        evaluator.add(image_id, by_image.pop(image_id, []))
    if by_image:
        raise InputError(f"predictions for {len(by_image)} image id(s) not in the annotation file")
    return evaluator.report()
