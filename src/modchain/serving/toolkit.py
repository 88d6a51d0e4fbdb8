"""The SageMaker inference toolkit's entry points, shared by every handler in :mod:`modchain.serving`.

A SageMaker PyTorch container imports ``model_fn``, ``input_fn``, ``predict_fn`` and ``output_fn`` from the
model's ``inference.py``. Each handler module defines its own ``model_fn`` (what to load differs) and gets the
other three from :func:`toolkit_functions`, for any handler class with ``parse(body, content_type)``,
``predict(data)`` and ``render(prediction, accept)``. A refused request (:class:`InvocationError`) becomes
the toolkit's own error type when the toolkit is installed, so it answers the handler's status (400, 413,
415) instead of 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

#: Deepest JSON nesting a request may have. The handlers' contracts nest 5 levels at most (a prompt mask's
#: RLE inside a prompt inside a list); the stdlib parser would recurse into a 100,000-deep body and raise
#: RecursionError, so depth is bounded before parsing.
MAX_JSON_DEPTH = 32
#: Longest prompt, question or query (characters) a handler accepts: far above any served model's context
#: (BLIP-2's OPT 2048 tokens, CLIP 77, Grounding DINO 256), so only absurd requests are refused, before
#: tokenizing megabytes under the model lock.
MAX_PROMPT_CHARS = 20_000
# A JSON string (escapes included) or one bracket: brackets inside strings are not nesting. An unterminated
# string runs to the end (json.loads refuses it anyway): were it to fail instead, the scan would restart at
# every later quote, quadratic in a body of escaped quotes.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.?[^"\\]*)*(?:"|\Z)|[\[\]{}]', re.DOTALL)


class InvocationError(Exception):
    """A request the handler refuses: ``status`` is the HTTP status (400), ``message`` is safe to return."""

    def __init__(self, message: str, status: int = 400, code: str = "BadRequest") -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code

    def body(self) -> bytes:
        return json.dumps({"error": self.code, "message": self.message}).encode()


def toolkit_error(exc: InvocationError) -> Exception:
    try:  # the toolkit answers this error's status code instead of 500
        from sagemaker_inference.errors import BaseInferenceToolkitError
    except ImportError:
        return exc
    return BaseInferenceToolkitError(exc.status, exc.message, exc.code)


def toolkit_functions(handler_class: type) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """``(input_fn, predict_fn, output_fn)`` for ``handler_class``."""

    def input_fn(request_body: bytes | str, request_content_type: str, model: Any = None, context: Any = None) -> Any:
        """SageMaker: decode the request. Without ``model`` (toolkit call order) parsing is deferred to predict_fn."""
        body = request_body.encode() if isinstance(request_body, str) else bytes(request_body)
        if model is None:
            return (body, request_content_type)
        try:
            return model.parse(body, request_content_type)
        except InvocationError as exc:
            raise toolkit_error(exc) from None

    def predict_fn(input_data: Any, model: Any, context: Any = None) -> dict[str, Any]:
        """SageMaker: answer a request decoded by ``input_fn``."""
        try:
            if isinstance(input_data, tuple):
                input_data = model.parse(*input_data)
            return model.predict(input_data)
        except InvocationError as exc:
            raise toolkit_error(exc) from None

    def output_fn(prediction: dict[str, Any], accept: str | None, context: Any = None) -> tuple[bytes, str]:
        """SageMaker: encode the answer for ``accept``; returns ``(body, content_type)``."""
        try:
            return handler_class.render(prediction, accept)
        except InvocationError as exc:
            raise toolkit_error(exc) from None

    return input_fn, predict_fn, output_fn


def load_json(body: bytes | str) -> Any:
    """Parse a request body as JSON (UTF-8, -16 or -32, as :func:`json.loads` detects), nesting bounded by
    :data:`MAX_JSON_DEPTH`. Raises :class:`InvocationError` (400) whose message quotes nothing of the body."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        raw = bytes(body)
        try:
            text = raw.decode(json.detect_encoding(raw))
        except (UnicodeDecodeError, LookupError):
            raise InvocationError("the request body is not valid JSON (not UTF-8 text)") from None
    else:
        text = body
    depth = 0
    for match in _JSON_TOKENS.finditer(text):  # linear; a long string (an image) is one match
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise InvocationError(f"the request body is nested deeper than {MAX_JSON_DEPTH} levels")
        elif token in "]}":
            depth -= 1
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: cannot happen after the depth bound; kept fail-closed
        raise InvocationError("the request body is not valid JSON") from None


def load_json_object(body: bytes | str, allowed: Iterable[str]) -> dict[str, Any]:
    """:func:`load_json`, which must give an object whose keys are all in ``allowed``. An unknown field is
    refused without naming it (a field name is request data too); the message lists the allowed ones."""
    data = load_json(body)
    if not isinstance(data, dict):
        raise InvocationError("the request must be a JSON object")
    check_fields(data, allowed, "unknown request field")
    return data


def check_fields(data: dict[str, Any], allowed: Iterable[str], what: str) -> None:
    """Refuse keys of ``data`` outside ``allowed``, naming only the allowed ones."""
    names = sorted(allowed)
    unknown = sum(1 for key in data if key not in names)
    if unknown:
        raise InvocationError(f"{unknown} {what}(s) not accepted; allowed: {', '.join(names)}")


def check_text_length(value: str, what: str) -> None:
    """Refuse a prompt/query longer than :data:`MAX_PROMPT_CHARS` (413, the limit in the message)."""
    if len(value) > MAX_PROMPT_CHARS:
        raise InvocationError(f"{what} is longer than {MAX_PROMPT_CHARS} characters", status=413,
                              code="PayloadTooLarge")
