"""Where a streamed message chunk carries a model's reasoning ("thinking"), in the shapes providers use.

Providers put reasoning in different places, and a guard that is told to moderate or drop it must find all
of them:

* content blocks: LangChain's ``{"type": "reasoning", "reasoning": ...}``, Anthropic's ``{"type":
  "thinking", "thinking": ...}`` (and ``redacted_thinking``, encrypted: nothing to read), OpenAI's
  ``{"type": "reasoning", "summary": [{"text": ...}]}``, Bedrock Converse's ``{"type": "reasoning_content",
  "reasoning_content": {"text": ...}}``, Mistral's ``{"type": "thinking", "thinking": [{"text": ...}]}``;
* ``additional_kwargs["reasoning_content"]`` (Ollama, DeepSeek, xAI, Groq) and ``additional_kwargs
  ["reasoning"]`` (older OpenAI integrations).

Text is read from the text-bearing keys of those structures, at any depth; signatures, ids and encrypted
data are never text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.messages import BaseMessage

REASONING_BLOCK_TYPES = frozenset({"reasoning", "thinking", "redacted_thinking", "reasoning_content"})
REASONING_KWARGS = ("reasoning_content", "reasoning")
_TEXT_KEYS = frozenset({"text", "reasoning", "thinking", "reasoning_content", "summary", "content"})

# A text part is found by its path from the message's fields: ("content", 2, "summary", 0, "text") is the
# text of the first summary item of the third content block; ("additional_kwargs", "reasoning_content").
Path = tuple[Any, ...]


def is_reasoning_block(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") in REASONING_BLOCK_TYPES


def reasoning_strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """Every readable string in a reasoning structure, in order, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from reasoning_strings(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in _TEXT_KEYS:
                yield from reasoning_strings(item, (*path, key))


def kwargs_reasoning(message: BaseMessage) -> list[tuple[Path, str]]:
    """The reasoning text a provider put in ``additional_kwargs`` (it comes before the answer)."""
    kwargs = getattr(message, "additional_kwargs", None) or {}
    return [part for key in REASONING_KWARGS if key in kwargs
            for part in reasoning_strings(kwargs[key], ("additional_kwargs", key))]


def has_reasoning(chunk: Any) -> bool:
    if not isinstance(chunk, BaseMessage):
        return False
    kwargs = chunk.additional_kwargs or {}
    return any(key in kwargs for key in REASONING_KWARGS) or (
        isinstance(chunk.content, list) and any(is_reasoning_block(part) for part in chunk.content))


def without_reasoning(chunk: Any) -> Any:
    """``chunk`` with its reasoning blocks and reasoning ``additional_kwargs`` removed (a copy)."""
    if not has_reasoning(chunk):
        return chunk
    update: dict[str, Any] = {
        "additional_kwargs": {k: v for k, v in chunk.additional_kwargs.items() if k not in REASONING_KWARGS}}
    if isinstance(chunk.content, list):
        update["content"] = [part for part in chunk.content if not is_reasoning_block(part)]
    return chunk.model_copy(update=update)
