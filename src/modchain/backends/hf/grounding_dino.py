"""Grounding DINO open-vocabulary detection through transformers: text queries -> pixel boxes.

Queries are joined the way Grounding DINO was trained on them, lower-case phrases each ended by a period
("a silver car. a person."), and every box is given the phrase its text tokens light up, mapped back to the
caller's own query string (not re-decoded from tokens). Per box: ``score`` is the highest token probability
within the best phrase; the box is kept when it exceeds ``box_threshold`` and the phrase's mean token
probability exceeds ``text_threshold`` (so "silver car" needs "silver" too, not only "car"). Optional
per-label non-maximum suppression removes near-duplicate boxes. Queries that do not fit the text encoder's
``max_text_len`` tokens together are split over several passes.

torch and transformers are imported on first use only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modchain.backends.detection import as_rgb, check_queries, check_threshold, clip_box, nms
from modchain.backends.hf.common import require_hf
from modchain.backends.hf.vision_common import TextQueryDetector
from modchain.core.errors import BackendError, ConfigurationError, InputError
from modchain.core.regions import Detection

BACKEND = "grounding-dino"
DEFAULT_MODEL = "IDEA-Research/grounding-dino-tiny"
_MODEL_CLASSES = {"grounding-dino": "GroundingDinoForObjectDetection"}
_SEPARATORS = str.maketrans({".": " ", "?": " "})  # phrase separators in Grounding DINO's text


class GroundingDino(TextQueryDetector):
    """Grounding DINO detector (the visual chain's :class:`~modchain.visual_chain.types.Detector`).

    ``model`` is a model id or a local directory with a ``GroundingDinoForObjectDetection`` checkpoint, its
    tokenizer and image processor. ``labels`` (optional) keeps only detections of those queries
    (case-insensitive) and is the default query list when ``detect`` gets none. ``nms_threshold`` (``None``
    to disable) drops a box overlapping a better box of the same label by more than that IoU.
    """

    backend = BACKEND
    model_types = _MODEL_CLASSES
    pil_processor = "GroundingDinoImageProcessorPil"
    what = "Grounding DINO"

    def __init__(self, model: str = DEFAULT_MODEL, *, device: Any = None, dtype: Any = None,
                 box_threshold: float = 0.35, text_threshold: float = 0.25, labels: Sequence[str] | None = None,
                 nms_threshold: float | None = 0.7, max_detections: int = 100, revision: str | None = None,
                 model_obj: Any = None, tokenizer_obj: Any = None, image_processor_obj: Any = None) -> None:
        super().__init__(model, device=device, dtype=dtype, nms_threshold=nms_threshold, labels=labels,
                         max_detections=max_detections, revision=revision, model_obj=model_obj,
                         tokenizer_obj=tokenizer_obj, image_processor_obj=image_processor_obj)
        self.box_threshold = check_threshold(box_threshold, "box_threshold")
        self.text_threshold = check_threshold(text_threshold, "text_threshold")

    @classmethod
    def local(cls, model_id: str = DEFAULT_MODEL, device: Any = None, box_threshold: float = 0.35,
              text_threshold: float = 0.25, labels: Sequence[str] | None = None, **kwargs: Any) -> GroundingDino:
        return cls(model_id, device=device, box_threshold=box_threshold, text_threshold=text_threshold,
                   labels=labels, **kwargs)

    def _load(self) -> tuple[Any, Any, Any, Any, Any]:
        parts = super()._load()
        if not getattr(parts[1], "is_fast", False):
            raise ConfigurationError("Grounding DINO needs a fast tokenizer (character offsets map tokens to queries)")
        return parts

    # ---------------------------------------------------------------------------------------- detection

    def detect(self, image: Any, queries: Sequence[str] = ()) -> list[Detection]:
        """Boxes for the text ``queries`` in ``image`` (pixels), best first."""
        torch, _ = require_hf()
        rgb = as_rgb(image, BACKEND)
        if not queries and self.labels:
            queries = self.labels
        cleaned = check_queries(queries, BACKEND)
        phrases = [q.translate(_SEPARATORS).strip() for q in cleaned]
        if not all(phrases):
            raise InputError(f"{BACKEND}: a query is only punctuation")
        model, tokenizer, image_processor, device, dtype = self._lazy.get()
        pixels = image_processor(images=rgb, return_tensors="pt")
        pixel_inputs = {"pixel_values": pixels["pixel_values"].to(device, dtype)}
        if "pixel_mask" in pixels:
            pixel_inputs["pixel_mask"] = pixels["pixel_mask"].to(device)
        width, height = rgb.size
        boxes: list[tuple[float, float, float, float]] = []
        scores: list[float] = []
        labels: list[str] = []
        for chunk in self._chunks(tokenizer, phrases, int(model.config.max_text_len)):
            text, spans = _phrase_text([phrases[i] for i in chunk])
            encoded = tokenizer(text, return_offsets_mapping=True, return_tensors="pt")
            offsets = encoded.pop("offset_mapping")[0].tolist()
            token_sets = [[t for t, (s, e) in enumerate(offsets) if e > s and s >= start and e <= end]
                          for start, end in spans]
            try:
                with torch.inference_mode():
                    output = model(**pixel_inputs, **{k: v.to(device) for k, v in encoded.items()})
            except Exception as exc:  # noqa: BLE001 - out of memory, device or shape errors: the image was not searched
                raise BackendError(f"{BACKEND}: model inference failed: {type(exc).__name__}",
                                   backend=BACKEND) from exc
            probs = output.logits[0].float().sigmoid().cpu()        # (num_queries, max_text_len)
            pred = output.pred_boxes[0].float().cpu()               # (num_queries, 4) cx, cy, w, h in 0-1
            members = torch.zeros(len(token_sets), probs.shape[1])  # phrase x token membership
            for j, tokens in enumerate(token_sets):
                members[j, tokens] = 1.0
            counts = members.sum(dim=1)
            if not bool((counts > 0).all()):
                raise InputError(f"{BACKEND}: a query has no tokens the model can read")
            phrase_max = (probs[:, None, :] * members[None]).amax(dim=-1)   # (num_queries, phrases)
            phrase_mean = probs @ members.T / counts
            best_max, best = phrase_max.max(dim=1)
            best_mean = phrase_mean.gather(1, best[:, None])[:, 0]
            keep = (best_max > self.box_threshold) & (best_mean > self.text_threshold)
            for row in keep.nonzero()[:, 0].tolist():
                cx, cy, w, h = pred[row].tolist()
                box = clip_box(((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                                (cy + h / 2) * height), width, height)
                boxes.append(box)
                scores.append(float(best_max[row]))
                labels.append(cleaned[chunk[int(best[row])]])  # the caller's query, as written
        return self._finish(boxes, scores, labels)

    def _finish(self, boxes: list[Any], scores: list[float], labels: list[str]) -> list[Detection]:
        keep = list(range(len(boxes)))
        if self.labels is not None:
            allowed = {label.lower() for label in self.labels}
            keep = [i for i in keep if labels[i].lower() in allowed]
        if self.nms_threshold is not None:
            survivors: list[int] = []
            for label in dict.fromkeys(labels[i] for i in keep):
                same = [i for i in keep if labels[i] == label]
                survivors += [same[k] for k in nms([boxes[i] for i in same], [scores[i] for i in same],
                                                   self.nms_threshold)]
            keep = survivors
        keep.sort(key=lambda i: -scores[i])
        return [Detection(label=labels[i], score=min(1.0, scores[i]), box=boxes[i], backend=BACKEND)
                for i in keep[:self.max_detections]]

    @staticmethod
    def _chunks(tokenizer: Any, phrases: list[str], max_tokens: int) -> list[list[int]]:
        """Phrase indices packed into texts of at most ``max_tokens`` tokens ([CLS], [SEP] included)."""
        chunks: list[list[int]] = [[]]
        used = 2
        for index, phrase in enumerate(phrases):
            cost = len(tokenizer.tokenize(phrase)) + 1  # the phrase and its period
            if cost + 2 > max_tokens:
                raise InputError(f"{BACKEND}: a query is longer than the text encoder's {max_tokens} tokens")
            if used + cost > max_tokens:
                chunks.append([])
                used = 2
            chunks[-1].append(index)
            used += cost
        return chunks


def _phrase_text(phrases: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """``"a cat. a dog."`` and each phrase's character span in it."""
    text = ""
    spans = []
    for phrase in phrases:
        if text:
            text += " "
        start = len(text)
        text += phrase.lower()
        spans.append((start, len(text)))
        text += "."
    return text, spans
