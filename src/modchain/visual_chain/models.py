"""The visual chain's models, one class each, run locally or behind a SageMaker endpoint:

    chain = ImageChain.from_visual_pipeline([GroundingDino.local(), Sam.local("vit_h", device="cuda")], store)
    chain = ImageChain.from_visual_pipeline([GroundingDino.sagemaker("visual", client=client),
                                             Sam.sagemaker("visual", client=client)], store)

``.local`` returns the transformers backend (:class:`modchain.backends.hf.grounding_dino.GroundingDino`,
:class:`~modchain.backends.hf.owlv2.Owlv2`, :class:`~modchain.backends.hf.sam.Sam`, which keep working as before);
``.sagemaker`` returns the client of an endpoint running the project's visual handler (``modchain serve
visual``): :class:`~modchain.backends.aws.sagemaker_visual.SageMakerDetector` for the detectors,
:class:`~modchain.backends.aws.sagemaker_visual.SageMakerSegmenter` for SAM. The endpoint decides which model
answers, so ``GroundingDino.sagemaker`` and ``Owlv2.sagemaker`` differ only in name.
"""

from __future__ import annotations

import importlib
from typing import Any

from modchain.core.model_factory import ModelFactory

__all__ = ["GroundingDino", "Owlv2", "Sam"]

# Either detector factory builds this client on the endpoint side: the endpoint, not the factory, picks the model.
_SAGEMAKER_DETECTOR = "modchain.backends.aws.sagemaker_visual.SageMakerDetector"


class _TextToBoxDetector(ModelFactory):
    """The two open-vocabulary detectors differ only in their model and backend class."""

    #: ``(module, class)`` of the in-process backend.
    backend: tuple[str, str] = ("", "")

    @classmethod
    def local(cls, model_id_or_path: str | None = None, *, device: Any = None, **options: Any) -> Any:
        module, name = cls.backend
        backend = getattr(importlib.import_module(module), name)
        return backend(model_id_or_path or cls.default_model, device=device, **options)

    @classmethod
    def sagemaker(cls, endpoint_name: str, client: Any = None, **options: Any) -> Any:
        from modchain.backends.aws.sagemaker_visual import SageMakerDetector

        return SageMakerDetector(endpoint_name, client, **options)


class GroundingDino(_TextToBoxDetector):
    """Grounding DINO, the open-vocabulary detector: text phrases -> boxes. ``local`` options:
    ``box_threshold`` (0.35), ``text_threshold`` (0.25), ``labels``, ``dtype``, ..."""

    default_model = "IDEA-Research/grounding-dino-tiny"
    backend = ("modchain.backends.hf.grounding_dino", "GroundingDino")
    builds = ("modchain.backends.hf.grounding_dino.GroundingDino", _SAGEMAKER_DETECTOR)


class Owlv2(_TextToBoxDetector):
    """OWLv2, the open-vocabulary detector: text phrases -> boxes. ``local`` options: ``score_threshold``
    (0.1), ``nms_threshold``, ``labels``, ``dtype``, ..."""

    default_model = "google/owlv2-base-patch16-ensemble"
    backend = ("modchain.backends.hf.owlv2", "Owlv2")
    builds = ("modchain.backends.hf.owlv2.Owlv2", _SAGEMAKER_DETECTOR)


class Sam(ModelFactory):
    """SAM, SAM-HQ or SAM 2: box and point prompts -> masks, the image encoded once."""

    default_model = "facebook/sam-vit-base"
    builds = ("modchain.backends.hf.sam.Sam", "modchain.backends.aws.sagemaker_visual.SageMakerSegmenter")

    @classmethod
    def local(cls, model_id_or_path: str | None = None, *, device: Any = None, **options: Any) -> Any:
        """``model_id_or_path``: an id, a directory, or ``"vit_b"`` / ``"vit_l"`` / ``"vit_h"``; ``options``:
        ``dtype``, ``mask_threshold``, ``prompt_batch_size``, ..."""
        from modchain.backends.hf.sam import Sam as Backend

        return Backend.local(model_id_or_path or cls.default_model, device=device, **options)

    @classmethod
    def sagemaker(cls, endpoint_name: str, client: Any = None, **options: Any) -> Any:
        from modchain.backends.aws.sagemaker_visual import SageMakerSegmenter

        return SageMakerSegmenter(endpoint_name, client, **options)
