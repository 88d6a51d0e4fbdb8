"""What every text guard shares as a ``RunnableSerializable``: per-process resources, copies, config specs.

A guard is a pydantic model whose *fields* are its constructor's arguments (so ``configurable_fields`` can
rebuild it with one argument changed) and whose *private attributes* are what it builds from them: filters,
backends made from the config, thread pools, locks. Those are per process:

* **pickle** (worker processes, Ray tasks) sends the fields only; the private attributes named in
  ``_PER_PROCESS`` are reset and built again on first use in the receiving process. Backend instances the
  caller passed in travel with the guard and must pickle themselves (a backend built around a caller's
  boto3 client or in-memory model refuses, with :class:`~modchain.core.per_process.NotPicklableError`, a
  ``ConfigurationError``: build it from region / profile / endpoint or a model id / path instead, and it
  creates its client or loads its model per process).
* **deepcopy** copies the guard's own settings and state; the collaborators it was given (``vault``,
  callback handlers, backend instances) are *shared* with the copy, as they are with the copy that
  ``with_config(configurable=...)`` builds: placeholders the copy mints restore through the same vault, and
  its events reach the same handlers. Pickling cannot share: the vault travels with its placeholders (so no
  conversation scope is lost; treat the pickled bytes as holding the originals), and the receiving
  process's vault is its own from then on.

The mechanism is :mod:`modchain.core.per_process`, shared with the backends. Equality and hashing stay by
identity, as before guards were pydantic models.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from langchain_core.runnables import ConfigurableFieldSpec

from modchain.core.callbacks import CallbackDispatcher
from modchain.core.per_process import PerProcess

_F = TypeVar("_F", bound=Callable[..., Any])


def presigned(func: _F) -> _F:
    """``func`` with its signature computed once, for the functions a guard hands to ``Runnable._call_with_config``.

    LangChain asks ``inspect.signature`` on every call whether that function takes ``config`` and
    ``run_manager``: about 30 µs each time for a method, twice per ``invoke``, a few percent of a 2 ms
    moderation. A stored ``__signature__`` is what ``inspect.signature`` returns first (about 6 µs).
    """
    func.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]
    return func


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


class PerProcessState(PerProcess):
    """Mixin for the guards (pydantic Runnables): :class:`~modchain.core.per_process.PerProcess` pickling and
    deep copies, equality by identity, the per-call config specs, and the audit-handler dispatcher.

    Subclasses list in ``_PER_PROCESS`` their private attributes and the factory of each one's fresh value
    (``None`` for "build on first use"), and in ``_SHARED_ON_COPY`` the fields whose values a deep copy
    shares rather than copies. A guard with callbacks declares a ``_dispatcher`` private attribute (listed
    in ``_PER_PROCESS``) for :attr:`dispatcher`.
    """

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return object.__hash__(self)

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        return list(GUARD_CONFIG_SPECS)

    @property
    def dispatcher(self) -> CallbackDispatcher:
        """The audit handlers (``callbacks``), called in order after each check; built once per process."""
        if self._dispatcher is None:  # type: ignore[has-type]
            # Cheap and stateless: two threads building it at once is harmless, so no lock.
            self._dispatcher = CallbackDispatcher(
                self.callbacks,  # type: ignore[attr-defined]
                raise_errors=getattr(self, "raise_callback_errors", False))
        return self._dispatcher
