"""The visual-chain stages on a SageMaker endpoint running :mod:`modchain.serving.visual_handler`.

Both speak the handler's JSON contract through ``sagemaker-runtime`` ``InvokeEndpoint``:

* :class:`SageMakerDetector` — a :class:`~modchain.core.protocols.Detector` (boxes only, ``"segment": false``);
* :class:`SageMakerSegmenter` — a :class:`~modchain.core.protocols.Segmenter`. ``embed`` encodes the image
  for the wire once (the opaque "embedding" is that payload); the endpoint caches the real SAM embedding by
  image content, so every prompt request after the first skips the image encoder there.

They plug into ``ImageChain.from_visual_pipeline([SageMakerDetector(ep), SageMakerSegmenter(ep)])`` (two
requests per image). The whole pipeline in ONE request per image, returning the chain's own result, is
:class:`modchain.visual_chain.sagemaker_chain.SageMakerVisualChain` (a component): it sends through the
:class:`VisualEndpoint` here and reads the answer with :func:`parse_detections` / :func:`parse_segments`.
SDK errors are mapped by :func:`modchain.backends.aws.common.call_aws`; a malformed answer is a ``BackendError``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modchain.core.errors import BackendError, InputError
from modchain.core.masks import EncodedMask
from modchain.core.regions import Detection, Segment, VisualPrompt

BACKEND = "visual-sagemaker"


@dataclass(frozen=True)
class EncodedImage:
    """An image ready for the wire (what :meth:`SageMakerSegmenter.embed` returns)."""

    base64: str
    size: tuple[int, int]  # (width, height)
    digest: str


class VisualEndpoint:
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
            from modchain.backends.aws.common import make_client

            self.client = make_client("sagemaker-runtime", max_concurrency=8, **self._client_args)
        return self.client

    def encode(self, image: Any) -> EncodedImage:
        if isinstance(image, EncodedImage):
            return image
        from modchain.core.images import load_image

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
        from modchain.backends.aws.common import call_aws

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
            raise unexpected_answer("expected a JSON object for this image") from None


class SageMakerDetector(VisualEndpoint):
    """Detector protocol over the endpoint: ``detect(image, queries)`` -> boxes (pixels of ``image``)."""

    def detect(self, image: Any, queries: Sequence[str]) -> list[Detection]:
        queries = _check_queries(queries)
        data = self.call(self.encode(image), queries=queries, segment=False)
        return parse_detections(data, self.name)


class SageMakerSegmenter(VisualEndpoint):
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
        for segment in parse_segments(data):
            if not 0 <= segment.prompt_index < len(prompts):
                raise unexpected_answer("a mask for a prompt that was not sent")
            per_prompt[segment.prompt_index].append(segment)
        return per_prompt


def parse_detections(data: dict[str, Any], backend: str) -> list[Detection]:
    """The ``detections`` of an endpoint answer; a malformed list is a ``BackendError``."""
    try:
        return [Detection(label=d["label"], score=d["score"], box=tuple(d["box"]), backend=backend)
                for d in data.get("detections", [])]
    except (KeyError, TypeError, ValueError):
        raise unexpected_answer("bad 'detections'") from None


def parse_segments(data: dict[str, Any]) -> list[Segment]:
    """The ``segments`` of an endpoint answer; a malformed list is a ``BackendError``."""
    try:
        return [Segment(mask=EncodedMask.from_coco(s["mask"]), score=s["score"], prompt_index=s["prompt_index"],
                        label=s.get("label"), detection_score=s.get("detection_score"))
                for s in data.get("segments", [])]
    except (KeyError, TypeError, ValueError):
        raise unexpected_answer("bad 'segments'") from None


def _check_queries(queries: Sequence[str]) -> list[str]:
    out = [queries] if isinstance(queries, str) else list(queries)
    if not out or not all(isinstance(q, str) and q.strip() for q in out):
        raise InputError(f"{BACKEND}: queries must be non-empty strings")
    return [q.strip() for q in out]


def unexpected_answer(what: str) -> BackendError:
    return BackendError(f"{BACKEND}: unexpected response shape ({what})", backend=BACKEND, operation="InvokeEndpoint")
