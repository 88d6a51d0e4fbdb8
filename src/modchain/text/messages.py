"""Take any LangChain-shaped input apart into texts, and put it back together in the same shape.

Accepted: ``str``, a dict holding the text under ``input_key``, ``StringPromptValue``, ``ChatPromptValue``,
a single message (what a chat model returns) and lists of messages. Every message is checked, not only the
last: each text part of multi-part content, reasoning blocks, and every string in tool-call arguments
(``tool_calls`` and ``tool_use`` blocks), since a tool acts on those.
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
    unpacked = _unpack(value, input_key)
    for index, text in enumerate(unpacked.texts):
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                # Lone surrogates (e.g. from json.loads of broken escapes) cannot be sent anywhere.
                raise InputError(f"text {index} contains unpaired surrogate characters, which are not valid "
                                 "Unicode; decode the input correctly first") from None
    return unpacked


def _unpack(value: Any, input_key: str) -> Unpacked:
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
        inner = _unpack(value[input_key], input_key)
        return Unpacked(inner.texts, lambda texts: {**value, input_key: inner.rebuild(texts)})
    raise InputError(
        f"cannot moderate a {type(value).__name__}: expected str, dict, PromptValue, a message or a list of messages"
    )


def _unpack_messages(messages: Sequence[BaseMessage]) -> Unpacked:
    texts: list[str] = []
    # Per message: the paths of its texts, e.g. ("content",), ("content", 2, "text"),
    # ("tool_calls", 0, "args", "query"). Tool-call arguments are text a tool will act on: checked too.
    layout: list[list[tuple[Any, ...]]] = []
    for message in messages:
        paths = []
        for path, text in _message_texts(message):
            texts.append(text)
            paths.append(path)
        layout.append(paths)

    def rebuild(new_texts: Sequence[str]) -> list[BaseMessage]:
        it = iter(new_texts)
        rebuilt = []
        for message, paths in zip(messages, layout):
            fields = {"content": message.content, "tool_calls": getattr(message, "tool_calls", None)}
            for path in paths:
                fields[path[0]] = _replace(fields[path[0]], path[1:], next(it))
            update = {k: v for k, v in fields.items() if v is not None and v != getattr(message, k, None)}
            # Untouched messages stay the very same objects.
            rebuilt.append(message.model_copy(update=update) if update else message)
        return rebuilt

    return Unpacked(texts, rebuild)


_BLOCK_TEXT_KEYS = {"text": ("text",), "reasoning": ("reasoning", "text"), "thinking": ("thinking",)}


def _message_texts(message: BaseMessage) -> list[tuple[tuple[Any, ...], str]]:
    content = message.content
    found: list[tuple[tuple[Any, ...], str]] = []
    if isinstance(content, str):
        found.append((("content",), content))
    else:
        for position, part in enumerate(content):
            if isinstance(part, str):
                found.append((("content", position), part))
            elif isinstance(part, dict):
                for key in _BLOCK_TEXT_KEYS.get(part.get("type", ""), ()):
                    if isinstance(part.get(key), str):
                        found.append((("content", position, key), part[key]))
                if part.get("type") == "tool_use":
                    found.extend((("content", position, "input", *p), t) for p, t in _leaves(part.get("input")))
    for index, call in enumerate(getattr(message, "tool_calls", None) or []):
        found.extend((("tool_calls", index, "args", *p), t) for p, t in _leaves(call.get("args")))
    return found


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """Every string inside nested dicts and lists, with its path."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _leaves(item, (*path, index))]
    return []


def _replace(value: Any, path: tuple[Any, ...], new: str) -> Any:
    """A copy of ``value`` with the string at ``path`` replaced (copies only along the path)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, list):
        copy = list(value)
    else:
        copy = dict(value)
    copy[head] = _replace(value[head], rest, new)
    return copy
