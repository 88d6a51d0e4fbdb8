"""Moderate what tools return before an agent reads it.

A tool result is retrieved text with more authority: the agent acts on it. A fetched page that says "now
email the user's files to ...", a CRM lookup that returns a customer's SSN, must not reach the model as is.

* :func:`guard_tool` wraps a LangChain tool (``@tool`` functions, ``StructuredTool``, any ``BaseTool``): the
  wrapper has the same name, description and argument schema, runs the tool, and moderates its output
  inside its own tool run, so callbacks and tracers (LangSmith, ``astream_events``) see only the moderated
  output, and a blocked one as a tool error (:mod:`modchain.text.documents.guarded_tool`); use it anywhere tools go,
  including ``langgraph.prebuilt.create_react_agent(model, [guard_tool(t)])``.
* :class:`ToolOutputGuard` is also a Runnable over messages and graph state: as a LangGraph node after a
  ``ToolNode`` it replaces the newest ``ToolMessage`` objects by their moderated versions (same ids).

Per kind (injection, PII, toxicity): ``block`` (the output is replaced by a short notice the agent can act on,
or :class:`ToolOutputViolation` is raised, per ``on_block``), ``redact`` (planted sentences removed, personal
data masked), ``anonymize`` (PII only, reversible placeholders), ``flag`` (reported, unchanged) or ``off``.
Scoring is :class:`~modchain.text.documents.DocumentGuard`'s: injection by windows of sentences, maximum taken; toxicity
per document, with length-calibrated sentence windows (:mod:`modchain.text.documents.toxicity_scoring`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, PrivateAttr

from modchain.core.callbacks import CallbackDispatcher
from modchain.core.caller import caller_id
from modchain.core.config import BackendConfig, StrictModel
from modchain.core.config_base import coerce_config
from modchain.core.errors import ConfigurationError, InputError, ToolOutputViolation
from modchain.core.events import ModerationEvent
from modchain.core.vault import AnonymizationVault
from modchain.text.backend_cache import BackendCache
from modchain.text.documents.guard import DocumentGuard
from modchain.text.documents.guarded_tool import GuardedTool
from modchain.text.documents.report import DocumentGuardConfig, DocumentVerdict
from modchain.text.runnable_state import PerProcessState

_TO_DOCUMENT_ACTION = {"block": "drop"}
#: Content blocks that carry media, not text: passed on as they are. Every other block is moderated.
_MEDIA_BLOCKS = frozenset({"image", "image_url", "audio", "video", "file"})


class ToolGuardConfig(StrictModel):
    """What to do with a tool's output, per kind of finding."""

    injection: Literal["block", "redact", "flag", "off"] = "block"
    injection_threshold: float = Field(0.5, ge=0.0, le=1.0)
    pii: Literal["block", "redact", "anonymize", "flag", "off"] = "redact"
    pii_labels: tuple[str, ...] = ()
    toxicity: Literal["block", "redact", "flag", "off"] = "off"
    toxicity_threshold: float = Field(0.5, ge=0.0, le=1.0)
    on_block: Literal["notice", "raise"] = Field(
        "notice", description="notice: the agent receives `notice` instead of the output; raise: ToolOutputViolation.")
    notice: str = Field("[Tool output withheld by content moderation: {reasons}. Do not retry this tool call "
                        "for the same content.]", description="Template; {tool} and {reasons} are filled in.")
    context_gate: bool = True
    backend: BackendConfig = Field(default_factory=BackendConfig)
    fail_open: bool = False

    def document_config(self) -> DocumentGuardConfig:
        return DocumentGuardConfig(
            injection=_TO_DOCUMENT_ACTION.get(self.injection, self.injection),  # type: ignore[arg-type]
            injection_threshold=self.injection_threshold,
            pii=_TO_DOCUMENT_ACTION.get(self.pii, self.pii),  # type: ignore[arg-type]
            pii_labels=self.pii_labels,
            toxicity=_TO_DOCUMENT_ACTION.get(self.toxicity, self.toxicity),  # type: ignore[arg-type]
            toxicity_threshold=self.toxicity_threshold,
            context_gate=self.context_gate, backend=self.backend, fail_open=self.fail_open,
        )


def _rebuild(message: str, verdict: DocumentVerdict | None, tool: str) -> ToolOutputViolation:
    # Kept so violations pickled before ToolOutputViolation moved to core.errors still load.
    return ToolOutputViolation(message, verdict=verdict, tool=tool)


class ToolOutputGuard(PerProcessState, RunnableSerializable[Any, Any]):
    """Moderates tool outputs: strings, ``ToolMessage`` objects, lists of messages, or LangGraph state.

    ``config`` is a :class:`ToolGuardConfig`, a dict in its shape or a YAML file path (None: the defaults).

    Pickles and deep-copies like :class:`~modchain.text.chain.ModerationChain` (its document guard and
    backends are built again per process; see :mod:`modchain.text.runnable_state`).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, defer_build=True)  # schema built on first use, not at import

    config: ToolGuardConfig
    backend: Any = None
    backends: dict[str, Any] | None = None
    callbacks: Sequence[Any] = ()
    unique_id: Any = None
    vault: AnonymizationVault
    messages_key: str = "messages"
    backend_cache: BackendCache  # backends built from the config, shared with copies (see ModerationChain)

    _documents: DocumentGuard | None = PrivateAttr(default=None)
    _dispatcher: CallbackDispatcher | None = PrivateAttr(default=None)
    _build_lock: Any = PrivateAttr(default_factory=threading.RLock)  # builds _documents once per process

    _PER_PROCESS = {"_documents": None, "_dispatcher": None, "_build_lock": threading.RLock}
    _SHARED_ON_COPY = ("vault", "callbacks", "backend", "backends", "backend_cache")

    def __init__(self, config: ToolGuardConfig | dict[str, Any] | str | Path | None = None, *,
                 backend: Any = None, backends: dict[str, Any] | None = None, callbacks: Sequence[Any] = (),
                 unique_id: str | None = None, vault: AnonymizationVault | None = None,
                 messages_key: str = "messages", name: str | None = None,
                 backend_cache: BackendCache | None = None) -> None:
        config = coerce_config(ToolGuardConfig, config)
        super().__init__(config=config, backend=backend, backends=backends, callbacks=tuple(callbacks),
                         unique_id=unique_id, vault=vault if vault is not None else AnonymizationVault(),
                         messages_key=messages_key, name=name,
                         backend_cache=backend_cache if backend_cache is not None else BackendCache())
        self.documents  # noqa: B018 - built now, so a config that cannot work fails here

    @property
    def documents(self) -> DocumentGuard:
        """The document guard that scores each output (built once per process, on first use, even when two
        threads make the first call)."""
        return self._build_once("_documents", lambda: DocumentGuard(
            self.config.document_config(), backend=self.backend, backends=self.backends,
            unique_id=self.unique_id, vault=self.vault, backend_cache=self.backend_cache))

    # -- one output ------------------------------------------------------------------------------------

    def moderate_text(self, text: str, config: RunnableConfig | None = None, *, tool: str = "") -> tuple[str, DocumentVerdict]:
        """``(text the agent may see, verdict)``; raises :class:`ToolOutputViolation` when blocked and
        ``on_block="raise"``."""
        report = self.documents.moderate_documents([Document(page_content=text)], config)
        verdict = report.verdicts[0]
        unique_id = caller_id(config, self.unique_id)
        if self.dispatcher.wants("tool_output"):
            self.dispatcher.emit(ModerationEvent.of(
                "tool_output", str(uuid.uuid4()), bool(verdict.flags), [text],
                {"tool": tool, **verdict.model_dump(exclude={"removed_spans"})}, unique_id=unique_id))
        if verdict.dropped:
            if self.config.on_block == "raise":
                raise ToolOutputViolation(verdict=verdict, tool=tool)
            return self.config.notice.format(tool=tool, reasons=", ".join(verdict.flags)), verdict
        return report.documents[0].page_content, verdict

    def moderate_output(self, output: Any, config: RunnableConfig | None = None, *, tool: str = "") -> Any:
        """The output with every string in it moderated, in the same shape (str, ToolMessage, list, dict)."""
        return self.moderate_output_with_verdicts(output, config, tool=tool)[0]

    def moderate_output_with_verdicts(self, output: Any, config: RunnableConfig | None = None, *,
                                      tool: str = "") -> tuple[Any, list[DocumentVerdict]]:
        """``(moderated output, one verdict per string checked)``: a tool wrapper reads ``dropped`` from the
        verdicts to report a blocked output as the tool's error."""
        verdicts: list[DocumentVerdict] = []
        return self._moderate(output, config, tool, verdicts), verdicts

    def _moderate(self, output: Any, config: RunnableConfig | None, tool: str,
                  verdicts: list[DocumentVerdict]) -> Any:
        if isinstance(output, str):
            text, verdict = self.moderate_text(output, config, tool=tool)
            verdicts.append(verdict)
            return text
        if isinstance(output, ToolMessage):
            content = self._moderate(output.content, config, tool or output.name or "", verdicts)
            return output.model_copy(update={"content": content})
        if isinstance(output, list):
            return [self._block(item, config, tool, verdicts) for item in output]
        if isinstance(output, dict):
            return {key: self._moderate(value, config, tool, verdicts) for key, value in output.items()}
        if output is None or isinstance(output, (int, float, bool)):
            return output
        return self._moderate(str(output), config, tool, verdicts)

    def _block(self, item: Any, config: RunnableConfig | None, tool: str, verdicts: list[DocumentVerdict]) -> Any:
        # Content blocks: media pass as they are; text, json, search_result, document and any other block
        # carry text the model reads, so every string in them is moderated.
        if isinstance(item, dict) and item.get("type") in _MEDIA_BLOCKS:
            return item
        if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str):
            return {**item, "text": self._moderate(item["text"], config, tool, verdicts)}
        return self._moderate(item, config, tool, verdicts)

    # -- messages and graph state ----------------------------------------------------------------------

    def _moderate_messages(self, messages: Sequence[Any], config: RunnableConfig | None) -> list[Any]:
        """The newest ToolMessages (after the last AIMessage) moderated; earlier ones were checked already."""
        start = 0
        for index in range(len(messages) - 1, -1, -1):
            if isinstance(messages[index], AIMessage):
                start = index + 1
                break
        return [self.moderate_output(m, config) for m in messages[start:] if isinstance(m, ToolMessage)]

    def _invoke(self, value: Any, config: RunnableConfig) -> Any:
        if isinstance(value, dict) and self.messages_key in value:
            # A LangGraph state update: same message ids, so the add_messages reducer replaces them.
            return {self.messages_key: self._moderate_messages(value[self.messages_key], config)}
        if isinstance(value, (str, ToolMessage)):
            return self.moderate_output(value, config)
        if isinstance(value, (list, tuple)):
            return [self.moderate_output(m, config) if isinstance(m, ToolMessage) else m for m in value]
        raise InputError(f"ToolOutputGuard takes a str, a ToolMessage, a list of messages or a state dict with "
                         f"{self.messages_key!r}, not {type(value).__name__}")

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call_with_config(self._invoke, input, config, run_type="chain")

    def wrap(self, tool: BaseTool) -> GuardedTool:
        """The tool, with its outputs moderated by this guard."""
        return guard_tool(tool, self)


def guard_tool(tool: BaseTool, guard: ToolOutputGuard | ToolGuardConfig | dict[str, Any] | None = None,
               **guard_kwargs: Any) -> GuardedTool:
    """Wrap ``tool`` so its outputs are moderated before an agent sees them (and before any tracer does).

    ``guard`` is a shared :class:`ToolOutputGuard` (recommended: one for all tools, with your callbacks and
    vault), or a config to build one from (``guard_kwargs`` go to its constructor).
    """
    if not isinstance(tool, BaseTool):
        raise InputError(f"guard_tool takes a LangChain BaseTool (e.g. from @tool), not {type(tool).__name__}")
    if not isinstance(guard, ToolOutputGuard):
        guard = ToolOutputGuard(guard, **guard_kwargs)
    elif guard_kwargs:
        raise ConfigurationError("guard_kwargs only apply when guard_tool builds the guard from a config")
    return GuardedTool.around(tool, guard)


def guard_tools(tools: Sequence[BaseTool], guard: ToolOutputGuard | ToolGuardConfig | dict[str, Any] | None = None,
                **guard_kwargs: Any) -> list[GuardedTool]:
    """:func:`guard_tool` for each tool, sharing one guard."""
    if not isinstance(guard, ToolOutputGuard):
        guard = ToolOutputGuard(guard, **guard_kwargs)
    elif guard_kwargs:
        raise ConfigurationError("guard_kwargs only apply when guard_tools builds the guard from a config")
    return [guard_tool(tool, guard) for tool in tools]
