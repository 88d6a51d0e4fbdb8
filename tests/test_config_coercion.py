"""Every component's ``config`` goes through ``coerce_config`` (a model, a dict or a YAML path; anything else is a
ConfigurationError), backends built from a config are shared by the copies ``configurable_fields`` makes, and a
per-call id of the wrong type is a ConfigurationError that does not echo the id."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import ConfigurableField

from modchain.core import registry
from modchain.core.caller import caller_id
from modchain.core.config import BackendConfig, ModerationConfig
from modchain.core.errors import ConfigurationError
from modchain.generation.config import PromptGuardConfig
from modchain.generation.prompt_guard import PromptGuard
from modchain.serving.moderation.app import load_config
from modchain.text.backend_cache import BackendCache
from modchain.text.chain import ModerationChain
from modchain.text.documents import DocumentGuard
from modchain.text.documents.report import DocumentGuardConfig
from modchain.text.documents.tool_guard import ToolGuardConfig, ToolOutputGuard
from modchain.text.parallel import ProcessModerator
from modchain.text.streaming import StreamGuard

# One non-default setting per component: what proves the YAML file or the dict was read.
CASES = {
    "chain": (ModerationChain, ModerationConfig, "filters:\n  - type: pii\n    labels: [EMAIL]\n",
              {"filters": [{"type": "pii", "labels": ["EMAIL"]}]}, lambda c: c.filters[0].labels == ("EMAIL",)),
    "documents": (DocumentGuard, DocumentGuardConfig, "pii: flag\n", {"pii": "flag"}, lambda c: c.pii == "flag"),
    "tool_output": (ToolOutputGuard, ToolGuardConfig, "pii: flag\n", {"pii": "flag"}, lambda c: c.pii == "flag"),
    "prompt": (PromptGuard, PromptGuardConfig, "action: warn\n", {"action": "warn"}, lambda c: c.action == "warn"),
    "processes": (ProcessModerator, ModerationConfig, "fail_open: true\n", {"fail_open": True},
                  lambda c: c.fail_open is True),
}


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- config coercion --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("form", ["yaml_str", "yaml_path", "dict", "model"])
def test_components_take_a_model_a_dict_or_a_yaml_path(name, form, tmp_path):
    component, model, yaml_text, data, is_set = CASES[name]
    path = _yaml(tmp_path, yaml_text)
    value = {"yaml_str": str(path), "yaml_path": path, "dict": data, "model": model.from_dict(data)}[form]
    built = component(value)
    assert isinstance(built.config, model) and is_set(built.config)
    if form == "model":
        assert built.config is value


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("wrong", [42, ["pii"], object()], ids=["int", "list", "object"])
def test_a_config_of_the_wrong_type_is_a_configuration_error(name, wrong):
    component, model, *_ = CASES[name]
    with pytest.raises(ConfigurationError, match=f"config must be a {model.__name__}, a dict or a YAML file path"):
        component(wrong)


@pytest.mark.parametrize("name", list(CASES))
def test_an_invalid_yaml_config_is_a_configuration_error(name, tmp_path):
    component = CASES[name][0]
    with pytest.raises(ConfigurationError, match="no_such_key"):
        component(_yaml(tmp_path, "no_such_key: 1\n"))
    with pytest.raises(ConfigurationError, match="cannot read config file"):
        component(str(tmp_path / "missing.yaml"))


def test_the_moderation_service_and_with_backend_coerce_alike(tmp_path):
    path = _yaml(tmp_path, "fail_open: true\n")
    assert load_config(path).fail_open and load_config(str(path)).fail_open
    assert load_config({"fail_open": True}).fail_open and load_config(None) == ModerationConfig()
    with pytest.raises(ConfigurationError, match="config must be a ModerationConfig"):
        load_config(42)  # type: ignore[arg-type]
    chain = ModerationChain.with_backend({"name": "local", "timeout_s": 3}, config=path)
    assert chain.config.fail_open and chain.config.backend.timeout_s == 3
    with pytest.raises(ConfigurationError, match="config must be a BackendConfig"):
        ModerationChain.with_backend(42)  # type: ignore[arg-type]


def test_a_backend_name_still_overrides_a_yaml_config(tmp_path):
    chain = ModerationChain(_yaml(tmp_path, "backend:\n  name: local\n  timeout_s: 3\n"), backend="local")
    assert chain.config.backend.name == "local" and chain.config.backend.timeout_s == 3


# -- backends built from a config: once per distinct config, shared by configurable copies ----------------

@pytest.fixture
def built(monkeypatch):
    """The BackendConfig of every backend the registry builds."""
    configs: list[BackendConfig] = []
    create = registry.create_backend

    def counting(config):
        configs.append(config)
        return create(config)

    monkeypatch.setattr(registry, "create_backend", counting)
    return configs


def test_a_configurable_chain_builds_each_backend_config_once(built):
    guard = ModerationChain().configurable_fields(config=ConfigurableField(id="moderation"))
    first = {"filters": [{"type": "pii", "labels": ["EMAIL"]}], "backend": {"name": "local"}}
    second = {"filters": [{"type": "pii", "labels": ["EMAIL"]}], "backend": {"name": "local", "timeout_s": 3}}
    for per_call in (first, second, first, second, first):
        assert guard.invoke("mail ana@example.com", config={"configurable": {"moderation": per_call}}) == (
            "mail " + "*" * len("ana@example.com"))
    assert [c.timeout_s for c in built] == [10.0, 3.0]  # one build per distinct backend config, not per call


def test_per_call_filter_changes_reuse_the_one_backend(built):
    guard = ModerationChain().configurable_fields(config=ConfigurableField(id="moderation"))
    for labels in (["EMAIL"], ["SSN"], ["EMAIL", "SSN"], ["EMAIL"], ["SSN"]):
        guard.with_config(configurable={"moderation": {"filters": [{"type": "pii", "labels": labels}]}}).invoke("hi")
    assert len(built) == 1


def test_a_configurable_document_guard_builds_its_backend_once(built):
    guard = DocumentGuard().configurable_fields(config=ConfigurableField(id="documents"))
    for pii in ("redact", "flag", "redact"):
        guard.invoke([Document(page_content="mail ana@example.com")], config={"configurable": {"documents": {"pii": pii}}})
    assert len(built) == 1


def test_the_backend_cache_is_per_process_and_shared_by_deep_copies(built):
    chain = ModerationChain()
    chain.invoke("hi")
    assert len(chain.backend_cache) == 1 and len(built) == 1
    assert copy.deepcopy(chain).backend_cache is chain.backend_cache
    twin = pickle.loads(pickle.dumps(chain))
    assert isinstance(twin.backend_cache, BackendCache) and len(twin.backend_cache) == 0
    twin.invoke("hi")
    assert len(built) == 2  # built again where it landed


def test_the_backend_cache_drops_its_oldest_entry_past_its_bound(built, monkeypatch):
    monkeypatch.setattr(BackendCache, "MAX_ENTRIES", 2)
    cache = BackendCache()
    first = cache.get(BackendConfig(timeout_s=1))
    cache.get(BackendConfig(timeout_s=2))
    cache.get(BackendConfig(timeout_s=3))
    assert len(cache) == 2 and cache.get(BackendConfig(timeout_s=1)) is not first


# -- per-call ids ---------------------------------------------------------------------------------------------

USER = 4242  # an id that must not appear in an error message


def _components():
    return {
        "chain": lambda c: ModerationChain().invoke("hi", config=c),
        "documents": lambda c: DocumentGuard().invoke([Document(page_content="hi")], config=c),
        "tool_output": lambda c: ToolOutputGuard().invoke("hi", config=c),
        "stream": lambda c: StreamGuard().invoke("hi", config=c),
        "prompt": lambda c: PromptGuard().invoke("hi", config=c),
    }


@pytest.mark.parametrize("name", ["chain", "documents", "tool_output", "stream", "prompt"])
@pytest.mark.parametrize("key", ["unique_id", "user_id"])
def test_a_per_call_id_that_is_not_a_str_is_a_configuration_error_without_the_id(name, key):
    with pytest.raises(ConfigurationError, match=f"{key} must be a str, not int") as info:
        _components()[name]({"configurable": {key: USER}})
    assert str(USER) not in str(info.value)


@pytest.mark.parametrize("name", ["chain", "documents", "tool_output", "prompt"])
def test_a_str_per_call_id_still_works(name):
    _components()[name]({"configurable": {"unique_id": "u-1"}})


def test_a_guard_built_with_an_id_that_is_not_a_str_is_refused_at_the_call():
    with pytest.raises(ConfigurationError, match="unique_id must be a str, not int") as info:
        ModerationChain(unique_id=USER).invoke("hi")  # type: ignore[arg-type]
    assert str(USER) not in str(info.value)


def test_caller_id_reads_unique_id_then_user_id_then_the_default():
    assert caller_id(None) is None and caller_id({}, "own") == "own"
    assert caller_id({"configurable": {"user_id": "u", "unique_id": "x"}}, "own") == "x"
    assert caller_id({"configurable": {"user_id": "u", "unique_id": ""}}, "own") == "u"
    assert caller_id({"configurable": {"unique_id": None}}, "own") == "own"
