"""One front door per model component: ``X.local(model_id_or_path, device=...)`` and ``X.sagemaker(endpoint_name,
client=...)``, so moving a model from a notebook's GPU to an endpoint changes one call.

A :class:`ModelFactory` subclass names a model (BLIP-2, Grounding DINO, SAM, Stable Diffusion, ...) and builds
the backend that runs it; the backend modules are imported inside the two methods, never when the component
package is imported. ``isinstance(Blip2VQA.local(...), Blip2VQA)`` holds: a factory lists the backend classes it
builds by their full dotted path (so nothing is imported to check), and an instance of any of them, or of a
subclass, counts as one of its own.

Standard library only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from modchain.core.errors import ConfigurationError

__all__ = ["ModelFactory"]


class _FactoryMeta(type):
    def __instancecheck__(cls, instance: Any) -> bool:
        builds = getattr(cls, "builds", ())
        if builds and any(f"{klass.__module__}.{klass.__qualname__}" in builds for klass in type(instance).__mro__):
            return True
        return super().__instancecheck__(instance)


class ModelFactory(metaclass=_FactoryMeta):
    """Base of the model components' factories: build with :meth:`local` or :meth:`sagemaker`, never directly."""

    #: The default model of :meth:`local` (a Hugging Face id; a local directory works the same way).
    default_model: ClassVar[str] = ""
    #: Dotted paths (module.qualname) of the backend classes the two factories return (for ``isinstance``).
    builds: ClassVar[tuple[str, ...]] = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        raise ConfigurationError(f"build a {cls.__name__} with {cls.__name__}.local(model_id_or_path, device=...) "
                                 f"or {cls.__name__}.sagemaker(endpoint_name, client=...)")

    @classmethod
    def local(cls, model_id_or_path: str | None = None, *, device: Any = None, **options: Any) -> Any:
        """The model run in this process (transformers / diffusers on CUDA or CPU)."""
        raise NotImplementedError

    @classmethod
    def sagemaker(cls, endpoint_name: str, client: Any = None, **options: Any) -> Any:
        """The model behind a SageMaker endpoint; ``client`` is a boto3 ``sagemaker-runtime`` client (made from
        ``region_name`` / ``profile_name`` / ``endpoint_url`` options when None)."""
        raise NotImplementedError
