"""A SageMaker inference handler that speaks the JumpStart Stable Diffusion text-to-image contract.

Request (``POST /invocations``, ``Content-Type: application/json``)::

    {"prompt": "...", "negative_prompt": "...", "seed": 7, "num_images_per_prompt": 1,
     "width": 512, "height": 512, "num_inference_steps": 50, "guidance_scale": 7.5}

``application/x-text`` bodies are a bare prompt (the older JumpStart form). Response, by ``Accept``:

* ``application/json;jpeg``: ``{"generated_images": [<base64 JPEG>, ...], "prompt": ...}`` (compact);
* ``application/json``: ``{"generated_images": [<height x width x 3 nested RGB lists>, ...], "prompt": ...}``.

Image ``i`` of a request uses seed ``seed + i``. The handler wraps any generator: a callable or an object with
``generate(prompt, negative_prompt, seed)``; the request's ``width``, ``height``, ``num_inference_steps`` and
``guidance_scale`` are passed to it as keyword arguments when its signature takes them (a
:class:`~modchain.backends.hf.diffusers_generator.DiffusersGenerator` does), so a diffusers pipeline served
here answers exactly like a JumpStart endpoint. Refused requests raise :class:`InvocationError` (HTTP 400)
whose message names fields only, never the prompt. Serve it with :class:`modchain.serving.server.LocalEndpoint`.
"""

from __future__ import annotations

import base64
import inspect
import io
import json
import random
import threading
from typing import Any

from modchain.serving.toolkit import InvocationError, check_fields, check_text_length, load_json_object

JSON = "application/json"
JSON_JPEG = "application/json;jpeg"
TEXT = "application/x-text"
MAX_IMAGES_PER_PROMPT = 4
MAX_SIDE = 2048
MAX_STEPS = 500
#: Request fields forwarded to the generator when its signature accepts them.
GENERATION_PARAMETERS = ("width", "height", "num_inference_steps", "guidance_scale")
FIELDS = ("prompt", "negative_prompt", "seed", "num_images_per_prompt", *GENERATION_PARAMETERS)


def _media_type(value: str | None) -> str:
    return (value or "").replace(" ", "").lower()


class StableDiffusionHandler:
    """``ping`` / ``invocations`` for :mod:`modchain.serving.server`, around ``generator``."""

    def __init__(self, generator: Any, *, jpeg_quality: int = 90) -> None:
        target = getattr(generator, "generate", None)
        self._call = target if callable(target) else generator
        if not callable(self._call):
            raise TypeError("generator must be callable or have generate(prompt, negative_prompt, seed)")
        self.jpeg_quality = int(jpeg_quality)
        self._accepted = self._accepted_parameters(self._call)
        self._lock = threading.Lock()  # one generation at a time, as on a single-model container

    @staticmethod
    def _accepted_parameters(fn: Any) -> frozenset[str]:
        try:
            parameters = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return frozenset()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return frozenset(GENERATION_PARAMETERS)
        return frozenset(p.name for p in parameters) & frozenset(GENERATION_PARAMETERS)

    def ping(self) -> bool:
        return True

    # -- request parsing ---------------------------------------------------------------------------------

    def parse(self, body: bytes, content_type: str | None) -> dict[str, Any]:
        media = _media_type(content_type)
        if media.startswith(TEXT):
            return self.validate({"prompt": body.decode("utf-8", errors="replace")})
        if media not in ("", JSON, JSON_JPEG):
            # the content type is not quoted: a header is request data too
            raise InvocationError(f"unsupported content type; send {JSON} or {TEXT}", status=415,
                                  code="UnsupportedMediaType")
        return self.validate(load_json_object(body, FIELDS))  # bounded nesting

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        check_fields(data, FIELDS, "unknown field")  # names none of the unknown ones: they are request data
        prompt = data.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvocationError("'prompt' must be a non-empty string")
        check_text_length(prompt, "'prompt'")
        negative = data.get("negative_prompt", "")
        if not isinstance(negative, str):
            raise InvocationError("'negative_prompt' must be a string")
        check_text_length(negative, "'negative_prompt'")
        request = {"prompt": prompt, "negative_prompt": negative,
                   "seed": self._int(data, "seed", None, 0, 2**32 - 1),
                   "num_images_per_prompt": self._int(data, "num_images_per_prompt", 1, 1, MAX_IMAGES_PER_PROMPT)}
        params: dict[str, Any] = {}
        for side in ("width", "height"):
            value = self._int(data, side, None, 8, MAX_SIDE)
            if value is not None and value % 8:
                raise InvocationError(f"'{side}' must be a multiple of 8")
            if value is not None:
                params[side] = value
        steps = self._int(data, "num_inference_steps", None, 1, MAX_STEPS)
        if steps is not None:
            params["num_inference_steps"] = steps
        guidance = data.get("guidance_scale")
        if guidance is not None:
            if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not 0 <= guidance <= 50:
                raise InvocationError("'guidance_scale' must be a number between 0 and 50")
            params["guidance_scale"] = float(guidance)
        request["parameters"] = params
        return request

    @staticmethod
    def _int(data: dict[str, Any], key: str, default: int | None, low: int, high: int) -> int | None:
        value = data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvocationError(f"'{key}' must be an integer between {low} and {high}")
        return value

    # -- generation and response ------------------------------------------------------------------------

    def predict(self, request: dict[str, Any]) -> list[Any]:
        from modchain.core.images import load_image

        seed = request["seed"] if request["seed"] is not None else random.SystemRandom().randrange(2**31)
        kwargs = {k: v for k, v in request["parameters"].items() if k in self._accepted}
        images = []
        with self._lock:
            for index in range(request["num_images_per_prompt"]):
                raw = self._call(request["prompt"], request["negative_prompt"], (seed + index) % 2**32, **kwargs)
                images.append(load_image(raw))
        return images

    def encode(self, images: list[Any], prompt: str, accept: str | None) -> tuple[bytes, str]:
        media = _media_type(accept)
        if media in ("", "*/*", JSON_JPEG):
            encoded = []
            for image in images:
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=self.jpeg_quality)
                encoded.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
            return json.dumps({"generated_images": encoded, "prompt": prompt}).encode(), JSON_JPEG
        if media == JSON:
            import numpy as np

            arrays = [np.asarray(image, dtype=np.uint8).tolist() for image in images]
            return json.dumps({"generated_images": arrays, "prompt": prompt}).encode(), JSON
        raise InvocationError(f"unsupported accept type; use {JSON_JPEG} or {JSON}", status=406,
                              code="NotAcceptable")

    def invocations(self, body: bytes, content_type: str | None = JSON, accept: str | None = JSON_JPEG
                    ) -> tuple[bytes, str]:
        request = self.parse(body, content_type)
        if _media_type(accept) not in ("", "*/*", JSON_JPEG, JSON):
            self.encode([], "", accept)  # raises the 406 before any GPU time is spent
        return self.encode(self.predict(request), request["prompt"], accept)


__all__ = ["JSON", "JSON_JPEG", "TEXT", "StableDiffusionHandler"]
