"""Reversible anonymization: placeholders in, originals back out.

``guard | llm | restore`` sends the model ``[EMAIL_1_k3f9q2]`` instead of an address and gives the user their
own data back in the answer. Mappings live in a *scope* (one conversation or user). The same original within
a scope always gets the same placeholder, across turns, so the model sees a consistent conversation.
Thread-safe; old scopes are evicted least-recently-used so a long-running server does not grow without bound.

Placeholders are unforgeable. Each carries a random tag (``TAG_LENGTH`` characters from ``secrets``, never
derived from the text, fresh for every placeholder), so ``[EMAIL_1]`` typed by a user, or emitted by a model a
document told to, names nothing; neither does a placeholder minted in another scope, since restoring looks
the exact string up among the ones *this* scope minted. A placeholder-shaped string that arrives in text
being anonymized is left as it is and reserved, so the scope never mints that string later (a user cannot
plant a guess that a future placeholder would then turn into real data). A minted placeholder reproduced
verbatim is restored by design: only the model has seen it, and a model quoting it back across turns (an
agent's own tool call in the history) must keep working.

Scopes are type-strict: a scope is a ``str``; anything else raises :class:`ConfigurationError` rather than
being turned into one with ``str()`` (``conversation_id=1`` and ``"1"`` would otherwise share their data).
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from modchain.core.errors import ConfigurationError

#: Lowercase letters and digits without look-alikes (0/o, 1/l): short, and copied faithfully by models.
TAG_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
#: 6 characters of 32: 30 random bits per placeholder.
TAG_LENGTH = 6
#: Labels are cut to this length so the pattern below stays bounded (and restoring linear in the text).
MAX_LABEL = 48
#: Placeholder-shaped strings remembered per scope from anonymized input (memory stays bounded; past this,
#: a planted guess still has to hit one 30-bit tag).
MAX_RESERVED = 4096
#: What a minted placeholder looks like: ``[LABEL_N_tag]``. Every quantifier is bounded, so scanning is linear.
PLACEHOLDER_RE = re.compile(
    rf"\[[A-Z][A-Z0-9_]{{0,{MAX_LABEL - 1}}}_[1-9][0-9]{{0,9}}_[{TAG_ALPHABET}]{{{TAG_LENGTH}}}\]"
)
DEFAULT_SCOPE = "default"


def scope_key(scope: object) -> str:
    """``scope`` itself when it is a ``str``; anything else is refused (type-strict: ``1`` is not ``"1"``)."""
    if isinstance(scope, str):
        return str.__str__(scope)  # a str subclass (StrEnum) keys by its plain value
    # The message names the type only: conversation and user ids can be personal data.
    raise ConfigurationError(f"an anonymization scope (conversation_id, session_id, thread_id, unique_id) must "
                             f"be a str, not {type(scope).__name__}: pass str(id) if that is the scope you mean")


class _Scope:
    __slots__ = ("by_original", "by_placeholder", "counters", "reserved")

    def __init__(self) -> None:
        self.by_original: dict[tuple[str, str], str] = {}
        self.by_placeholder: dict[str, str] = {}
        self.counters: dict[str, int] = {}
        self.reserved: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, state[name])

    def reserve(self, text: str) -> set[str]:
        """Placeholder-shaped strings of ``text`` this scope did not mint; remembered (up to a bound)."""
        typed = {m.group(0) for m in PLACEHOLDER_RE.finditer(text)} - self.by_placeholder.keys()
        for found in typed:
            if len(self.reserved) >= MAX_RESERVED:
                break
            self.reserved.add(found)
        return typed

    def mint(self, original: str, label: str, avoid: set[str]) -> str:
        key = (label, original)
        found = self.by_original.get(key)
        if found is None:
            self.counters[label] = self.counters.get(label, 0) + 1
            while True:
                tag = "".join(secrets.choice(TAG_ALPHABET) for _ in range(TAG_LENGTH))
                found = f"[{label}_{self.counters[label]}_{tag}]"
                if found not in self.reserved and found not in avoid and found not in self.by_placeholder:
                    break
            self.by_original[key] = found
            self.by_placeholder[found] = original
        return found


def _label(label: str) -> str:
    label = re.sub(r"[^A-Z0-9_]", "_", label.upper())
    if not label[:1].isalpha():  # placeholders must start with a letter to be found again
        label = f"PII_{label}"
    return label[:MAX_LABEL]


class AnonymizationVault:
    """Maps placeholders such as ``[SSN_1_k3f9q2]`` to originals, per scope."""

    def __init__(self, max_scopes: int = 10_000) -> None:
        self._scopes: OrderedDict[str, _Scope] = OrderedDict()
        self._lock = threading.Lock()
        self.max_scopes = max_scopes

    # A lock does not pickle: the state does, and a fresh lock comes back with it.
    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {"scopes": OrderedDict(self._scopes), "max_scopes": self.max_scopes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._scopes = state["scopes"]
        self.max_scopes = state["max_scopes"]
        self._lock = threading.Lock()

    def _scope(self, scope: str) -> _Scope:
        # Caller holds the lock.
        entry = self._scopes.get(scope)
        if entry is None:
            entry = self._scopes[scope] = _Scope()
            while len(self._scopes) > self.max_scopes:
                self._scopes.popitem(last=False)
        else:
            self._scopes.move_to_end(scope)
        return entry

    def placeholder(self, original: str, label: str, scope: str = DEFAULT_SCOPE) -> str:
        """The placeholder for ``original`` in ``scope``, creating one the first time it is seen."""
        key = scope_key(scope)
        with self._lock:
            return self._scope(key).mint(original, _label(label), set())

    def anonymize(self, text: str, spans: Iterable[tuple[int, int, str]], scope: str = DEFAULT_SCOPE) -> str:
        """``text`` with each ``(start, end, label)`` span (sorted, non-overlapping) replaced by its placeholder.

        Placeholder-shaped strings already in ``text`` stay as they are and are reserved first, under the same
        lock, so no placeholder minted now or later in this scope can equal one: ``restore`` then gives the
        text back exactly as it came.
        """
        key = scope_key(scope)
        pieces: list[str] = []
        cursor = 0
        with self._lock:
            entry = self._scope(key)
            typed = entry.reserve(text) if "[" in text else set()
            for start, end, label in spans:
                pieces.append(text[cursor:start])
                pieces.append(entry.mint(text[start:end], _label(label), typed))
                cursor = end
        pieces.append(text[cursor:])
        return "".join(pieces)

    def restore(self, text: str, scope: str = DEFAULT_SCOPE) -> str:
        """Replace every placeholder ``scope`` minted by its original; anything else stays as it is."""
        key = scope_key(scope)
        if "[" not in text:
            return text
        with self._lock:
            entry = self._scopes.get(key)
            if entry is None:
                return text
            known = dict(entry.by_placeholder)
        # One pass: an original that itself looks like a placeholder is never restored again.
        return PLACEHOLDER_RE.sub(lambda m: known.get(m.group(0), m.group(0)), text)

    def clear(self, scope: str | None = None) -> None:
        """Forget one scope (end of a conversation) or, with no argument, all of them."""
        key = None if scope is None else scope_key(scope)
        with self._lock:
            if key is None:
                self._scopes.clear()
            else:
                self._scopes.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(s.by_placeholder) for s in self._scopes.values())
