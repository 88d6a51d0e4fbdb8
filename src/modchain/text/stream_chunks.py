"""The text of a streamed chunk, and the same chunk with (equal-length) redacted text put back.

A stream guard hands every chunk on as the type it came in: ``str`` chunks stay ``str``; message chunks
(``AIMessageChunk`` from chat models) keep their id, metadata, usage and tool-call chunks, with only their
text replaced. Content made of blocks (``[{"type": "text", "text": ...}, ...]``) is read from its text
blocks and plain strings; other blocks (images, tool use) pass through unchanged.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk

from modchain.core.errors import InputError


def _text_parts(content: list[Any]) -> list[tuple[int, str]]:
    parts = []
    for position, part in enumerate(content):
        if isinstance(part, str):
            parts.append((position, part))
        elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            parts.append((position, part["text"]))
    return parts


def chunk_text(chunk: Any) -> str:
    """The moderated text of one chunk ('' for chunks without text, e.g. a final usage-only chunk)."""
    if isinstance(chunk, str):
        return chunk
    if isinstance(chunk, BaseMessage):
        content = chunk.content
        if isinstance(content, str):
            return content
        return "".join(text for _, text in _text_parts(content))
    raise InputError(
        f"cannot moderate a stream of {type(chunk).__name__}: expected str chunks or message chunks "
        "(put the stream guard before an output parser that builds other objects)"
    )


def with_text(chunk: Any, text: str) -> Any:
    """``chunk`` with its text replaced by ``text`` of the same length (a redacted copy)."""
    if isinstance(chunk, str):
        return text
    content = chunk.content
    if isinstance(content, str):
        return chunk.model_copy(update={"content": text})
    rebuilt = list(content)
    cursor = 0
    for position, old in _text_parts(content):
        new = text[cursor : cursor + len(old)]
        cursor += len(old)
        part = content[position]
        rebuilt[position] = new if isinstance(part, str) else {**part, "text": new}
    return chunk.model_copy(update={"content": rebuilt})


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
        texts = dict(_text_parts(content))
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
