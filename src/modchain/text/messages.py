"""Take any LangChain-shaped input apart into texts, and put it back together in the same shape.

Accepted: ``str``, a dict holding the text under ``input_key``, ``StringPromptValue``, ``ChatPromptValue``,
a single message (what a chat model returns) and lists of messages. Every message is checked, not only the
last, and multi-part message content (text parts next to images) has each text part checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import ChatPromptValue, StringPromptValue

from modchain.core.errors import InputError


@dataclass
class Unpacked:
    """The texts of an input and how to rebuild the input from (sanitized) texts."""

    texts: list[str]
    rebuild: Callable[[Sequence[str]], Any]


def unpack(value: Any, input_key: str = "input") -> Unpacked:
    if isinstance(value, str):
        return Unpacked([value], lambda texts: texts[0])
    if isinstance(value, StringPromptValue):
        return Unpacked([value.text], lambda texts: StringPromptValue(text=texts[0]))
    if isinstance(value, ChatPromptValue):
        inner = _unpack_messages(value.messages)
        return Unpacked(inner.texts, lambda texts: ChatPromptValue(messages=inner.rebuild(texts)))
    if isinstance(value, BaseMessage):
        inner = _unpack_messages([value])
        return Unpacked(inner.texts, lambda texts: inner.rebuild(texts)[0])
    if isinstance(value, (list, tuple)) and all(isinstance(m, BaseMessage) for m in value):
        inner = _unpack_messages(value)
        kind = type(value)
        return Unpacked(inner.texts, lambda texts: kind(inner.rebuild(texts)))
    if isinstance(value, dict):
        if input_key not in value:
            raise InputError(
                f"dict input has no {input_key!r} key (keys: {sorted(map(str, value))}); "
                "pass input_key=... to moderate another key"
            )
        inner = unpack(value[input_key], input_key)
        return Unpacked(inner.texts, lambda texts: {**value, input_key: inner.rebuild(texts)})
    raise InputError(
        f"cannot moderate a {type(value).__name__}: expected str, dict, PromptValue, a message or a list of messages"
    )


def _unpack_messages(messages: Sequence[BaseMessage]) -> Unpacked:
    texts: list[str] = []
    # For each message: None when its content is a string, else the positions of its text parts.
    layout: list[list[int] | None] = []
    for message in messages:
        content = message.content
        if isinstance(content, str):
            texts.append(content)
            layout.append(None)
            continue
        positions = []
        for position, part in enumerate(content):
            text = _part_text(part)
            if text is not None:
                texts.append(text)
                positions.append(position)
        layout.append(positions)

    def rebuild(new_texts: Sequence[str]) -> list[BaseMessage]:
        it = iter(new_texts)
        rebuilt = []
        for message, positions in zip(messages, layout):
            if positions is None:
                content: Any = next(it)
            else:
                content = list(message.content)
                for position in positions:
                    content[position] = _with_text(content[position], next(it))
            if content == message.content:
                rebuilt.append(message)  # untouched: keep the very same object
            else:
                rebuilt.append(message.model_copy(update={"content": content}))
        return rebuilt

    return Unpacked(texts, rebuild)


def _part_text(part: Any) -> str | None:
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
        return part["text"]
    return None


def _with_text(part: Any, text: str) -> Any:
    return text if isinstance(part, str) else {**part, "text": text}
