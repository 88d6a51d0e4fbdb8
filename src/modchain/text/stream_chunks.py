"""The text of a streamed chunk, and the same chunk with (equal-length) redacted text put back.

A stream guard hands every chunk on as the type it came in: ``str`` chunks stay ``str``; message chunks
(``AIMessageChunk`` from chat models) keep their id, metadata, usage and tool-call chunks, with only their
text replaced. Content made of blocks (``[{"type": "text", "text": ...}, ...]``) is read from its text
blocks and plain strings; other blocks (images, tool use) pass through unchanged.

Reasoning blocks (a model's "thinking": LangChain's ``{"type": "reasoning", "reasoning": ...}``, Anthropic's
``{"type": "thinking", "thinking": ...}``, OpenAI's ``summary`` lists) are what :class:`ChunkText`'s
``reasoning`` setting says: ``pass`` (handed on unread, as tool-call chunks are: an application that shows
them to users should choose one of the others), ``moderate`` (read as stream text, in order with the answer,
checked and redacted like it) or ``drop`` (removed from every chunk before anything else happens).
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.messages import BaseMessage, BaseMessageChunk

from modchain.core.errors import InputError

REASONING_TYPES = frozenset({"reasoning", "thinking", "redacted_thinking"})
ReasoningMode = Literal["pass", "moderate", "drop"]

# A text part is found by its path in the content list: (position,) for a plain string, (position, key) for a
# block's text, (position, "summary", item, "text") for one item of a reasoning summary.
Path = tuple[Any, ...]


def _text_parts(content: list[Any], reasoning: bool = False) -> list[tuple[Path, str]]:
    parts: list[tuple[Path, str]] = []
    for position, part in enumerate(content):
        if isinstance(part, str):
            parts.append(((position,), part))
        elif not isinstance(part, dict):
            continue
        elif part.get("type") == "text" and isinstance(part.get("text"), str):
            parts.append(((position, "text"), part["text"]))
        elif reasoning and part.get("type") in REASONING_TYPES:
            parts.extend(((position, key), part[key]) for key in ("reasoning", "thinking")
                         if isinstance(part.get(key), str))
            summary = part.get("summary")
            if isinstance(summary, list):
                parts.extend(((position, "summary", item, "text"), entry["text"])
                             for item, entry in enumerate(summary)
                             if isinstance(entry, dict) and isinstance(entry.get("text"), str))
    return parts


def _replaced(value: Any, path: Path, new: str) -> Any:
    """A copy of ``value`` with the string at ``path`` replaced (containers copied on the way, never mutated)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, list):
        copy = list(value)
        copy[head] = _replaced(value[head], rest, new)
        return copy
    return {**value, head: _replaced(value[head], rest, new)}


def chunk_text(chunk: Any, reasoning: bool = False) -> str:
    """The moderated text of one chunk ('' for chunks without text, e.g. a final usage-only chunk);
    ``reasoning``: the text of reasoning blocks too."""
    if isinstance(chunk, str):
        return chunk
    if isinstance(chunk, BaseMessage):
        content = chunk.content
        if isinstance(content, str):
            return content
        return "".join(text for _, text in _text_parts(content, reasoning))
    raise InputError(
        f"cannot moderate a stream of {type(chunk).__name__}: expected str chunks or message chunks "
        "(put the stream guard before an output parser that builds other objects)"
    )


def with_text(chunk: Any, text: str, reasoning: bool = False) -> Any:
    """``chunk`` with its text replaced by ``text`` of the same length (a redacted copy)."""
    if isinstance(chunk, str):
        return text
    content = chunk.content
    if isinstance(content, str):
        return chunk.model_copy(update={"content": text})
    rebuilt: Any = list(content)
    cursor = 0
    for path, old in _text_parts(content, reasoning):
        rebuilt = _replaced(rebuilt, path, text[cursor : cursor + len(old)])
        cursor += len(old)
    return chunk.model_copy(update={"content": rebuilt})


def has_reasoning(chunk: Any) -> bool:
    return isinstance(chunk, BaseMessage) and isinstance(chunk.content, list) and any(
        isinstance(part, dict) and part.get("type") in REASONING_TYPES for part in chunk.content)


class ChunkText:
    """Reads and rewrites the text of chunks for one stream guard, per its ``reasoning`` setting."""

    def __init__(self, reasoning: ReasoningMode = "pass") -> None:
        self.reasoning = reasoning
        self._read = reasoning == "moderate"

    def prepare(self, chunk: Any) -> Any:
        """The chunk as the guard handles it: without its reasoning blocks under ``drop``."""
        if self.reasoning != "drop" or not has_reasoning(chunk):
            return chunk
        kept = [part for part in chunk.content
                if not (isinstance(part, dict) and part.get("type") in REASONING_TYPES)]
        return chunk.model_copy(update={"content": kept})

    def text(self, chunk: Any) -> str:
        return chunk_text(chunk, self._read)

    def with_text(self, chunk: Any, text: str) -> Any:
        return with_text(chunk, text, self._read)

    def splittable(self, chunk: Any) -> bool:
        """Whether a held chunk may be cut at the release point. A chunk with moderated reasoning is held
        whole: its blocks carry fields (signatures, ids) that adding two halves back up would double."""
        return splittable(chunk) and not (self._read and has_reasoning(chunk))


#: What a head piece of a split message chunk leaves to its tail, so merged pieces count them once.
_ONCE = {"additional_kwargs": {}, "response_metadata": {}, "tool_calls": [], "invalid_tool_calls": [],
         "tool_call_chunks": [], "usage_metadata": None, "chunk_position": None}


def splittable(chunk: Any) -> bool:
    """Pieces of a str or message *chunk* add up again; a whole message (not a chunk) is never cut."""
    return isinstance(chunk, (str, BaseMessageChunk))


def split_chunk(chunk: Any, at: int) -> tuple[Any, Any]:
    """``chunk`` cut after ``at`` characters of its text, as two chunks of its type. The head carries
    only text (and the message id); usage, metadata, tool-call chunks and non-text blocks stay with the
    tail, so adding the pieces up gives back the chunk."""
    if isinstance(chunk, str):
        return chunk[:at], chunk[at:]
    content = chunk.content
    if isinstance(content, str):
        head_content: Any = content[:at]
        tail_content: Any = content[at:]
    else:
        head_content, tail_content = [], []
        cursor = 0
        texts = {path[0]: text for path, text in _text_parts(content)}
        for position, part in enumerate(content):
            if position not in texts:
                tail_content.append(part)
                continue
            text = texts[position]
            cut = min(max(at - cursor, 0), len(text))
            cursor += len(text)
            for side, piece in ((head_content, text[:cut]), (tail_content, text[cut:])):
                if piece:
                    side.append(piece if isinstance(part, str) else {**part, "text": piece})
    fields = type(chunk).model_fields
    head = chunk.model_copy(update={"content": head_content, **{k: v for k, v in _ONCE.items() if k in fields}})
    return head, chunk.model_copy(update={"content": tail_content})


def join_chunks(chunks: list[Any]) -> Any:
    """What ``invoke`` returns for a stream: the chunks added up (``str`` joined, message chunks merged)."""
    if not chunks:
        return ""
    if all(isinstance(c, str) for c in chunks):
        return "".join(chunks)
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total
