"""What a text backend is: something that scores texts for PII, toxicity and prompt safety.

A backend returns *every* score it has (all labels, even low ones) as :class:`Finding` objects plus its
raw output for audit callbacks; the filters in ``modchain.text`` apply labels, thresholds and actions.
That split is what makes a config mean the same thing on every backend. Backends take lists of texts so
that remote ones can pack and parallelize requests across the messages of a batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from modchain.core.errors import ConfigurationError
from modchain.core.results import Finding


@dataclass
class Scored:
    """A backend's verdict on one text: all findings (unfiltered) and the raw response(s) it came from."""

    findings: list[Finding] = field(default_factory=list)
    raw: Any = None


class TextBackend:
    """Base class; override the ``_pii`` / ``_toxicity`` / ``_prompt_safety`` methods a backend supports.

    Async variants default to running the sync method in a worker thread, which keeps the event loop free;
    remote backends override them to fan requests out concurrently.
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
