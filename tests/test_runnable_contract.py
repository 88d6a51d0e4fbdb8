"""The Runnable contract of the text guards (issue 15): RunnableSerializable, config specs, configurable fields,
pickling and deep copies with per-process resources, and the langchain-core private API the guards rely on."""

from __future__ import annotations

import copy
import functools
import inspect
import pickle
import threading

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import ConfigurableField, RunnableLambda, RunnableSerializable
from langchain_core.tools import BaseTool, StructuredTool

from modchain.backends.aws.comprehend import ComprehendBackend
from modchain.backends.base import NotPicklableError
from modchain.core.callbacks import ModerationCallbackHandler
from modchain.core.config import ModerationConfig, PiiConfig
from modchain.core.conversation import ConversationStore, ViolationCounter
from modchain.core.errors import ConfigurationError
from modchain.core.vault import AnonymizationVault
from modchain.testing.clients import local_client
from modchain.text.chain import ModerationChain
from modchain.text.documents import DocumentGuard
from modchain.text.documents.tool_guard import ToolOutputGuard, guard_tool
from modchain.text.streaming import StreamGuard

SSN_TEXT = "my ssn is 123-45-6789 and my mail is ana@example.com"


def _lookup(customer: str) -> str:
    """Look up a customer record."""
    return f"customer {customer}: ssn 123-45-6789"


lookup = StructuredTool.from_function(_lookup)  # the function stays importable, so the tool can travel


class Recorder(ModerationCallbackHandler):
    def __init__(self) -> None:
        self.users: list[str | None] = []

    def on_after_pii(self, moderation_beacon, unique_id, **kwargs):
        self.users.append(unique_id)


def _guards():
    return {
        "chain": (ModerationChain(), lambda g: g.moderate(SSN_TEXT).texts),
        "documents": (DocumentGuard(), lambda g: [d.page_content for d in g.invoke([Document(page_content=SSN_TEXT)])]),
        "stream": (StreamGuard(), lambda g: g.invoke(SSN_TEXT)),
        "tool_output": (ToolOutputGuard(), lambda g: g.invoke(SSN_TEXT)),
        "guarded_tool": (guard_tool(lookup), lambda g: g.invoke({"customer": "c1"})),
    }


# -- RunnableSerializable and config specs ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["chain", "documents", "stream", "tool_output"])
def test_guards_are_runnable_serializable_and_declare_their_config_keys(name):
    guard, _ = _guards()[name]
    assert isinstance(guard, RunnableSerializable)
    assert {spec.id for spec in guard.config_specs} == {"unique_id", "conversation_id"}


def test_composed_guards_declare_each_key_once():
    specs = (ModerationChain() | RunnableLambda(lambda x: x) | ModerationChain() | StreamGuard()).config_specs
    assert sorted(spec.id for spec in specs) == ["conversation_id", "unique_id"]


def test_guards_compare_and_hash_by_identity():
    a, b = ModerationChain(), ModerationChain()
    assert a != b and a == a and len({a, b}) == 2


# -- configurable fields ----------------------------------------------------------------------------------

def test_moderation_chain_config_is_configurable_per_call():
    guard = ModerationChain().configurable_fields(config=ConfigurableField(id="moderation"))
    assert guard.invoke(SSN_TEXT) == "my ssn is *********** and my mail is " + "*" * 15
    email_only = {"filters": [{"type": "pii", "labels": ["EMAIL"], "action": "redact"}]}
    out = guard.with_config(configurable={"moderation": email_only}).invoke(SSN_TEXT)
    assert out == "my ssn is 123-45-6789 and my mail is " + "*" * 15
    assert "moderation" in {spec.id for spec in guard.config_specs}


def test_a_configured_chain_keeps_its_vault_callbacks_and_per_call_user():
    recorder, vault = Recorder(), AnonymizationVault()
    guard = ModerationChain(callbacks=[recorder], vault=vault).configurable_fields(
        config=ConfigurableField(id="moderation"))
    anonymize = {"filters": [{"type": "pii", "labels": ["SSN"], "action": "anonymize"}]}
    out = guard.with_config(configurable={"moderation": anonymize}).invoke(
        "ssn 123-45-6789", config={"configurable": {"unique_id": "u1", "conversation_id": "c1"}})
    assert "123-45-6789" not in out and vault.restore(out, "c1") == "ssn 123-45-6789"
    assert recorder.users == ["u1"]


# -- pickle and deepcopy ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["chain", "documents", "stream", "tool_output", "guarded_tool"])
@pytest.mark.parametrize("duplicate", [lambda g: pickle.loads(pickle.dumps(g)), copy.deepcopy], ids=["pickle", "deepcopy"])
def test_guards_pickle_and_deep_copy_and_the_copies_moderate_alike(name, duplicate):
    guard, moderate = _guards()[name]
    expected = moderate(guard)  # after a call: backends, pools and caches exist and must not block copying
    twin = duplicate(guard)
    assert twin is not guard
    assert moderate(twin) == expected
    assert "123-45-6789" not in str(expected)


def test_backends_built_from_config_are_rebuilt_per_process(comprehend, monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(key, value)
    guard = ModerationChain.with_backend({"name": "comprehend", "endpoint_url": comprehend.url,
                                          "region_name": "us-east-1"})
    expected = guard.moderate(SSN_TEXT).texts
    backend = guard.backend_for(guard.filters[0])
    assert backend._client is not None
    twin = pickle.loads(pickle.dumps(guard))
    assert twin._created == {}  # nothing of this process travelled: no client, pool or lock
    assert twin.moderate(SSN_TEXT).texts == expected
    assert twin.backend_for(twin.filters[0]) is not backend


def test_a_backend_without_a_given_client_pickles_its_settings_only():
    backend = ComprehendBackend(region_name="us-east-1", max_concurrency=4)
    backend._fanout._executor()  # a live pool
    twin = pickle.loads(pickle.dumps(backend))
    assert twin._client is None and twin._fanout._pool is None and twin._fanout.max_concurrency == 4
    assert twin._client_args == backend._client_args


def test_a_given_boto3_client_refuses_to_pickle_with_the_reason(comprehend):
    backend = ComprehendBackend(client=local_client("comprehend", comprehend.url))
    guard = ModerationChain(backend=backend)
    for target in (backend, guard):
        with pytest.raises(NotPicklableError, match="given a boto3 client") as info:
            pickle.dumps(target)
        assert isinstance(info.value, ConfigurationError) and isinstance(info.value, pickle.PicklingError)
    twin = copy.deepcopy(guard)  # a deep copy shares the backend (and so the client) instead
    assert twin.backend is backend and twin.moderate(SSN_TEXT).texts == guard.moderate(SSN_TEXT).texts


def test_pickling_keeps_conversation_scopes_and_a_deep_copy_shares_the_vault():
    guard = ModerationChain(ModerationConfig(filters=[PiiConfig(labels=["SSN"], action="anonymize")]))
    config = {"configurable": {"conversation_id": "c1"}}
    masked = guard.invoke("ssn 123-45-6789", config=config)
    travelled = pickle.loads(pickle.dumps(guard))
    assert travelled.vault is not guard.vault
    assert travelled.restorer().invoke(masked, config=config) == "ssn 123-45-6789"
    assert copy.deepcopy(guard).vault is guard.vault


def test_conversation_store_and_counter_pickle_with_their_state():
    store = ConversationStore()
    scope = store.scope("c1", "ana")
    guard = ModerationChain(callbacks=[store.counter], vault=store.vault)
    guard.invoke("ssn 123-45-6789", config=scope.config)
    twin = pickle.loads(pickle.dumps(store))
    assert "c1" in twin and twin.counter.count("ana", "pii") == 1
    assert isinstance(twin._lock, type(threading.Lock()))
    counter = pickle.loads(pickle.dumps(ViolationCounter()))
    assert counter.count(None) == 0


# -- the langchain-core private API the guards call (pinned in pyproject.toml) ----------------------------

PRIVATE_RUNNABLE_METHODS = {
    # method: parameters the guards pass (positionally in this order, then by name)
    "_call_with_config": ["func", "input_", "config", "run_type"],
    "_acall_with_config": ["func", "input_", "config", "run_type"],
    "_batch_with_config": ["func", "inputs", "config", "return_exceptions", "run_type"],
    "_abatch_with_config": ["func", "inputs", "config", "return_exceptions", "run_type"],
    "_transform_stream_with_config": ["inputs", "transformer", "config"],
    "_atransform_stream_with_config": ["inputs", "transformer", "config"],
}


@pytest.mark.parametrize("method", sorted(PRIVATE_RUNNABLE_METHODS))
def test_private_runnable_methods_keep_the_argument_names_we_use(method):
    from langchain_core.runnables import Runnable

    params = list(inspect.signature(getattr(Runnable, method)).parameters)
    assert params[1:len(PRIVATE_RUNNABLE_METHODS[method]) + 1][: 3] == PRIVATE_RUNNABLE_METHODS[method][:3]
    assert set(PRIVATE_RUNNABLE_METHODS[method]) <= set(params)


def test_private_runnable_methods_hand_our_callbacks_run_manager_and_config_by_name():
    seen = {}

    class Probe(ModerationChain):
        def _invoke_one(self, value, run_manager, config):
            seen["invoke"] = (run_manager is not None, config.get("configurable"))
            return value

        def _run_batch(self, values, run_manager, config):
            seen["batch"] = (len(run_manager), [c.get("configurable") for c in config])
            return values

    probe = Probe()
    assert probe.invoke("x", config={"configurable": {"unique_id": "u"}}) == "x"
    assert probe.batch(["a", "b"]) == ["a", "b"]
    assert seen["invoke"] == (True, {"unique_id": "u"})
    assert seen["batch"][0] == 2


def test_private_tool_helpers_keep_their_shape():
    from langchain_core.tools import base

    assert list(inspect.signature(BaseTool._to_args_and_kwargs).parameters)[1:] == ["tool_input", "tool_call_id"]
    assert list(inspect.signature(base._format_output).parameters) == [
        "content", "artifact", "tool_call_id", "name", "status"]
    assert callable(base._get_runnable_config_param)
    assert isinstance(inspect.getattr_static(BaseTool, "_injected_args_keys"), (property, functools.cached_property))


def test_chain_modules_stay_small():
    import modchain.text.chain as chain_module

    with open(chain_module.__file__, encoding="utf-8") as handle:
        assert sum(1 for _ in handle) <= 400
