"""What the AWS backends share: client creation, concurrency, and mapping SDK errors into ours.

boto3/botocore are imported here lazily, never at ``import modchain``. Error messages name the service,
the operation and the AWS error code only: SDK messages can echo request fields, and request fields are
the user's text.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from modchain.core.errors import (
    BackendError,
    BackendThrottledError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigurationError,
)
from modchain.core.per_process import PerProcess

T = TypeVar("T")
R = TypeVar("R")

_THROTTLED = {"ThrottlingException", "TooManyRequestsException", "Throttling", "RequestLimitExceeded",
              "ProvisionedThroughputExceededException", "ServiceQuotaExceededException"}
_UNAVAILABLE = {"InternalServerException", "InternalFailure", "ServiceUnavailableException",
                "ServiceUnavailable", "ResourceUnavailableException", "ModelNotReadyException"}
_CONFIGURATION = {"AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
                  "ExpiredTokenException", "ResourceNotFoundException", "UnsupportedLanguageException",
                  "InvalidClientTokenId", "AuthFailure"}


def make_client(service: str, *, region_name: str | None, profile_name: str | None, endpoint_url: str | None,
                timeout_s: float, max_retries: int, max_concurrency: int) -> Any:
    """A boto3 client with retries (standard mode, with backoff), timeouts and a pool sized for our fan-out."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError("AWS backends need boto3: pip install 'modchain[aws]'") from exc
    config = Config(
        # total_max_attempts counts the first try; botocore's max_attempts would count retries only.
        retries={"total_max_attempts": max_retries + 1, "mode": "standard"},
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        # One pooled connection per concurrent request: with fewer, urllib3 opens extra connections for the
        # burst and discards them afterwards (on AWS, a TLS handshake each, every batch).
        max_pool_connections=max(10, max_concurrency),
    )
    try:
        session = boto3.Session(profile_name=profile_name) if profile_name else boto3.Session()
        client = session.client(service, region_name=region_name, endpoint_url=endpoint_url, config=config)
    except Exception as exc:
        raise ConfigurationError(f"cannot create a {service} client: {type(exc).__name__}") from exc
    return prepare_client(client)


def pool_size(client: Any) -> int | None:
    """How many connections ``client`` keeps alive (botocore's ``max_pool_connections``), if it says."""
    size = getattr(getattr(getattr(client, "meta", None), "config", None), "max_pool_connections", None)
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


def concurrency_for(client: Any, max_concurrency: int) -> int:
    """Our fan-out width for ``client``: never more requests in flight than its pool keeps connections.

    A user's client with botocore's default pool (10) under a fan-out of 64 would open and throw away 54
    connections per burst; capping the fan-out costs nothing, since those requests would queue anyway.
    """
    size = pool_size(client) if client is not None else None
    return max(1, min(max_concurrency, size)) if size else max(1, max_concurrency)


def prepare_client(client: Any) -> Any:
    """Install our handlers on ``client`` (idempotent) and return it."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is not None:
        events.register("before-parse", _blank_undecodable_5xx, unique_id="modchain-undecodable-5xx")
    return client


def _blank_undecodable_5xx(operation_model: Any, response_dict: dict, **_: Any) -> None:
    """Drop a 5xx body that botocore cannot parse (an HTML page from a proxy, truncated bytes).

    botocore's parsers raise bare ``UnicodeDecodeError``/``TypeError``/``AttributeError`` on such bodies,
    which skip its retry handler and would reach us as an unexplained, non-retryable failure. With an
    empty body the parser yields an ordinary error named by the status code ("503"), which botocore
    retries like any 5xx and :func:`translate_error` maps to the retryable ``BackendUnavailableError``.
    """
    if (response_dict.get("status_code") or 0) < 500 or not response_dict.get("body"):
        return
    from botocore.parsers import create_parser

    try:
        protocol = getattr(operation_model.service_model, "resolved_protocol", None) or \
            operation_model.metadata["protocol"]
        create_parser(protocol).parse(dict(response_dict), operation_model.output_shape)
    except Exception:  # noqa: BLE001 - any failure to parse is what this handler exists for
        response_dict["body"] = b""


def call_aws(backend: str, operation: str, fn: Callable[..., T], **params: Any) -> T:
    """Call ``fn(**params)`` and translate any SDK failure into a :mod:`modchain.core.errors` error.

    A service error's own message may quote the request (the user's text), so for those the SDK
    exception is not chained as the cause; its code and request id are kept as attributes instead.
    Transport errors (timeouts, refused connections) carry no request content and stay chained.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**params)
    except ClientError as exc:
        error = translate_error(exc, backend, operation)
        error.aws_error_code = exc.response.get("Error", {}).get("Code")  # type: ignore[attr-defined]
        error.aws_request_id = exc.response.get("ResponseMetadata", {}).get("RequestId")  # type: ignore[attr-defined]
        raise error from None
    except BotoCoreError as exc:
        raise translate_error(exc, backend, operation) from exc
    except Exception as exc:
        # Outside botocore's own exceptions, this is its parser choking on a response body it cannot read
        # (a 2xx of garbage; undecodable 5xx bodies are blanked first, see _blank_undecodable_5xx). Such an
        # exception holds the body, which may echo the user's text: name its type, do not chain it.
        raise BackendError(f"{backend} {operation}: unreadable response ({type(exc).__name__})",
                           backend=backend, operation=operation) from None


def translate_error(exc: Exception, backend: str, operation: str) -> Exception:
    from botocore import exceptions as bex

    where = f"{backend} {operation}"
    if isinstance(exc, bex.ClientError):
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = f"{where} failed: {code}"
        if code in _THROTTLED or status == 429:
            return BackendThrottledError(message, backend=backend, operation=operation)
        if code in _UNAVAILABLE or (status or 0) >= 500:
            return BackendUnavailableError(message, backend=backend, operation=operation)
        if code in _CONFIGURATION:
            return ConfigurationError(message)
        return BackendError(message, backend=backend, operation=operation)
    if isinstance(exc, (bex.ReadTimeoutError, bex.ConnectTimeoutError)):
        return BackendTimeoutError(f"{where} timed out", backend=backend, operation=operation)
    if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectionClosedError, bex.HTTPClientError)):
        return BackendUnavailableError(f"{where}: cannot reach the service ({type(exc).__name__})",
                                       backend=backend, operation=operation)
    if isinstance(exc, (bex.NoCredentialsError, bex.NoRegionError, bex.PartialCredentialsError)):
        return ConfigurationError(f"{where}: {type(exc).__name__} (configure AWS credentials and region)")
    if isinstance(exc, (bex.ParamValidationError,)):
        return BackendError(f"{where}: invalid request ({type(exc).__name__})", backend=backend, operation=operation)
    return BackendError(f"{where} failed: {type(exc).__name__}", backend=backend, operation=operation)


class FanOut(PerProcess):
    """Runs independent requests concurrently, from sync code (a thread pool) or async code (same pool).

    Pickles without its pool and lock (per process; the pool starts again on first use)."""

    _PER_PROCESS = {"_pool": None, "_lock": threading.Lock}

    def __init__(self, max_concurrency: int) -> None:
        self.max_concurrency = max_concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="modchain-aws")
            return self._pool

    def map(self, fn: Callable[[T], R], payloads: Sequence[T]) -> list[R]:
        if len(payloads) <= 1:
            return [fn(p) for p in payloads]
        return list(self._executor().map(fn, payloads))

    async def amap(self, fn: Callable[[T], R], payloads: Sequence[T]) -> list[R]:
        # Our own pool, not the loop's default one (sized for the CPU count, not for network waits).
        loop = asyncio.get_running_loop()
        executor = self._executor()
        return list(await asyncio.gather(*(loop.run_in_executor(executor, fn, p) for p in payloads)))


def given_client_refusal(backend: Any) -> str | None:
    """Why ``backend`` cannot be pickled when it was built around the caller's own boto3 client, else None.

    Pickling cannot carry a client (sockets, credentials, event hooks), and rebuilding one from its region and
    endpoint could silently change whose credentials and which retry and timeout settings the copy uses.
    The backends return this from ``_pickle_refusal`` (see :mod:`modchain.core.per_process`).
    """
    if not getattr(backend, "_given_client", False):
        return None
    return (f"{type(backend).__name__} was given a boto3 client, which cannot be pickled; build it with "
            "region_name / profile_name / endpoint_url instead (it then creates its client in each process), "
            "or build the guard inside the worker")


def partition_for_region(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-iso-"):
        return "aws-iso"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    return "aws"
