"""A SageMaker Stable Diffusion endpoint (JumpStart text-to-image contract) as an image generator.

    generator = SageMakerStableDiffusion("my-sd-endpoint", region_name="us-east-1", width=512, height=512)
    safe = SafeImageGenerator(generator, NudeNetLabeler())

Each call is one ``InvokeEndpoint`` with ``ContentType: application/json`` and the JumpStart payload
``{"prompt", "negative_prompt", "seed", "num_images_per_prompt": 1, "width", "height", "num_inference_steps",
"guidance_scale"}``. With ``Accept: application/json;jpeg`` (the default) the endpoint answers
``{"generated_images": [<base64 JPEG>], ...}``; with ``application/json`` it answers nested RGB arrays (large:
prefer JPEG). Models that need their licence accepted take ``custom_attributes="accept_eula=true"``.
SDK errors are mapped by :func:`modchain.backends.aws.common.call_aws` (throttling, timeouts, ModelError).
The project's own handler, :mod:`modchain.serving.stable_diffusion_handler`, serves the same contract.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any, Literal

from modchain.core.errors import BackendError, ConfigurationError
from modchain.core.protocols import ImageGenerator

BACKEND = "sagemaker-stable-diffusion"


class SageMakerStableDiffusion(ImageGenerator):
    """Generate with a JumpStart-compatible Stable Diffusion endpoint.

    Args:
        endpoint_name: the SageMaker endpoint.
        client: a boto3 ``sagemaker-runtime`` client; made from ``region_name`` / ``profile_name`` /
            ``endpoint_url`` when unset.
        width, height, num_inference_steps, guidance_scale: sent with every request (None: the endpoint's
            default).
        accept: ``application/json;jpeg`` (base64 JPEG) or ``application/json`` (RGB arrays).
        custom_attributes: e.g. ``accept_eula=true``.
    """

    name = BACKEND

    def __init__(self, endpoint_name: str, client: Any = None, *, region_name: str | None = None,
                 profile_name: str | None = None, endpoint_url: str | None = None, width: int | None = 512,
                 height: int | None = 512, num_inference_steps: int | None = 50, guidance_scale: float | None = 7.5,
                 accept: Literal["application/json;jpeg", "application/json"] = "application/json;jpeg",
                 custom_attributes: str | None = None, timeout_s: float = 120.0, max_retries: int = 2,
                 max_concurrency: int = 4) -> None:
        if not endpoint_name:
            raise ConfigurationError("endpoint_name is required")
        if accept not in ("application/json;jpeg", "application/json"):
            raise ConfigurationError("accept must be 'application/json;jpeg' or 'application/json'")
        for side in (width, height):
            if side is not None and (side <= 0 or side % 8):
                raise ConfigurationError("width and height must be positive multiples of 8")
        self.endpoint_name = endpoint_name
        self.parameters = {k: v for k, v in {"width": width, "height": height,
                                              "num_inference_steps": num_inference_steps,
                                              "guidance_scale": guidance_scale}.items() if v is not None}
        self.accept = accept
        self.custom_attributes = custom_attributes
        self._client_args = {"region_name": region_name, "profile_name": profile_name, "endpoint_url": endpoint_url,
                             "timeout_s": timeout_s, "max_retries": max_retries, "max_concurrency": max_concurrency}
        self.client = client

    def _get_client(self) -> Any:
        if self.client is None:
            from modchain.backends.aws.common import make_client

            self.client = make_client("sagemaker-runtime", **self._client_args)
        return self.client

    def payload(self, prompt: str, negative_prompt: str, seed: int) -> dict[str, Any]:
        """The JumpStart text-to-image request body for one image."""
        body: dict[str, Any] = {"prompt": prompt, "num_images_per_prompt": 1, "seed": int(seed), **self.parameters}
        if negative_prompt:
            body["negative_prompt"] = negative_prompt
        return body

    def generate(self, prompt: str, negative_prompt: str, seed: int) -> Any:
        """One image (a PIL image) from the endpoint."""
        from modchain.backends.aws.common import call_aws

        request: dict[str, Any] = {"EndpointName": self.endpoint_name, "ContentType": "application/json",
                                   "Accept": self.accept,
                                   "Body": json.dumps(self.payload(prompt, negative_prompt, seed)).encode()}
        if self.custom_attributes:
            request["CustomAttributes"] = self.custom_attributes
        response = call_aws(BACKEND, "InvokeEndpoint", self._get_client().invoke_endpoint, **request)
        return self.decode(response["Body"].read())

    def decode(self, body: bytes) -> Any:
        """The first image of a response body; a malformed response is a :class:`BackendError`."""
        from PIL import Image

        try:
            images = json.loads(body)["generated_images"]
            first = images[0]
            if isinstance(first, str):
                return Image.open(io.BytesIO(base64.b64decode(first, validate=True))).convert("RGB")
            import numpy as np

            array = np.asarray(first, dtype=np.uint8)
            if array.ndim != 3 or array.shape[2] != 3:
                raise ValueError("expected height x width x 3")
            return Image.fromarray(array)
        except (ValueError, KeyError, IndexError, TypeError, binascii.Error, OSError):
            raise BackendError("the endpoint's response holds no decodable generated_images[0]", backend=BACKEND,
                               operation="InvokeEndpoint") from None


__all__ = ["SageMakerStableDiffusion"]
