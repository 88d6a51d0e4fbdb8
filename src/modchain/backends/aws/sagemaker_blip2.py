"""BLIP-2 visual question answering on a SageMaker endpoint, with the API of :class:`Blip2LocalVQA`.

Two contracts (see :mod:`modchain.serving.blip2_handler`, the project's own handler, which speaks both):

* ``"batched"``: one ``InvokeEndpoint`` per image carrying every prompt (``{"image", "prompts",
  "caption", "parameters"}``) -> ``{"answers", "caption", "vision_passes"}``: one image encoding per image.
* ``"seed"``: the seed notebook's endpoint contract, ``{"image", "prompt", "parameters"}`` -> the text,
  one request per question (and one with an empty prompt for the caption), the image re-sent each time.
  Existing endpoints need this; requests run concurrently (``max_concurrency``).

Images are loaded with :func:`modchain.image_moderation.image_input.load_image` and sent as base64 JPEG (PNG when
``image_format="PNG"``). SDK errors are mapped by :func:`modchain.backends.aws.common.call_aws`.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from typing import Any, Literal

from modchain.core.errors import BackendError, ConfigurationError, InputError
from modchain.core.vqa import VqaResult

BACKEND = "blip2-sagemaker"


class Blip2SageMakerVQA:
    """Caption images and answer questions with a BLIP-2 SageMaker endpoint.

    Args:
        endpoint_name: the SageMaker endpoint.
        client: a boto3 ``sagemaker-runtime`` client; made from ``region_name`` / ``profile_name`` /
            ``endpoint_url`` when unset.
        contract: ``"batched"`` (the project's handler) or ``"seed"`` (one prompt per request).
        prompt_template: wraps each question into a prompt (``"Question: {question} Answer:"``).
        caption_prompt: the prompt for the caption (empty: the model's unconditional caption).
        parameters: generation parameters sent with every request (e.g. ``{"max_new_tokens": 30}``).
        max_concurrency: requests in flight at once (per-question requests and several images).
    """

    def __init__(self, endpoint_name: str, client: Any = None, *, contract: Literal["batched", "seed"] = "batched",
                 region_name: str | None = None, profile_name: str | None = None, endpoint_url: str | None = None,
                 prompt_template: str = "Question: {question} Answer:", caption_prompt: str = "",
                 parameters: dict[str, Any] | None = None, max_concurrency: int = 8, image_format: str = "JPEG",
                 jpeg_quality: int = 95, timeout_s: float = 60.0, max_retries: int = 3,
                 custom_attributes: str | None = None) -> None:
        if contract not in ("batched", "seed"):
            raise ConfigurationError(f"contract must be 'batched' or 'seed', not {contract!r}")
        if "{question}" not in prompt_template:
            raise ConfigurationError("prompt_template must contain '{question}'")
        if max_concurrency < 1:
            raise ConfigurationError("max_concurrency must be at least 1")
        if image_format.upper() not in ("JPEG", "PNG"):
            raise ConfigurationError("image_format must be JPEG or PNG")
        self.endpoint_name = endpoint_name
        self.contract = contract
        self.prompt_template = prompt_template
        self.caption_prompt = caption_prompt
        self.parameters = dict(parameters or {})
        self.max_concurrency = int(max_concurrency)
        self.image_format = image_format.upper()
        self.jpeg_quality = int(jpeg_quality)
        self.custom_attributes = custom_attributes
        self._client_args = {"region_name": region_name, "profile_name": profile_name, "endpoint_url": endpoint_url,
                             "timeout_s": timeout_s, "max_retries": max_retries}
        self.client = client
        self._fanout: Any = None
        #: InvokeEndpoint calls made so far.
        self.requests_sent = 0

    def _get_client(self) -> Any:
        if self.client is None:
            from modchain.backends.aws.common import make_client

            self.client = make_client("sagemaker-runtime", max_concurrency=self.max_concurrency, **self._client_args)
        return self.client

    def _pool(self) -> Any:
        if self._fanout is None:
            from modchain.backends.aws.common import FanOut

            self._fanout = FanOut(self.max_concurrency)
        return self._fanout

    # -------------------------------------------------------------------------------------------- API

    def answer(self, images: Any, questions: Sequence[str], *, caption: bool = True) -> list[VqaResult]:
        """One :class:`VqaResult` per image (same API as :meth:`Blip2LocalVQA.answer`)."""
        encoded = [self._encode(image) for image in _as_list(images)]
        questions = _check_questions(questions)
        if not questions and not caption:
            return [VqaResult(caption=None, answers=[], vision_passes=0) for _ in encoded]
        if self.contract == "batched":
            return self._pool().map(lambda b64: self._batched(b64, questions, caption), encoded)
        # seed: one request per (image, prompt), all concurrently
        prompts = ([self.caption_prompt] if caption else []) + [self.prompt_template.format(question=q)
                                                                for q in questions]
        jobs = [(i, b64, p) for i, b64 in enumerate(encoded) for p in prompts]
        texts = self._pool().map(lambda job: self._seed(job[1], job[2]), jobs)
        results = []
        per = len(prompts)
        for i in range(len(encoded)):
            outs = texts[i * per:(i + 1) * per]
            cap = outs.pop(0) if caption else None
            # the endpoint re-encodes the image for every request
            results.append(VqaResult(caption=cap, answers=list(zip(questions, outs)), vision_passes=per))
        return results

    # ------------------------------------------------------------------------------------- requests

    def _invoke(self, payload: dict[str, Any], accept: str) -> tuple[bytes, str]:
        from modchain.backends.aws.common import call_aws

        request: dict[str, Any] = {"EndpointName": self.endpoint_name, "Body": json.dumps(payload).encode(),
                                   "ContentType": "application/json", "Accept": accept}
        if self.custom_attributes:
            request["CustomAttributes"] = self.custom_attributes
        response = call_aws(BACKEND, "InvokeEndpoint", self._get_client().invoke_endpoint, **request)
        self.requests_sent += 1
        return response["Body"].read(), str(response.get("ContentType") or "")

    def _batched(self, image_b64: str, questions: list[str], caption: bool) -> VqaResult:
        payload: dict[str, Any] = {"image": image_b64,
                                   "prompts": [self.prompt_template.format(question=q) for q in questions],
                                   "caption": caption}
        if self.parameters:
            payload["parameters"] = self.parameters
        body, _ = self._invoke(payload, "application/json")
        try:
            data = json.loads(body)
            answers = data["answers"]
            cap = data.get("caption")
            passes = int(data.get("vision_passes", 1))
        except (ValueError, KeyError, TypeError):
            raise _unexpected("expected {'answers': [...], 'caption': ...}") from None
        if not isinstance(answers, list) or len(answers) != len(questions) or not all(
                isinstance(a, str) for a in answers) or (caption and not isinstance(cap, str)):
            raise _unexpected(f"expected {len(questions)} text answers" + (" and a caption" if caption else ""))
        return VqaResult(caption=cap if caption else None, answers=list(zip(questions, answers)),
                         vision_passes=max(0, passes))

    def _seed(self, image_b64: str, prompt: str) -> str:
        payload: dict[str, Any] = {"image": image_b64, "prompt": prompt}
        if self.parameters:
            payload["parameters"] = self.parameters
        body, content_type = self._invoke(payload, "application/json")
        return _seed_text(body, content_type)

    def _encode(self, image: Any) -> str:
        """An image source -> base64 of its JPEG/PNG encoding (loaded, checked and normalized first)."""
        from modchain.core.images import load_image

        pil = load_image(image)
        buffer = io.BytesIO()
        if self.image_format == "JPEG":
            pil.save(buffer, format="JPEG", quality=self.jpeg_quality)
        else:
            pil.save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode("ascii")


def _seed_text(body: bytes, content_type: str) -> str:
    """The generated text from a seed-contract response: a JSON string (or ``{"generated_text"}`` /
    ``{"answer"}`` / a one-item list of those), or the raw text."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _unexpected("the response is not UTF-8 text") from None
    if "json" in content_type.lower() or text[:1] in ('"', "[", "{"):
        try:
            data = json.loads(text)
        except ValueError:
            return text.strip()
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if isinstance(data, dict):
            for key in ("generated_text", "answer", "text", "caption"):
                if isinstance(data.get(key), str):
                    return data[key].strip()
            raise _unexpected("no generated_text / answer in the JSON response")
        if isinstance(data, str):
            return data.strip()
    return text.strip()


def _unexpected(what: str) -> BackendError:
    return BackendError(f"{BACKEND}: unexpected response shape ({what})", backend=BACKEND, operation="InvokeEndpoint")


def _as_list(images: Any) -> list[Any]:
    items = list(images) if isinstance(images, (list, tuple)) else [images]
    if not items:
        raise InputError("no images given")
    return items


def _check_questions(questions: Sequence[str]) -> list[str]:
    if isinstance(questions, str):
        questions = [questions]
    out = list(questions)
    if not all(isinstance(q, str) and q.strip() for q in out):
        raise InputError("questions must be non-empty strings")
    return out
