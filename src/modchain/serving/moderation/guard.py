"""The service's front door, as one pure ASGI middleware: metrics, API keys, body size, admission.

It runs before FastAPI reads or parses a body, so an unauthenticated or oversized request costs no JSON
parsing, and a request over the concurrency limit is refused at once (429) instead of queueing without
bound. Pure ASGI rather than ``BaseHTTPMiddleware``: the body is counted as it streams in.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modchain.serving.moderation.metrics import ServiceMetrics

logger = logging.getLogger("modchain.serving.moderation")

#: Paths anyone may call (load balancer probes, the API's schema); everything else needs a key when keys
#: are configured.
PUBLIC_PATHS: frozenset[str] = frozenset({"/health", "/openapi.json"})
#: Paths that run the (CPU-bound) chain and so count against the concurrency limit.
MODERATION_PATHS: frozenset[str] = frozenset({"/v1/moderations", "/v1/moderate"})


@dataclass(frozen=True)
class ServiceLimits:
    """Request limits. Exceeding a size limit answers 413, the concurrency limit 429.

    The body limit is sized for a photo of ``max_image_bytes`` sent as a base64 data URI (4/3 larger) plus
    some text; a text of more than ``max_text_chars`` characters is refused even when the body fits.
    """

    max_text_chars: int = 100_000
    max_image_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_images: int = 4
    max_inputs: int = 128
    max_body_bytes: int | None = None  # None: derived from the image limits (see body_limit)
    max_concurrency: int = 64
    workers: int | None = None  # threads running the chain; None: the CPU count

    def __post_init__(self) -> None:
        for name in ("max_text_chars", "max_image_bytes", "max_image_pixels", "max_images", "max_inputs",
                     "max_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_body_bytes is not None and self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if self.workers is not None and self.workers < 1:
            raise ValueError("workers must be at least 1")

    @property
    def body_limit(self) -> int:
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        # One full-size image as base64 plus 1 MiB for JSON and text; more images must be smaller.
        return self.max_image_bytes * 4 // 3 + 1024 * 1024


def key_matches(candidate: str, keys: Sequence[bytes]) -> bool:
    """Constant time in which key matched: every key is compared, no early exit."""
    given = candidate.encode("utf-8", "surrogateescape")
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key)
    return found


class GuardMiddleware:
    def __init__(self, app: Any, *, keys: Sequence[str], limits: ServiceLimits, metrics: ServiceMetrics,
                 public_metrics: bool = False) -> None:
        self.app = app
        self.keys = [k.encode("utf-8") for k in keys]
        self.limits = limits
        self.metrics = metrics
        self.public = PUBLIC_PATHS | ({"/metrics"} if public_metrics else frozenset())
        self.in_flight = 0  # touched only on the event loop thread: no lock needed

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, started, status = scope.get("path", ""), time.perf_counter(), 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, send_status, path)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe(path, status, elapsed)
            # Method, route and status only: never a body, a query string or a header value.
            logger.info("%s %s -> %d in %.1f ms", scope.get("method"), self.metrics.endpoint(path), status,
                        elapsed * 1000)

    async def _guarded(self, scope: dict[str, Any], receive: Any, send: Any, path: str) -> None:
        if self.keys and path not in self.public and not self._authorized(scope):
            self.metrics.rejected.labels("auth").inc()
            await _error(send, 401, "Incorrect or missing API key: send Authorization: Bearer <key>.",
                         "invalid_request_error", "invalid_api_key", {"www-authenticate": "Bearer"})
            return
        if path not in MODERATION_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limits.max_concurrency:
            self.metrics.rejected.labels("concurrency").inc()
            await _error(send, 429, "Too many concurrent requests; retry shortly.", "rate_limit_error",
                         "concurrency_limit", {"retry-after": "1"})
            return
        self.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            body = await self._read_body(scope, receive, send)
            if body is None:
                return
            await self.app(scope, _replay(body, receive), send)
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.dec()

    def _authorized(self, scope: dict[str, Any]) -> bool:
        header = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), b"")
        scheme, _, token = header.decode("latin-1").partition(" ")
        return scheme.lower() == "bearer" and key_matches(token.strip(), self.keys)

    async def _read_body(self, scope: dict[str, Any], receive: Any, send: Any) -> bytes | None:
        limit = self.limits.body_limit
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._too_large(send, limit)
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send, limit)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, send: Any, limit: int) -> None:
        self.metrics.rejected.labels("body_size").inc()
        await _error(send, 413, f"Request body over the limit of {limit} bytes.", "invalid_request_error",
                     "request_too_large")


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later calls wait for the disconnect, as Starlette expects

    return replay


async def _error(send: Any, status: int, message: str, kind: str, code: str,
                 headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
