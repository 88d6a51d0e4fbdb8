"""Find every text inside message content blocks; patch sanitized texts back in, copying only what changed.

A content block is read by its ``type``. Known types are walked key by key: every string is a text to check
except the keys in ``OPAQUE_KEYS`` (identifiers, media types, URLs, binary payloads, signatures), which are
not text a model reads. Free-form payloads (tool arguments, ``non_standard`` values, server tool output) are
walked in full, opaque-looking keys included, since a tool acts on every value in them. A block whose type
is not known raises ``InputError``: what cannot be interpreted cannot be checked, so it never passes.

Strings that carry text in an encoding are decoded, checked and re-encoded on rebuild: JSON in free-form
strings (``arguments``, string ``args``, ``partial_json``, ``output``...) and base64 payloads of ``text/*``
media. A path into a message is a tuple of steps: a key or index, ``Codec(...)`` (decode the string here),
or ``KeyOf(key)`` (the dict key itself, for free-form keys that are not plain identifiers).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from modchain.core.errors import InputError

# Deeper than any real message (standard content nests about 6 levels; tool arguments rarely pass 20), and
# far enough below Python's recursion limit that the recursive walk and patch below can never hit it.
MAX_NESTING_DEPTH = 100

# Every content-block type the walk can interpret: LangChain standard content (v1), OpenAI Chat Completions
# and Responses, Anthropic, Bedrock Converse and Google blocks. Anything else is an InputError.
KNOWN_BLOCK_TYPES = frozenset({
    # text and reasoning
    "text", "input_text", "output_text", "text-plain", "refusal", "reasoning", "summary_text",
    "reasoning_text", "thinking", "redacted_thinking",
    # tools, client and server side
    "tool_call", "tool_call_chunk", "invalid_tool_call", "server_tool_call", "server_tool_call_chunk",
    "server_tool_result", "tool_use", "tool_result", "server_tool_use", "web_search_tool_result",
    "web_search_result", "search_result", "function_call", "function_call_output", "custom_tool_call",
    "custom_tool_call_output", "mcp_tool_use", "mcp_tool_result", "executable_code", "code_execution_result",
    # media and documents: only their text fields are text (see OPAQUE_KEYS)
    "image", "image_url", "input_image", "audio", "input_audio", "video", "file", "input_file", "document",
    "media",
    # provider payloads without a standard type: walked in full
    "non_standard",
})

# Keys of content blocks whose values are not text a model reads: identifiers, media metadata, locations and
# binary payloads. Image, audio, video and file data is moderated by the image components, not here (README).
OPAQUE_KEYS = frozenset({
    "type", "id", "index", "tool_call_id", "tool_use_id", "call_id", "mime_type", "media_type", "format",
    "source_type", "detail", "status", "cache_control", "signature", "encrypted_content", "file_id", "url",
    "image_url", "file_url", "file_data", "uri", "s3Location", "base64", "data", "bytes", "page_age",
})

# Values under these keys are free-form payloads a tool or provider acts on: every string in them is checked.
# A string value here is often JSON (tool arguments, tool output): it is decoded, so that JSON escapes cannot
# hide text from a check, and re-encoded on rebuild.
FREE_FORM_KEYS = frozenset({"args", "input", "arguments", "partial_json", "value", "output", "parsed"})
_TEXT_FORMATS = frozenset({"txt", "md", "csv", "html", "json", "xml"})
# Free-form dict keys a tool takes as parameter names. Others (spaces, digits first, long) are checked too.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

Path = tuple[Any, ...]


@dataclass(frozen=True)
class Codec:
    """A path step: the string here is encoded text (``json`` or ``base64``); decode to go further."""

    name: str


@dataclass(frozen=True)
class KeyOf:
    """A path step: the dict key itself (not its value) is the text."""

    key: str


def _too_deep(where: str) -> InputError:
    return InputError(f"{where} is nested more than {MAX_NESTING_DEPTH} levels deep, more than any message "
                      "needs; flatten it (modchain.text.message_parts.MAX_NESTING_DEPTH)")


def content_texts(content: Any, path: Path, where: str, depth: int = 0) -> Iterator[tuple[Path, str]]:
    """Texts of a message's ``content``: a string, or a list of strings, content blocks and nested lists."""
    if depth > MAX_NESTING_DEPTH:
        raise _too_deep(where)
    if isinstance(content, str):
        yield path, content
        return
    if not isinstance(content, (list, tuple)):
        raise InputError(f"{where} is a {type(content).__name__}, not a string or a list of content blocks")
    for position, part in enumerate(content):
        if isinstance(part, dict):
            yield from block_texts(part, (*path, position), f"{where}, block {position}", depth + 1)
        else:
            yield from content_texts(part, (*path, position), f"{where}, block {position}", depth + 1)


def block_texts(block: dict[Any, Any], path: Path, where: str, depth: int) -> Iterator[tuple[Path, str]]:
    kind = block.get("type")
    if kind is None:
        # A typeless block is read as text only if it carries a text; otherwise its keys mean nothing.
        if not isinstance(block.get("text"), (str, list)):
            raise InputError(f"{where} has no 'type' and no 'text': cannot tell what it holds, so it cannot "
                             "be moderated; give it a standard type (e.g. 'text')")
    elif not isinstance(kind, str) or kind not in KNOWN_BLOCK_TYPES:
        # The type itself is caller data: never quoted.
        raise InputError(f"{where} has a content-block type this chain cannot interpret, so it cannot be "
                         "moderated; use a standard type (modchain.text.message_parts.KNOWN_BLOCK_TYPES) "
                         "or remove the block")
    yield from structured_texts(block, path, where, depth)


def structured_texts(node: Any, path: Path, where: str, depth: int) -> Iterator[tuple[Path, str]]:
    """A block or a dict in one: strings are texts, except opaque keys; free-form keys are walked in full."""
    if depth > MAX_NESTING_DEPTH:
        raise _too_deep(where)
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, (list, tuple)):
        for index, item in enumerate(node):
            yield from structured_texts(item, (*path, index), where, depth + 1)
    elif isinstance(node, dict):
        for key, value in node.items():
            step = (*path, key)
            if key in FREE_FORM_KEYS:
                yield from free_form(value, step, where, depth + 1, json_string=True)
            elif key == "image_url" and isinstance(value, dict):
                # OpenAI {"image_url": {"url": ..., "detail": ...}}: the location is opaque, other text not.
                yield from structured_texts(value, step, where, depth + 1)
            elif key in OPAQUE_KEYS:
                yield from _opaque_text(node, key, value, step, where)
            else:
                yield from structured_texts(value, step, where, depth + 1)
    # Numbers, booleans, None and other scalars hold no text.


def _is_text_media(node: dict[Any, Any]) -> bool:
    media = node.get("mime_type") or node.get("media_type") or ""
    return node.get("type") == "text-plain" or (isinstance(media, str) and media.startswith("text/"))


def _opaque_text(node: dict[Any, Any], key: Any, value: Any, path: Path,
                 where: str) -> Iterator[tuple[Path, str]]:
    """Text that travels in an otherwise opaque field: a text source, or text media in base64 or bytes."""
    if key == "data" and isinstance(value, str) and "text" in (node.get("type"), node.get("source_type")):
        yield path, value  # an Anthropic {"type": "text", "media_type": "text/plain", "data": ...} source
    elif key in ("data", "base64") and isinstance(value, str) and _is_text_media(node):
        yield (*path, Codec("base64")), _decode_base64(value, where)
    elif key == "bytes" and isinstance(value, (bytes, bytearray)) and (
            _is_text_media(node) or node.get("format") in _TEXT_FORMATS):
        yield (*path, Codec("utf-8")), _decode_utf8(bytes(value), where)


def free_form(value: Any, path: Path, where: str, depth: int,
              json_string: bool = False) -> Iterator[tuple[Path, str]]:
    """Every string in a payload a tool acts on: values, non-identifier keys, JSON inside argument strings."""
    if depth > MAX_NESTING_DEPTH:
        raise _too_deep(where)
    if isinstance(value, str):
        decoded = _decode_json(value, where) if json_string else None
        if decoded is None:
            yield path, value
        else:
            yield from free_form(decoded[0], (*path, Codec("json")), where, depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from free_form(item, (*path, index), where, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not _IDENTIFIER.fullmatch(key):
                yield (*path, KeyOf(key)), key
            yield from free_form(item, (*path, key), where, depth + 1)


def _decode_json(text: str, where: str) -> tuple[Any] | None:
    """The decoded JSON in ``text`` (in a 1-tuple), or None when it is not JSON (then it is checked raw)."""
    stripped = text.strip()
    if not stripped or stripped[0] not in '{["':
        return None  # numbers, literals and plain prose: nothing hides in them, checked as they are

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            # The raw string would keep a value the decoded arguments drop: neither reading is safe to check.
            raise InputError(f"{where}: JSON arguments repeat a key, so what a tool receives is ambiguous")
        return dict(pairs)

    try:
        return (json.loads(text, object_pairs_hook=unique),)
    except RecursionError:
        raise _too_deep(where) from None
    except ValueError:
        return None  # partial JSON (a streamed chunk, an invalid tool call): the raw string is checked


def _decode_base64(value: str, where: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InputError(f"{where} declares text media but its base64 data is not UTF-8 text in base64; "
                         "it cannot be moderated") from None


def _decode_utf8(value: bytes, where: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{where} declares a text document but its bytes are not UTF-8; "
                         "it cannot be moderated") from None


# -- rebuild -------------------------------------------------------------------------------------------------

def patch(value: Any, changes: Iterable[tuple[Path, str]]) -> Any:
    """``value`` with each string at a path replaced; containers are copied only along changed paths."""
    trie: dict[Any, Any] = {}
    for path, new in changes:
        node = trie
        for step in path[:-1]:
            node = node.setdefault(step, {})
        node[path[-1]] = _Leaf(new)
    return _apply(value, trie)


@dataclass(frozen=True)
class _Leaf:
    text: str


def _apply(value: Any, trie: dict[Any, Any]) -> Any:
    codec = next((step for step in trie if isinstance(step, Codec)), None)
    if codec is not None:
        sub = trie[codec]
        if codec.name == "json":
            inner = sub.text if isinstance(sub, _Leaf) else _apply(json.loads(value), sub)
            return json.dumps(inner, ensure_ascii=False)
        # base64 and utf-8 decode to one string, so what follows them is always a leaf.
        if codec.name == "base64":
            return base64.b64encode(sub.text.encode("utf-8")).decode("ascii")
        return sub.text.encode("utf-8")
    if isinstance(value, dict):
        renames = {step.key: sub.text for step, sub in trie.items() if isinstance(step, KeyOf)}
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if key in trie:
                sub = trie[key]
                item = sub.text if isinstance(sub, _Leaf) else _apply(item, sub)
            new_key = renames.get(key, key)
            if new_key in out or (new_key != key and new_key in value and new_key not in renames):
                raise InputError("two argument names are the same once sanitized; cannot rebuild them")
            out[new_key] = item
        return out
    if isinstance(value, (list, tuple)):
        items = list(value)
        for index, sub in trie.items():
            items[index] = sub.text if isinstance(sub, _Leaf) else _apply(items[index], sub)
        return type(value)(items) if isinstance(value, tuple) else items
    # Unreachable for paths the walk produced; kept so a bad path is a typed error, not a silent pass.
    raise InputError(f"cannot rebuild a {type(value).__name__} along a text path")
