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
from collections.abc import Callable
from typing import Any


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
