"""Image generators as one interface: ``generate(prompt, negative_prompt, seed) -> image``.

Any of these can be guarded by :class:`~modchain.generation.safe_generator.SafeImageGenerator`:

* a plain callable ``fn(prompt, negative_prompt, seed)``, ``def`` or ``async def``, returning an image in any
  form :func:`modchain.core.images.load_image` accepts (PIL image, PNG/JPEG bytes, path, numpy array);
* an object with ``generate(prompt, negative_prompt, seed)`` and/or ``async agenerate(...)``, such as
  :class:`~modchain.backends.hf.diffusers_generator.DiffusersGenerator` and
  :class:`~modchain.backends.aws.sagemaker_stable_diffusion.SageMakerStableDiffusion`.

A failing generator raises :class:`~modchain.core.errors.BackendError` (its message names the exception
type only: the generator's own message may quote the prompt).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from modchain.core.errors import BackendError, ConfigurationError, ModchainError
from modchain.core.model_factory import ModelFactory
from modchain.core.protocols import ImageGenerator  # the backend contract lives in core; re-exported here


class CallableGenerator(ImageGenerator):
    """A function ``fn(prompt, negative_prompt, seed) -> image`` as a generator (sync or async)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        if not callable(fn):
            raise ConfigurationError("a generator must be callable as fn(prompt, negative_prompt, seed)")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)

    def generate(self, prompt: str, negative_prompt: str, seed: int) -> Any:
        out = self.fn(prompt, negative_prompt, seed)
        if inspect.isawaitable(out):  # an async function called from sync code: run it to completion
            return run_sync(_await(out))
        return out

    async def agenerate(self, prompt: str, negative_prompt: str, seed: int) -> Any:
        if self.is_async:
            return await self.fn(prompt, negative_prompt, seed)
        out = await asyncio.to_thread(self.fn, prompt, negative_prompt, seed)
        if inspect.isawaitable(out):  # a plain function that returns a coroutine (a lambda around an async def)
            return await out
        return out


async def _await(awaitable: Any) -> Any:
    return await awaitable


def run_sync(coro: Any) -> Any:
    """Run a coroutine from sync code; in a thread of its own when this thread already runs a loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def as_generator(generator: Any) -> ImageGenerator:
    """Wrap a callable, or accept an object with ``generate`` / ``agenerate``."""
    if isinstance(generator, ImageGenerator):
        return generator
    if callable(getattr(generator, "generate", None)) or callable(getattr(generator, "agenerate", None)):
        return _Delegate(generator)
    if callable(generator):
        return CallableGenerator(generator)
    raise ConfigurationError(f"not an image generator: {type(generator).__name__}")


class _Delegate(ImageGenerator):
    """An object that has ``generate`` and/or ``agenerate`` but does not subclass ImageGenerator."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.name = str(getattr(target, "name", type(target).__name__))

    def generate(self, prompt: str, negative_prompt: str, seed: int) -> Any:
        if callable(getattr(self.target, "generate", None)):
            return self.target.generate(prompt, negative_prompt, seed)
        return run_sync(self.target.agenerate(prompt, negative_prompt, seed))

    async def agenerate(self, prompt: str, negative_prompt: str, seed: int) -> Any:
        if callable(getattr(self.target, "agenerate", None)):
            return await self.target.agenerate(prompt, negative_prompt, seed)
        return await asyncio.to_thread(self.target.generate, prompt, negative_prompt, seed)


def generator_failed(name: str, exc: BaseException) -> BaseException:
    """The error to raise for a failing generator: ours pass through, others become a BackendError."""
    if isinstance(exc, ModchainError):
        return exc
    return BackendError(f"image generator {name!r} failed: {type(exc).__name__}", backend=name, operation="generate")


class StableDiffusion(ModelFactory):
    """Stable Diffusion (any diffusers text-to-image pipeline) as a generator, local or on an endpoint:

        generator = StableDiffusion.local("stabilityai/stable-diffusion-2-1-base", device="cuda")
        generator = StableDiffusion.sagemaker("jumpstart-sd-endpoint", client=sagemaker_runtime)
        safe = SafeImageGenerator(generator, NudeNetLabeler())

    ``.local`` returns a :class:`~modchain.backends.hf.diffusers_generator.DiffusersGenerator` (``options``:
    ``dtype``, ``pipeline_kwargs`` and the pipeline's call keywords such as ``num_inference_steps``);
    ``.sagemaker`` a :class:`~modchain.backends.aws.sagemaker_stable_diffusion.SageMakerStableDiffusion`
    (``options``: ``width``, ``height``, ``num_inference_steps``, ``guidance_scale``, ``accept``, ...).
    """

    default_model = "stabilityai/stable-diffusion-2-1-base"
    builds = ("modchain.backends.hf.diffusers_generator.DiffusersGenerator",
              "modchain.backends.aws.sagemaker_stable_diffusion.SageMakerStableDiffusion")

    @classmethod
    def local(cls, model_id_or_path: str | None = None, *, device: Any = None, **options: Any) -> ImageGenerator:
        from modchain.backends.hf.diffusers_generator import DiffusersGenerator

        return DiffusersGenerator.from_pretrained(model_id_or_path or cls.default_model, device=device, **options)

    @classmethod
    def sagemaker(cls, endpoint_name: str, client: Any = None, **options: Any) -> ImageGenerator:
        from modchain.backends.aws.sagemaker_stable_diffusion import SageMakerStableDiffusion

        return SageMakerStableDiffusion(endpoint_name, client, **options)


__all__ = ["CallableGenerator", "ImageGenerator", "StableDiffusion", "as_generator", "generator_failed"]
