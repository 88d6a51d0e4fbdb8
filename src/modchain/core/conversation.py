"""Conversation scope: the state a moderated conversation keeps across turns and threads.

A chat service moderates many turns of many users at once, from worker threads or an event loop. What must
persist between turns is small:

* the anonymization vault scope, so ``[EMAIL_1_k3f9q2]`` in turn 3 still restores to the address given in
  turn 1, and never to another user's (the chain already scopes its vault by ``configurable.conversation_id`` /
  ``session_id`` / ``thread_id`` / ``unique_id``: this module builds that config, it does not re-implement
  the scoping);
* the user's ``unique_id``, which every audit callback receives;
* how often each user tripped each moderation step, for audit and rate decisions ("three injection attempts
  in an hour: lock the account").

:class:`ConversationStore` owns one vault and one :class:`ViolationCounter`; pass both to every guard of the
application (``ModerationChain(config, vault=store.vault, callbacks=[store.counter])``, and the same to
``DocumentGuard`` / ``guard_tool``) and call each turn with ``store.scope(conversation_id, unique_id).config``.
A LangGraph ``thread_id`` works as the conversation id unchanged, when it is a ``str``.

Conversation ids are type-strict: ``1`` is refused (``ConfigurationError``), never read as ``"1"``, here as in
the guards and restorers, so two conversations can never share a scope through ``str()``.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from modchain.core.callbacks import ModerationCallbackHandler
from modchain.core.errors import ConfigurationError
from modchain.core.vault import AnonymizationVault

#: The key a ``RunnableConfig`` carries the conversation under (the first of the chain's scope keys).
CONVERSATION_KEY = "conversation_id"
#: Steps a counter counts by default: those whose LABELS_FOUND means content was blocked, changed or flagged.
COUNTED_STEPS = ("pii", "toxicity", "prompt_safety", "documents", "tool_output", "stream")


class ViolationCounter(ModerationCallbackHandler):
    """Counts, per user (``unique_id``) and per step, the moderation events that found something.

    A step "found something" when its beacon's status is ``LABELS_FOUND`` (a PII entity, a toxic or unsafe
    text, a retrieved document or tool output that was dropped, redacted or flagged); ``ERROR`` beacons are
    counted separately as ``"<step>:error"``. Events without a ``unique_id`` count under ``None``.
    Thread-safe: one counter may serve every guard and thread of a service.
    """

    def __init__(self, steps: tuple[str, ...] = COUNTED_STEPS) -> None:
        unknown = sorted(set(steps) - set(COUNTED_STEPS))
        if unknown:
            raise ConfigurationError(f"ViolationCounter cannot count steps {unknown}; it counts {list(COUNTED_STEPS)}")
        self.steps = frozenset(steps)
        self._counts: dict[str | None, Counter[str]] = {}
        self._lock = threading.Lock()

    # A lock does not pickle (a guard holding this counter is sent to a worker): the counts do, with a new lock.
    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {"steps": self.steps, "counts": {user: Counter(c) for user, c in self._counts.items()}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.steps, self._counts, self._lock = state["steps"], state["counts"], threading.Lock()

    def handles(self, step: str) -> bool:
        return step in self.steps

    # One method per step (the base class defines them all as no-ops, so they must be overridden here).
    def on_after_pii(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> None:
        self._record("pii", moderation_beacon, unique_id)

    def on_after_toxicity(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> None:
        self._record("toxicity", moderation_beacon, unique_id)

    def on_after_prompt_safety(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> None:
        self._record("prompt_safety", moderation_beacon, unique_id)

    def on_after_documents(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> None:
        self._record("documents", moderation_beacon, unique_id)

    def on_after_tool_output(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> None:
        self._record("tool_output", moderation_beacon, unique_id)

    def on_after_stream(self, moderation_beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> None:
        self._record("stream", moderation_beacon, unique_id)

    def _record(self, step: str, beacon: dict[str, Any], unique_id: str | None) -> None:
        status = beacon.get("moderation_status")
        if status == "LABELS_FOUND":
            key = step
        elif status == "ERROR":
            key = f"{step}:error"
        else:
            return
        with self._lock:
            self._counts.setdefault(unique_id, Counter())[key] += 1

    def count(self, unique_id: str | None, step: str | None = None) -> int:
        """Events found for one user: of one step, or of all steps (errors excluded) when ``step`` is None."""
        with self._lock:
            counts = self._counts.get(unique_id)
            if counts is None:
                return 0
            if step is not None:
                return counts[step]
            return sum(n for key, n in counts.items() if ":" not in key)

    def counts(self, unique_id: str | None) -> dict[str, int]:
        """A copy of one user's counts by step."""
        with self._lock:
            return dict(self._counts.get(unique_id, {}))

    def users(self) -> list[str | None]:
        with self._lock:
            return list(self._counts)

    def reset(self, unique_id: str | None = ..., /) -> None:  # type: ignore[assignment]
        """Forget one user's counts, or everyone's with no argument."""
        with self._lock:
            if unique_id is ...:
                self._counts.clear()
            else:
                self._counts.pop(unique_id, None)


@dataclass(frozen=True)
class ConversationScope:
    """One conversation of one user, as the guards see it: pass :attr:`config` with every call."""

    conversation_id: str
    unique_id: str | None = None
    store: ConversationStore | None = field(default=None, repr=False, compare=False)

    @property
    def config(self) -> dict[str, Any]:
        """A ``RunnableConfig`` that scopes the vault and names the user for callbacks."""
        configurable: dict[str, Any] = {CONVERSATION_KEY: self.conversation_id}
        if self.unique_id is not None:
            configurable["unique_id"] = self.unique_id
        return {"configurable": configurable}

    def merge(self, config: dict[str, Any] | None) -> dict[str, Any]:
        """``config`` (tags, callbacks, other configurable keys) with this scope's keys added."""
        merged = dict(config or {})
        merged["configurable"] = {**(merged.get("configurable") or {}), **self.config["configurable"]}
        return merged

    def restore(self, text: str) -> str:
        """Put this conversation's anonymized originals back into ``text``."""
        return self._store().vault.restore(text, self.conversation_id)

    def violations(self, step: str | None = None) -> int:
        """How many moderation events found something for this conversation's user (all their conversations)."""
        return self._store().counter.count(self.unique_id, step)

    def end(self) -> None:
        """Forget this conversation's placeholders (the user's counters stay: they are per user)."""
        self._store().end(self.conversation_id)

    def _store(self) -> ConversationStore:
        if self.store is None:
            raise ConfigurationError("this ConversationScope was built without a store")
        return self.store


class ConversationStore:
    """Conversations by id: one shared vault, one violation counter, the user of each conversation.

    A conversation is bound to the first ``unique_id`` it is opened with; opening it again with another user,
    or with none, raises, so a leaked or guessed conversation id cannot restore someone else's placeholders. Thread-safe;
    the oldest conversations are forgotten (and their vault scopes cleared) beyond ``max_conversations``.
    """

    def __init__(self, *, vault: AnonymizationVault | None = None, counter: ViolationCounter | None = None,
                 max_conversations: int = 10_000) -> None:
        self.vault = vault if vault is not None else AnonymizationVault(max_scopes=max_conversations)
        self.counter = counter if counter is not None else ViolationCounter()
        self.max_conversations = max_conversations
        self._owners: OrderedDict[str, str | None] = OrderedDict()
        self._lock = threading.Lock()

    # Pickles whole (owners, vault scopes, counts) with a new lock: a conversation is never silently dropped.
    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {"vault": self.vault, "counter": self.counter, "max_conversations": self.max_conversations,
                    "owners": OrderedDict(self._owners)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.vault, self.counter = state["vault"], state["counter"]
        self.max_conversations, self._owners = state["max_conversations"], state["owners"]
        self._lock = threading.Lock()

    def scope(self, conversation_id: str, unique_id: str | None = None) -> ConversationScope:
        """The scope of one conversation, opening it on first use."""
        if not isinstance(conversation_id, str) or not conversation_id:
            raise ConfigurationError("conversation_id must be a non-empty string")
        with self._lock:
            if conversation_id in self._owners:
                owner = self._owners[conversation_id]
                if owner is not None and owner != unique_id:
                    # A caller without a user is refused too: a leaked id alone must not reach the owner's
                    # placeholders. The message names neither user: ids can be personal data.
                    raise ConfigurationError("conversation is bound to another user")
                if owner is None and unique_id is not None:
                    self._owners[conversation_id] = unique_id
                self._owners.move_to_end(conversation_id)
            else:
                self._owners[conversation_id] = unique_id
                while len(self._owners) > self.max_conversations:
                    # Cleared under the lock: a thread reopening that id at once must not lose its new placeholders.
                    self.vault.clear(self._owners.popitem(last=False)[0])
            owner = self._owners[conversation_id]
        return ConversationScope(conversation_id, owner, self)

    def end(self, conversation_id: str) -> None:
        """Forget one conversation: its owner binding and its placeholders."""
        with self._lock:
            self._owners.pop(conversation_id, None)
            self.vault.clear(conversation_id)

    def __contains__(self, conversation_id: object) -> bool:
        with self._lock:
            return conversation_id in self._owners

    def __len__(self) -> int:
        with self._lock:
            return len(self._owners)
