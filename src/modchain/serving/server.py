"""A local HTTP server that runs an inference handler with SageMaker's container contract.

Routes:

* ``GET /ping``: 200 once the handler's model is loaded, 503 before.
* ``POST /invocations``: the container contract (what SageMaker sends a model container): the raw body,
  ``Content-Type``, ``Accept`` and ``X-Amzn-SageMaker-Custom-Attributes`` go to the handler; its body,
  content type and custom attributes come back. A refused request answers its status (400, 413, 415)
  with ``{"error", "message"}``.
* ``POST /endpoints/{name}/invocations``: the SageMaker Runtime ``InvokeEndpoint`` wire format, so an
  unmodified boto3 ``sagemaker-runtime`` client with ``endpoint_url`` pointing here works. Success carries
  ``x-Amzn-Invoked-Production-Variant``; a container error becomes SageMaker's ``ModelError`` (424, with
  ``OriginalStatusCode`` / ``OriginalMessage``), so boto3 raises what it raises against AWS. Any endpoint
  name is served (one handler) unless ``endpoint_name`` is set.

The handler needs ``ping() -> bool`` and ``invocations(body, content_type, accept) -> (bytes, content_type)``
(or ``invoke(...) -> (bytes, content_type, headers)``) raising an exception with ``status`` and ``message``
for refused requests.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from modchain.serving.httpd import TrackingHTTPServer

logger = logging.getLogger(__name__)

#: Largest request body accepted (SageMaker real-time endpoints take 25 MB at most).
MAX_BODY_BYTES = 32 * 1024 * 1024
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for botocore's connection pool; exact Content-Length always
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # never log request lines to stderr by default
        logger.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, *, sagemaker: bool = False,
               original_status: int | None = None) -> None:
        if sagemaker:  # what SageMaker Runtime answers; botocore reads X-Amzn-ErrorType
            body = {"ErrorCode": code, "Message": message}
            if original_status is not None:
                body.update({"OriginalStatusCode": original_status, "OriginalMessage": message,
                             "LogStreamArn": "arn:aws:logs:local:000000000000:log-group:/modchain/local"})
            self._send(status, json.dumps(body).encode(), headers={"X-Amzn-ErrorType": f"{code}:"})
        else:
            self._send(status, json.dumps({"error": code, "message": message}).encode())

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    self.close_connection = True
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            return None
        return self.rfile.read(length)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/ping":
            try:
                healthy = bool(self.server.handler.ping())
            except Exception:  # noqa: BLE001 - a failing health check is unhealthy, not a crash
                healthy = False
            self._send(200 if healthy else 503, b"\n" if healthy else b'{"status": "loading"}\n')
            return
        self._error(404, "NotFound", f"no route GET {path[:100]}")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        parts = path.split("/")
        runtime = len(parts) == 4 and parts[1] == "endpoints" and parts[3] == "invocations"
        if body is None:
            self._error(413, "PayloadTooLarge" if not runtime else "ValidationError",
                        f"request body over {MAX_BODY_BYTES} bytes", sagemaker=runtime)
            return
        if path != "/invocations" and not runtime:
            self._error(404, "NotFound", f"no route POST {path[:100]}")
            return
        if runtime:
            name = unquote(parts[2])
            expected = self.server.endpoint_name
            if expected is not None and name != expected:
                self._error(400, "ValidationError", f"Endpoint {name[:63]} of account 000000000000 not found.",
                            sagemaker=True)
                return
        self._invoke(body, runtime)

    def _invoke(self, body: bytes, runtime: bool) -> None:
        handler = self.server.handler
        content_type = self.headers.get("Content-Type")
        accept = self.headers.get("Accept")
        attributes = self.headers.get(CUSTOM_ATTRIBUTES)
        try:
            if hasattr(handler, "invoke"):
                out, out_type, headers = handler.invoke(body, content_type, accept, attributes)
            else:
                out, out_type = handler.invocations(body, content_type, accept)
                headers = {}
        except Exception as exc:  # noqa: BLE001 - every failure becomes an HTTP answer
            status = getattr(exc, "status", None)
            message = getattr(exc, "message", None)
            if not isinstance(status, int) or not isinstance(message, str):
                # Only the type: an unexpected error's message (and a traceback's) could quote the request.
                # MODCHAIN_DEBUG=1 logs the traceback for local debugging.
                if os.environ.get("MODCHAIN_DEBUG"):
                    logger.exception("handler failed")
                else:
                    logger.error("handler failed with %s", type(exc).__name__)
                status, message = 500, f"the model failed ({type(exc).__name__})"
            code = getattr(exc, "code", "ModelError") if status < 500 else "InternalServerError"
            if runtime:
                kind = "client" if status < 500 else "server"
                self._error(424, "ModelError", f"Received {kind} error ({status}) from primary with message "
                            f"\"{message}\".", sagemaker=True, original_status=status)
            else:
                self._error(status, code, message)
            return
        headers = dict(headers)
        if runtime:
            headers.setdefault("x-Amzn-Invoked-Production-Variant", "AllTraffic")
        self._send(200, out, out_type, headers)


class _Server(TrackingHTTPServer):
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: Any, endpoint_name: str | None) -> None:
        self.handler = handler
        self.endpoint_name = endpoint_name
        super().__init__(address, _RequestHandler)


def make_server(handler: Any, host: str = "127.0.0.1", port: int = 8080, *,
                endpoint_name: str | None = None) -> _Server:
    """A bound (not yet serving) server for ``handler``; ``port=0`` picks a free port."""
    return _Server((host, port), handler, endpoint_name)


def serve(handler: Any, host: str = "127.0.0.1", port: int = 8080, *, endpoint_name: str | None = None,
          load: bool = True, ready: Any = None) -> None:
    """Serve ``handler`` until interrupted. The model loads first (``load``), so ``/ping`` is 200 once the
    socket accepts connections; ``ready(url)`` is called when serving starts."""
    server = make_server(handler, host, port, endpoint_name=endpoint_name)
    try:
        if load and hasattr(handler, "load"):
            handler.load()
        url = f"http://{server.server_address[0]}:{server.server_address[1]}"
        if ready is not None:
            ready(url)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class LocalEndpoint:
    """Runs ``handler`` on 127.0.0.1 (a free port by default) in a background thread::

        with LocalEndpoint(Blip2Handler(model_dir)) as endpoint:
            client = boto3.client("sagemaker-runtime", endpoint_url=endpoint.url, ...)
    """

    def __init__(self, handler: Any, *, host: str = "127.0.0.1", port: int = 0, endpoint_name: str | None = None,
                 load: bool = True) -> None:
        self.handler = handler
        self.host, self.port, self.endpoint_name, self.load = host, port, endpoint_name, load
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the endpoint is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalEndpoint:
        if self._server is None:
            if self.load and hasattr(self.handler, "load"):
                self.handler.load()
            self._server = make_server(self.handler, self.host, self.port, endpoint_name=self.endpoint_name)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="modchain-local-endpoint", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalEndpoint:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
