"""The project's SageMaker inference handler for BLIP-2: one image encoding answers every prompt.

Two request contracts on ``POST /invocations`` (``Content-Type: application/json``):

* **seed** (what existing endpoints speak): ``{"image": <base64>, "prompt": "Question: ... Answer:",
  "parameters": {...}}`` -> the generated text. ``Accept: application/json`` answers a JSON string,
  anything else (``text/plain``, ``*/*``, none) the raw text, as the seed endpoint did. An empty or missing
  ``prompt`` asks for a caption.
* **batched**: ``{"image": <base64>, "prompts": [full prompt strings] | "questions": [raw questions],
  "caption": true, "parameters": {...}}`` -> ``{"answers": [...], "caption": ..., "vision_passes": 1}``;
  with ``"images": [...]`` -> ``{"results": [{...}, ...], "vision_passes": n}``. Questions are wrapped in
  ``prompt_template`` (``"Question: {question} Answer:"``); prompts are used as they are.

Raw image bodies (``Content-Type: image/jpeg`` etc.) are captioned. Bad JSON, a missing or corrupt image
or bad parameters raise :class:`InvocationError` (HTTP 400) whose message never quotes the image.

The handler is framework-agnostic: :class:`Blip2Handler` (``ping`` / ``invocations``) is what
:mod:`modchain.serving.server` runs, and ``model_fn`` / ``input_fn`` / ``predict_fn`` / ``output_fn`` package
the same code for the SageMaker PyTorch inference container (``inference.py``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from modchain.serving.toolkit import (
    InvocationError,
    check_fields,
    check_text_length,
    load_json_object,
    toolkit_functions,
)

JSON = "application/json"
TEXT = "text/plain"
DEFAULT_PROMPT_TEMPLATE = "Question: {question} Answer:"
#: Most images one request may carry, and most prompts per image.
MAX_IMAGES = 32
MAX_PROMPTS = 64
#: Generation parameters a request may set, with their types.
ALLOWED_PARAMETERS: dict[str, tuple[type, ...]] = {
    "max_new_tokens": (int,), "min_new_tokens": (int,), "max_length": (int,), "num_beams": (int,),
    "do_sample": (bool,), "temperature": (int, float), "top_p": (int, float), "top_k": (int,),
    "repetition_penalty": (int, float), "length_penalty": (int, float), "no_repeat_ngram_size": (int,),
}
MAX_NEW_TOKENS_LIMIT = 512
_DATA_URI = re.compile(r"^data:[\w.+/-]*(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)


@dataclass
class Blip2Request:
    """A parsed, validated request."""

    images: list[Any]  # PIL images
    prompts: list[str]  # full prompt strings
    caption: bool
    parameters: dict[str, Any] = field(default_factory=dict)
    contract: str = "batched"  # "seed" | "batched" | "raw"
    many: bool = False  # the request used "images": answer {"results": [...]}


class Blip2Handler:
    """Serves a BLIP-2 checkpoint (model id or directory) with :class:`Blip2LocalVQA`.

    ``vqa`` may be given instead (a configured :class:`~modchain.backends.hf.blip2.Blip2LocalVQA` whose
    ``prompt_template`` is ``"{question}"``). Generation runs one request at a time (one model, counted
    vision passes); the HTTP server accepts requests concurrently and they queue here.
    """

    def __init__(self, model_dir_or_id: str | None = None, device: Any = None, *, dtype: Any = None,
                 max_new_tokens: int = 30, prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
                 caption_prompt: str | None = None, images_per_batch: int = 8, max_image_bytes: int | None = None,
                 vqa: Any = None) -> None:
        from modchain.core.errors import ConfigurationError

        if vqa is None and model_dir_or_id is None:
            raise ConfigurationError("Blip2Handler needs a model directory or id (or vqa=)")
        if "{question}" not in prompt_template:
            raise ConfigurationError("prompt_template must contain '{question}'")
        if vqa is None:
            from modchain.backends.hf.blip2 import Blip2LocalVQA

            vqa = Blip2LocalVQA(model_dir_or_id, device=device, dtype=dtype, max_new_tokens=max_new_tokens,
                                prompt_template="{question}", caption_prompt=caption_prompt,
                                images_per_batch=images_per_batch)
        elif vqa.prompt_template != "{question}":
            raise ConfigurationError("the given vqa must use prompt_template='{question}' (prompts are sent whole)")
        self.vqa = vqa
        self.prompt_template = prompt_template
        self.max_image_bytes = max_image_bytes
        self._lock = threading.Lock()
        self._loaded = False

    # --------------------------------------------------------------------------------------- lifecycle

    def load(self) -> Blip2Handler:
        """Load the model now (raises ConfigurationError); ``ping`` is true afterwards."""
        self.vqa.load()
        self._loaded = True
        return self

    def ping(self) -> bool:
        """True once the model is loaded (SageMaker's ``GET /ping`` health check)."""
        return self._loaded

    # --------------------------------------------------------------------------------------- requests

    def invocations(self, body: bytes, content_type: str | None = JSON, accept: str | None = None,
                    custom_attributes: str | None = None) -> tuple[bytes, str]:
        """``POST /invocations``: the response body and its content type. Raises :class:`InvocationError`."""
        out, ctype, _ = self.invoke(body, content_type, accept, custom_attributes)
        return out, ctype

    def invoke(self, body: bytes, content_type: str | None = JSON, accept: str | None = None,
               custom_attributes: str | None = None) -> tuple[bytes, str, dict[str, str]]:
        """Like :meth:`invocations`, plus response headers: ``X-Amzn-SageMaker-Custom-Attributes`` carries
        ``vision_passes=N`` (SageMaker hands a container's custom attributes back to the caller)."""
        request = self.parse(body, content_type)
        prediction = self.predict(request)
        out, ctype = self.render(prediction, accept)
        passes = sum(r["vision_passes"] for r in prediction["results"])
        return out, ctype, {"X-Amzn-SageMaker-Custom-Attributes": f"vision_passes={passes}"}

    def parse(self, body: bytes, content_type: str | None) -> Blip2Request:
        """Decode and validate a request body (``input_fn``)."""
        ctype = (content_type or JSON).split(";", 1)[0].strip().lower()
        if ctype.startswith("image/") or ctype == "application/x-image":
            return Blip2Request(images=[self._decode_image(bytes(body), "body")], prompts=[], caption=True,
                                contract="raw")
        if ctype not in (JSON, "application/x-json", "text/json", "*/*", ""):
            # the content type is not quoted: a header is request data too
            raise InvocationError("unsupported content type; send application/json or an image",
                                  status=415, code="UnsupportedMediaType")
        # bounded nesting, unknown fields refused without naming them
        data = load_json_object(body, ("image", "images", "prompt", "prompts", "questions", "caption",
                                       "parameters"))
        # Cheap structural checks first; images are decoded last.
        many = "images" in data
        parameters = _parameters(data.get("parameters"))
        batched = "prompts" in data or "questions" in data
        if batched and "prompt" in data:
            raise InvocationError("give 'prompt' (one prompt) or 'prompts'/'questions', not both")
        if not batched:
            if many:
                raise InvocationError("'images' needs 'prompts' or 'questions'; 'prompt' takes one 'image'")
            prompt = data.get("prompt")
            if prompt is not None and not isinstance(prompt, str):
                raise InvocationError("'prompt' must be a string")
            if prompt is not None:
                check_text_length(prompt, "'prompt'")
            if "caption" in data:
                raise InvocationError("'caption' belongs to the batched contract ('prompts'/'questions')")
            prompts = [prompt] if prompt and prompt.strip() else []
            images, _ = self._images(data)
            return Blip2Request(images, prompts, caption=not prompts, parameters=parameters, contract="seed")
        if "prompts" in data and "questions" in data:
            raise InvocationError("give 'prompts' (full prompt strings) or 'questions', not both")
        if "prompts" in data:
            prompts = _strings(data["prompts"], "prompts")
        else:
            prompts = [self.prompt_template.format(question=q) for q in _strings(data["questions"], "questions")]
        caption = data.get("caption", False)
        if not isinstance(caption, bool):
            raise InvocationError("'caption' must be true or false")
        if not prompts and not caption:
            raise InvocationError("nothing to answer: no prompts and caption is false")
        images, many = self._images(data)
        return Blip2Request(images, prompts, caption=caption, parameters=parameters, many=many)

    def predict(self, request: Blip2Request) -> dict[str, Any]:
        """Answer a parsed request (``predict_fn``): ``{"results": [{"caption", "answers", "vision_passes"}]}``."""
        from modchain.core.errors import InputError

        with self._lock:
            if not self._loaded:
                self.load()
            saved = (self.vqa.max_new_tokens, self.vqa.generate_kwargs)
            params = dict(request.parameters)
            if "max_new_tokens" in params:
                self.vqa.max_new_tokens = params.pop("max_new_tokens")
            self.vqa.generate_kwargs = {**saved[1], **params}
            try:
                self._check_context(request.prompts)
                results = self.vqa.answer(request.images, request.prompts, caption=request.caption)
            except InputError as exc:
                raise InvocationError(str(exc)) from None
            finally:
                self.vqa.max_new_tokens, self.vqa.generate_kwargs = saved
        return {
            "contract": request.contract,
            "many": request.many,
            "results": [{"answers": [a for _, a in r.answers], "caption": r.caption,
                         "vision_passes": r.vision_passes} for r in results],
        }

    @staticmethod
    def render(prediction: dict[str, Any], accept: str | None) -> tuple[bytes, str]:
        """The response body and content type for ``accept`` (``output_fn``)."""
        wants = _accepts(accept)
        results = prediction["results"]
        if prediction["contract"] in ("seed", "raw"):
            first = results[0]
            text = first["answers"][0] if first["answers"] else (first["caption"] or "")
            if wants == JSON:
                return json.dumps(text).encode(), JSON
            return text.encode(), TEXT
        if wants not in (JSON, "*/*"):
            raise InvocationError("the batched contract answers application/json only", status=406,
                                  code="NotAcceptable")
        if prediction["many"]:
            payload: dict[str, Any] = {"results": results,
                                       "vision_passes": sum(r["vision_passes"] for r in results)}
        else:
            payload = dict(results[0])
        return json.dumps(payload).encode(), JSON

    # ---------------------------------------------------------------------------------------- helpers

    def _check_context(self, prompts: list[str]) -> None:
        """Refuse prompts the language model has no positions for (413): generation would index past its
        position embeddings (an IndexError, a 500) instead of answering."""
        model = getattr(self.vqa, "model", None)
        lm_config = getattr(getattr(model, "language_model", None), "config", None)
        limit = getattr(lm_config, "max_position_embeddings", None)
        if not prompts or not isinstance(limit, int) or getattr(lm_config, "is_encoder_decoder", False):
            return  # T5's relative positions have no hard limit
        n_query = int(getattr(model.config, "num_query_tokens", 0))
        max_new = int(self.vqa.generate_kwargs.get("max_new_tokens", self.vqa.max_new_tokens) or 0)
        lengths = self.vqa.processor.tokenizer(list(prompts), return_token_type_ids=False)["input_ids"]
        room = limit - n_query - max_new
        if max(len(ids) for ids in lengths) > room:
            raise InvocationError(f"a prompt is too long for this model: at most {max(room, 0)} tokens "
                                  f"({limit} positions, {n_query} image tokens, {max_new} new tokens)",
                                  status=413, code="PayloadTooLarge")

    def _images(self, data: dict[str, Any]) -> tuple[list[Any], bool]:
        if "image" in data and "images" in data:
            raise InvocationError("give 'image' or 'images', not both")
        if "images" in data:
            sources = data["images"]
            if not isinstance(sources, list) or not sources:
                raise InvocationError("'images' must be a non-empty list of base64 strings")
            if len(sources) > MAX_IMAGES:
                raise InvocationError(f"at most {MAX_IMAGES} images per request")
            return [self._decode_image(s, f"images[{i}]") for i, s in enumerate(sources)], True
        if "image" not in data:
            raise InvocationError("missing 'image' (base64-encoded image data)")
        return [self._decode_image(data["image"], "image")], False

    def _decode_image(self, source: Any, where: str) -> Any:
        """Base64 text (or raw bytes) -> RGB PIL image. Never a path: a request must not read server files."""
        from modchain.core.errors import ImageInputError
        from modchain.core.images import DEFAULT_MAX_BYTES, decode_image

        max_bytes = self.max_image_bytes or DEFAULT_MAX_BYTES
        if isinstance(source, (bytes, bytearray)):
            data = bytes(source)
        elif isinstance(source, str):
            text = source.strip()
            match = _DATA_URI.match(text)
            if match:
                text = text[match.end():]
            if not text:
                raise InvocationError(f"'{where}' is empty")
            if len(text) * 3 // 4 > max_bytes + 3:
                raise InvocationError(f"'{where}' is larger than {max_bytes} bytes", status=413,
                                      code="PayloadTooLarge")
            try:
                text = "".join(text.split())
                data = base64.b64decode(text + "=" * (-len(text) % 4),
                                        altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
            except (binascii.Error, ValueError):
                raise InvocationError(f"'{where}' is not valid base64") from None
        else:
            raise InvocationError(f"'{where}' must be a base64 string")
        if len(data) > max_bytes:
            raise InvocationError(f"'{where}' is larger than {max_bytes} bytes", status=413, code="PayloadTooLarge")
        try:
            return decode_image(data)
        except ImageInputError as exc:  # messages name sizes and formats only
            raise InvocationError(f"'{where}': {exc}") from None


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvocationError(f"'{name}' must be a list of non-empty strings")
    if len(value) > MAX_PROMPTS:
        raise InvocationError(f"at most {MAX_PROMPTS} {name} per request")
    for text in value:
        check_text_length(text, f"an item of '{name}'")
    return list(value)


def _parameters(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvocationError("'parameters' must be an object")
    check_fields(value, ALLOWED_PARAMETERS, "unsupported parameter")
    out: dict[str, Any] = {}
    for name, v in value.items():
        types = ALLOWED_PARAMETERS[name]
        if not isinstance(v, types) or (bool not in types and isinstance(v, bool)):
            raise InvocationError(f"parameter {name} has the wrong type")
        if name in ("max_new_tokens", "max_length", "num_beams") and not 1 <= v <= MAX_NEW_TOKENS_LIMIT:
            raise InvocationError(f"parameter {name} must be between 1 and {MAX_NEW_TOKENS_LIMIT}")
        out[name] = v
    return out


def _accepts(accept: str | None) -> str:
    """The first supported media type in an Accept header: application/json, text/plain or */*."""
    for part in (accept or "*/*").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in (JSON, TEXT, "*/*"):
            return media
        if media in ("application/*", "text/*"):
            return JSON if media == "application/*" else TEXT
    return "*/*"


# ------------------------------------------------------------------- SageMaker inference toolkit functions

def model_fn(model_dir: str, context: Any = None) -> Blip2Handler:
    """SageMaker: load the checkpoint in ``model_dir`` (the unpacked model.tar.gz)."""
    return Blip2Handler(model_dir).load()


input_fn, predict_fn, output_fn = toolkit_functions(Blip2Handler)

