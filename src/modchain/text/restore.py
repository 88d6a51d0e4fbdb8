"""RestorePii: put anonymized originals back into an LLM's answer (``guard | llm | guard.restorer()``)."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig

from modchain.core.errors import ConfigurationError
from modchain.core.vault import AnonymizationVault, scope_key
from modchain.text.messages import unpack

#: Where a guard and its restorer look for the conversation scope in ``config["configurable"]``, in order.
SCOPE_KEYS = ("conversation_id", "session_id", "thread_id", "unique_id", "user_id")


class RestorePii(Runnable[Any, Any]):
    """Replaces the placeholders the caller's scope minted (``[LABEL_N_tag]``) with the originals, keeping the shape.

    The scope comes from ``config["configurable"]`` (``conversation_id``, ``session_id``, ``thread_id``,
    then ``unique_id``), exactly as the guard that anonymized the text found it, else ``default_scope``
    (the guard's ``unique_id``). With no scope at all it refuses rather than guess.
    """

    def __init__(self, vault: AnonymizationVault, *, input_key: str = "input", default_scope: str | None = None) -> None:
        self.vault = vault
        self.input_key = input_key
        self.default_scope = default_scope

    def _scope(self, config: RunnableConfig | None) -> str:
        configurable = (config or {}).get("configurable") or {}
        for key in SCOPE_KEYS:
            if configurable.get(key) is not None:
                # Type-strict, as the guard keyed it: 1 is refused, never read as "1".
                return scope_key(configurable[key])
        if self.default_scope is None:
            raise ConfigurationError("restoring placeholders needs the conversation scope the guard used: pass "
                                     "config={'configurable': {'conversation_id': ...}}")
        return scope_key(self.default_scope)

    def _restore(self, value: Any, config: RunnableConfig) -> Any:
        unpacked = unpack(value, self.input_key)
        scope = self._scope(config)
        return unpacked.rebuild([self.vault.restore(text, scope) for text in unpacked.texts])

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call_with_config(self._restore, input, config, run_type="parser")
