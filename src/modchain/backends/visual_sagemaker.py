"""The visual chain on a SageMaker endpoint running :mod:`modchain.serving.visual_handler`.

Three ways in, all speaking the handler's JSON contract through ``sagemaker-runtime`` ``InvokeEndpoint``:

* :class:`SageMakerDetector` — a :class:`~modchain.visual.types.Detector` (boxes only, ``"segment": false``);
* :class:`SageMakerSegmenter` — a :class:`~modchain.visual.types.Segmenter`. ``embed`` encodes the image
  for the wire once (the opaque "embedding" is that payload); the endpoint caches the real SAM embedding by
  image content, so every prompt request after the first skips the image encoder there;
* :class:`SageMakerVisualChain` — the whole pipeline in ONE request per image (query -> boxes -> masks on
  the endpoint), returning the same :class:`~modchain.visual.results.ImageChainResult` a local chain does.

The first two plug into ``ImageChain.from_visual_pipeline([SageMakerDetector(ep), SageMakerSegmenter(ep)])``
(two requests per image); the third is the one to use when both models sit on one endpoint. SDK errors are
mapped by :func:`modchain.backends.aws_common.call_aws`; a malformed answer is a ``BackendError``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modchain.core.errors import BackendError, InputError
from modchain.visual.masks import EncodedMask
from modchain.visual.results import ImageChainResult, StageTiming
from modchain.visual.types import Detection, Segment, VisualPrompt

BACKEND = "visual-sagemaker"


@dataclass(frozen=True)
class EncodedImage:
    """An image ready for the wire (what :meth:`SageMakerSegmenter.embed` returns)."""

    base64: str
    size: tuple[int, int]  # (width, height)
    digest: str


class _Endpoint:
    """One SageMaker endpoint speaking the visual handler's contract."""

    def __init__(self, endpoint_name: str, client: Any = None, *, region_name: str | None = None,
                 profile_name: str | None = None, endpoint_url: str | None = None, timeout_s: float = 60.0,
                 max_retries: int = 3, image_format: str = "PNG", jpeg_quality: int = 95,
                 parameters: dict[str, Any] | None = None) -> None:
        from modchain.core.errors import ConfigurationError

        if image_format.upper() not in ("PNG", "JPEG"):
            raise ConfigurationError("image_format must be PNG (lossless: masks align exactly) or JPEG")
        self.endpoint_name = endpoint_name
        self.client = client
        self.image_format, self.jpeg_quality = image_format.upper(), int(jpeg_quality)
        self.parameters = dict(parameters or {})
        self._client_args = {"region_name": region_name, "profile_name": profile_name, "endpoint_url": endpoint_url,
                             "timeout_s": timeout_s, "max_retries": max_retries}
        #: InvokeEndpoint calls made so far.
        self.requests_sent = 0

    @property
    def name(self) -> str:
        return f"{BACKEND}:{self.endpoint_name}"

    def _get_client(self) -> Any:
        if self.client is None:
            from modchain.backends.aws_common import make_client

            self.client = make_client("sagemaker-runtime", max_concurrency=8, **self._client_args)
        return self.client

    def encode(self, image: Any) -> EncodedImage:
        if isinstance(image, EncodedImage):
            return image
        from modchain.vision.image_input import load_image

        pil = load_image(image)
        buffer = io.BytesIO()
        if self.image_format == "JPEG":
            pil.save(buffer, format="JPEG", quality=self.jpeg_quality)
        else:
            pil.save(buffer, format="PNG")
        data = buffer.getvalue()
        return EncodedImage(base64.b64encode(data).decode("ascii"), pil.size,
                            hashlib.blake2b(data, digest_size=16).hexdigest())

    def call(self, image: EncodedImage, **fields: Any) -> dict[str, Any]:
        from modchain.backends.aws_common import call_aws

        payload = {"image": image.base64, **fields}
        parameters = {**self.parameters, **payload.pop("parameters", {})}
        if parameters:
            payload["parameters"] = parameters
        response = call_aws(BACKEND, "InvokeEndpoint", self._get_client().invoke_endpoint,
                            EndpointName=self.endpoint_name, Body=json.dumps(payload).encode(),
                            ContentType="application/json", Accept="application/json")
        self.requests_sent += 1
        try:
            data = json.loads(response["Body"].read())
            if not isinstance(data, dict) or list(data.get("image_size", ())) != list(image.size):
                raise ValueError("image_size")
            return data
        except (ValueError, KeyError, TypeError):
            raise _unexpected("expected a JSON object for this image") from None


class SageMakerDetector(_Endpoint):
    """Detector protocol over the endpoint: ``detect(image, queries)`` -> boxes (pixels of ``image``)."""

    def detect(self, image: Any, queries: Sequence[str]) -> list[Detection]:
        queries = _check_queries(queries)
        data = self.call(self.encode(image), queries=queries, segment=False)
        return _detections(data, self.name)


class SageMakerSegmenter(_Endpoint):
    """Segmenter protocol over the endpoint: one request per ``segment`` call, all prompts in it."""

    def embed(self, image: Any) -> EncodedImage:
        return self.encode(image)

    def segment(self, image: Any, prompts: Sequence[VisualPrompt], *,
                embedding: EncodedImage | None = None) -> list[list[Segment]]:
        prompts = list(prompts)
        if not all(isinstance(p, VisualPrompt) for p in prompts):
            raise InputError(f"{BACKEND}: prompts must be VisualPrompt objects")
        if not prompts:
            return []
        encoded = embedding if isinstance(embedding, EncodedImage) else self.encode(image)
        data = self.call(encoded, prompts=[p.model_dump(mode="json", exclude_defaults=True) for p in prompts],
                         parameters={"all_masks": True})
        per_prompt: list[list[Segment]] = [[] for _ in prompts]
        for segment in _segments(data):
            if not 0 <= segment.prompt_index < len(prompts):
                raise _unexpected("a mask for a prompt that was not sent")
            per_prompt[segment.prompt_index].append(segment)
        return per_prompt


class SageMakerVisualChain(_Endpoint):
    """The whole visual chain in one ``InvokeEndpoint`` per image: ``run(query, image=...)``."""

    def run(self, query: str | Sequence[str] = "", *, image: Any, prompts: Sequence[VisualPrompt | dict] | None = None,
            center_points: bool | None = None, multimask: bool | None = None) -> ImageChainResult:
        if isinstance(query, (list, tuple)):  # phrases given whole, as ImageChain.run takes them
            queries = [str(part).strip() for part in query if str(part).strip()]
            query = ". ".join(queries)
        else:
            queries = [part.strip() for part in (query or "").split(".") if part.strip()]
        prompt_dicts = [p.model_dump(mode="json", exclude_defaults=True) if isinstance(p, VisualPrompt)
                        else VisualPrompt.model_validate(p).model_dump(mode="json", exclude_defaults=True)
                        for p in (prompts or [])]
        if not queries and not prompt_dicts:
            from modchain.visual.errors import EmptyQueryError

            raise EmptyQueryError("an empty query: give a phrase to detect (or prompts to segment)")
        parameters = {k: v for k, v in {"center_points": center_points, "multimask": multimask}.items() if v is not None}
        encoded = self.encode(image)
        fields: dict[str, Any] = {"parameters": parameters}
        if queries:
            fields["queries"] = queries
        if prompt_dicts:
            fields["prompts"] = prompt_dicts
        started = time.perf_counter()
        data = self.call(encoded, **fields)
        elapsed = (time.perf_counter() - started) * 1000
        detections, segments = _detections(data, self.name), _segments(data)
        timings = [StageTiming(stage="remote", backend=self.name, ms=elapsed, items=len(segments) or len(detections),
                               cache_hit=data.get("embedding_cache_hit"))]
        # An endpoint that does not say how many detections it segmented capped them: all were.
        segmented = data.get("segmented_detections", len(detections) if segments else 0)
        if not isinstance(segmented, int) or isinstance(segmented, bool) or segmented < 0:
            raise _unexpected("bad 'segmented_detections'")
        return ImageChainResult(query=query or "", queries=tuple(queries), image_size=encoded.size,
                                detections=tuple(detections), segments=tuple(segments),
                                segmented_detections=segmented, timings=tuple(timings))


def _detections(data: dict[str, Any], backend: str) -> list[Detection]:
    try:
        return [Detection(label=d["label"], score=d["score"], box=tuple(d["box"]), backend=backend)
                for d in data.get("detections", [])]
    except (KeyError, TypeError, ValueError):
        raise _unexpected("bad 'detections'") from None


def _segments(data: dict[str, Any]) -> list[Segment]:
    try:
        return [Segment(mask=EncodedMask.from_coco(s["mask"]), score=s["score"], prompt_index=s["prompt_index"],
                        label=s.get("label"), detection_score=s.get("detection_score"))
                for s in data.get("segments", [])]
    except (KeyError, TypeError, ValueError):
        raise _unexpected("bad 'segments'") from None


def _check_queries(queries: Sequence[str]) -> list[str]:
    out = [queries] if isinstance(queries, str) else list(queries)
    if not out or not all(isinstance(q, str) and q.strip() for q in out):
        raise InputError(f"{BACKEND}: queries must be non-empty strings")
    return [q.strip() for q in out]


def _unexpected(what: str) -> BackendError:
    return BackendError(f"{BACKEND}: unexpected response shape ({what})", backend=BACKEND, operation="InvokeEndpoint")
