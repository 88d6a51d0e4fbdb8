"""Backends built from a config, shared by a guard and the copies LangChain makes of it.

``guard.configurable_fields(config=ConfigurableField(...))`` builds a new guard on every call (a new
``ModerationChain`` from the per-call config). Without sharing, each of them would build its backends again:
a new boto3 client and connection pool per call for Comprehend, a model load per call for Hugging Face
backends. A :class:`BackendCache` travels through the constructor's arguments to those copies (and is shared by
deep copies), so each distinct :class:`~modchain.core.config.BackendConfig` is built once per process.

It is per process: pickling it gives an empty cache (clients, pools and models are built again where the
guard lands).
"""

from __future__ import annotations

import threading
from typing import Any

from modchain.core import registry
from modchain.core.config import BackendConfig

__all__ = ["BackendCache"]


class BackendCache:
    """Backend instances by the config they were built from (its JSON, so unhashable fields are fine)."""

    # A few configs per guard at most (one per backend name and per-call variant); the bound only stops a
    # caller who sends a new endpoint or model per call from growing it without end.
    MAX_ENTRIES = 32

    def __init__(self) -> None:
        self._backends: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, config: BackendConfig) -> Any:
        """The backend built from ``config``, built on first request (once, even under concurrent calls)."""
        key = config.model_dump_json()
        backend = self._backends.get(key)
        if backend is None:
            # Held while building: two threads asking for one model must not load it twice.
            with self._lock:
                backend = self._backends.get(key)
                if backend is None:
                    backend = registry.create_backend(config)
                    if len(self._backends) >= self.MAX_ENTRIES:
                        self._backends.pop(next(iter(self._backends)))  # the oldest
                    self._backends[key] = backend
        return backend

    def __len__(self) -> int:
        return len(self._backends)

    def __reduce__(self) -> tuple[Any, ...]:
        return (BackendCache, ())  # per process: an empty cache where it is unpickled

    def __repr__(self) -> str:
        return f"BackendCache({len(self._backends)} backends)"
