"""A diffusers text-to-image pipeline as a generator for :class:`~modchain.generation.SafeImageGenerator`.

    generator = DiffusersGenerator.from_pretrained("stabilityai/stable-diffusion-2-1-base", device="cuda")
    safe = SafeImageGenerator(generator, NudeNetLabeler())

Each call runs ``pipeline(prompt=..., negative_prompt=..., generator=torch.Generator(device).manual_seed(seed),
**call_kwargs).images[0]``: the seed alone decides the image, so a retry with a new seed is a new image and
a repeated seed reproduces one. torch and diffusers are imported when the pipeline is loaded or first
called. One pipeline runs one request at a time (pipelines are not thread-safe); async callers wait in a
worker thread. The pipeline's own safety checker is independent of this library's moderation: keep it
or pass ``safety_checker=None`` to ``from_pretrained`` and rely on the output moderation. Note that an image
the pipeline's checker blanked comes back black, which output moderation then finds safe (no retry, status
``safe``); with the library's moderation in place, ``safety_checker=None`` gives retries a real image.
"""

from __future__ import annotations

import threading
from typing import Any

from modchain.core.errors import BackendError, BackendUnavailableError, ConfigurationError
from modchain.core.protocols import ImageGenerator

#: A default checkpoint (CreativeML Open RAIL++-M licence); any text-to-image pipeline works.
DEFAULT_MODEL_ID = "stabilityai/stable-diffusion-2-1-base"


class DiffusersGenerator(ImageGenerator):
    """Wrap a loaded diffusers pipeline (``StableDiffusionPipeline``, ``AutoPipelineForText2Image``, ...).

    Args:
        pipeline: the pipeline object; called with ``prompt``, ``negative_prompt``, ``generator`` and
            ``call_kwargs`` (e.g. ``num_inference_steps=30, guidance_scale=7.5, width=512, height=512``).
        generator_device: device of the seeded ``torch.Generator``; defaults to the pipeline's device.
    """

    name = "diffusers"

    def __init__(self, pipeline: Any, *, generator_device: str | None = None, **call_kwargs: Any) -> None:
        if not callable(pipeline):
            raise ConfigurationError("pipeline must be a callable diffusers pipeline")
        for reserved in ("prompt", "negative_prompt", "generator"):
            if reserved in call_kwargs:
                raise ConfigurationError(f"{reserved!r} is set per request, not in call_kwargs")
        self.pipeline = pipeline
        self.generator_device = generator_device
        self.call_kwargs = call_kwargs
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, model_id_or_path: str = DEFAULT_MODEL_ID, *, device: str | None = None,
                        dtype: Any = None, pipeline_kwargs: dict[str, Any] | None = None,
                        **call_kwargs: Any) -> DiffusersGenerator:
        """Load a text-to-image pipeline (a hub id, or a local directory from ``save_pretrained``).
        ``device`` defaults to CUDA when available; ``dtype`` to float16 on CUDA, float32 elsewhere."""
        try:
            import torch
            from diffusers import AutoPipelineForText2Image
        except ImportError as exc:
            raise ConfigurationError("the diffusers generator needs torch and diffusers: "
                                     f"pip install 'modchain[vision]' diffusers ({exc})") from exc
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype is None:
            dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
        try:
            pipeline = AutoPipelineForText2Image.from_pretrained(model_id_or_path, dtype=dtype,
                                                                 **(pipeline_kwargs or {}))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot load a text-to-image pipeline from {model_id_or_path!r} "
                                     f"({type(exc).__name__})") from exc
        pipeline = pipeline.to(device)
        if hasattr(pipeline, "set_progress_bar_config"):
            pipeline.set_progress_bar_config(disable=True)
        return cls(pipeline, **call_kwargs)

    def _device(self) -> str:
        return str(self.generator_device or getattr(self.pipeline, "device", None) or "cpu")

    def generate(self, prompt: str, negative_prompt: str, seed: int, **overrides: Any) -> Any:
        """The first image of one pipeline call seeded with ``seed`` (a PIL image). ``overrides`` replace
        ``call_kwargs`` for this call (the JumpStart handler passes a request's width, height, steps)."""
        import torch

        with self._lock:
            try:
                generator = torch.Generator(device=self._device()).manual_seed(int(seed))
                output = self.pipeline(prompt=prompt, negative_prompt=negative_prompt or None, generator=generator,
                                       **{**self.call_kwargs, **overrides})
            except torch.cuda.OutOfMemoryError as exc:
                raise BackendUnavailableError("the diffusers pipeline ran out of GPU memory", backend=self.name,
                                              operation="generate") from exc
            except Exception as exc:
                raise BackendError(f"the diffusers pipeline failed: {type(exc).__name__}", backend=self.name,
                                   operation="generate") from exc
        images = getattr(output, "images", None)
        if not images:
            raise BackendError("the diffusers pipeline returned no image", backend=self.name, operation="generate")
        return images[0]


__all__ = ["DEFAULT_MODEL_ID", "DiffusersGenerator"]
