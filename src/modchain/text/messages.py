"""Take any LangChain-shaped input apart into texts, and put it back together in the same shape.

Accepted: ``str``, a dict holding the text under ``input_key``, ``StringPromptValue``, ``ChatPromptValue``,
a single message (what a chat model returns) and lists of messages. Every message is checked, not only the
last, and every string in it that a model or a tool could act on: each text part of multi-part content in
any known block type (see ``message_parts``), reasoning and its summaries, tool-call names and arguments
(``tool_calls``, ``invalid_tool_calls``, ``tool_call_chunks``, ``tool_use`` blocks, the legacy
``additional_kwargs["function_call"]``), and the message ``name``. Sanitized texts are put back in place.
A block that cannot be interpreted, or nesting deeper than ``MAX_NESTING_DEPTH``, raises ``InputError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import ChatPromptValue, StringPromptValue

from modchain.core.errors import InputError
from modchain.text.message_parts import MAX_NESTING_DEPTH, Path, content_texts, patch, structured_texts


@dataclass
class Unpacked:
    """The texts of an input and how to rebuild the input from (sanitized) texts."""

    texts: list[str]
    rebuild: Callable[[Sequence[str]], Any]


def unpack(value: Any, input_key: str = "input") -> Unpacked:
    """Texts of ``value`` and how to rebuild it; ``InputError`` for anything that cannot be fully checked."""
    unpacked = _unpack(value, input_key, 0)
    for index, text in enumerate(unpacked.texts):
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                # Lone surrogates (e.g. from json.loads of broken escapes) cannot be sent anywhere.
                raise InputError(f"text {index} contains unpaired surrogate characters, which are not valid "
                                 "Unicode; decode the input correctly first") from None
    return unpacked


def _unpack(value: Any, input_key: str, depth: int) -> Unpacked:
    if depth > MAX_NESTING_DEPTH:
        raise InputError(f"dict input nests {input_key!r} more than {MAX_NESTING_DEPTH} levels deep")
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
        inner = _unpack(value[input_key], input_key, depth + 1)
        return Unpacked(inner.texts, lambda texts: {**value, input_key: inner.rebuild(texts)})
    raise InputError(
        f"cannot moderate a {type(value).__name__}: expected str, dict, PromptValue, a message or a list of messages"
    )


def _unpack_messages(messages: Sequence[BaseMessage]) -> Unpacked:
    texts: list[str] = []
    # Per message: the paths of its texts, e.g. ("content",), ("content", 2, "text"),
    # ("tool_calls", 0, "args", "query") (see message_parts for the path steps).
    layout: list[list[Path]] = []
    for number, message in enumerate(messages):
        paths = []
        for path, text in _message_texts(message, f"message {number}"):
            texts.append(text)
            paths.append(path)
        layout.append(paths)

    originals = tuple(texts)  # callers sanitize ``texts`` in place; compare against what was there

    def rebuild(new_texts: Sequence[str]) -> list[BaseMessage]:
        olds_and_news = iter(zip(originals, new_texts))
        rebuilt = []
        for message, paths in zip(messages, layout):
            changes: dict[str, list[tuple[Path, str]]] = {}
            for path in paths:
                old, new = next(olds_and_news)
                if new != old:
                    changes.setdefault(path[0], []).append((path[1:], new))
            update = {name: _patched(getattr(message, name), field_changes)
                      for name, field_changes in changes.items()}
            # Untouched messages stay the very same objects; the caller's message is never mutated.
            rebuilt.append(message.model_copy(update=update) if update else message)
        return rebuilt

    return Unpacked(texts, rebuild)


def _patched(value: Any, changes: list[tuple[Path, str]]) -> Any:
    if len(changes) == 1 and not changes[0][0]:
        return changes[0][1]  # the field is the text itself (string content, the name)
    return patch(value, changes)


# Message fields read besides ``content``, in this order. Tool calls carry what a tool will act on; the
# legacy OpenAI ``function_call``, raw ``tool_calls``, refusals and reasoning live in ``additional_kwargs``.
# Not read: ``id``, ``tool_call_id`` and ``response_metadata`` (identifiers and provider metadata a model
# never reads as text) and ``ToolMessage.artifact`` (kept for the application, never sent to a model).
_CALL_FIELDS = ("tool_calls", "invalid_tool_calls", "tool_call_chunks")


def _message_texts(message: BaseMessage, where: str) -> list[tuple[Path, str]]:
    found = list(content_texts(message.content, ("content",), f"{where}, content"))
    for field in _CALL_FIELDS:
        calls = getattr(message, field, None) or []
        for index, call in enumerate(calls):
            if not isinstance(call, dict):
                raise InputError(f"{where}, {field} {index} is a {type(call).__name__}, not a dict")
            found.extend(structured_texts(call, (field, index), f"{where}, {field} {index}", 1))
    kwargs = getattr(message, "additional_kwargs", None)
    if kwargs:
        found.extend(structured_texts(kwargs, ("additional_kwargs",), f"{where}, additional_kwargs", 1))
    if isinstance(message.name, str):
        found.append((("name",), message.name))
    return found
