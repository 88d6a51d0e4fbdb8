"""Reversible anonymization: placeholders in, originals back out.

``guard | llm | restore`` sends the model ``[EMAIL_1]`` instead of an address and gives the user their own
data back in the answer. Mappings live in a *scope* (one conversation or user), so one user's placeholders
can never be restored with another's data. The same original within a scope always gets the same
placeholder, across turns, so the model sees a consistent conversation. Thread-safe; old scopes are
evicted least-recently-used so a long-running server does not grow without bound.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

PLACEHOLDER_RE = re.compile(r"\[([A-Z][A-Z0-9_]*?)_(\d+)\]")
DEFAULT_SCOPE = "default"


class _Scope:
    __slots__ = ("by_original", "by_placeholder", "counters")

    def __init__(self) -> None:
        self.by_original: dict[tuple[str, str], str] = {}
        self.by_placeholder: dict[str, str] = {}
        self.counters: dict[str, int] = {}


class AnonymizationVault:
    """Maps placeholders such as ``[SSN_1]`` to originals, per scope."""

    def __init__(self, max_scopes: int = 10_000) -> None:
        self._scopes: OrderedDict[str, _Scope] = OrderedDict()
        self._lock = threading.Lock()
        self.max_scopes = max_scopes

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
        label = re.sub(r"[^A-Z0-9_]", "_", label.upper())
        if not label[:1].isalpha():  # placeholders must start with a letter to be found again
            label = f"PII_{label}"
        with self._lock:
            entry = self._scope(scope)
            key = (label, original)
            found = entry.by_original.get(key)
            if found is None:
                entry.counters[label] = entry.counters.get(label, 0) + 1
                found = f"[{label}_{entry.counters[label]}]"
                entry.by_original[key] = found
                entry.by_placeholder[found] = original
            return found

    def restore(self, text: str, scope: str = DEFAULT_SCOPE) -> str:
        """Replace every placeholder of ``scope`` in ``text`` by its original; unknown ones stay as they are."""
        if "[" not in text:
            return text
        with self._lock:
            entry = self._scopes.get(scope)
            if entry is None:
                return text
            known = dict(entry.by_placeholder)
        return PLACEHOLDER_RE.sub(lambda m: known.get(m.group(0), m.group(0)), text)

    def clear(self, scope: str | None = None) -> None:
        """Forget one scope (end of a conversation) or, with no argument, all of them."""
        with self._lock:
            if scope is None:
                self._scopes.clear()
            else:
                self._scopes.pop(scope, None)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(s.by_placeholder) for s in self._scopes.values())
