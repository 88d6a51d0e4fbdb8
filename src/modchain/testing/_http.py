"""Shared plumbing for the local AWS service emulators.

The emulators in this package are real HTTP servers, not mocks: an unmodified
boto3 client pointed at ``emulator.url`` with ``endpoint_url`` goes through
its full stack (serializer, signer, connection pool, retry handler, parser).
That is what makes them useful for tests and benchmarks without network access:
wire-protocol mistakes, retry behaviour and concurrency limits in our client
code show up here the same way they would against AWS.

This module holds the protocol-independent parts: binding, threading,
keep-alive, request recording, connection counting, latency emulation, fault
injection and canned (possibly malformed) responses, so that client-side
response validation is tested through the real parser too.
Subclasses implement :meth:`EmulatorServer._parse`, :meth:`_invoke` and
:meth:`_render` for their wire protocol.
"""

from __future__ import annotations

import collections
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, ClassVar

from modchain.serving.httpd import TrackingHTTPServer

if TYPE_CHECKING:  # Self is in typing only from 3.11; the project supports 3.10
    from typing_extensions import Self


#: Returned by a :meth:`EmulatorServer.respond_with` callable: answer this request normally.
PASS = object()


class ApiError(Exception):
    """An AWS error response: ``code`` becomes ``Error.Code`` in botocore."""

    def __init__(self, code: str, message: str, status: int = 400, **extra: Any):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status, self.extra = code, message, status, extra


@dataclass
class Call:
    """One decoded request: the operation, its params and the wire protocol."""

    operation: str
    params: dict = field(default_factory=dict)
    protocol: str = ""


@dataclass
class _Canned:
    """A response to send instead of the emulated one (see :meth:`EmulatorServer.respond_with`)."""

    body: Any
    operation: str | None
    remaining: int | None  # None: every matching request until reset()
    status: int
    headers: dict


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so botocore's urllib3 pool can reuse connections (keep-alive);
    # every response therefore carries an exact Content-Length.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus delayed ACKs add ~40 ms a request.
    disable_nagle_algorithm = True

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # discard trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        # The body must always be consumed, even for injected faults, or the
        # next request on this keep-alive connection would be garbage.
        body = self._read_body()
        status, headers, payload = self.server.emulator._handle(self, body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class _Server(TrackingHTTPServer):
    request_queue_size = 256  # bursts of concurrent connects must not hit SYN retries

    def __init__(self, emulator: EmulatorServer):
        self.emulator = emulator
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # One call per accepted TCP connection: lets tests prove that clients reuse connections.
        self.emulator._note_connection()
        super().process_request(request, client_address)


class EmulatorServer:
    """Base class: a threaded HTTP server on 127.0.0.1 with a random port.

    ``requests`` is a snapshot list of ``(operation_name, params_dict)``
    tuples, in arrival order, including requests answered with an injected
    fault (so retry counts can be asserted).
    """

    #: What a :meth:`respond_with` callable returns to let a request through unchanged.
    PASS: ClassVar[object] = PASS
    #: HTTP status used by :meth:`fail_next` when none is given, per error code.
    ERROR_STATUS: ClassVar[dict[str, int]] = {}

    def __init__(self, latency_s: float = 0.0):
        self.latency_s = float(latency_s)
        self._lock = threading.Lock()
        self._requests: list[tuple[str, dict]] = []
        self._faults: collections.deque[tuple[str, int, str]] = collections.deque()
        self._canned: list[_Canned] = []
        self._connections = 0
        self._in_flight = 0
        self._peak_in_flight = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> Self:
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{type(self).__name__}-{self._server.server_address[1]}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- inspection and fault injection --------------------------------------
    @property
    def requests(self) -> list[tuple[str, dict]]:
        with self._lock:
            return list(self._requests)

    def count(self, operation: str | None = None) -> int:
        with self._lock:
            return sum(1 for op, _ in self._requests if operation in (None, op))

    @property
    def connections(self) -> int:
        """TCP connections accepted since start (or the last :meth:`reset`)."""
        with self._lock:
            return self._connections

    @property
    def peak_in_flight(self) -> int:
        """The most requests this emulator was answering at once since start (or the last :meth:`reset`): how
        concurrent a client really was, without timing it (a wall-clock bound fails on a loaded machine)."""
        with self._lock:
            return self._peak_in_flight

    def _note_connection(self) -> None:
        with self._lock:
            self._connections += 1

    def reset(self) -> None:
        """Forget recorded requests, the connection count, pending faults and canned responses."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._canned.clear()
            self._connections = 0
            self._peak_in_flight = self._in_flight

    def respond_with(
        self,
        body: Any,
        *,
        operation: str | None = None,
        times: int | None = 1,
        status: int = 200,
        headers: dict | None = None,
    ) -> None:
        """Answer the next ``times`` requests (of ``operation``, else of any) with ``body`` and ``status``.

        ``times=None`` answers every matching request until :meth:`reset`. ``body`` may be
        ``bytes``/``str`` (sent as is: garbage, HTML from a proxy, truncated CBOR), any other value
        (encoded in the request's wire protocol, so a malformed-but-well-encoded response reaches the
        client's parser), or a callable taking the request params and returning one of those, or
        :data:`PASS` to have the emulator answer that request as usual (faults on chosen requests only).
        The request is still recorded; injected faults from :meth:`fail_next` are answered first.
        """
        if times is not None and times < 1:
            raise ValueError("times must be >= 1, or None for every request")
        with self._lock:
            self._canned.append(_Canned(body, operation, times, int(status), dict(headers or {})))

    def _take_canned(self, operation: str) -> _Canned | None:
        # Called with self._lock held.
        for canned in self._canned:
            if canned.operation in (None, operation):
                if canned.remaining is not None:
                    canned.remaining -= 1
                    if canned.remaining == 0:
                        self._canned.remove(canned)
                return canned
        return None

    def _respond_canned(self, call: Call, canned: _Canned) -> tuple[int, dict, bytes] | None:
        body = canned.body(call.params) if callable(canned.body) else canned.body
        if body is PASS:
            return None
        headers, payload = self._encode(call, body)
        if isinstance(body, (bytes, str)):
            payload = body.encode() if isinstance(body, str) else body
        return canned.status, self._common_headers({**headers, **canned.headers}), payload

    def fail_next(
        self,
        n: int = 1,
        error_code: str = "ThrottlingException",
        status: int | None = None,
        message: str = "Rate exceeded",
    ) -> None:
        """Answer the next ``n`` requests with ``error_code``.

        ``status`` defaults to the status the real service uses for that code
        (``ERROR_STATUS``), else 400.
        """
        status = status if status is not None else self.ERROR_STATUS.get(error_code, 400)
        with self._lock:
            self._faults.extend([(error_code, status, message)] * n)

    # -- request pipeline ----------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict, bytes]:
        try:
            call = self._parse(req.command, req.path, req.headers, body)
        except ApiError as err:
            return self._respond_error(Call("Unknown"), err)
        with self._lock:
            self._requests.append((call.operation, call.params))
            fault = self._faults.popleft() if self._faults else None
            canned = None if fault is not None else self._take_canned(call.operation)
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        try:
            return self._answer(call, fault, canned)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, call: Call, fault: tuple[str, int, str] | None, canned: Any) -> tuple[int, dict, bytes]:
        if self.latency_s > 0:
            time.sleep(self.latency_s)  # outside the lock: concurrent calls overlap
        if fault is not None:
            return self._respond_error(call, ApiError(fault[0], fault[2], fault[1]))
        if canned is not None:
            try:
                answer = self._respond_canned(call, canned)
            except Exception as exc:  # noqa: BLE001 - a broken test callable must surface as a 500, not a hang
                return self._respond_error(call, ApiError("InternalServerException", repr(exc), 500))
            if answer is not None:
                return answer
        try:
            result = self._invoke(call)
        except ApiError as err:
            return self._respond_error(call, err)
        except Exception as exc:  # noqa: BLE001 - a detector bug must surface as a 500, not a hang
            return self._respond_error(call, ApiError("InternalServerException", repr(exc), 500))
        headers, payload = self._render(call, 200, result, None)
        return 200, self._common_headers(headers), payload

    def _respond_error(self, call: Call, err: ApiError) -> tuple[int, dict, bytes]:
        headers, payload = self._render(call, err.status, None, err)
        return err.status, self._common_headers(headers), payload

    @staticmethod
    def _common_headers(headers: dict) -> dict:
        return {"x-amzn-RequestId": str(uuid.uuid4()), **headers}

    # -- protocol hooks ----------------------------------------------------
    def _parse(self, method: str, path: str, headers: Any, body: bytes) -> Call:
        raise NotImplementedError

    def _invoke(self, call: Call) -> dict:
        raise NotImplementedError

    def _render(
        self, call: Call, status: int, result: dict | None, error: ApiError | None
    ) -> tuple[dict, bytes]:
        raise NotImplementedError

    def _encode(self, call: Call, body: Any) -> tuple[dict, bytes]:
        """Headers and payload for an arbitrary canned ``body`` in ``call``'s protocol (default: JSON)."""
        return {"Content-Type": "application/json"}, b"" if isinstance(body, (bytes, str)) else _json(body)


def _json(body: Any) -> bytes:
    # allow_nan: a NaN score is one of the malformed responses worth sending.
    return json.dumps(body, allow_nan=True).encode()
