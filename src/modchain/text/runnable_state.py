"""What every text guard shares as a ``RunnableSerializable``: per-process resources, copies, config specs.

A guard is a pydantic model whose *fields* are its constructor's arguments (so ``configurable_fields`` can
rebuild it with one argument changed) and whose *private attributes* are what it builds from them: filters,
backends made from the config, thread pools, locks. Those are per process:

* **pickle** (worker processes, Ray tasks) sends the fields only; the private attributes named in
  ``_PER_PROCESS`` are reset and built again on first use in the receiving process. Backend instances the
  caller passed in travel with the guard and must pickle themselves (an AWS backend built around a caller's
  boto3 client refuses, with :class:`~modchain.core.errors.ConfigurationError`: build it from region /
  profile / endpoint instead, and it creates its client per process).
* **deepcopy** copies the guard's own settings and state; the collaborators it was given (``vault``,
  callback handlers, backend instances) are *shared* with the copy, as they are with the copy that
  ``with_config(configurable=...)`` builds: placeholders the copy mints restore through the same vault, and
  its events reach the same handlers. Pickling cannot share: the vault travels with its placeholders (so no
  conversation scope is lost; treat the pickled bytes as holding the originals), and the receiving
  process's vault is its own from then on.

Equality and hashing stay by identity, as before guards were pydantic models.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from langchain_core.runnables import ConfigurableFieldSpec

#: ``configurable`` keys every guard reads per call (see ``modchain.text.restore.SCOPE_KEYS`` for the
#: aliases ``session_id`` / ``thread_id`` / ``user_id``, still read, not declared: LangGraph declares
#: ``thread_id`` itself, and two different specs of one id make a composed chain's ``config_specs`` fail).
GUARD_CONFIG_SPECS: tuple[ConfigurableFieldSpec, ...] = (
    ConfigurableFieldSpec(
        id="unique_id", annotation=str | None, name="User id", default=None,
        description="The user or session passed to moderation callbacks (overrides the guard's unique_id).",
    ),
    ConfigurableFieldSpec(
        id="conversation_id", annotation=str | None, name="Conversation id", default=None,
        description="The conversation whose anonymization scope placeholders are minted in and restored from.",
    ),
)


class PerProcessState:
    """Mixin for pydantic Runnables: pickling and deep copies that rebuild per-process resources.

    Subclasses list in ``_PER_PROCESS`` their private attributes and the factory of each one's fresh value
    (``None`` for "build on first use"), and in ``_SHARED_ON_COPY`` the fields whose values a deep copy
    shares rather than copies.
    """

    _PER_PROCESS: ClassVar[dict[str, Any]] = {}
    _SHARED_ON_COPY: ClassVar[tuple[str, ...]] = ()

    def __getstate__(self) -> dict[Any, Any]:
        state = dict(super().__getstate__())  # type: ignore[misc]
        private = dict(state.get("__pydantic_private__") or {})
        for name, fresh in self._PER_PROCESS.items():
            private[name] = fresh() if callable(fresh) else fresh
        state["__pydantic_private__"] = private
        return state

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        memo = {} if memo is None else memo
        for name in self._SHARED_ON_COPY:
            _share(getattr(self, name, None), memo)
        duplicate = type(self).__new__(type(self))
        memo[id(self)] = duplicate
        duplicate.__setstate__(copy.deepcopy(self.__getstate__(), memo))  # type: ignore[attr-defined]
        return duplicate

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return object.__hash__(self)

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        return list(GUARD_CONFIG_SPECS)


def _share(value: Any, memo: dict[int, Any]) -> None:
    """Make ``copy.deepcopy`` hand back ``value`` itself (and each item of a list, tuple or dict of them)."""
    if value is None:
        return
    memo[id(value)] = value
    if isinstance(value, (list, tuple)):
        for item in value:
            memo[id(item)] = item
    elif isinstance(value, dict):
        for item in value.values():
            memo[id(item)] = item
