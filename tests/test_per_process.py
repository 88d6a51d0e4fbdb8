"""The one pickling mechanism (``modchain.core.per_process``): plain objects and pydantic models, per-process
attributes made fresh where the state is loaded, shared collaborators on deep copies, refusals, and lazily
built attributes that two threads asking at once build once."""

from __future__ import annotations

import copy
import pickle
import threading
import time
from collections import OrderedDict
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr

from modchain.backends.aws.common import FanOut
from modchain.backends.base import NotPicklableError as BackendsNotPicklableError
from modchain.backends.base import PerProcessResources
from modchain.core.errors import ConfigurationError
from modchain.core.per_process import NotPicklableError, PerProcess
from modchain.text.documents import DocumentGuard
from modchain.text.documents import tool_guard as tool_guard_module
from modchain.text.documents.tool_guard import ToolOutputGuard
from modchain.text.runnable_state import PerProcessState


class Plain(PerProcess):
    _PER_PROCESS = {"_lock": threading.Lock, "_cache": OrderedDict, "_client": None, "_build_lock": threading.RLock}
    _SHARED_ON_COPY = ("given",)

    def __init__(self, setting: str, given: Any = None, *, refuse: bool = False) -> None:
        self.setting = setting
        self.given = given
        self.refuse = refuse
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, int] = OrderedDict(seen=1)
        self._client: Any = object()  # stands for a client made from the settings
        self._build_lock = threading.RLock()

    def _pickle_refusal(self) -> str | None:
        return "given something only this process can use" if self.refuse else None


class Model(PerProcess, BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    setting: str
    given: Any = None
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _cache: dict[str, int] = PrivateAttr(default_factory=dict)
    _kept: str = PrivateAttr(default="built from the setting")

    _PER_PROCESS = {"_lock": threading.Lock, "_cache": dict}
    _SHARED_ON_COPY = ("given",)


def test_a_plain_object_pickles_its_settings_and_gets_fresh_per_process_attributes():
    original = Plain("a")
    twin = pickle.loads(pickle.dumps(original))
    assert twin.setting == "a" and twin.refuse is False
    assert twin._cache == OrderedDict() and twin._client is None
    assert twin._lock is not original._lock and twin._lock.acquire(blocking=False)


def test_a_pydantic_model_pickles_fields_and_private_attributes_but_not_per_process_ones():
    original = Model(setting="a")
    original._cache["seen"] = 1
    twin = pickle.loads(pickle.dumps(original))
    assert twin.setting == "a" and twin._kept == "built from the setting"
    assert twin._cache == {} and twin._lock is not original._lock
    assert original._cache == {"seen": 1}  # pickling leaves the original alone


@pytest.mark.parametrize("cls", [Plain, Model])
def test_a_deep_copy_shares_the_given_collaborators_and_owns_its_locks(cls):
    given = ["handler"]
    original = Plain("a", given) if cls is Plain else Model(setting="a", given=given)
    twin = copy.deepcopy(original)
    assert twin.given is given and twin.setting == "a"
    assert twin._lock is not original._lock


def test_an_object_holding_what_it_was_given_refuses_to_pickle_and_deep_copy_with_the_reason():
    refusing = Plain("a", refuse=True)
    for duplicate in (pickle.dumps, copy.deepcopy):
        with pytest.raises(NotPicklableError, match="only this process") as info:
            duplicate(refusing)
        assert isinstance(info.value, ConfigurationError) and isinstance(info.value, pickle.PicklingError)


def test_the_old_names_are_the_core_mechanism():
    assert BackendsNotPicklableError is NotPicklableError and PerProcessResources is PerProcess
    assert issubclass(PerProcessState, PerProcess)


def test_a_fan_out_pickles_without_its_pool():
    fanout = FanOut(3)
    assert fanout.map(lambda x: x * 2, [1, 2]) == [2, 4]  # starts the pool
    twin = pickle.loads(pickle.dumps(fanout))
    assert twin.max_concurrency == 3 and twin._pool is None and twin.map(lambda x: x + 1, [1, 2]) == [2, 3]
    fanout._pool.shutdown()


# -- built once, from two threads ---------------------------------------------------------------------------

class CountingFactory:
    """Counts its calls, and sleeps inside each so that a second thread can arrive while the first builds."""

    def __init__(self, value: Any = None) -> None:
        self.calls = 0
        self.value = value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        time.sleep(0.05)
        return self.value if self.value is not None else object()


def _first_calls_at_once(get: Any, threads: int = 2) -> list[Any]:
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads

    def call(i: int) -> None:
        barrier.wait()
        results[i] = get()

    workers = [threading.Thread(target=call, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def test_build_once_builds_once_when_two_threads_ask_at_once():
    target, factory = pickle.loads(pickle.dumps(Plain("a"))), CountingFactory()
    results = _first_calls_at_once(lambda: target._build_once("_client", factory))
    assert factory.calls == 1 and results[0] is results[1] is target._client


def test_a_document_guard_builds_its_scorers_once_after_unpickling_even_from_two_threads(monkeypatch):
    twin = pickle.loads(pickle.dumps(DocumentGuard()))
    factory = CountingFactory()
    monkeypatch.setattr(DocumentGuard, "_build_scorers", lambda self: factory())
    results = _first_calls_at_once(twin._scorers)
    assert factory.calls == 1 and results[0] is results[1]


def test_a_tool_output_guard_builds_its_document_guard_once_after_unpickling_even_from_two_threads(monkeypatch):
    twin = pickle.loads(pickle.dumps(ToolOutputGuard()))
    assert twin._documents is None
    factory = CountingFactory()
    monkeypatch.setattr(tool_guard_module, "DocumentGuard", factory)
    results = _first_calls_at_once(lambda: twin.documents)
    assert factory.calls == 1 and results[0] is results[1]


def test_unpickled_guards_get_their_own_build_locks():
    guard = DocumentGuard()
    twin = pickle.loads(pickle.dumps(guard))
    assert twin._build_lock is not guard._build_lock and twin._parts is None
    assert twin._scorers() is twin._scorers()
