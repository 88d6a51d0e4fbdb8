"""What a text backend is: something that scores texts for PII, toxicity and prompt safety.

A backend returns *every* score it has (all labels, even low ones) as :class:`Finding` objects plus its
raw output for audit callbacks; the filters in ``modchain.text`` apply labels, thresholds and actions.
That split is what makes a config mean the same thing on every backend. Backends take lists of texts so
that remote ones can pack and parallelize requests across the messages of a batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

from modchain.core.errors import ConfigurationError
from modchain.core.per_process import NotPicklableError, PerProcess  # noqa: F401 - re-exported
from modchain.core.results import Finding

#: Kept under this name for backends: the one per-process pickling mechanism lives in ``modchain.core``.
PerProcessResources = PerProcess


@dataclass
class Scored:
    """A backend's verdict on one text: all findings (unfiltered) and the raw response(s) it came from."""

    findings: list[Finding] = field(default_factory=list)
    raw: Any = None


#: The filter kinds a text backend can score; each has one sync scorer method and one async one.
FilterKind = Literal["pii", "toxicity", "prompt_safety"]
FILTER_KINDS: tuple[FilterKind, ...] = get_args(FilterKind)

#: ``(texts, filter config) -> one Scored per text``, sync and async.
Scorer = Callable[[list[str], Any], list[Scored]]
AsyncScorer = Callable[[list[str], Any], Awaitable[list[Scored]]]


def filter_kind(value: str) -> FilterKind | None:
    """``value`` as a :data:`FilterKind`, or ``None`` when it names no kind a text backend scores."""
    return next((kind for kind in FILTER_KINDS if kind == value), None)


class TextBackend(PerProcess):
    """Base class; override the ``_pii`` / ``_toxicity`` / ``_prompt_safety`` methods a backend supports.

    Implements :class:`modchain.core.protocols.TextDetector`. Each filter kind maps to one scorer method
    (:meth:`_scorers`); a kind whose method is still the base class's placeholder is not supported. The async
    scorers (``_apii`` / ``_atoxicity`` / ``_aprompt_safety``) default to running the sync one in a worker
    thread, which keeps the event loop free; remote backends override them to fan requests out concurrently.
    Backends pickle (:class:`~modchain.core.per_process.PerProcess`): ``_PER_PROCESS`` names the locks,
    clients, caches and lazily loaded models made again in each process; a backend built around an object
    the caller gave it (a boto3 client, an in-memory model) refuses with :class:`NotPicklableError`.
    """

    name: ClassVar[str] = "base"
    #: Labels the backend can produce, per filter type; a type left out means "any label" (not checked).
    labels: ClassVar[dict[str, frozenset[str]]] = {}
    #: Languages (ISO 639-1) the backend scores well, per filter type; a type left out means any language.
    #: A chain routes texts in other languages elsewhere (``BackendConfig.unsupported_language``).
    languages: ClassVar[dict[str, frozenset[str]]] = {}

    def supported_languages(self, filter_type: str) -> frozenset[str] | None:
        """The languages this backend supports for ``filter_type``; None means any (no routing needed)."""
        return self.languages.get(filter_type)

    def length_slope(self, filter_type: str) -> float | None:
        """How far this backend raises a filter's decision logit per ln(number of windows) when the highest of
        several window scores decides a long text (``backends.local.long_text.length_shift``), so that a caller
        who scores windows itself can hold their maximum to the same calibration; None when it does not say."""
        return None

    def supports(self, filter_type: str) -> bool:
        kind = filter_kind(filter_type)
        if kind is None:
            return False
        scorer = self._scorers()[kind]
        return getattr(scorer, "__func__", scorer) is not _PLACEHOLDERS[kind]

    def run(self, filter_type: str, texts: Sequence[str], config: Any) -> list[Scored]:
        """Score ``texts`` for one filter type; one :class:`Scored` per text, in order."""
        kind = self._check_supported(filter_type)
        if not texts:
            return []
        return self._scorers()[kind](list(texts), config)

    async def arun(self, filter_type: str, texts: Sequence[str], config: Any) -> list[Scored]:
        kind = self._check_supported(filter_type)
        if not texts:
            return []
        return await self._async_scorers()[kind](list(texts), config)

    def _scorers(self) -> dict[FilterKind, Scorer]:
        return {"pii": self._pii, "toxicity": self._toxicity, "prompt_safety": self._prompt_safety}

    def _async_scorers(self) -> dict[FilterKind, AsyncScorer]:
        return {"pii": self._apii, "toxicity": self._atoxicity, "prompt_safety": self._aprompt_safety}

    def _check_supported(self, filter_type: str) -> FilterKind:
        kind = filter_kind(filter_type)
        if kind is None or not self.supports(kind):
            raise ConfigurationError(f"backend {self.name!r} cannot run the {filter_type!r} filter")
        return kind

    def _pii(self, texts: list[str], config: Any) -> list[Scored]:
        raise NotImplementedError

    def _toxicity(self, texts: list[str], config: Any) -> list[Scored]:
        raise NotImplementedError

    def _prompt_safety(self, texts: list[str], config: Any) -> list[Scored]:
        raise NotImplementedError

    async def _apii(self, texts: list[str], config: Any) -> list[Scored]:
        return await asyncio.to_thread(self._pii, texts, config)

    async def _atoxicity(self, texts: list[str], config: Any) -> list[Scored]:
        return await asyncio.to_thread(self._toxicity, texts, config)

    async def _aprompt_safety(self, texts: list[str], config: Any) -> list[Scored]:
        return await asyncio.to_thread(self._prompt_safety, texts, config)


#: The base class's placeholder scorer per kind: a backend whose method is still this one lacks that kind.
_PLACEHOLDERS: dict[FilterKind, Callable[..., Any]] = {
    "pii": TextBackend._pii, "toxicity": TextBackend._toxicity, "prompt_safety": TextBackend._prompt_safety,
}
