"""The text of a streamed chunk, and the same chunk with (equal-length) redacted text put back.

A stream guard hands every chunk on as the type it came in: ``str`` chunks stay ``str``; message chunks
(``AIMessageChunk`` from chat models) keep their id, metadata, usage and tool-call chunks, with only their
text replaced. Content made of blocks (``[{"type": "text", "text": ...}, ...]``) is read from its text
blocks and plain strings; other blocks (images, tool use) pass through unchanged.

A model's reasoning (:mod:`modchain.text.streaming.reasoning` finds it) is what :class:`ChunkText`'s
``reasoning`` setting says: ``pass`` (handed on unread, as tool-call chunks are: an application that shows
it to users should choose one of the others), ``moderate`` (read as stream text before the chunk's answer
text, checked and redacted like it) or ``drop`` (removed from every chunk before anything else happens).
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.messages import BaseMessage, BaseMessageChunk

from modchain.core.errors import InputError
from modchain.text.streaming.reasoning import (
    Path,
    has_reasoning,
    is_reasoning_block,
    kwargs_reasoning,
    reasoning_strings,
    without_reasoning,
)

ReasoningMode = Literal["pass", "moderate", "drop"]


def _content_parts(content: Any, reasoning: bool = False) -> list[tuple[Path, str]]:
    """The text parts of a message's content, with their paths from the message's fields."""
    if isinstance(content, str):
        return [(("content",), content)]
    parts: list[tuple[Path, str]] = []
    for position, part in enumerate(content):
        if isinstance(part, str):
            parts.append((("content", position), part))
        elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            parts.append((("content", position, "text"), part["text"]))
        elif reasoning and is_reasoning_block(part):
            parts.extend(reasoning_strings(part, ("content", position)))
    return parts


def _text_parts(message: BaseMessage, reasoning: bool) -> list[tuple[Path, str]]:
    # Reasoning a provider keeps beside the content is the thinking that comes before the answer.
    return (kwargs_reasoning(message) if reasoning else []) + _content_parts(message.content, reasoning)


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
    ``reasoning``: the model's reasoning too, first."""
    if isinstance(chunk, str):
        return chunk
    if isinstance(chunk, BaseMessage):
        if isinstance(chunk.content, str) and not reasoning:  # the usual chat-model token: no parts to walk
            return chunk.content
        return "".join(text for _, text in _text_parts(chunk, reasoning))
    raise InputError(
        f"cannot moderate a stream of {type(chunk).__name__}: expected str chunks or message chunks "
        "(put the stream guard before an output parser that builds other objects)"
    )


def with_text(chunk: Any, text: str, reasoning: bool = False) -> Any:
    """``chunk`` with its text replaced by ``text`` of the same length (a redacted copy)."""
    if isinstance(chunk, str):
        return text
    fields: Any = {"content": chunk.content, "additional_kwargs": chunk.additional_kwargs}
    cursor = 0
    for path, old in _text_parts(chunk, reasoning):
        fields = _replaced(fields, path, text[cursor : cursor + len(old)])
        cursor += len(old)
    return chunk.model_copy(update=fields)


class ChunkText:
    """Reads and rewrites the text of chunks for one stream guard, per its ``reasoning`` setting."""

    def __init__(self, reasoning: ReasoningMode = "pass") -> None:
        self.reasoning = reasoning
        self._read = reasoning == "moderate"

    def prepare(self, chunk: Any) -> Any:
        """The chunk as the guard handles it: without its reasoning under ``drop``."""
        return without_reasoning(chunk) if self.reasoning == "drop" else chunk

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
    """``chunk`` cut after ``at`` characters of its text, as two chunks of its type, in order: blocks before
    the cut go with the head, the rest with the tail. A cut text block keeps only its type and index in the
    head (so its annotations, citations and ids are not doubled when the pieces are added up); usage,
    metadata and tool-call chunks stay with the tail, so adding the pieces up gives back the chunk."""
    if isinstance(chunk, str):
        return chunk[:at], chunk[at:]
    content = chunk.content
    if isinstance(content, str):
        head_content: Any = content[:at]
        tail_content: Any = content[at:]
    else:
        head_content, tail_content = [], []
        cursor = 0
        texts = {path[1]: text for path, text in _content_parts(content)}
        for position, part in enumerate(content):
            text = texts.get(position, "")
            cut = min(max(at - cursor, 0), len(text))
            if not text or cut == len(text):  # a whole block on one side of the cut
                (head_content if cursor < at else tail_content).append(part)
            elif cut == 0:
                tail_content.append(part)
            elif isinstance(part, str):
                head_content.append(text[:cut])
                tail_content.append(text[cut:])
            else:
                head_content.append({**{k: part[k] for k in ("type", "index") if k in part}, "text": text[:cut]})
                tail_content.append({**part, "text": text[cut:]})
            cursor += len(text)
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
