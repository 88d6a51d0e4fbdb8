"""The project's SageMaker inference handler for the visual chain: detection + segmentation in one request.

``POST /invocations`` with ``Content-Type: application/json``::

    {"image": <base64>, "query": "face. license plate."}              boxes, then masks for them
    {"image": <base64>, "queries": ["face", "license plate"], "segment": false}     boxes only
    {"image": <base64>, "prompts": [{"points": [[x, y]], "point_labels": [1]}, {"box": [x0, y0, x1, y1]}]}
    optional "parameters": {"center_points", "multimask", "all_masks", "max_detections", "min_detection_score"}

Limits: 32 query phrases, 256 prompts of at most 64 points each, prompt masks no larger than the image
(or 1024x1024), the image's byte and pixel limits of :func:`~modchain.image_moderation.image_input.decode_image`.

answers ``{"image_size": [w, h], "detections": [{"label", "score", "box"}], "segments": [{"prompt_index",
"label", "score", "detection_score", "area", "box", "mask": COCO RLE (compressed counts)}],
"segmented_detections" (how many detections, best first, were segmented: max_detections), "timings_ms",
"embedding_cache_hit"}``. Prompt masks (``"mask"`` in a prompt) are COCO RLE objects too. The image's SAM
embedding is cached by the image's content, so a client sending many prompt requests for one image pays for
one encoder pass. Refused requests raise :class:`~modchain.serving.blip2_handler.InvocationError` (400/413/415)
with messages that never quote the image or the query.

:class:`VisualHandler` is what :mod:`modchain.serving.server` runs; ``model_fn`` / ``input_fn`` /
``predict_fn`` / ``output_fn`` package it for the SageMaker PyTorch container (``model_dir/detector`` and
``model_dir/segmenter`` hold the checkpoints).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from pathlib import Path
from typing import Any

from modchain.serving.toolkit import (
    InvocationError,
    check_fields,
    check_text_length,
    load_json_object,
    toolkit_functions,
)

JSON = "application/json"
MAX_PROMPTS = 256
MAX_QUERIES = 32
#: Points in one prompt (SAM's prompts are a few clicks; thousands would only cost decoder time).
MAX_POINTS_PER_PROMPT = 64
#: A prompt mask may have the image's resolution (or SAM's 256x256 low-res input); a compressed RLE of a few
#: bytes can declare a gigapixel mask, which decoding would allocate, so larger sizes are refused.
MIN_MASK_PIXELS_ALLOWED = 1024 * 1024
PARAMETERS = {"center_points": bool, "multimask": bool, "all_masks": bool, "max_detections": int,
              "min_detection_score": float}
_DATA_URI = re.compile(r"^data:[\w.+/-]*(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)


class VisualHandler:
    """Serves a detector and/or a segmenter (model ids or directories, or built objects).

    ``detector`` / ``segmenter`` may be objects implementing the visual-chain protocols; else
    ``detector_model`` (a Grounding DINO checkpoint) and ``segmenter_model`` (SAM) are loaded on ``load()``.
    """

    def __init__(self, detector: Any = None, segmenter: Any = None, *, detector_model: str | None = None,
                 segmenter_model: str | None = None, device: Any = None, max_image_bytes: int | None = None,
                 embedding_cache_size: int = 8) -> None:
        from modchain.core.errors import ConfigurationError
        from modchain.visual_chain.image_store import ImageStore

        if detector is None and detector_model is not None:
            from modchain.backends.hf.grounding_dino import GroundingDino

            detector = GroundingDino(detector_model, device=device)
        if segmenter is None and segmenter_model is not None:
            from modchain.backends.hf.sam import Sam

            segmenter = Sam(segmenter_model, device=device)
        if detector is None and segmenter is None:
            raise ConfigurationError("VisualHandler needs a detector, a segmenter, or both")
        self.detector, self.segmenter = detector, segmenter
        self.max_image_bytes = max_image_bytes
        self.store = ImageStore(embedding_cache_size=embedding_cache_size)
        self._lock = threading.Lock()
        self._loaded = False

    def load(self) -> VisualHandler:
        for stage in (self.detector, self.segmenter):
            if stage is not None and callable(getattr(stage, "load", None)):
                stage.load()
        self._loaded = True
        return self

    def ping(self) -> bool:
        return self._loaded

    # ------------------------------------------------------------------------------------------ requests

    def invocations(self, body: bytes, content_type: str | None = JSON, accept: str | None = None,
                    custom_attributes: str | None = None) -> tuple[bytes, str]:
        return self.render(self.predict(self.parse(body, content_type)), accept)

    def parse(self, body: bytes, content_type: str | None) -> dict[str, Any]:
        """Decode and validate a request (``input_fn``): ``{"image", "queries", "prompts", "segment", "options"}``."""
        from modchain.core.regions import VisualPrompt

        ctype = (content_type or JSON).split(";", 1)[0].strip().lower()
        if ctype not in (JSON, "application/x-json", "text/json", "*/*", ""):
            # the content type is not quoted: a header is request data too
            raise InvocationError("unsupported content type; send application/json", status=415,
                                  code="UnsupportedMediaType")
        # bounded nesting, unknown fields refused without naming them
        data = load_json_object(body, ("image", "query", "queries", "prompts", "segment", "parameters"))
        if "query" in data and "queries" in data:
            raise InvocationError("give 'query' (phrases separated by '.') or 'queries' (a list), not both")
        queries = _queries(data)
        prompts_data = data.get("prompts", [])
        if not isinstance(prompts_data, list) or len(prompts_data) > MAX_PROMPTS:
            raise InvocationError(f"'prompts' must be a list of at most {MAX_PROMPTS} prompt objects")
        try:
            prompts = [VisualPrompt.model_validate(p) for p in prompts_data]
        except ValueError as exc:  # pydantic errors name fields and constraints, not values we echo
            raise InvocationError(f"invalid prompt ({getattr(exc, 'error_count', lambda: 1)()} error(s))") from None
        segment = data.get("segment", True)
        if not isinstance(segment, bool):
            raise InvocationError("'segment' must be true or false")
        if not queries and not prompts:
            raise InvocationError("nothing to do: give 'query'/'queries' (detection) or 'prompts' (segmentation)")
        if queries and self.detector is None:
            raise InvocationError("this endpoint serves no detector: send 'prompts' only")
        if (prompts or (segment and self.detector is None)) and self.segmenter is None:
            raise InvocationError("this endpoint serves no segmenter: send 'query' with \"segment\": false")
        if any(len(p.points) > MAX_POINTS_PER_PROMPT for p in prompts):
            raise InvocationError(f"at most {MAX_POINTS_PER_PROMPT} points per prompt")
        options = _parameters(data.get("parameters"))
        image = self._decode_image(data.get("image"))
        mask_limit = max(image.width * image.height, MIN_MASK_PIXELS_ALLOWED)
        if any(p.mask is not None and p.mask.size[0] * p.mask.size[1] > mask_limit for p in prompts):
            raise InvocationError("a prompt mask is larger than the image", status=413, code="PayloadTooLarge")
        return {"image": image, "queries": queries, "prompts": prompts,
                "segment": segment and self.segmenter is not None, "options": options}

    def predict(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run the chain on a parsed request (``predict_fn``); returns the JSON-ready answer."""
        from modchain.core.errors import InputError
        from modchain.visual_chain.chain import ImageChain

        chain = ImageChain(detector=self.detector if request["queries"] else None,
                           segmenter=self.segmenter if request["segment"] or request["prompts"] else None,
                           image_store=self.store, config=request["options"])
        with self._lock:
            if not self._loaded:
                self.load()
            try:
                result = chain.run(request["queries"], image=request["image"], prompts=request["prompts"])
            except InputError as exc:
                raise InvocationError(str(exc)) from None
        answer = result.to_dict()
        return {key: answer[key] for key in ("image_size", "detections", "segments", "segmented_detections",
                                             "timings_ms", "embedding_cache_hit")}

    @staticmethod
    def render(prediction: dict[str, Any], accept: str | None) -> tuple[bytes, str]:
        """``output_fn``: JSON only."""
        wanted = [part.split(";", 1)[0].strip().lower() for part in (accept or "*/*").split(",")]
        if not any(media in (JSON, "application/*", "*/*") for media in wanted):
            raise InvocationError("this endpoint answers application/json only", status=406, code="NotAcceptable")
        return json.dumps(prediction).encode(), JSON

    def _decode_image(self, source: Any) -> Any:
        """Base64 text -> RGB PIL image. Never a path or URL: a request must not read server files."""
        from modchain.core.errors import ImageInputError
        from modchain.core.images import DEFAULT_MAX_BYTES, decode_image

        if not isinstance(source, str) or not source.strip():
            raise InvocationError("missing 'image' (base64-encoded image data)")
        max_bytes = self.max_image_bytes or DEFAULT_MAX_BYTES
        text = _DATA_URI.sub("", source.strip(), count=1)
        text = "".join(text.split())
        if len(text) * 3 // 4 > max_bytes + 3:
            raise InvocationError(f"'image' is larger than {max_bytes} bytes", status=413, code="PayloadTooLarge")
        try:
            data = base64.b64decode(text + "=" * (-len(text) % 4),
                                    altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
        except (binascii.Error, ValueError):
            raise InvocationError("'image' is not valid base64") from None
        try:
            return decode_image(data)
        except ImageInputError as exc:  # messages name sizes and formats only
            raise InvocationError(f"'image': {exc}") from None


def _queries(data: dict[str, Any]) -> list[str]:
    if "query" in data:
        if not isinstance(data["query"], str):
            raise InvocationError("'query' must be a string")
        check_text_length(data["query"], "'query'")
        queries = [part.strip() for part in data["query"].split(".") if part.strip()]
        if not queries:
            raise InvocationError("'query' is empty")
    else:
        queries = data.get("queries", [])
        if not isinstance(queries, list) or not all(isinstance(q, str) and q.strip() for q in queries):
            raise InvocationError("'queries' must be a list of non-empty strings")
        for query in queries:
            check_text_length(query, "an item of 'queries'")
        queries = [q.strip() for q in queries]
    if len(queries) > MAX_QUERIES:
        raise InvocationError(f"at most {MAX_QUERIES} query phrases per request")
    return queries


def _parameters(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvocationError("'parameters' must be an object")
    check_fields(value, PARAMETERS, "unsupported parameter")
    out: dict[str, Any] = {}
    for name, v in value.items():
        kind = PARAMETERS[name]
        ok = isinstance(v, bool) if kind is bool else isinstance(v, (int, float) if kind is float else int) and not isinstance(v, bool)
        if not ok:
            raise InvocationError(f"parameter {name} has the wrong type")
        out[name] = v
    if "max_detections" in out and out["max_detections"] < 1:
        raise InvocationError("parameter max_detections must be at least 1")
    if "min_detection_score" in out and not 0.0 <= out["min_detection_score"] <= 1.0:
        raise InvocationError("parameter min_detection_score must be between 0 and 1")
    return out


# ------------------------------------------------------------------- SageMaker inference toolkit functions

def model_fn(model_dir: str, context: Any = None) -> VisualHandler:
    """SageMaker: load ``model_dir/detector`` (Grounding DINO) and/or ``model_dir/segmenter`` (SAM)."""
    root = Path(model_dir)
    detector = root / "detector"
    segmenter = root / "segmenter"
    return VisualHandler(detector_model=str(detector) if detector.is_dir() else None,
                         segmenter_model=str(segmenter) if segmenter.is_dir() else None).load()


input_fn, predict_fn, output_fn = toolkit_functions(VisualHandler)
