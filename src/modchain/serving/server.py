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

Requests are framed strictly, since the server may face hostile clients: a body needs one valid
``Content-Length`` (411 without one, 400 when malformed, 413 over :data:`MAX_BODY_BYTES`) or well-formed
``Transfer-Encoding: chunked`` (400 otherwise, and for both at once); such a refusal closes the connection.
No answer, log line or stderr output quotes the request (its line, headers, body, or the exception a
malformed one raised): refusals name the rule broken, failures log the exception type only.

The handler needs ``ping() -> bool`` and ``invocations(body, content_type, accept) -> (bytes, content_type)``
(or ``invoke(...) -> (bytes, content_type, headers)``) raising an exception with ``status`` and ``message``
for refused requests.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from modchain.serving.httpd import TrackingHTTPServer

logger = logging.getLogger(__name__)

#: Largest request body accepted (SageMaker real-time endpoints take 25 MB at most).
MAX_BODY_BYTES = 32 * 1024 * 1024
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
#: Longest chunk-size or trailer line, and most trailer lines, of a chunked body.
MAX_CHUNK_LINE = 8192
MAX_TRAILERS = 64
#: Seconds a socket read or write may block: a client that stops sending (or reading) frees its thread.
SOCKET_TIMEOUT = 60.0
#: After refusing a body it did not read, the server drains what the client still sends for up to this long
#: before closing, so the client reads the refusal instead of a connection reset.
LINGER_SECONDS = 1.0
_DECIMAL = re.compile(r"[0-9]{1,20}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


class _Refused(Exception):
    """A request whose framing is refused: answered with ``status``, then the connection is closed."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _malformed_chunks() -> _Refused:
    return _Refused(400, "BadRequest", "malformed chunked request body")


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for botocore's connection pool; exact Content-Length always
    disable_nagle_algorithm = True
    timeout = SOCKET_TIMEOUT
    server: _Server
    _answered = False

    # The stdlib logs the request line (log_request) and quotes malformed requests (log_error) on stderr:
    # only the status, and the template of an error, are logged here, at debug level.
    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        logger.debug("answered %s", int(code) if isinstance(code, int) else code)

    def log_error(self, format: str, *args: Any) -> None:
        logger.debug("refused a request: %s", format.split("%", 1)[0].split("(", 1)[0].strip())

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http: %s", format.split("%", 1)[0].strip())

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (bad request line, headers too long or too many, unknown method): a typed
        JSON answer naming the status only, where the stdlib's HTML page would quote the request."""
        if self.request_version == "HTTP/0.9":  # an unparsed request line: answer with a status line anyway
            self.request_version = "HTTP/1.0"
        self.close_connection = True  # whatever follows the bad part cannot be framed
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self._send(code, json.dumps({"error": re.sub(r"[^A-Za-z]", "", phrase), "message": phrase}).encode())

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self._answered = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:  # tell the client not to reuse it
            self.send_header("Connection", "close")
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

    def _read_body(self) -> bytes:
        """The request body, by its framing; raises :class:`_Refused`."""
        encodings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encodings:
            if lengths:  # which one frames the body is ambiguous (request smuggling): refused, as RFC 9112 allows
                raise _Refused(400, "BadRequest", "Content-Length and Transfer-Encoding together")
            codings = [c.strip().lower() for value in encodings for c in value.split(",")]
            if codings != ["chunked"] or self.request_version != "HTTP/1.1":
                raise _Refused(400, "BadRequest", "only Transfer-Encoding: chunked (HTTP/1.1) is supported")
            return self._read_chunked()
        if not lengths:
            raise _Refused(411, "LengthRequired", "the request needs Content-Length or chunked Transfer-Encoding")
        values = {value.strip() for value in lengths}
        value = values.pop()
        if values or not _DECIMAL.fullmatch(value):  # int() would take "+5", " 5", "5_0"
            raise _Refused(400, "BadRequest", "invalid Content-Length")
        length = int(value)
        if length > MAX_BODY_BYTES:
            raise _Refused(413, "PayloadTooLarge", f"request body over {MAX_BODY_BYTES} bytes")
        return self._read_exact(length, "the request body is shorter than its Content-Length")

    def _read_exact(self, size: int, short: str) -> bytes:
        try:
            data = self.rfile.read(size)
        except TimeoutError:
            raise _Refused(408, "RequestTimeout", "the request body did not arrive in time") from None
        if len(data) < size:
            raise _Refused(400, "BadRequest", short)
        return data

    def _read_line(self) -> bytes:
        try:
            line = self.rfile.readline(MAX_CHUNK_LINE + 1)
        except TimeoutError:
            raise _Refused(408, "RequestTimeout", "the request body did not arrive in time") from None
        if len(line) > MAX_CHUNK_LINE or not line.endswith(b"\n"):
            raise _malformed_chunks()
        return line.rstrip(b"\r\n")

    def _read_chunked(self) -> bytes:
        chunks, total = [], 0
        while True:
            size_text = self._read_line().split(b";", 1)[0].strip()  # chunk extensions are ignored
            if not _HEX.fullmatch(size_text):
                raise _malformed_chunks()
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                raise _Refused(413, "PayloadTooLarge", f"request body over {MAX_BODY_BYTES} bytes")
            chunks.append(self._read_exact(size, "malformed chunked request body"))
            if self._read_line():  # each chunk's data ends with CRLF
                raise _malformed_chunks()
        for _ in range(MAX_TRAILERS):  # trailer fields are ignored; a blank line ends the body
            if not self._read_line():
                return b"".join(chunks)
        raise _malformed_chunks()

    def _linger(self) -> None:
        """Half-close and drain: closing a socket with unread input resets the connection, which can destroy
        the refusal just sent before the client reads it."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_SECONDS)
            deadline, drained = time.monotonic() + LINGER_SECONDS, 0
            while time.monotonic() < deadline and drained <= MAX_BODY_BYTES:
                data = self.connection.recv(65536)
                if not data:
                    break
                drained += len(data)
        except OSError:
            pass

    def _guarded(self, work: Any) -> None:
        """Run a route; a failure the route did not expect answers a typed 500 naming the exception type only
        (its message, or a traceback on stderr, could quote the request)."""
        self._answered = False
        try:
            work()
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client is gone or stalled: nobody to answer
        except Exception as exc:  # noqa: BLE001 - every failure becomes an HTTP answer
            logger.error("request failed with %s", type(exc).__name__)
            self.close_connection = True
            if not self._answered:
                self._error(500, "InternalServerError", f"the server failed ({type(exc).__name__})")

    def do_GET(self) -> None:
        self._guarded(self._get)

    def _get(self) -> None:
        if self.headers.get("Transfer-Encoding") or (self.headers.get("Content-Length") or "0").strip() != "0":
            self.close_connection = True  # a body is not read here: it must not be parsed as the next request
        path = self.path.split("?", 1)[0]
        if path == "/ping":
            try:
                healthy = bool(self.server.handler.ping())
            except Exception:  # noqa: BLE001 - a failing health check is unhealthy, not a crash
                healthy = False
            self._send(200 if healthy else 503, b"\n" if healthy else b'{"status": "loading"}\n')
            return
        self._error(404, "NotFound", "no such route (GET /ping)")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _post(self) -> None:
        path = self.path.split("?", 1)[0]
        parts = path.split("/")
        runtime = len(parts) == 4 and parts[1] == "endpoints" and parts[3] == "invocations"
        try:
            body = self._read_body()
        except _Refused as refused:
            self.close_connection = True  # the framing is broken or the body unread: nothing more can be parsed
            self._error(refused.status, "ValidationError" if runtime else refused.code, refused.message,
                        sagemaker=runtime)
            self._linger()
            return
        if path != "/invocations" and not runtime:
            self._error(404, "NotFound", "no such route (POST /invocations or /endpoints/{name}/invocations)")
            return
        if runtime:
            expected = self.server.endpoint_name
            if expected is not None and unquote(parts[2]) != expected:  # the name asked for is not quoted back
                self._error(400, "ValidationError", "Endpoint not found for account 000000000000.",
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

    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver prints the traceback to stderr, and a malformed request's exception quotes its bytes:
        only the type is logged (a client dropping its connection, at debug level)."""
        exc = sys.exc_info()[1]
        level = logging.DEBUG if isinstance(exc, (ConnectionError, TimeoutError)) else logging.ERROR
        logger.log(level, "connection failed with %s", type(exc).__name__)


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
