"""What each kind of backend must offer: one typed protocol per kind, so components depend on these only.

A component is handed a backend (or asks the registry for one) and calls nothing beyond its protocol, so
any object with these methods plugs in: a local model, a SageMaker endpoint, an AWS service, a test double.
The protocols are structural (``typing.Protocol``); the ones components check at run time are
``runtime_checkable`` (``isinstance`` then checks that the methods exist, not their signatures).

=====================  =====================================================  ==================================
kind                   protocol                                               implemented by (``modchain.backends``)
=====================  =====================================================  ==================================
text detector          :class:`TextDetector`: ``run`` / ``arun`` per filter   ``base.TextBackend`` and subclasses
image labeler          :class:`ImageLabeler`: ``label(image)``                NudeNet, Rekognition moderation
VQA                    :class:`VisualQuestionAnswerer`: ``answer(...)``       BLIP-2 (local, SageMaker)
judge                  :class:`JudgeModel`: a chat model's ``invoke``         LangChain chat models, SageMaker LLM
detector               :class:`Detector`: ``detect(image, queries)``          Grounding DINO, OWLv2, Rekognition
segmenter              :class:`Segmenter`: ``embed`` and ``segment``          SAM (local, SageMaker)
generator              :class:`ImageGenerator`: ``generate`` / ``agenerate``  diffusers, SageMaker Stable Diffusion
=====================  =====================================================  ==================================

Standard library only at run time: the value types in the signatures are imported for type checkers only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from modchain.core.image_findings import ImageFinding
    from modchain.core.regions import Detection, Segment, VisualPrompt
    from modchain.core.results import Finding
    from modchain.core.vqa import VqaResult


class ScoredText(Protocol):
    """A text detector's answer for one text: every finding (unfiltered) and the raw response it came from."""

    findings: list[Finding]
    raw: Any


@runtime_checkable
class TextDetector(Protocol):
    """Scores texts for one filter type (``pii``, ``toxicity``, ``prompt_safety``): one answer per text, in order.

    It returns *every* score it has; the text filters apply labels, thresholds and actions, which is what
    makes a config mean the same thing on every backend. ``labels`` lists, per filter type, the labels the
    backend can produce (a type left out: any label).
    """

    name: str
    labels: dict[str, frozenset[str]]

    def supports(self, filter_type: str) -> bool: ...

    def run(self, filter_type: str, texts: Sequence[str], config: Any) -> list[ScoredText]: ...

    async def arun(self, filter_type: str, texts: Sequence[str], config: Any) -> list[ScoredText]: ...


@runtime_checkable
class ImageLabeler(Protocol):
    """Fast labels for one image: ``filter="image"`` findings named by the Rekognition taxonomy's top level.

    Labelers that batch (a model on a GPU) may add ``label_batch(images) -> list[list[ImageFinding]]``;
    components use it when it is there.
    """

    name: str

    def label(self, image: Any) -> list[ImageFinding]: ...


@runtime_checkable
class VisualQuestionAnswerer(Protocol):
    """A caption and answers to a checklist of questions, per image; one image encoding for all questions."""

    def answer(self, images: Any, questions: Sequence[str], *, caption: bool = True) -> list[VqaResult]: ...


@runtime_checkable
class JudgeModel(Protocol):
    """The model behind an LLM judge: messages in, a message (or text) out, like any LangChain chat model."""

    def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any: ...

    async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any: ...


@runtime_checkable
class Detector(Protocol):
    """Text queries -> boxes. ``name`` identifies the model (it appears in results and timings)."""

    name: str

    def detect(self, image: PILImage.Image, queries: Sequence[str]) -> list[Detection]: ...


@runtime_checkable
class Segmenter(Protocol):
    """Prompts -> masks, with the image embedding computed once and reusable for every prompt.

    ``name`` identifies the model and its settings: image stores key cached embeddings by it. ``embed``
    returns an opaque, backend-specific embedding; ``segment`` returns one list of masks per prompt (one
    mask, or three with ``multimask``), computing the embedding itself only when none is passed.
    """

    name: str

    def embed(self, image: PILImage.Image) -> Any: ...

    def segment(self, image: PILImage.Image, prompts: Sequence[VisualPrompt], *,
                embedding: Any | None = None) -> list[list[Segment]]: ...


class ImageGenerator:
    """The generator contract, ``generate(prompt, negative_prompt, seed) -> image``, as a base class.

    Override ``generate`` (sync) or ``agenerate`` (async), or both; the async one defaults to the sync one in a
    worker thread. The image may be in any form :func:`modchain.core.images.load_image` accepts. Objects that
    do not subclass it but have ``generate`` and/or ``agenerate`` are accepted too
    (:func:`modchain.generation.generators.as_generator` wraps them).
    """

    name = "generator"

    def generate(self, prompt: str, negative_prompt: str, seed: int) -> Any:
        raise NotImplementedError

    async def agenerate(self, prompt: str, negative_prompt: str, seed: int) -> Any:
        return await asyncio.to_thread(self.generate, prompt, negative_prompt, seed)


__all__ = ["Detector", "ImageGenerator", "ImageLabeler", "JudgeModel", "ScoredText", "Segmenter", "TextDetector",
           "VisualQuestionAnswerer"]
