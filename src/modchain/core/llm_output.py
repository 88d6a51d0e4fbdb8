"""The text of an LLM's answer, whatever LangChain shape it came in (light: no model libraries)."""

from __future__ import annotations

from typing import Any


def answer_text(output: Any) -> str | None:
    """A string, or a message's string content, or the text blocks of list content joined by newlines
    (reasoning and tool blocks skipped); ``None`` when the output holds no text."""
    if isinstance(output, str):
        return output
    content = getattr(output, "content", None)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content
                         if isinstance(p, str) or (isinstance(p, dict) and p.get("type") == "text"))
    return None
