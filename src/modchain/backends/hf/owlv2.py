"""OWLv2 open-vocabulary detection through transformers: text queries -> pixel boxes.

OWLv2 scores every image patch's box against every query at once (one text-encoder batch for all queries,
one image pass), so many queries cost little more than one. Per box the best query gives the label and the
sigmoid of its logit the score; boxes at or below ``score_threshold`` are dropped, then per-label
non-maximum suppression removes the many overlapping patch boxes of one object. OWLv2 pads the image to a
square before resizing, so its normalized boxes are scaled by the longer side and clipped to the image.

torch and transformers are imported on first use only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modchain.backends.detection import as_rgb, check_queries, check_threshold, clip_box, nms
from modchain.backends.hf.common import require_hf
from modchain.backends.hf.vision_common import TextQueryDetector
from modchain.core.errors import BackendError
from modchain.core.regions import Detection

BACKEND = "owlv2"
DEFAULT_MODEL = "google/owlv2-base-patch16-ensemble"
_MODEL_CLASSES = {"owlv2": "Owlv2ForObjectDetection"}


class Owlv2(TextQueryDetector):
    """OWLv2 detector (the visual chain's :class:`~modchain.visual_chain.types.Detector`).

    ``model`` is a model id or a local directory with an ``Owlv2ForObjectDetection`` checkpoint, its CLIP
    tokenizer and image processor. ``labels`` (optional) keeps only detections of those queries
    (case-insensitive) and is the default query list. ``nms_threshold`` (``None`` to disable) drops a box
    overlapping a better box of the same label by more than that IoU.
    """

    backend = BACKEND
    model_types = _MODEL_CLASSES
    pil_processor = "Owlv2ImageProcessorPil"
    what = "OWLv2"

    def __init__(self, model: str = DEFAULT_MODEL, *, device: Any = None, dtype: Any = None,
                 score_threshold: float = 0.1, nms_threshold: float | None = 0.3,
                 labels: Sequence[str] | None = None, max_detections: int = 100, revision: str | None = None,
                 model_obj: Any = None, tokenizer_obj: Any = None, image_processor_obj: Any = None) -> None:
        super().__init__(model, device=device, dtype=dtype, nms_threshold=nms_threshold, labels=labels,
                         max_detections=max_detections, revision=revision, model_obj=model_obj,
                         tokenizer_obj=tokenizer_obj, image_processor_obj=image_processor_obj)
        self.score_threshold = check_threshold(score_threshold, "score_threshold")

    @classmethod
    def local(cls, model_id: str = DEFAULT_MODEL, device: Any = None, score_threshold: float = 0.1,
              labels: Sequence[str] | None = None, **kwargs: Any) -> Owlv2:
        return cls(model_id, device=device, score_threshold=score_threshold, labels=labels, **kwargs)

    def detect(self, image: Any, queries: Sequence[str] = ()) -> list[Detection]:
        """Boxes for the text ``queries`` in ``image`` (pixels), best first."""
        torch, _ = require_hf()
        rgb = as_rgb(image, BACKEND)
        if not queries and self.labels:
            queries = self.labels
        cleaned = check_queries(queries, BACKEND)
        model, tokenizer, image_processor, device, dtype = self._lazy.get()
        # Longer queries are cut at the text encoder's length (16 tokens for OWLv2), as its processor does.
        text = tokenizer([q.lower() for q in cleaned], padding="max_length", truncation=True,
                         max_length=int(model.config.text_config.max_position_embeddings), return_tensors="pt")
        pixels = image_processor(images=rgb, return_tensors="pt")["pixel_values"].to(device, dtype)
        try:
            with torch.inference_mode():
                output = model(input_ids=text["input_ids"].to(device),
                               attention_mask=text["attention_mask"].to(device), pixel_values=pixels)
        except Exception as exc:  # noqa: BLE001 - out of memory, device or shape errors: the image was not searched
            raise BackendError(f"{BACKEND}: model inference failed: {type(exc).__name__}", backend=BACKEND) from exc
        logits = output.logits[0].float().cpu()           # (patches, queries)
        best_logit, best_query = logits.max(dim=-1)
        scores = best_logit.sigmoid().tolist()
        pred = output.pred_boxes[0].float().cpu().tolist()  # cx, cy, w, h relative to the padded square
        width, height = rgb.size
        side = max(width, height)
        allowed = None if self.labels is None else {label.lower() for label in self.labels}
        found: dict[str, list[tuple[float, tuple[float, float, float, float]]]] = {}
        for row, score in enumerate(scores):
            label = cleaned[int(best_query[row])]
            if score <= self.score_threshold or (allowed is not None and label.lower() not in allowed):
                continue
            cx, cy, w, h = pred[row]
            box = clip_box(((cx - w / 2) * side, (cy - h / 2) * side, (cx + w / 2) * side, (cy + h / 2) * side),
                           width, height)
            found.setdefault(label, []).append((score, box))
        detections = []
        for label, items in found.items():
            keep = range(len(items)) if self.nms_threshold is None else nms(
                [box for _, box in items], [score for score, _ in items], self.nms_threshold)
            detections += [Detection(label=label, score=min(1.0, items[k][0]), box=items[k][1], backend=BACKEND)
                           for k in keep]
        detections.sort(key=lambda d: -d.score)
        return detections[:self.max_detections]
