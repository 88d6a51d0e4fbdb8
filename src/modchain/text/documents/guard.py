"""DocumentGuard: moderate retrieved documents before they reach the prompt (``retriever | doc_guard``).

A retriever brings text nobody on the team wrote: a web page with an instruction planted for the AI that
reads it, a support ticket with a customer's SSN, a forum post full of abuse. Each document is checked for

* **injection**: windows of sentences (each sentence, each pair), maximum taken, so a payload in a long benign
  page is not diluted. By default (local backend) each window is scored by the trained document-injection
  model, which reads it in the context of its page (:class:`~modchain.text.documents.injection.WindowInjectionModel`);
  with a remote prompt-safety backend, by that backend plus the hand-written cues of
  :mod:`modchain.text.documents.cues` (``injection_scorer`` in :class:`DocumentGuardConfig`); optionally
  (``injection_scorer="embedding"`` / ``"embedding+model"``) by a head on sentence embeddings
  (:mod:`modchain.backends.hf.sentence_encoder`, torch and transformers); the choice and the scoring are
  :class:`~modchain.text.documents.injection_scoring.InjectionScorer`'s;
* **toxicity**: the whole document through the toxicity chain, as ``ModerationChain`` scores a long text, and
  sentence windows only where they can change something: to find what to cut, and, on the offline fast tier, to
  find one abusive sentence in a page, held to a threshold raised for the number of windows
  (:mod:`modchain.text.documents.toxicity_scoring`);
* **PII**: the whole text, through the PII backend (redacted, anonymized, flagged or dropped);

and kept, flagged, redacted or dropped per :class:`DocumentGuardConfig`, in order, metadata kept, with a
``metadata["moderation"]`` entry on every kept document and a :class:`DocumentReport` saying what was removed.
Scoring goes through internal :class:`ModerationChain` objects, so backends, fail-open and the anonymization
vault (scoped by ``configurable.conversation_id`` ...) behave exactly as in the text chain.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import ConfigDict, PrivateAttr

from modchain.core.callbacks import CallbackDispatcher
from modchain.core.caller import caller_id
from modchain.core.config import ModerationConfig, PiiConfig, ToxicityConfig
from modchain.core.config_base import coerce_config
from modchain.core.errors import InputError
from modchain.core.events import ModerationEvent
from modchain.core.vault import AnonymizationVault
from modchain.text.backend_cache import BackendCache
from modchain.text.chain import ModerationChain, config_value
from modchain.text.documents.cues import sentence_spans
from modchain.text.documents.injection_scoring import DocumentState, InjectionScorer, failed
from modchain.text.documents.report import DocumentGuardConfig, DocumentReport, DocumentVerdict
from modchain.text.documents.toxicity_scoring import score_toxicity
from modchain.text.restore import SCOPE_KEYS
from modchain.text.runnable_state import PerProcessState

REMOVED_NOTICE = "[removed by moderation]"


@dataclass
class _Scorers:
    """What a :class:`DocumentGuard` builds from its config to score documents (per process)."""

    injection: InjectionScorer
    toxicity: ModerationChain
    pii: ModerationChain


class DocumentGuard(PerProcessState, RunnableSerializable[Sequence[Document], list[Document]]):
    """A Runnable from a list of LangChain ``Document`` to the moderated list (same order, metadata kept).

    Args:
        config: a :class:`DocumentGuardConfig`, a dict in its shape or a YAML file path (defaults: drop
            injected and toxic documents, redact PII, offline ``local`` backend).
        backend / backends: as for :class:`ModerationChain` (a backend instance or name for every check).
        callbacks: handlers; ``on_after_documents`` receives one beacon per document list.
        unique_id: the user passed to callbacks (per call: ``configurable.unique_id``).
        vault: where ``pii="anonymize"`` keeps placeholders (share it with the prompt guard's restorer).
        backend_cache: as for :class:`ModerationChain` (leave it unset).

    Pickles and deep-copies like :class:`ModerationChain`: its scoring chains and models are built on first
    use in each process (see :mod:`modchain.text.runnable_state`).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, defer_build=True)  # schema built on first use, not at import

    config: DocumentGuardConfig
    backend: Any = None
    backends: dict[str, Any] | None = None
    callbacks: Sequence[Any] = ()
    unique_id: Any = None
    vault: AnonymizationVault
    backend_cache: BackendCache

    _parts: _Scorers | None = PrivateAttr(default=None)
    _dispatcher: CallbackDispatcher | None = PrivateAttr(default=None)
    _build_lock: Any = PrivateAttr(default_factory=threading.RLock)  # builds _parts once per process

    _PER_PROCESS = {"_parts": None, "_dispatcher": None, "_build_lock": threading.RLock}
    _SHARED_ON_COPY = ("vault", "callbacks", "backend", "backends", "backend_cache")

    def __init__(self, config: DocumentGuardConfig | dict[str, Any] | str | Path | None = None, *,
                 backend: Any = None, backends: dict[str, Any] | None = None, callbacks: Sequence[Any] = (),
                 unique_id: str | None = None, vault: AnonymizationVault | None = None,
                 name: str | None = None, backend_cache: BackendCache | None = None) -> None:
        config = coerce_config(DocumentGuardConfig, config)
        # Not `vault or ...`: an empty vault has len 0 and is falsy, and a shared one must still be used.
        super().__init__(config=config, backend=backend, backends=backends, callbacks=tuple(callbacks),
                         unique_id=unique_id, vault=vault if vault is not None else AnonymizationVault(),
                         name=name or "DocumentGuard",
                         backend_cache=backend_cache if backend_cache is not None else BackendCache())
        self._scorers()  # built now, so a config that cannot work fails here, not at the first call

    def _scorers(self) -> _Scorers:
        """The chains (and injection models) that score documents: built once per process, on first use
        (once even when two threads make the first call: an embedding model is not loaded twice)."""
        return self._build_once("_parts", self._build_scorers)

    def _build_scorers(self) -> _Scorers:
        config, backend, backends = self.config, self.backend, self.backends

        def chain(filters: list[Any]) -> ModerationChain:
            return ModerationChain(ModerationConfig(filters=filters, backend=config.backend,
                                                    fail_open=config.fail_open),
                                   backend=backend, backends=backends, vault=self.vault,
                                   unique_id=self.unique_id, backend_cache=self.backend_cache)

        pii_action = {"redact": "redact", "anonymize": "anonymize"}.get(config.pii, "detect")
        return _Scorers(
            injection=InjectionScorer(config, backend, backends, chain),
            # Detection-only chains with threshold 0: every score comes back, the guard decides.
            toxicity=chain([ToxicityConfig(threshold=0.0, action="detect", labels=config.toxicity_labels)]),
            pii=chain([PiiConfig(labels=config.pii_labels, threshold=config.pii_threshold, action=pii_action,
                                 mask_character=config.mask_character)]),
        )

    @property
    def _injection(self) -> InjectionScorer:
        return self._scorers().injection

    @property
    def _toxicity(self) -> ModerationChain:
        return self._scorers().toxicity

    @property
    def _pii(self) -> ModerationChain:
        return self._scorers().pii

    def _note(self, d: DocumentState, kind: str, first: int, last: int, score: float) -> None:
        threshold = self.config.injection_threshold if kind == "injection" else self.config.toxicity_threshold
        if score >= threshold:
            d.hits.setdefault(kind, []).append((first, last))

    # -- decisions -------------------------------------------------------------------------------------

    def _decide(self, d: DocumentState) -> None:
        for kind in ("injection", "toxicity"):
            action = getattr(self.config, kind)
            if kind in d.hits:
                d.flags.append(kind)
                if action == "redact" and not d.hits[kind]:
                    action = "drop"  # toxic, but its windows failed open: nothing known to cut, so fail closed
                d.action = _stronger(d.action, "flag" if action == "flag" else action)

    def _removed_sentences(self, d: DocumentState) -> list[int]:
        """Sentences to cut for ``redact``: the smallest hit runs first, so a clean neighbour in a window
        that only scored high because of the planted sentence beside it is kept."""
        removed: set[int] = set()
        for kind in ("injection", "toxicity"):
            if getattr(self.config, kind) != "redact":
                continue
            for first, last in sorted(d.hits.get(kind, []), key=lambda run: run[1] - run[0]):
                run = set(range(first, last))
                if not run & removed:
                    removed |= run
        return sorted(removed)

    def _cut(self, d: DocumentState, removed: list[int]) -> tuple[str, tuple[tuple[int, int], ...]]:
        pieces, spans, cursor = [], [], 0
        for index in removed:
            start, end = d.sentences[index]
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end)
                pieces.append(d.text[cursor:start])
            else:
                spans.append((start, end))
                pieces.append(d.text[cursor:start] + REMOVED_NOTICE + " ")
            cursor = end
        if not spans:  # nothing cut: the document goes on exactly as retrieved
            return d.text, ()
        pieces.append(d.text[cursor:])
        return "".join(pieces).strip(), tuple(spans)

    # -- the whole pass --------------------------------------------------------------------------------

    def moderate_documents(self, documents: Sequence[Document], config: RunnableConfig | None = None) -> DocumentReport:
        """Moderate one list; returns the kept documents and a verdict per input (does not raise on findings)."""
        return self.moderate_lists([documents], config)[0]

    def moderate_lists(self, lists: Sequence[Sequence[Document]], config: RunnableConfig | None = None
                       ) -> list[DocumentReport]:
        """Moderate many lists together (one backend pass per check across all of them)."""
        per_list = [[DocumentState(i, doc, doc.page_content) for i, doc in enumerate(_check_documents(docs))]
                    for docs in lists]
        docs = [d for group in per_list for d in group if d.text.strip()]
        for d in docs:
            d.sentences = sentence_spans(d.text)
        if self.config.injection != "off":
            self._injection.score(docs, config, self._note)
        if self.config.toxicity != "off":
            score_toxicity(self._toxicity, docs, self.config, config)
        for d in docs:
            self._decide(d)
        unique_id = caller_id(config, self.unique_id)
        survivors = [d for group in per_list for d in group if d.action != "drop"]
        cut = {id(d): self._cut(d, self._removed_sentences(d)) for d in survivors}
        final_text = self._scan_pii(survivors, cut, config)
        reports = [self._report(group, cut, final_text, unique_id) for group in per_list]
        for report, group in zip(reports, per_list):
            self._emit(report, group, unique_id)
        return reports

    def _scan_pii(self, survivors: list[DocumentState], cut: dict[int, tuple[str, Any]], config: RunnableConfig | None
                  ) -> dict[int, str]:
        """PII of every surviving document of every list in one pass; the redacted texts by ``id`` of doc."""
        pii_results = []
        if self.config.pii != "off" and survivors:
            pii_results = self._pii.moderate_batch([cut[id(d)][0] for d in survivors], config)
        final_text: dict[int, str] = {}
        for d, result in zip(survivors, pii_results):
            if failed(result):
                d.flags.append("error")
            labels = tuple(sorted({f.label for f in result.findings}))
            if labels:
                d.pii_labels = labels
                d.flags.append("pii")
                d.scores["pii"] = max(f.score for f in result.findings)
                pii_action = "redact" if self.config.pii == "anonymize" else self.config.pii
                d.action = _stronger(d.action, pii_action)
                if self.config.pii in ("redact", "anonymize"):
                    final_text[id(d)] = result.texts[0]
        return final_text

    def _report(self, group: list[DocumentState], cut: dict[int, tuple[str, Any]], final_text: dict[int, str],
                unique_id: str | None) -> DocumentReport:
        verdicts, kept = [], []
        for d in group:
            text, spans = cut.get(id(d), (d.text, ()))
            if "error" in d.flags:  # failed open: kept, but marked so the prompt can treat it with care
                d.action = _stronger(d.action, "flag")
            verdict = DocumentVerdict(index=d.index, action=d.action, flags=tuple(dict.fromkeys(d.flags)),
                                      scores={k: round(v, 4) for k, v in d.scores.items()},
                                      pii_labels=d.pii_labels, removed_spans=spans,
                                      doc_id=getattr(d.doc, "id", None))
            verdicts.append(verdict)
            if d.action != "drop":
                content = final_text.get(id(d), text)
                metadata = {**d.doc.metadata, self.config.metadata_key: verdict.as_metadata()}
                kept.append(Document(page_content=content, metadata=metadata, id=getattr(d.doc, "id", None)))
        return DocumentReport(verdicts=tuple(verdicts), documents=kept, unique_id=unique_id)

    def _emit(self, report: DocumentReport, group: list[DocumentState], unique_id: str | None) -> None:
        if not self.dispatcher.wants("documents"):
            return
        found = any(v.flags for v in report.verdicts)
        self.dispatcher.emit(ModerationEvent.of(
            "documents", str(uuid.uuid4()), found, [d.text for d in group], report.summary(), unique_id=unique_id,
            error=any("error" in v.flags for v in report.verdicts)))

    # -- Runnable --------------------------------------------------------------------------------------

    def _run(self, lists: list[Any], run_manager: list[Any], config: list[RunnableConfig]) -> list[Any]:
        outcomes: list[Any] = []
        for value in lists:  # a list that is not a list of Documents fails alone, not the whole batch
            try:
                outcomes.append(_check_documents(value))
            except InputError as exc:
                outcomes.append(exc)
        valid = [o for o in outcomes if not isinstance(o, BaseException)]
        try:
            reports = iter(self.moderate_lists(valid, config[0] if config else None))
        except Exception as exc:  # noqa: BLE001 - reported per input, like Runnable.batch does
            return [o if isinstance(o, BaseException) else exc for o in outcomes]
        return [o if isinstance(o, BaseException) else next(reports).documents for o in outcomes]

    def _invoke_one(self, value: Any, run_manager: Any, config: RunnableConfig) -> list[Document]:
        return self.moderate_documents(value, config).documents

    def invoke(self, input: Sequence[Document], config: RunnableConfig | None = None, **kwargs: Any) -> list[Document]:
        """The documents that pass, in order, redacted where configured, with moderation metadata."""
        return self._call_with_config(self._invoke_one, input, config, run_type="chain")

    def batch(self, inputs: list[Sequence[Document]], config: RunnableConfig | list[RunnableConfig] | None = None,
              *, return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        """Moderate several document lists with one backend pass per check."""
        if not inputs:
            return []
        if isinstance(config, list) and len({_scope_and_user(c) for c in config}) > 1:
            # Different conversations (vault scopes) or users per input: moderated apart, each with its own.
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        return self._batch_with_config(self._run, inputs, config, return_exceptions=return_exceptions,
                                       run_type="chain")

    async def _arun(self, lists: list[Any], run_manager: list[Any], config: list[RunnableConfig]) -> list[Any]:
        # The backends block (local models, HTTP): the whole pass runs in a worker thread, off the event loop.
        return await asyncio.to_thread(self._run, lists, run_manager, config)

    async def abatch(self, inputs: list[Sequence[Document]],
                     config: RunnableConfig | list[RunnableConfig] | None = None,
                     *, return_exceptions: bool = False, **kwargs: Any) -> list[Any]:
        """:meth:`batch` for async code: one backend pass per check across all lists."""
        if not inputs:
            return []
        if isinstance(config, list) and len({_scope_and_user(c) for c in config}) > 1:
            return await super().abatch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        return await self._abatch_with_config(self._arun, inputs, config, return_exceptions=return_exceptions,
                                              run_type="chain")


_ORDER = {"keep": 0, "flag": 1, "redact": 2, "drop": 3}


def _scope_and_user(config: RunnableConfig | None) -> tuple[str, str]:
    """What must be equal for inputs to share one pass: the vault scope and the user, as the chain reads them."""
    return repr(config_value(config, *SCOPE_KEYS)), repr(config_value(config, "unique_id", "user_id"))


def _stronger(current: str, new: str) -> str:
    return new if _ORDER[new] > _ORDER[current] else current


def _check_documents(documents: Any) -> list[Document]:
    if isinstance(documents, Document):
        raise InputError("DocumentGuard takes a list of Document, not a single Document: pass [doc]")
    if not isinstance(documents, (list, tuple)):
        raise InputError(f"DocumentGuard takes a list of Document, not {type(documents).__name__}")
    for index, doc in enumerate(documents):
        if not isinstance(doc, Document):
            raise InputError(f"item {index} is a {type(doc).__name__}, not a langchain_core Document")
        if not doc.page_content.isascii():
            try:
                doc.page_content.encode("utf-8")
            except UnicodeEncodeError:  # checked here so the error names the document, not a scoring window
                raise InputError(f"document {index} contains unpaired surrogate characters, which are not valid "
                                 "Unicode; decode it correctly first") from None
    return list(documents)
