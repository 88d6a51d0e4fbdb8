"""BLIP-2 visual question answering, one class for every place it runs.

    vqa = Blip2VQA.local("Salesforce/blip2-opt-2.7b", device="cuda")       # transformers, in this process
    vqa = Blip2VQA.sagemaker("blip2-endpoint", client=sagemaker_runtime)    # the same answers from an endpoint
    vqa.answer(images, checklist, caption=True)                             # -> [VqaResult] either way

:meth:`Blip2VQA.local` returns a :class:`~modchain.backends.hf.blip2.Blip2LocalVQA` and
:meth:`Blip2VQA.sagemaker` a :class:`~modchain.backends.aws.sagemaker_blip2.Blip2SageMakerVQA`; both classes keep
working as before, and ``isinstance(vqa, Blip2VQA)`` holds for either.
"""

from __future__ import annotations

from typing import Any

from modchain.core.model_factory import ModelFactory

__all__ = ["Blip2VQA"]


class Blip2VQA(ModelFactory):
    """BLIP-2 (OPT or Flan-T5): a caption and a checklist's answers per image, one image encoding for all."""

    default_model = "Salesforce/blip2-opt-2.7b"
    builds = ("modchain.backends.hf.blip2.Blip2LocalVQA", "modchain.backends.aws.sagemaker_blip2.Blip2SageMakerVQA")

    @classmethod
    def local(cls, model_id_or_path: str | None = None, *, device: Any = None, **options: Any) -> Any:
        """A ``Blip2LocalVQA``: ``options`` are its keywords (``dtype``, ``max_new_tokens``,
        ``images_per_batch``, ``prompt_template``, ``revision``, ...)."""
        from modchain.backends.hf.blip2 import Blip2LocalVQA

        return Blip2LocalVQA(model_id_or_path or cls.default_model, device=device, **options)

    @classmethod
    def sagemaker(cls, endpoint_name: str, client: Any = None, **options: Any) -> Any:
        """A ``Blip2SageMakerVQA``: ``options`` are its keywords (``contract="batched"`` for the project's
        handler or ``"seed"`` for one question per request, ``region_name``, ``parameters``, ...)."""
        from modchain.backends.aws.sagemaker_blip2 import Blip2SageMakerVQA

        return Blip2SageMakerVQA(endpoint_name, client, **options)
