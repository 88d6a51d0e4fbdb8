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
        max_pool_connections=max(10, max_concurrency),
    )
    try:
        session = boto3.Session(profile_name=profile_name) if profile_name else boto3.Session()
        return session.client(service, region_name=region_name, endpoint_url=endpoint_url, config=config)
    except Exception as exc:
        raise ConfigurationError(f"cannot create a {service} client: {type(exc).__name__}") from exc


def call_aws(backend: str, operation: str, fn: Callable[..., T], **params: Any) -> T:
    """Call ``fn(**params)`` and translate any SDK failure into a :mod:`modchain.core.errors` error.

    A service error's own message may quote the request (the user's text), so for those the SDK
    exception is not chained as the cause; its code and request id are kept as attributes instead.
    Transport errors (timeouts, refused connections) carry no request content and stay chained.
    """
    from botocore.exceptions import ClientError

    try:
        return fn(**params)
    except ClientError as exc:
        error = translate_error(exc, backend, operation)
        error.aws_error_code = exc.response.get("Error", {}).get("Code")  # type: ignore[attr-defined]
        error.aws_request_id = exc.response.get("ResponseMetadata", {}).get("RequestId")  # type: ignore[attr-defined]
        raise error from None
    except Exception as exc:
        raise translate_error(exc, backend, operation) from exc


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


class FanOut:
    """Runs independent requests concurrently, from sync code (a thread pool) or async code (same pool)."""

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
