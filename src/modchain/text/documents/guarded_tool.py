"""The tool that :func:`~modchain.text.documents.tool_guard.guard_tool` returns: moderation inside the tool's own run.

Tracers (LangSmith, ``astream_events``) record a tool run's output at ``on_tool_end``. Calling the wrapped
tool's ``run`` and moderating afterwards traced the raw output (personal data, planted instructions) first;
here the wrapper is the only tool run, and its ``_run`` returns the moderated output.
"""

from __future__ import annotations

import asyncio
import inspect
import pickle
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException

# Private helpers of langchain_core, used so the wrapper forwards arguments to the wrapped tool and shapes an
# error ToolMessage exactly as BaseTool.run does.
from langchain_core.tools.base import _format_output, _get_runnable_config_param
from pydantic import ConfigDict, Field


class GuardedTool(BaseTool):
    """A tool whose outputs pass through a :class:`ToolOutputGuard`; same name, description and arguments.

    The wrapper is the only tool run: ``run`` / ``arun`` (and so ``invoke`` / ``ainvoke``) are BaseTool's, and
    :meth:`_run` / :meth:`_arun` call the wrapped tool's ``_run`` / ``_arun`` and moderate what they return
    *inside* that run. So ``on_tool_end`` (LangSmith, ``astream_events``) carries the moderated output only;
    running the wrapped tool's own ``run`` would trace its raw output first. A blocked output (``on_block=
    "notice"``) ends the run with a ``ToolMessage`` of ``status="error"`` holding the notice, as a handled
    ``ToolException`` does (``handle_tool_error``) and as LangGraph's ``ToolNode`` reports tool errors;
    ``on_block="raise"`` fails the run (``on_tool_error``) with :class:`ToolOutputViolation`. A message of a
    ``ToolException`` the wrapped tool raises is moderated before the wrapped tool's ``handle_tool_error``
    policy (copied onto the wrapper) turns it into the tool's answer or raises it. A ToolMessage keeps its
    ``tool_call_id``, ``status`` and ``artifact`` (the artifact goes to the application, not the model).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    wrapped: BaseTool = Field(exclude=True)
    output_guard: Any = Field(exclude=True)

    @classmethod
    def around(cls, tool: BaseTool, output_guard: Any) -> GuardedTool:
        """The wrapper of ``tool``: its name, description, arguments, callbacks, verbosity and error policies
        (the wrapper is the traced run), moderating with ``output_guard`` (anything with
        ``moderate_output_with_verdicts``)."""
        # A BaseTool subclass without args_schema derives its arguments from its _run signature; the wrapper's
        # _run takes *args/**kwargs, so the schema is copied explicitly or the model would see no arguments.
        schema = tool.args_schema if tool.args_schema is not None else tool.get_input_schema()
        return cls(name=tool.name, description=tool.description, args_schema=schema,
                   return_direct=tool.return_direct, response_format=tool.response_format,
                   tags=tool.tags, metadata=tool.metadata, extras=tool.extras,
                   callbacks=tool.callbacks, verbose=tool.verbose,
                   handle_tool_error=tool.handle_tool_error,
                   handle_validation_error=tool.handle_validation_error,
                   wrapped=tool, output_guard=output_guard)

    @property
    def _injected_args_keys(self) -> frozenset[str]:  # type: ignore[override]
        # Injected arguments (InjectedToolCallId, ToolRuntime ...) are the wrapped tool's: kept out of the
        # traced inputs and injected at call time exactly as for the tool itself.
        return self.wrapped._injected_args_keys

    def _to_args_and_kwargs(self, tool_input: str | dict[str, Any], tool_call_id: str | None
                            ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # Parse as the wrapped tool would (Tool's single string input, its schema, injected arguments), and
        # pass the call id on to _run, which needs it to report a blocked output as an error ToolMessage.
        args, kwargs = self.wrapped._to_args_and_kwargs(tool_input, tool_call_id)
        return args, {**kwargs, _CALL_ID: tool_call_id}

    def _run(self, *args: Any, config: RunnableConfig, run_manager: CallbackManagerForToolRun | None = None,
             **kwargs: Any) -> Any:
        call_id = kwargs.pop(_CALL_ID, None)
        inner = _inner_kwargs(self.wrapped._run, kwargs, config, run_manager)
        try:
            response = self.wrapped._run(*args, **inner)
        except ToolException as exc:
            failure = exc
        else:
            return self._finish(response, config, call_id)
        # Outside the except clause: a violation raised while moderating the message must not chain the raw
        # exception (tracers print the whole chain).
        raise self._moderated_error(failure, config)

    async def _arun(self, *args: Any, config: RunnableConfig,
                    run_manager: AsyncCallbackManagerForToolRun | None = None, **kwargs: Any) -> Any:
        call_id = kwargs.pop(_CALL_ID, None)
        wrapped = self.wrapped
        # BaseTool.arun's rule: a tool without its own _arun runs _run in a thread, with _run's arguments.
        target = wrapped._run if type(wrapped)._arun is BaseTool._arun else wrapped._arun
        inner = _inner_kwargs(target, kwargs, config, run_manager)
        try:
            response = await wrapped._arun(*args, **inner)
        except ToolException as exc:
            failure = exc
        else:
            # The guard's backends may block (local models, HTTP): keep the event loop free.
            return await asyncio.to_thread(self._finish, response, config, call_id)
        raise await asyncio.to_thread(self._moderated_error, failure, config)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as "this tool, guarded by this guard" and wrapped again on arrival: the argument schema
        # ``@tool`` infers is a class made at run time, which pickle cannot name (a deep copy needs none of this).
        return (_rewrap, (_portable(self.wrapped), self.output_guard))

    def _finish(self, response: Any, config: RunnableConfig | None, call_id: str | None) -> Any:
        """The wrapped tool's response, moderated, in the shape BaseTool.run expects from ``_run``."""
        pair = self.response_format == "content_and_artifact"
        if pair and not (isinstance(response, tuple) and len(response) == 2):
            return response  # BaseTool.run fails the run with a ValueError that names only the type
        content, artifact = response if pair else (response, None)
        moderated, verdicts = self.output_guard.moderate_output_with_verdicts(content, config, tool=self.name)
        if any(verdict.dropped for verdict in verdicts):
            moderated = self._blocked(moderated, artifact, call_id)
        return (moderated, artifact) if pair else moderated

    def _blocked(self, content: Any, artifact: Any, call_id: str | None) -> Any:
        # A ToolMessage returned as is by BaseTool.run: the notice reaches the model as a tool error, the way a
        # handled ToolException or LangGraph's ToolNode reports one. Without a call id there is no message to
        # carry a status, and BaseTool returns the notice itself (as it does for handle_tool_error).
        if isinstance(content, ToolMessage):
            return content.model_copy(update={"status": "error"})
        if call_id is None:
            return content
        return _format_output(content, artifact, call_id, self.name, "error")

    def _moderated_error(self, error: ToolException, config: RunnableConfig | None) -> ToolException:
        """The wrapped tool's ToolException with its message moderated (handle_tool_error shows it to the model)."""
        if not error.args:
            return error
        args = tuple(self.output_guard.moderate_output(arg, config, tool=self.name) for arg in error.args)
        # Same type and attributes without calling __init__ (a subclass may take other arguments), so a
        # handle_tool_error callable or an except clause still sees the tool's own exception type.
        try:
            moderated = type(error).__new__(type(error))
            moderated.__dict__.update(error.__dict__)
        except Exception:  # noqa: BLE001 - an exception type that cannot be built so: keep the base type
            moderated = ToolException()
        moderated.args = args
        return moderated


def _rewrap(tool: Any, output_guard: Any) -> GuardedTool:
    if isinstance(tool, _InferredTool):
        tool = tool.build()
    return GuardedTool.around(tool, output_guard)


class _InferredTool:
    """A ``StructuredTool`` whose argument schema was inferred from its function: pickled as the function
    (which must be importable) and its settings, and built again with the same inference."""

    def __init__(self, tool: Any) -> None:
        self.func, self.coroutine = tool.func, tool.coroutine
        self.fields = {name: getattr(tool, name) for name in type(tool).model_fields
                       if name not in ("func", "coroutine", "args_schema")}

    def build(self) -> BaseTool:
        from langchain_core.tools import StructuredTool  # loaded only when a guarded tool is unpickled

        fields = dict(self.fields)
        tool = StructuredTool.from_function(func=self.func, coroutine=self.coroutine, name=fields.pop("name"),
                                            description=fields.pop("description"),
                                            return_direct=fields.pop("return_direct"),
                                            response_format=fields.pop("response_format"))
        return tool.model_copy(update=fields)


def _portable(tool: BaseTool) -> Any:
    """``tool`` itself when it pickles by reference; a recipe for a ``StructuredTool`` with an inferred schema."""
    from langchain_core.tools import StructuredTool  # not at import time: only pickling needs it

    schema = getattr(tool, "args_schema", None)
    if isinstance(tool, StructuredTool) and isinstance(schema, type):
        try:
            pickle.dumps(schema)
        except (pickle.PicklingError, AttributeError, TypeError):
            return _InferredTool(tool)
    return tool


#: Private key _to_args_and_kwargs uses to hand the tool call id to _run (BaseTool.run keeps it to itself).
_CALL_ID = "__modchain_tool_call_id__"


def _inner_kwargs(method: Any, kwargs: dict[str, Any], config: RunnableConfig | None,
                  run_manager: Any) -> dict[str, Any]:
    """What BaseTool.run gives a tool's ``_run``: the run manager and the config, where its signature asks."""
    if run_manager is not None and "run_manager" in inspect.signature(method).parameters:
        kwargs["run_manager"] = run_manager
    if config_param := _get_runnable_config_param(method):
        kwargs[config_param] = config
    return kwargs
