"""Code written against the old ``AmazonComprehendModerationChain`` (a LangChain ``Chain``) runs unchanged on
``modchain.compat``: the ``Chain`` call forms, constructor callbacks, ``verbose``, attributes and dict configs.
Every test runs against the local Comprehend emulator through a real boto3 client."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import RunInfo

from modchain.compat import (
    AmazonComprehendModerationChain,
    BaseModerationCallbackHandler,
    BaseModerationConfig,
    ModerationPiiConfig,
    ModerationPiiError,
    ModerationToxicityConfig,
)
from modchain.core.config import ModerationConfig
from modchain.core.errors import ConfigurationError

SSN_TEXT = "My SSN is 323-22-9980, thanks"
REDACT_SSN = BaseModerationConfig(filters=[ModerationPiiConfig(labels=["SSN"], redact=True)])


class Recorder(BaseCallbackHandler):
    """A plain LangChain callback handler, as the old docs passed with ``callbacks=[...]``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kwargs):
        self.events.append(("start", (kwargs.get("name"), run_id, parent_run_id)))

    def on_chain_end(self, outputs, *, run_id, **kwargs):
        self.events.append(("end", run_id))

    def on_chain_error(self, error, *, run_id, **kwargs):
        self.events.append(("error", type(error).__name__))

    def on_text(self, text, **kwargs):
        self.events.append(("text", text))

    def texts(self) -> list[str]:
        return [value for kind, value in self.events if kind == "text"]

    def starts(self) -> list[tuple]:
        return [value for kind, value in self.events if kind == "start"]


def test_calling_the_chain_returns_inputs_and_outputs(comprehend_client):
    chain = AmazonComprehendModerationChain(moderation_config=REDACT_SSN, client=comprehend_client)
    out = chain({"input": SSN_TEXT})
    assert out == {"input": SSN_TEXT, "output": "My SSN is ***********, thanks"}
    assert chain(SSN_TEXT) == out  # a single value is wrapped in the one input key, as Chain.prep_inputs does


def test_return_only_outputs_and_run_info(comprehend_client):
    chain = AmazonComprehendModerationChain(moderation_config=REDACT_SSN, client=comprehend_client)
    assert chain({"input": SSN_TEXT}, return_only_outputs=True) == {"output": "My SSN is ***********, thanks"}
    assert chain.invoke({"input": SSN_TEXT}, return_only_outputs=True) == {"output": "My SSN is ***********, thanks"}
    with_info = chain({"input": SSN_TEXT}, include_run_info=True)
    assert isinstance(with_info["__run"], RunInfo)


def test_missing_input_key_is_chains_error(comprehend_client):
    chain = AmazonComprehendModerationChain(client=comprehend_client)
    with pytest.raises(ValueError, match="Missing some input keys"):
        chain({"question": "hi"})


def test_constructor_callbacks_are_used_with_the_old_on_text_lines(comprehend_client, capsys):
    recorder = Recorder()
    chain = AmazonComprehendModerationChain(moderation_config=REDACT_SSN, client=comprehend_client,
                                            callbacks=[recorder])
    chain({"input": SSN_TEXT})
    (name, run_id, parent), *children = recorder.starts()
    assert name == "AmazonComprehendModerationChain" and parent is None
    assert children == []  # Chain's rule: constructor callbacks are not inherited by the runs inside
    assert recorder.events[-1] == ("end", run_id)
    assert recorder.texts() == ["Running AmazonComprehendModerationChain...\n", "Running pii Validation...\n"]
    assert capsys.readouterr().out == ""  # not verbose: nothing printed


def test_call_time_callbacks_add_to_the_constructors(comprehend_client):
    first, second = Recorder(), Recorder()
    chain = AmazonComprehendModerationChain(moderation_config=REDACT_SSN, client=comprehend_client,
                                            callbacks=[first])
    chain({"input": "hello"}, callbacks=[second])
    assert first.texts() and first.texts() == second.texts()
    # Call-time callbacks are inherited: they also see modchain's chain running inside the old one.
    (_, outer, _), *children = second.starts()
    assert children and children[0][2] == outer


def test_a_violation_reaches_the_callbacks_without_the_text(comprehend_client):
    recorder = Recorder()
    chain = AmazonComprehendModerationChain(
        moderation_config=BaseModerationConfig(filters=[ModerationPiiConfig(), ModerationToxicityConfig()]),
        client=comprehend_client, callbacks=[recorder])
    with pytest.raises(ModerationPiiError):
        chain({"input": SSN_TEXT})
    texts = recorder.texts()
    assert texts[:2] == ["Running AmazonComprehendModerationChain...\n", "Running pii Validation...\n"]
    assert texts[2].startswith("Found PII content..stopping..") and "323-22-9980" not in texts[2]
    assert "Running toxicity Validation...\n" not in texts  # it never ran
    assert ("error", "PiiViolation") in recorder.events


def test_verbose_goes_through_langchains_stdout_handler_like_chain_did(comprehend_client, capsys):
    recorder = Recorder()
    chain = AmazonComprehendModerationChain(moderation_config=REDACT_SSN, client=comprehend_client,
                                            verbose=True, callbacks=[recorder])
    chain({"input": "hello"})
    out = capsys.readouterr().out
    assert "Entering new AmazonComprehendModerationChain chain" in out  # langchain's StdOutCallbackHandler
    assert "Running AmazonComprehendModerationChain..." in out
    assert "Running AmazonComprehendModerationChain...\n" in recorder.texts()  # and the callbacks get it too


def test_old_attributes_exist(comprehend_client):
    class Audit(BaseModerationCallbackHandler):
        async def on_after_pii(self, beacon, unique_id):
            pass

    audit = Audit()
    chain = AmazonComprehendModerationChain(client=comprehend_client, region_name="us-east-1",
                                            credentials_profile_name="dev", moderation_callback=audit,
                                            unique_id="user-7")
    assert (chain.unique_id, chain.region_name, chain.credentials_profile_name) == ("user-7", "us-east-1", "dev")
    assert chain.moderation_callback is audit and chain.client is comprehend_client
    assert chain.input_keys == ["input"] and chain.output_keys == ["output"]
    assert isinstance(chain.moderation_config, BaseModerationConfig)


def test_dict_moderation_config(comprehend_client):
    chain = AmazonComprehendModerationChain(
        moderation_config={"filters": [{"labels": ["SSN"], "redact": True, "mask_character": "X"},
                                       {"labels": ["INSULT"], "threshold": 0.5}]},
        client=comprehend_client)
    pii, toxicity = chain.moderation_config.filters
    assert isinstance(pii, ModerationPiiConfig) and isinstance(toxicity, ModerationToxicityConfig)
    assert chain.run(SSN_TEXT) == "My SSN is XXXXXXXXXXX, thanks"
    # modchain's own config shape works as a dict too.
    native = AmazonComprehendModerationChain(
        moderation_config={"filters": [{"type": "pii", "labels": ["SSN"], "action": "redact"}]},
        client=comprehend_client)
    assert isinstance(native.moderation_config, ModerationConfig)
    assert native.run(SSN_TEXT) == "My SSN is ***********, thanks"


@pytest.mark.parametrize("config, message", [
    ({"filters": [{"threshold": 0.8}]}, "fits a PII, toxicity and prompt-safety"),
    ({"filters": [{"labels": ["SNN"]}]}, "did you mean 'SSN'"),
    ("pii", "must be a BaseModerationConfig"),
])
def test_ambiguous_or_bad_dict_configs_are_typed_errors(comprehend_client, config, message):
    with pytest.raises(ConfigurationError, match=message):
        AmazonComprehendModerationChain(moderation_config=config, client=comprehend_client)


def test_run_apply_and_async_forms(comprehend_client):
    chain = AmazonComprehendModerationChain(moderation_config=REDACT_SSN, client=comprehend_client)
    expected = "My SSN is ***********, thanks"
    assert chain.run(SSN_TEXT) == chain.run(input=SSN_TEXT) == expected
    with pytest.raises(ValueError):
        chain.run(SSN_TEXT, "second")
    assert [o["output"] for o in chain.apply([{"input": SSN_TEXT}, {"input": "hi"}])] == [expected, "hi"]
    recorder = Recorder()
    assert asyncio.run(chain.arun(SSN_TEXT, callbacks=[recorder])) == expected
    assert asyncio.run(chain.acall({"input": SSN_TEXT}, return_only_outputs=True)) == {"output": expected}
    assert "Running pii Validation...\n" in recorder.texts()
