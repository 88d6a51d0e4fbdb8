"""Retrieved documents (RAG) and tool results (agents): text the application did not write, moderated.

- :mod:`.guard`: :class:`DocumentGuard`, ``retriever | doc_guard`` (injection, toxicity, PII per document);
- :mod:`.report`: its config (:class:`DocumentGuardConfig`), per-document verdicts and :class:`DocumentReport`;
- :mod:`.cues`, :mod:`.injection`, :mod:`.injection_embedding`, :mod:`.injection_scoring`: how a page is
  read for a planted instruction (sentence windows, hand-written cues, the trained window model, the optional
  sentence-embedding head, and the choice between them);
- :mod:`.tool_guard`: :class:`ToolOutputGuard`, :func:`guard_tool` / :func:`guard_tools` for agent tools,
  with :mod:`.guarded_tool`, the tool they return;
- :mod:`.agent_middleware`: ``ModerationMiddleware`` for LangChain v1 agents. It imports langchain (and
  langgraph), so it loads only when ``ModerationMiddleware`` is first asked for.

``from modchain.text.documents import DocumentGuard`` keeps working now that this is a package (it was one
module). Patch names where they are used, in the submodule (``modchain.text.documents.guard``), not here.
"""

from modchain.text.documents.guard import REMOVED_NOTICE, DocumentGuard
from modchain.text.documents.report import DocumentGuardConfig, DocumentReport, DocumentVerdict
from modchain.text.documents.tool_guard import (
    ToolGuardConfig,
    ToolOutputGuard,
    ToolOutputViolation,
    guard_tool,
    guard_tools,
)


def __getattr__(name: str) -> object:
    # PEP 562: the agent middleware needs langchain and langgraph; a RAG-only service never loads them.
    if name == "ModerationMiddleware":
        from modchain.text.documents.agent_middleware import ModerationMiddleware

        return ModerationMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["REMOVED_NOTICE", "DocumentGuard", "DocumentGuardConfig", "DocumentReport", "DocumentVerdict",
           "ModerationMiddleware", "ToolGuardConfig", "ToolOutputGuard", "ToolOutputViolation", "guard_tool",
           "guard_tools"]
