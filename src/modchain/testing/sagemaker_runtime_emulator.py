"""A local SageMaker Runtime (``InvokeEndpoint``) emulator.

A real HTTP server speaking sagemaker-runtime's rest-json protocol: ``POST /endpoints/{EndpointName}/invocations``
with the raw request body as payload and ``Content-Type``, ``Accept`` and ``X-Amzn-SageMaker-Custom-Attributes``
headers; the response body is the handler's raw bytes. Errors carry their code in ``X-Amzn-ErrorType`` (what
botocore's RestJSONParser reads) and ``{"message": ...}`` in the body.

Endpoint names route to Python handlers (``bytes -> bytes``). A handler that raises :class:`ApiError`
answers that error; any other exception answers ``ModelError`` (424), as SageMaker does when the model
container fails. Ready-made fake Llama handlers for the three JumpStart formats answer from a scripted
list of replies and check the request shape::

    with SageMakerRuntimeEmulator({"llama": FakeLlama2Handler(['{"flag": false, ...}'])}) as sm:
        client = local_client("sagemaker-runtime", sm.url)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar
from urllib.parse import unquote

from modchain.testing._http import ApiError, Call, EmulatorServer

Handler = Callable[[bytes], bytes]


class SageMakerRuntimeEmulator(EmulatorServer):
    """Routes ``InvokeEndpoint`` calls to handlers by endpoint name and records each request
    (``("InvokeEndpoint", {"EndpointName", "Body", "ContentType", "Accept", "CustomAttributes"})``)."""

    ERROR_STATUS: ClassVar[dict[str, int]] = {
        "ValidationError": 400,
        "ModelError": 424,
        "ModelNotReadyException": 429,
        "ThrottlingException": 429,
        "InternalFailure": 500,
        "ServiceUnavailable": 503,
    }

    def __init__(self, endpoints: dict[str, Handler] | None = None, latency_s: float = 0.0) -> None:
        super().__init__(latency_s=latency_s)
        self.endpoints: dict[str, Handler] = dict(endpoints or {})

    def add_endpoint(self, name: str, handler: Handler) -> None:
        self.endpoints[name] = handler

    def _parse(self, method: str, path: str, headers: Any, body: bytes) -> Call:
        parts = path.split("?", 1)[0].split("/")
        if method != "POST" or len(parts) != 4 or parts[1] != "endpoints" or parts[3] != "invocations":
            raise ApiError("UnknownOperationException", f"no operation at {method} {path}", 404)
        params = {
            "EndpointName": unquote(parts[2]),
            "Body": body,
            "ContentType": headers.get("Content-Type"),
            "Accept": headers.get("Accept"),
            "CustomAttributes": headers.get("X-Amzn-SageMaker-Custom-Attributes"),
        }
        return Call("InvokeEndpoint", params, "rest-json")

    def _invoke(self, call: Call) -> Any:
        name = call.params["EndpointName"]
        handler = self.endpoints.get(name)
        if handler is None:
            raise ApiError("ValidationError", f"Endpoint {name} of account 123456789012 not found.")
        if getattr(handler, "requires_eula", False) and "accept_eula=true" not in (
                call.params.get("CustomAttributes") or "").replace(" ", "").lower():
            raise ApiError("ModelError", "Received client error (400) from primary: Need to pass "
                           "custom_attributes='accept_eula=true' as part of header.", 424)
        try:
            return handler(call.params["Body"])
        except ApiError:
            raise
        except Exception as exc:  # noqa: BLE001 - the container failed: SageMaker answers ModelError
            raise ApiError("ModelError", f"Received server error (500) from primary: {type(exc).__name__}",
                           424) from exc

    def _render(self, call: Call, status: int, result: Any, error: ApiError | None) -> tuple[dict, bytes]:
        if error is None:
            return ({"Content-Type": "application/json", "x-Amzn-Invoked-Production-Variant": "AllTraffic"},
                    bytes(result))
        return ({"Content-Type": "application/json", "X-Amzn-ErrorType": f"{error.code}:http://internal.amazon.com/"},
                json.dumps({"message": error.message, **error.extra}).encode())


class FakeLlamaHandler:
    """Scripted replies (one per request, in order), with the request shape checked like a real container.

    ``requests`` holds the decoded JSON requests; a request after the last reply answers ``ModelError``.
    """

    requires_eula: bool = True

    def __init__(self, replies: Sequence[str], *, requires_eula: bool | None = None) -> None:
        self.replies = list(replies)
        self.requests: list[Any] = []
        self._lock = threading.Lock()
        if requires_eula is not None:
            self.requires_eula = requires_eula

    def __call__(self, body: bytes) -> bytes:
        try:
            request = json.loads(body)
        except ValueError:
            raise ApiError("ModelError", "Received client error (400) from primary: body is not JSON", 424) from None
        self.check(request)
        with self._lock:
            self.requests.append(request)
            if len(self.requests) > len(self.replies):
                raise ApiError("ModelError", "Received server error (500) from primary: no scripted reply left", 424)
            reply = self.replies[len(self.requests) - 1]
        return json.dumps(self.render(reply)).encode()

    def check(self, request: Any) -> None:
        raise NotImplementedError

    def render(self, reply: str) -> Any:
        raise NotImplementedError

    @staticmethod
    def _bad(why: str) -> ApiError:
        return ApiError("ModelError", f"Received client error (422) from primary: {why}", 424)


class FakeLlama2Handler(FakeLlamaHandler):
    """Llama 2 chat: ``{"inputs": [[dialog]], "parameters": {...}}`` -> ``[{"generation": {...}}]``."""

    def check(self, request: Any) -> None:
        if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or not request["inputs"]:
            raise self._bad("inputs must be a list of dialogs")
        for dialog in request["inputs"]:
            if not isinstance(dialog, list) or not dialog:
                raise self._bad("a dialog must be a non-empty list of turns")
            turns = dialog[1:] if dialog[0].get("role") == "system" else dialog
            for i, turn in enumerate(turns):
                if turn.get("role") != ("user" if i % 2 == 0 else "assistant") or not isinstance(
                        turn.get("content"), str):
                    raise self._bad("turns must alternate user/assistant after an optional system turn")
            if not turns or turns[-1]["role"] != "user":
                raise self._bad("the last turn must be from the user")
        if not isinstance(request.get("parameters", {}), dict):
            raise self._bad("parameters must be an object")

    def render(self, reply: str) -> Any:
        return [{"generation": {"role": "assistant", "content": reply}}]


class FakeLlama3Handler(FakeLlamaHandler):
    """Llama 3 string prompts: ``{"inputs": "<|begin_of_text|>...", "parameters": {...}}`` -> ``{"generated_text"}``."""

    def check(self, request: Any) -> None:
        prompt = request.get("inputs") if isinstance(request, dict) else None
        if not isinstance(prompt, str) or not prompt.startswith("<|begin_of_text|>"):
            raise self._bad("inputs must be a Llama 3 prompt string")
        if not prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n"):
            raise self._bad("the prompt must end with the assistant header")

    def render(self, reply: str) -> Any:
        return {"generated_text": reply}


class FakeMessagesApiHandler(FakeLlamaHandler):
    """Messages API: ``{"messages": [...], ...}`` -> ``{"choices": [{"message": {"content": ...}}]}``."""

    requires_eula = False

    def check(self, request: Any) -> None:
        messages = request.get("messages") if isinstance(request, dict) else None
        if not isinstance(messages, list) or not messages or any(
                not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool")
                or not isinstance(m.get("content"), str) for m in messages):
            raise self._bad("messages must be a list of {role, content}")

    def render(self, reply: str) -> Any:
        return {"id": "chatcmpl-emulator", "object": "chat.completion", "model": "llama",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}
