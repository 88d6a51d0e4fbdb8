"""The whole visual chain on a SageMaker endpoint, in ONE request per image.

The endpoint runs :mod:`modchain.serving.visual_handler` (query -> boxes -> masks there) and the answer comes
back as the same :class:`~modchain.visual_chain.results.ImageChainResult` a local
:class:`~modchain.visual_chain.chain.ImageChain` returns. Use it when both models sit on one endpoint; to run the
stages separately (two requests per image), plug :class:`~modchain.backends.aws.sagemaker_visual.SageMakerDetector`
and :class:`~modchain.backends.aws.sagemaker_visual.SageMakerSegmenter` into ``ImageChain.from_visual_pipeline``.

The wire work (encoding, ``InvokeEndpoint``, reading the answer) is the backend's
:class:`~modchain.backends.aws.sagemaker_visual.VisualEndpoint`, imported when the chain is built, so importing this
module pulls in no boto3.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from modchain.core.regions import VisualPrompt
from modchain.visual_chain.errors import EmptyQueryError
from modchain.visual_chain.results import ImageChainResult, StageTiming


class SageMakerVisualChain:
    """The whole visual chain in one ``InvokeEndpoint`` per image: ``run(query, image=...)``.

    ``endpoint_options`` go to :class:`~modchain.backends.aws.sagemaker_visual.VisualEndpoint`: ``region_name``,
    ``profile_name``, ``endpoint_url``, ``timeout_s``, ``max_retries``, ``image_format`` (PNG: lossless, masks
    align exactly; or JPEG), ``jpeg_quality`` and default ``parameters``. Its attributes (``endpoint_name``,
    ``client``, ``requests_sent``, ``name``, ...) read through this object.
    """

    def __init__(self, endpoint_name: str, client: Any = None, **endpoint_options: Any) -> None:
        from modchain.backends.aws.sagemaker_visual import VisualEndpoint

        self.endpoint = VisualEndpoint(endpoint_name, client, **endpoint_options)

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found on the chain itself; "endpoint" is guarded so a half-built object
        # (unpickling) cannot recurse.
        if name == "endpoint":
            raise AttributeError(name)
        return getattr(self.endpoint, name)

    def run(self, query: str | Sequence[str] = "", *, image: Any, prompts: Sequence[VisualPrompt | dict] | None = None,
            center_points: bool | None = None, multimask: bool | None = None) -> ImageChainResult:
        from modchain.backends.aws.sagemaker_visual import parse_detections, parse_segments, unexpected_answer

        if isinstance(query, (list, tuple)):  # phrases given whole, as ImageChain.run takes them
            queries = [str(part).strip() for part in query if str(part).strip()]
            query = ". ".join(queries)
        else:
            queries = [part.strip() for part in (query or "").split(".") if part.strip()]
        prompt_dicts = [p.model_dump(mode="json", exclude_defaults=True) if isinstance(p, VisualPrompt)
                        else VisualPrompt.model_validate(p).model_dump(mode="json", exclude_defaults=True)
                        for p in (prompts or [])]
        if not queries and not prompt_dicts:
            raise EmptyQueryError("an empty query: give a phrase to detect (or prompts to segment)")
        parameters = {k: v for k, v in {"center_points": center_points, "multimask": multimask}.items() if v is not None}
        endpoint = self.endpoint
        encoded = endpoint.encode(image)
        fields: dict[str, Any] = {"parameters": parameters}
        if queries:
            fields["queries"] = queries
        if prompt_dicts:
            fields["prompts"] = prompt_dicts
        started = time.perf_counter()
        data = endpoint.call(encoded, **fields)
        elapsed = (time.perf_counter() - started) * 1000
        detections, segments = parse_detections(data, endpoint.name), parse_segments(data)
        timings = [StageTiming(stage="remote", backend=endpoint.name, ms=elapsed, items=len(segments) or len(detections),
                               cache_hit=data.get("embedding_cache_hit"))]
        # An endpoint that does not say how many detections it segmented capped them: all were.
        segmented = data.get("segmented_detections", len(detections) if segments else 0)
        if not isinstance(segmented, int) or isinstance(segmented, bool) or segmented < 0:
            raise unexpected_answer("bad 'segmented_detections'")
        return ImageChainResult(query=query or "", queries=tuple(queries), image_size=encoded.size,
                                detections=tuple(detections), segments=tuple(segments),
                                segmented_detections=segmented, timings=tuple(timings))


__all__ = ["SageMakerVisualChain"]
