"""What a text backend is: something that scores texts for PII, toxicity and prompt safety.

A backend returns *every* score it has (all labels, even low ones) as :class:`Finding` objects plus its
raw output for audit callbacks; the filters in ``modchain.text`` apply labels, thresholds and actions.
That split is what makes a config mean the same thing on every backend. Backends take lists of texts so
that remote ones can pack and parallelize requests across the messages of a batch.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from modchain.core.errors import ConfigurationError
from modchain.core.results import Finding


class NotPicklableError(ConfigurationError, pickle.PicklingError):
    """A backend holds something only this process can use (a boto3 client or model it was *given*).

    Raised by ``pickle`` (and so by pickling a guard that holds the backend) with the reason and the fix:
    build the backend from its settings instead, and it creates its client or model in each process.
    """


class PerProcessResources:
    """Pickling for objects whose locks, pools, clients and caches belong to one process.

    ``_PER_PROCESS`` names those attributes and the factory of each one's fresh value (``None``: created again
    on first use); pickle sends everything else, and the receiving process builds the rest as it needs it.
    """

    _PER_PROCESS: ClassVar[dict[str, Callable[[], Any] | None]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if name not in self._PER_PROCESS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name, fresh in self._PER_PROCESS.items():
            setattr(self, name, fresh() if fresh is not None else None)


@dataclass
class Scored:
    """A backend's verdict on one text: all findings (unfiltered) and the raw response(s) it came from."""

    findings: list[Finding] = field(default_factory=list)
    raw: Any = None


class TextBackend(PerProcessResources):
    """Base class; override the ``_pii`` / ``_toxicity`` / ``_prompt_safety`` methods a backend supports.

    Async variants default to running the sync method in a worker thread, which keeps the event loop free;
    remote backends override them to fan requests out concurrently. Backends pickle (``_PER_PROCESS``).
    """

    name: ClassVar[str] = "base"
    #: Labels the backend can produce, per filter type; a type left out means "any label" (not checked).
    labels: ClassVar[dict[str, frozenset[str]]] = {}

    def supports(self, filter_type: str) -> bool:
        return getattr(type(self), f"_{filter_type}", None) is not getattr(TextBackend, f"_{filter_type}", None)

    def run(self, filter_type: str, texts: Sequence[str], config: Any) -> list[Scored]:
        """Score ``texts`` for one filter type; one :class:`Scored` per text, in order."""
        self._check_supported(filter_type)
        if not texts:
            return []
        return getattr(self, f"_{filter_type}")(list(texts), config)

    async def arun(self, filter_type: str, texts: Sequence[str], config: Any) -> list[Scored]:
        self._check_supported(filter_type)
        if not texts:
            return []
        method = getattr(self, f"_a{filter_type}", None)
        if method is not None:
            return await method(list(texts), config)
        return await asyncio.to_thread(getattr(self, f"_{filter_type}"), list(texts), config)

    def _check_supported(self, filter_type: str) -> None:
        if not self.supports(filter_type):
            raise ConfigurationError(f"backend {self.name!r} cannot run the {filter_type!r} filter")

    def _pii(self, texts: list[str], config: Any) -> list[Scored]:
        raise NotImplementedError

    def _toxicity(self, texts: list[str], config: Any) -> list[Scored]:
        raise NotImplementedError

    def _prompt_safety(self, texts: list[str], config: Any) -> list[Scored]:
        raise NotImplementedError
