"""ModerationMiddleware: modchain's guards inside a LangChain v1 agent (``langchain.agents.create_agent``).

Three directions, each with its own :class:`~modchain.text.chain.ModerationChain` (the offline default unless
given one, or turned off with ``None``):

* **input** (``before_agent``): the messages new to the thread, once per run, before the model sees them.
  "New" means not checked before in this thread: ids already checked are kept in private graph state
  (checkpointed with the thread), so turn 20 checks one message, not twenty.
* **output** (``wrap_model_call``): every message the model returns (text, tool-call names and arguments,
  reasoning) before it enters the state, so no tool acts on unmoderated arguments.
* **tools** (``wrap_tool_call``): the tool runs wrapped by :func:`~modchain.text.documents.tool_guard.guard_tool`, so
  the result is moderated *inside* the tool's own run: ``on_tool_end`` (``astream_events``, LangSmith) and
  the ``tools`` node's updates and checkpoints carry only the moderated output.

On a violation, per direction, ``"end"`` ends the run with a refusal ``AIMessage`` (``response_metadata
["modchain"]`` says which direction and filter; a blocked input message is replaced in the thread by a
notice, so it never reaches the model on a later turn either) and ``"raise"`` raises the ``*Violation``.
Tool results may also take ``"notice"``: the model receives the notice as the tool's error and carries on.

Anonymization: with ``PiiConfig(action="anonymize")`` on a direction, that chain's placeholders are scoped by
the run's ``thread_id`` (or ``conversation_id`` ... as every modchain guard). The model only sees
placeholders; the final answer is restored for the user in ``after_agent``, and the placeholder version of
that answer is kept in private state and shown to the model on later turns instead of the restored text.

The model's own run is traced by LangChain before ``wrap_model_call`` returns: a tracer records what the
model wrote (``on_chat_model_end``) even when the middleware then refuses it. What the model *received* is
always moderated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal

from langchain.agents.middleware.types import (
    AgentMiddleware,
    AgentState,
    ModelRequest,
    ModelResponse,
    PrivateStateAttr,
    hook_config,
)
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.config import get_config
from typing_extensions import NotRequired

from modchain.core.config import ModerationConfig
from modchain.core.errors import VIOLATION_BY_FILTER, ConfigurationError, ModerationViolation
from modchain.core.results import ModerationResult
from modchain.text.chain import ModerationChain, config_value
from modchain.text.documents.guarded_tool import GuardedTool
from modchain.text.documents.tool_guard import ToolGuardConfig, ToolOutputGuard, guard_tool
from modchain.text.messages import unpack
from modchain.text.restore import SCOPE_KEYS

Direction = Literal["input", "output", "tools"]
OnViolation = Literal["end", "raise"]
_DEFAULT: Any = object()
_MARK = "modchain"  # key in response_metadata of the messages this middleware writes


class ModerationState(AgentState[Any]):
    """The agent state plus the middleware's private bookkeeping (never in the agent's input or output)."""

    #: Ids of the thread's messages already moderated as input.
    modchain_checked: NotRequired[Annotated[list[str], PrivateStateAttr]]
    #: Restored final answers: message id -> the content with placeholders the model wrote (no personal data).
    modchain_anonymized: NotRequired[Annotated[dict[str, Any], PrivateStateAttr]]


def _as_chain(value: Any, direction: str) -> ModerationChain | ToolOutputGuard | None:
    if value is None or value is False:
        return None
    if isinstance(value, ModerationChain):
        return value
    if isinstance(value, (ModerationConfig, dict)):
        return ModerationChain(value)
    if direction == "tools" and isinstance(value, ToolOutputGuard):
        return value
    if direction == "tools" and isinstance(value, ToolGuardConfig):
        return ToolOutputGuard(value)
    kinds = "a ModerationChain, ModerationConfig, dict" + (", ToolOutputGuard, ToolGuardConfig" if direction == "tools" else "")
    raise ConfigurationError(f"{direction}= takes {kinds} or None, not {type(value).__name__}")


def _violation(result: ModerationResult) -> ModerationViolation:
    cls = VIOLATION_BY_FILTER.get(result.blocked_by or "", ModerationViolation)
    return cls(result=result)


def _anonymizes(chain: Any) -> bool:
    return isinstance(chain, ModerationChain) and any(
        getattr(f, "action", None) == "anonymize" for f in chain.config.filters)


class _Dropped:
    """What GuardedTool reads from a verdict: the output was withheld."""

    dropped = True


class _ChainToolGuard:
    """A ModerationChain in the shape GuardedTool asks of its output guard; one per tool call, so the call's
    ``violation`` is its own even when the ToolNode runs calls in parallel."""

    def __init__(self, chain: ModerationChain, on_violation: str, notice: str) -> None:
        self.chain, self.on_violation, self.notice = chain, on_violation, notice
        self.violation: ModerationViolation | None = None

    def moderate_output_with_verdicts(self, output: Any, config: RunnableConfig | None = None, *,
                                      tool: str = "") -> tuple[Any, list[Any]]:
        if output is None or isinstance(output, (int, float, bool)):
            return output, []
        # Content blocks go through a message (unpack reads every text block); anything else as its text.
        value = HumanMessage(content=output) if isinstance(output, list) else output
        if not isinstance(value, (str, BaseMessage)):
            value = str(value)
        result = self.chain.moderate(value, config)
        if result.allowed:
            moderated = result.output
            return (moderated.content if isinstance(output, list) else moderated), []
        violation = _violation(result)
        if self.on_violation == "raise":
            raise violation
        self.violation = violation
        return self.notice, [_Dropped()]

    def moderate_output(self, output: Any, config: RunnableConfig | None = None, *, tool: str = "") -> Any:
        return self.moderate_output_with_verdicts(output, config, tool=tool)[0]


class ModerationMiddleware(AgentMiddleware):  # type: ignore[type-arg]
    """Moderates an agent's input, its model's output and its tools' results (see the module docstring).

    Args:
        input, output, tools: a :class:`ModerationChain` (or a ``ModerationConfig`` / dict to build one) per
            direction, ``None`` to leave that direction unchecked. Omitted: one shared ``ModerationChain()``
            (offline; redacts PII, blocks toxicity and unsafe prompts). ``tools`` also takes a
            :class:`ToolOutputGuard` or :class:`ToolGuardConfig` (sentence-window scoring for long
            results; its own ``on_block`` policy applies).
        on_input_violation, on_output_violation: ``"end"`` (refusal message) or ``"raise"``.
        on_tool_violation: ``"end"``, ``"raise"``, or ``"notice"`` (the model gets ``tool_notice`` as the
            tool's error and the run goes on).
        refusal: the refusal message's text, one for all directions or a dict by direction.
        withheld: what replaces a blocked input message in the thread.
        tool_notice: what replaces a blocked tool result.
        restore: put anonymized originals back into the final answer.
    """

    state_schema = ModerationState  # type: ignore[assignment]

    def __init__(self, *, input: Any = _DEFAULT, output: Any = _DEFAULT, tools: Any = _DEFAULT,  # noqa: A002
                 on_input_violation: OnViolation = "end", on_output_violation: OnViolation = "end",
                 on_tool_violation: Literal["end", "raise", "notice"] = "end",
                 refusal: str | Mapping[str, str] = "I can't help with that request.",
                 withheld: str = "[Message withheld by content moderation.]",
                 tool_notice: str = "[Tool output withheld by content moderation.]",
                 restore: bool = True) -> None:
        super().__init__()
        shared = ModerationChain() if _DEFAULT in (input, output, tools) else None
        self.input = _as_chain(shared if input is _DEFAULT else input, "input")
        self.output = _as_chain(shared if output is _DEFAULT else output, "output")
        self.tools_guard = _as_chain(shared if tools is _DEFAULT else tools, "tools")
        if isinstance(self.input, ToolOutputGuard) or isinstance(self.output, ToolOutputGuard):
            raise ConfigurationError("a ToolOutputGuard only moderates tools=")
        self.on_violation: dict[str, str] = {}
        for direction, value, allowed in (("input", on_input_violation, ("end", "raise")),
                                          ("output", on_output_violation, ("end", "raise")),
                                          ("tools", on_tool_violation, ("end", "raise", "notice"))):
            if value not in allowed:
                raise ConfigurationError(f"on_{direction.rstrip('s')}_violation must be one of {allowed}")
            self.on_violation[direction] = value
        if isinstance(refusal, str):
            refusal = dict.fromkeys(("input", "output", "tools"), refusal)
        self.refusal = {d: refusal.get(d, "I can't help with that request.") for d in ("input", "output", "tools")}
        self.withheld, self.tool_notice, self.restore = withheld, tool_notice, restore
        self.tools = []

    # -- helpers ---------------------------------------------------------------------------------------

    @staticmethod
    def _config() -> RunnableConfig | None:
        try:
            return get_config()
        except RuntimeError:  # a hook called outside a graph run (tests, direct use)
            return None

    def _refusal(self, direction: str, violation: ModerationViolation) -> AIMessage:
        blocked_by = getattr(violation, "filter_type", "") or None
        return AIMessage(content=self.refusal[direction],
                         response_metadata={_MARK: {"direction": direction, "blocked_by": blocked_by}})

    # -- input -----------------------------------------------------------------------------------------

    def _new_messages(self, state: dict[str, Any]) -> tuple[list[AnyMessage], list[str]]:
        checked = set(state.get("modchain_checked") or ())
        messages = state.get("messages") or []
        return [m for m in messages if m.id not in checked], [m.id for m in messages if m.id]

    def _input_update(self, state: dict[str, Any], new: list[AnyMessage], ids: list[str],
                      results: list[ModerationResult]) -> dict[str, Any]:
        update: dict[str, Any] = {"modchain_checked": ids}
        changed: list[AnyMessage] = []
        violation = None
        for message, result in zip(new, results):
            if not result.allowed:
                violation = violation or _violation(result)
                changed.append(_withheld(message, self.withheld))
            elif result.output is not message:
                changed.append(result.output)
        if violation is not None:
            if self.on_violation["input"] == "raise":
                raise violation
            changed.append(self._refusal("input", violation))
            update["jump_to"] = "end"
        if changed:
            update["messages"] = changed  # same ids: add_messages replaces them in place
        return update

    @hook_config(can_jump_to=["end"])
    def before_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        if self.input is None:
            return None
        new, ids = self._new_messages(state)
        results = self.input.moderate_batch(new, self._config()) if new else []  # type: ignore[union-attr]
        return self._input_update(state, new, ids, results)

    @hook_config(can_jump_to=["end"])
    async def abefore_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        if self.input is None:
            return None
        new, ids = self._new_messages(state)
        results = await self.input.amoderate_batch(new, self._config()) if new else []  # type: ignore[union-attr]
        return self._input_update(state, new, ids, results)

    # -- model output ----------------------------------------------------------------------------------

    def _model_view(self, request: ModelRequest) -> ModelRequest:
        """The request with restored answers shown to the model as it wrote them (placeholders)."""
        stash = request.state.get("modchain_anonymized") if isinstance(request.state, dict) else None
        if not stash:
            return request
        messages = [m.model_copy(update={"content": stash[m.id]}) if m.id in stash else m for m in request.messages]
        return request.override(messages=messages)

    def _checked_response(self, response: Any, results: list[ModerationResult]) -> Any:
        violation = next((_violation(r) for r in results if not r.allowed), None)
        if violation is not None:
            if self.on_violation["output"] == "raise":
                raise violation
            return _ended(self._refusal("output", violation))
        return ModelResponse(result=[r.output for r in results], structured_response=response.structured_response)

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Any:
        response = handler(self._model_view(request))
        if self.output is None:
            return response
        inner = _as_response(getattr(response, "model_response", response))
        results = self.output.moderate_batch(inner.result, self._config())  # type: ignore[union-attr]
        return _rewrapped(response, self._checked_response(inner, results))

    async def awrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[Any]]) -> Any:
        response = await handler(self._model_view(request))
        if self.output is None:
            return response
        inner = _as_response(getattr(response, "model_response", response))
        results = await self.output.amoderate_batch(inner.result, self._config())  # type: ignore[union-attr]
        return _rewrapped(response, self._checked_response(inner, results))

    # -- tool results ----------------------------------------------------------------------------------

    def _guarded(self, request: Any) -> tuple[Any, _ChainToolGuard | None]:
        if self.tools_guard is None or request.tool is None:
            return request, None
        if isinstance(self.tools_guard, ToolOutputGuard):
            return request.override(tool=guard_tool(request.tool, self.tools_guard)), None
        policy = self.on_violation["tools"]
        adapter = _ChainToolGuard(self.tools_guard, "raise" if policy == "raise" else "notice", self.tool_notice)
        return request.override(tool=_guarded_tool(request.tool, adapter)), adapter

    def _tool_result(self, result: Any, adapter: _ChainToolGuard | None) -> Any:
        if adapter is None or adapter.violation is None or self.on_violation["tools"] != "end":
            return result
        if isinstance(result, ToolMessage):
            # Read by before_model, which ends the run before the model is called again.
            meta = {**result.response_metadata, _MARK: {"blocked_by": adapter.violation.filter_type or None}}
            return result.model_copy(update={"response_metadata": meta})
        return result

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        request, adapter = self._guarded(request)
        return self._tool_result(handler(request), adapter)

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        request, adapter = self._guarded(request)
        return self._tool_result(await handler(request), adapter)

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """Ends the run when a tool result of the last step was blocked (``on_tool_violation="end"``)."""
        for message in reversed(state.get("messages") or []):
            if not isinstance(message, ToolMessage):
                return None
            mark = message.response_metadata.get(_MARK)
            if isinstance(mark, dict) and "blocked_by" in mark:
                refusal = AIMessage(content=self.refusal["tools"],
                                    response_metadata={_MARK: {"direction": "tools", **mark}})
                return {"messages": [refusal], "jump_to": "end"}
        return None

    @hook_config(can_jump_to=["end"])
    async def abefore_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        return self.before_model(state, runtime)

    # -- the end of a run: restore, remember what was checked -------------------------------------------

    def after_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        messages = state.get("messages") or []
        update: dict[str, Any] = {"modchain_checked": [m.id for m in messages if m.id]}
        final = messages[-1] if messages else None
        vaults = self._restoring_vaults()
        if not (vaults and isinstance(final, AIMessage) and not final.tool_calls and final.id):
            return update
        config = self._config()
        unpacked = unpack(final.content)
        texts = unpacked.texts
        for chain, vault in vaults:
            scope = config_value(config, *SCOPE_KEYS) or chain.unique_id
            if scope is not None:
                texts = [vault.restore(text, scope) for text in texts]
        if list(texts) != list(unpacked.texts):
            stash = dict(state.get("modchain_anonymized") or {})
            stash[final.id] = final.content
            update["modchain_anonymized"] = stash
            update["messages"] = [final.model_copy(update={"content": unpacked.rebuild(texts)})]
        return update

    async def aafter_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        if self._restoring_vaults():
            return await asyncio.to_thread(self.after_agent, state, runtime)
        return self.after_agent(state, runtime)

    def _restoring_vaults(self) -> list[tuple[ModerationChain, Any]]:
        if not self.restore:
            return []
        found: dict[int, tuple[ModerationChain, Any]] = {}
        for chain in (self.input, self.output, self.tools_guard):
            if _anonymizes(chain):
                found.setdefault(id(chain.vault), (chain, chain.vault))  # type: ignore[union-attr]
        return list(found.values())


def _withheld(message: AnyMessage, notice: str) -> AnyMessage:
    """The blocked message kept in the thread (same id, so it replaces the original) with no text of its own."""
    update: dict[str, Any] = {"content": notice, "additional_kwargs": {}}
    if isinstance(message, AIMessage):
        update.update(tool_calls=[], invalid_tool_calls=[])
    return message.model_copy(update=update)


def _guarded_tool(tool: BaseTool, adapter: _ChainToolGuard) -> GuardedTool:
    """:func:`guard_tool`'s wrapper around a chain adapter (guard_tool itself takes only a ToolOutputGuard)."""
    return GuardedTool.around(tool, adapter)


def _as_response(response: Any) -> ModelResponse:
    if isinstance(response, AIMessage):
        return ModelResponse(result=[response])
    return response


def _rewrapped(original: Any, checked: Any) -> Any:
    """An inner middleware's ExtendedModelResponse keeps its command around the moderated response."""
    if hasattr(original, "model_response") and isinstance(checked, ModelResponse):
        return type(original)(model_response=checked, command=original.command)
    return checked


def _ended(refusal: AIMessage) -> Any:
    """A model response that ends the run: a message without tool calls, and an explicit jump where this
    LangChain has ExtendedModelResponse (so a structured-output agent does not call the model again)."""
    response = ModelResponse(result=[refusal])
    try:
        from langchain.agents.middleware.types import ExtendedModelResponse
        from langgraph.types import Command
    except ImportError:  # langchain 1.0: the message alone ends a tool-calling agent
        return response
    return ExtendedModelResponse(model_response=response, command=Command(update={"jump_to": "end"}))
