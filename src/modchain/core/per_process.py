"""Pickling and deep copies for objects that hold things only one process can use.

Guards (pydantic models) and backends (plain classes) hold locks, thread pools, clients, loaded models and
caches next to their settings. Pickle (worker processes, Ray tasks) must send the settings only, and the
receiving process must build the rest again; a deep copy must build its own locks and caches too, while
sharing the collaborators it was given. :class:`PerProcess` does both, for plain attributes and for
pydantic private attributes alike, from two class-level declarations:

* ``_PER_PROCESS``: attribute name -> factory of its fresh value (``None``: the value is ``None`` again and
  is built on first use). These are left out of the pickled state and made fresh where it is loaded (so a
  lock is never pickled, and a model is loaded again by the process that uses it).
* ``_SHARED_ON_COPY``: attributes whose values a deep copy shares with the original instead of copying
  (a vault, callback handlers, backend instances given by the caller). Pickling cannot share; they travel.

An object built around something the caller handed it (a boto3 client, an in-memory model) cannot be
rebuilt from settings elsewhere: its :meth:`PerProcess._pickle_refusal` names why, and pickling (or a deep
copy, which goes the same way) raises :class:`NotPicklableError` with that reason.

:meth:`PerProcess._build_once` builds a lazily created attribute once per process even when two threads
ask at once (double-checked under the object's ``_build_lock``, itself an entry of ``_PER_PROCESS``).
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from modchain.core.errors import ConfigurationError

T = TypeVar("T")

#: Pydantic keeps private attributes in this dict of the instance (and of the pickled state).
_PRIVATE = "__pydantic_private__"


class NotPicklableError(ConfigurationError, pickle.PicklingError):
    """An object holds something only this process can use (a boto3 client or model it was *given*).

    Raised by ``pickle`` (and so by pickling a guard that holds such a backend) with the reason and the fix:
    build it from its settings instead, and it creates its client or model in each process.
    """


class PerProcess:
    """Mixin: pickle and deep-copy without per-process resources; see the module docstring.

    Works on plain classes (state is ``__dict__``) and on pydantic models (per-process attributes are
    private attributes, kept in ``__pydantic_private__``); put it before ``BaseModel`` in the bases.
    """

    _PER_PROCESS: ClassVar[Mapping[str, Callable[[], Any] | None]] = {}
    _SHARED_ON_COPY: ClassVar[tuple[str, ...]] = ()

    def _pickle_refusal(self) -> str | None:
        """Why this object cannot leave its process (``None``: it can). Override where it applies."""
        return None

    def __getstate__(self) -> Any:
        reason = self._pickle_refusal()
        if reason is not None:
            raise NotPicklableError(reason)
        if _is_pydantic(self):
            state = dict(super().__getstate__())  # type: ignore[misc]
            private = state.get(_PRIVATE)
            if private:
                state[_PRIVATE] = {k: v for k, v in private.items() if k not in self._PER_PROCESS}
            return state
        return {k: v for k, v in self.__dict__.items() if k not in self._PER_PROCESS}

    def __setstate__(self, state: Any) -> None:
        if _is_pydantic(self):
            state = dict(state)
            if state.get(_PRIVATE) is not None or self._PER_PROCESS:  # None: no private attributes
                state[_PRIVATE] = dict(state.get(_PRIVATE) or {})
            super().__setstate__(state)  # type: ignore[misc]
            target = state.get(_PRIVATE)  # the dict pydantic now reads private attributes from
        else:
            self.__dict__.update(state)
            target = self.__dict__
        for name, fresh in self._PER_PROCESS.items():
            target[name] = fresh() if fresh is not None else None  # type: ignore[index]

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        memo = {} if memo is None else memo
        for name in self._SHARED_ON_COPY:
            _share(getattr(self, name, None), memo)
        duplicate = type(self).__new__(type(self))
        memo[id(self)] = duplicate
        duplicate.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return duplicate

    def _build_once(self, name: str, build: Callable[[], T]) -> T:
        """``self.<name>``, built by ``build()`` if it is still ``None``: once, even from two threads at once.

        Needs ``_build_lock`` (an ``RLock``, so a build may build another attribute) among the attributes."""
        value = getattr(self, name)
        if value is None:
            with self._build_lock:  # type: ignore[attr-defined]
                value = getattr(self, name)
                if value is None:  # another thread may have built it while we waited
                    value = build()
                    setattr(self, name, value)
        return value


def _is_pydantic(obj: Any) -> bool:
    return hasattr(type(obj), "__pydantic_fields__")


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
