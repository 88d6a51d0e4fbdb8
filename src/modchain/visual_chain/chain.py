"""ImageChain: a text query -> boxes (a detector) -> masks (a segmenter), as a LangChain Runnable.

    chain = ImageChain.from_visual_pipeline([GroundingDino.local(), Sam.local()], image_store, verbose=True)
    result = chain.run("All silver cars", image_id="5X3349")      # ImageChainResult
    chain.invoke({"query": "face. license plate.", "image": "frame.jpg"})

Stages: ``[detector, segmenter]``, ``[detector]`` (boxes only) or ``[segmenter]`` (explicit ``prompts``).
The query is split on ``.`` into phrases (Grounding DINO's own convention: ``"face. license plate."``), or
given as a list of phrases, kept whole (``["st. bernard", "car"]``: names that hold a dot);
each box becomes a SAM box prompt (plus its center as a positive point with ``center_points``), and the
segmenter gets the image store's cached embedding, so the image is encoded once per model however many
prompts and requests ask about it. Each stage is followed by its audit callback (``on_after_detection``,
``on_after_segmentation``). A stage that fails raises :class:`~modchain.core.errors.BackendError` (fail
closed) unless ``fail_open``, which records the error and returns what the earlier stages found.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Generator, Sequence
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import Field

from modchain.core.callbacks import CallbackDispatcher
from modchain.core.caller import caller_id
from modchain.core.config import StrictModel
from modchain.core.config_base import coerce_config
from modchain.core.errors import BackendError, ConfigurationError, InputError
from modchain.core.events import ModerationEvent
from modchain.core.protocols import Detector, Segmenter
from modchain.core.regions import Detection, Segment, VisualPrompt
from modchain.visual_chain.errors import EmptyQueryError, VisualStageError
from modchain.visual_chain.image_store import ImageStore
from modchain.visual_chain.results import ImageChainResult, StageTiming, segment_to_dict

logger = logging.getLogger("modchain.visual_chain")


class ImageChainConfig(StrictModel):
    """How detections become prompts, and what a failing stage does."""

    center_points: bool = Field(False, description="Add each box's center as a positive point prompt.")
    multimask: bool = Field(False, description="Ask SAM for 3 candidate masks per prompt.")
    all_masks: bool = Field(False, description="With multimask, keep all 3 (default: the best by IoU score).")
    max_detections: int | None = Field(32, ge=1, description="Prompt SAM with at most this many boxes (best first); "
                                       "the others are still returned, with boxes only (and a warning logged).")
    min_detection_score: float = Field(0.0, ge=0.0, le=1.0)
    split_query: bool = Field(True, description="Split the query on '.' into phrases for the detector.")
    fail_open: bool = False


class ImageChain(Runnable[dict, ImageChainResult]):
    """A detector and/or a segmenter over an :class:`ImageStore`. Build with :meth:`from_visual_pipeline`."""

    def __init__(self, *, detector: Detector | None = None, segmenter: Segmenter | None = None,
                 image_store: ImageStore | None = None, config: ImageChainConfig | dict | str | None = None,
                 verbose: bool = False, callbacks: Sequence[Any] = (), unique_id: str | None = None) -> None:
        if detector is None and segmenter is None:
            raise ConfigurationError("an ImageChain needs a detector, a segmenter, or both")
        self.detector, self.segmenter = detector, segmenter
        self.image_store = image_store if image_store is not None else ImageStore()
        self.config = coerce_config(ImageChainConfig, config)
        self.verbose = verbose
        self.dispatcher = CallbackDispatcher(callbacks)
        self.unique_id = unique_id

    @classmethod
    def from_visual_pipeline(cls, stages: Sequence[Any], image_store: ImageStore | None = None, *,
                             verbose: bool = False, callbacks: Sequence[Any] = (), **options: Any) -> ImageChain:
        """``[detector, segmenter]``, ``[detector]`` or ``[segmenter]``; ``options`` are
        :class:`ImageChainConfig` fields (``center_points=True``, ``fail_open=True``, ...) or ``unique_id``."""
        stages = list(stages)
        unique_id = options.pop("unique_id", None)
        config = ImageChainConfig.from_dict(options)
        if len(stages) == 2 and _is_detector(stages[0]) and _is_segmenter(stages[1]):
            detector, segmenter = stages
        elif len(stages) == 1 and _is_segmenter(stages[0]):
            detector, segmenter = None, stages[0]
        elif len(stages) == 1 and _is_detector(stages[0]):
            detector, segmenter = stages[0], None
        else:
            raise ConfigurationError("stages must be [detector, segmenter], [detector] or [segmenter] (a detector "
                                     "has name and detect(); a segmenter has name, embed() and segment())")
        return cls(detector=detector, segmenter=segmenter, image_store=image_store, config=config,
                   verbose=verbose, callbacks=callbacks, unique_id=unique_id)

    # -- API -----------------------------------------------------------------------------------------------

    def run(self, query: str | Sequence[str] = "", *, image_id: str | None = None, image: Any = None,
            prompts: Sequence[VisualPrompt | dict] | None = None, unique_id: str | None = None) -> ImageChainResult:
        """Find ``query`` (and/or segment ``prompts``) in the stored ``image_id`` or the given ``image``."""
        request = {"query": query, "image_id": image_id, "image": image, "prompts": prompts}
        steps = self._steps(request, unique_id or self.unique_id)
        try:
            while True:
                self.dispatcher.emit(next(steps))
        except StopIteration as done:
            return done.value

    async def arun(self, query: str | Sequence[str] = "", *, image_id: str | None = None, image: Any = None,
                   prompts: Sequence[VisualPrompt | dict] | None = None,
                   unique_id: str | None = None) -> ImageChainResult:
        """:meth:`run` with the model work in a worker thread and async handlers awaited on this loop."""
        request = {"query": query, "image_id": image_id, "image": image, "prompts": prompts}
        steps = self._steps(request, unique_id or self.unique_id)
        sentinel = object()
        while True:
            event = await asyncio.to_thread(_advance, steps, sentinel)
            if isinstance(event, tuple) and event and event[0] is sentinel:
                return event[1]
            await self.dispatcher.aemit(event)

    # -- the stages, as a generator of callback events (so sync and async callers share one body) ----------

    def _steps(self, request: dict[str, Any], uid: str | None) -> Generator[ModerationEvent, None, ImageChainResult]:
        query = request.get("query") or ""
        if isinstance(query, (list, tuple)) and all(isinstance(q, str) for q in query):
            queries = [q.strip() for q in query if q.strip()]  # phrases given whole: never split on "."
            query = ". ".join(queries)
        elif isinstance(query, str):
            queries = self._split(query)
        else:
            raise InputError("'query' must be a string or a list of phrases")
        prompts = _prompts(request.get("prompts"))
        if self.detector is not None and not queries and not prompts:
            raise EmptyQueryError("an empty query: give a phrase to detect (or prompts to segment)")
        if self.detector is None and not prompts:
            raise EmptyQueryError("a segmenter-only chain needs prompts (points, boxes or masks)")
        if self.segmenter is None and prompts:
            raise InputError("prompts need a segmenter: this chain only detects")
        image_id, image = self._image(request)
        run_id = str(uuid.uuid4())
        described = {"query": query, "image_id": image_id, "width": image.width, "height": image.height}
        timings: list[StageTiming] = []
        errors: list[str] = []

        detections: list[Detection] = []
        if self.detector is not None and queries:
            found = self._stage("detection", self.detector.name, timings, errors,
                                lambda: list(self.detector.detect(image, queries)))
            detections = self._keep(found or [])
            cap = self.config.max_detections
            if self.segmenter is not None and cap and len(detections) > cap:
                # Counts only: labels could name what is in the image. The rest keep their boxes (redaction
                # covers them), so a crowded scene never leaves a face unredacted.
                logger.warning("visual chain: %d detections, the segmenter is prompted with the best %d "
                               "(max_detections)", len(detections), cap)
            timings[-1] = timings[-1].model_copy(update={"items": len(detections)})
            self._say(timings[-1])
            if self.dispatcher.wants("detection"):
                output = [d.model_dump() for d in detections]
                yield ModerationEvent.of("detection", run_id, bool(detections), described, output, unique_id=uid,
                                         error=found is None, elapsed_ms=timings[-1].ms)

        segmented = detections[: self.config.max_detections] if self.segmenter is not None else []
        all_prompts = [self._prompt(d) for d in segmented] + prompts
        segments: list[Segment] = []
        if self.segmenter is not None and all_prompts:
            segments = self._segment(image_id, image, all_prompts, timings, errors)
            if self.dispatcher.wants("segmentation"):
                failed = any(e.startswith(("embedding", "segmentation")) for e in errors)
                output = [segment_to_dict(s) for s in segments]
                yield ModerationEvent.of("segmentation", run_id, bool(segments), described, output, unique_id=uid,
                                         error=failed)
        return ImageChainResult(query=query, queries=tuple(queries), image_id=image_id,
                                image_size=(image.width, image.height), detections=tuple(detections),
                                prompts=tuple(all_prompts) if self.segmenter is not None else (),
                                segments=tuple(segments), segmented_detections=len(segmented),
                                timings=tuple(timings), errors=tuple(errors), unique_id=uid)

    def _segment(self, image_id: str | None, image: Any, prompts: list[VisualPrompt], timings: list[StageTiming],
                 errors: list[str]) -> list[Segment]:
        segmenter = self.segmenter
        store = self.image_store
        cached: dict[str, Any] = {}

        def embed() -> Any:
            if image_id is not None:
                embedding, cached["hit"] = store.embedding(image_id, segmenter)
            else:
                embedding, cached["hit"] = store.embedding_for_image(image, segmenter)
            return embedding

        embedding = self._stage("embedding", segmenter.name, timings, errors, embed)
        timings[-1] = timings[-1].model_copy(update={"cache_hit": cached.get("hit")})
        self._say(timings[-1])
        if embedding is None:  # failed open
            return []
        per_prompt = self._stage("segmentation", segmenter.name, timings, errors,
                                 lambda: segmenter.segment(image, prompts, embedding=embedding))
        segments = [] if per_prompt is None else self._flatten(per_prompt, prompts)
        timings[-1] = timings[-1].model_copy(update={"items": len(segments)})
        self._say(timings[-1])
        return segments

    def _stage(self, stage: str, backend: str, timings: list[StageTiming], errors: list[str], work: Any) -> Any:
        started = time.perf_counter()
        try:
            return work()
        except InputError:
            raise  # a bad request (a prompt outside the image, ...) is the caller's to fix, never failed open
        except Exception as exc:
            error = exc if isinstance(exc, BackendError) else VisualStageError(
                f"the {stage} stage ({backend}) failed with {type(exc).__name__}", stage=stage, backend=backend)
            if not self.config.fail_open:
                if error is exc:
                    raise
                raise error from exc
            errors.append(f"{stage}: {type(exc).__name__}")
            logger.warning("visual chain %s stage (%s) failed open with %s", stage, backend, type(exc).__name__)
            return None
        finally:
            timings.append(StageTiming(stage=stage, backend=backend, ms=(time.perf_counter() - started) * 1000))

    # -- helpers ---------------------------------------------------------------------------------------------

    def _split(self, query: str) -> list[str]:
        if not self.config.split_query:
            return [query.strip()] if query.strip() else []
        return [part.strip() for part in query.split(".") if part.strip()]

    def _image(self, request: dict[str, Any]) -> tuple[str | None, Any]:
        image_id, image = request.get("image_id"), request.get("image")
        if (image_id is None) == (image is None):
            raise InputError("give exactly one of 'image_id' (a stored image) or 'image'")
        if image_id is not None:
            return str(image_id), self.image_store.get(str(image_id))
        return None, self.image_store.load(image)

    def _keep(self, detections: list[Detection]) -> list[Detection]:
        return sorted((d for d in detections if d.score >= self.config.min_detection_score),
                      key=lambda d: d.score, reverse=True)

    def _prompt(self, detection: Detection) -> VisualPrompt:
        prompt = VisualPrompt.from_detection(detection, with_center=self.config.center_points)
        return prompt.model_copy(update={"multimask": self.config.multimask}) if self.config.multimask else prompt

    def _flatten(self, per_prompt: list[list[Segment]], prompts: list[VisualPrompt]) -> list[Segment]:
        if len(per_prompt) != len(prompts):
            raise VisualStageError(f"the segmenter returned {len(per_prompt)} mask lists for {len(prompts)} prompts",
                                   stage="segmentation", backend=self.segmenter.name)
        out: list[Segment] = []
        for index, (masks, prompt) in enumerate(zip(per_prompt, prompts)):
            masks = list(masks)
            if masks and prompt.multimask and not self.config.all_masks:
                masks = [max(masks, key=lambda s: s.score)]
            for segment in masks:
                # The chain, not the backend, owns the prompt -> segment bookkeeping.
                out.append(segment.model_copy(update={
                    "prompt_index": index, "label": segment.label or prompt.label,
                    "detection_score": segment.detection_score if segment.detection_score is not None
                    else prompt.detection_score}))
        return out

    def _say(self, timing: StageTiming) -> None:
        if not self.verbose:
            return
        what = {"detection": f"{timing.items} box(es)", "segmentation": f"{timing.items} mask(s)",
                "embedding": "cache hit" if timing.cache_hit else "computed"}.get(timing.stage, "")
        line = f"[ImageChain] {timing.stage:<12} {timing.backend}: {what} in {timing.ms:.1f} ms"
        print(line, flush=True)
        logger.info(line)

    # -- Runnable --------------------------------------------------------------------------------------------

    def _unpack(self, input: Any, config: RunnableConfig | None) -> dict[str, Any]:
        if not isinstance(input, dict):
            raise InputError('ImageChain takes {"query", "image_id" | "image", "prompts"?}')
        unknown = sorted(set(input) - {"query", "image_id", "image", "prompts"})
        if unknown:
            raise InputError(f"unknown ImageChain input keys: {', '.join(unknown)}")
        return {**input, "unique_id": caller_id(config)}

    def invoke(self, input: dict, config: RunnableConfig | None = None, **kwargs: Any) -> ImageChainResult:
        return self._call_with_config(lambda value: self.run(**self._unpack(value, config)), input, config,
                                      run_type="chain")

    async def ainvoke(self, input: dict, config: RunnableConfig | None = None, **kwargs: Any) -> ImageChainResult:
        async def call(value: dict) -> ImageChainResult:
            return await self.arun(**self._unpack(value, config))

        return await self._acall_with_config(call, input, config, run_type="chain")


def _advance(steps: Generator, sentinel: object) -> Any:
    try:
        return next(steps)
    except StopIteration as done:
        return (sentinel, done.value)


def _prompts(value: Any) -> list[VisualPrompt]:
    if value is None:
        return []
    if isinstance(value, (VisualPrompt, dict)):
        value = [value]
    try:
        return [p if isinstance(p, VisualPrompt) else VisualPrompt.model_validate(p) for p in value]
    except (TypeError, ValueError) as exc:
        raise InputError(f"invalid visual prompt ({type(exc).__name__})") from None


def _is_detector(stage: Any) -> bool:
    return isinstance(stage, Detector)


def _is_segmenter(stage: Any) -> bool:
    return isinstance(stage, Segmenter)
