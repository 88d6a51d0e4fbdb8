"""SageMakerChatModel: boto3 against the local sagemaker-runtime emulator, all three Llama formats."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from modchain.backends.aws.sagemaker_llm import SageMakerChatModel, to_dialog
from modchain.core.errors import (
    BackendError,
    BackendThrottledError,
    BackendUnavailableError,
)
from modchain.image_moderation.errors_verdict import VerdictError
from modchain.image_moderation.policy import ImageEvidence
from modchain.image_moderation.verdict import LlmVerdict
from modchain.testing.clients import local_client
from modchain.testing.sagemaker_runtime_emulator import (
    FakeLlama2Handler,
    FakeLlama3Handler,
    FakeMessagesApiHandler,
    SageMakerRuntimeEmulator,
)

MESSAGES = [SystemMessage(content="Be brief."), HumanMessage(content="Hi <|eot_id|> there")]
GOOD = '{"flag": true, "category": "Gambling", "reason": "slot machines"}'


@pytest.fixture
def sagemaker():
    with SageMakerRuntimeEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(sagemaker):
    return local_client("sagemaker-runtime", sagemaker.url)


def test_llama2_dialog_format_with_accept_eula(sagemaker, client):
    handler = FakeLlama2Handler(["Hello!"])
    sagemaker.add_endpoint("llama-2-7b-chat", handler)
    model = SageMakerChatModel("llama-2-7b-chat", client=client, format="llama2", parameters={"max_new_tokens": 64})
    reply = model.invoke(MESSAGES)
    assert isinstance(reply, AIMessage) and reply.content == "Hello!"
    (op, params), = sagemaker.requests
    assert op == "InvokeEndpoint" and params["CustomAttributes"] == "accept_eula=true"
    assert params["ContentType"] == "application/json" and params["Accept"] == "application/json"
    assert json.loads(params["Body"]) == {
        "inputs": [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi <|eot_id|> there"}]],
        "parameters": {"max_new_tokens": 64}}


def test_llama2_without_eula_is_a_model_error(sagemaker, client):
    sagemaker.add_endpoint("llama", FakeLlama2Handler(["x"]))
    model = SageMakerChatModel("llama", client=client, accept_eula=False)
    with pytest.raises(BackendError, match="ModelError") as info:
        model.invoke(MESSAGES)
    assert info.value.aws_error_code == "ModelError"
    assert sagemaker.requests[0][1]["CustomAttributes"] is None


def test_llama3_string_prompt(sagemaker, client):
    handler = FakeLlama3Handler(["Hello there<|eot_id|>"])
    sagemaker.add_endpoint("llama-3-8b-instruct", handler)
    model = SageMakerChatModel("llama-3-8b-instruct", client=client, format="llama3",
                               parameters={"max_new_tokens": 32, "temperature": 0.0})
    assert model.invoke(MESSAGES).content == "Hello there"
    request = handler.requests[0]
    assert request["inputs"] == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi < |eot_id| > there<|eot_id|>"  # no forged special token
        "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert request["parameters"] == {"stop": ["<|eot_id|>"], "max_new_tokens": 32, "temperature": 0.0}
    assert sagemaker.requests[0][1]["CustomAttributes"] == "accept_eula=true"


def test_llama3_list_response(sagemaker, client):
    class ListReply(FakeLlama3Handler):
        def render(self, reply):
            return [{"generated_text": reply}]

    sagemaker.add_endpoint("l3", ListReply(["ok"]))
    assert SageMakerChatModel("l3", client=client, format="llama3").invoke("hi").content == "ok"


def test_messages_api_format(sagemaker, client):
    handler = FakeMessagesApiHandler(["Hi from the Messages API"])
    sagemaker.add_endpoint("llama-msg", handler)
    model = SageMakerChatModel("llama-msg", client=client, format="messages", accept_eula=False,
                               parameters={"max_new_tokens": 100, "temperature": 0.1})
    assert model.invoke(MESSAGES).content == "Hi from the Messages API"
    assert handler.requests[0] == {"messages": [{"role": "system", "content": "Be brief."},
                                                {"role": "user", "content": "Hi <|eot_id|> there"}],
                                   "temperature": 0.1, "max_tokens": 100}
    assert sagemaker.requests[0][1]["CustomAttributes"] is None


def test_to_dialog_merges_and_alternates():
    dialog = to_dialog([SystemMessage(content="a"), HumanMessage(content="b"), HumanMessage(content="c"),
                        AIMessage(content="d"), SystemMessage(content="e"), HumanMessage(content="f")])
    assert dialog == [{"role": "system", "content": "a\n\ne"}, {"role": "user", "content": "b\n\nc"},
                      {"role": "assistant", "content": "d"}, {"role": "user", "content": "f"}]


@pytest.mark.parametrize("code,kind", [("ThrottlingException", BackendThrottledError),
                                       ("ModelNotReadyException", BackendThrottledError),
                                       ("ServiceUnavailable", BackendUnavailableError),
                                       ("InternalFailure", BackendUnavailableError),
                                       ("ModelError", BackendError)])
def test_error_mapping(sagemaker, client, code, kind):
    sagemaker.add_endpoint("llama", FakeLlama2Handler(["x"]))
    sagemaker.fail_next(1, code, message="secret prompt text")
    with pytest.raises(kind) as info:
        SageMakerChatModel("llama", client=client).invoke(MESSAGES)
    assert code in str(info.value) and "secret" not in str(info.value)


def test_unknown_endpoint_and_bad_response(sagemaker, client):
    with pytest.raises(BackendError, match="ValidationError"):
        SageMakerChatModel("missing", client=client).invoke(MESSAGES)
    sagemaker.add_endpoint("weird", lambda body: b'{"unexpected": 1}')
    with pytest.raises(BackendError, match="unexpected response shape"):
        SageMakerChatModel("weird", client=client).invoke(MESSAGES)
    sagemaker.add_endpoint("notjson", lambda body: b"<html>")
    with pytest.raises(BackendError, match="not JSON"):
        SageMakerChatModel("notjson", client=client, format="messages").invoke(MESSAGES)


def test_endpoint_url_builds_its_own_client(sagemaker, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    sagemaker.add_endpoint("llama", FakeLlama2Handler(["made my own client"]))
    model = SageMakerChatModel("llama", endpoint_url=sagemaker.url, region_name="us-east-1", max_retries=0)
    assert model.invoke("hi").content == "made my own client"


@pytest.mark.parametrize("fmt,handler_cls", [("llama2", FakeLlama2Handler), ("llama3", FakeLlama3Handler),
                                             ("messages", FakeMessagesApiHandler)])
def test_llm_verdict_through_each_format_with_a_re_ask(sagemaker, client, fmt, handler_cls):
    handler = handler_cls(["I think it's gambling.", f"```json\n{GOOD}\n```"])
    sagemaker.add_endpoint("judge", handler)
    judge = LlmVerdict(SageMakerChatModel("judge", client=client, format=fmt))
    verdict = judge.invoke(ImageEvidence(caption="a casino", qa=[("Are there slot machines?", "yes")]))
    assert verdict.flag and verdict.category == "Gambling"
    assert len(handler.requests) == 2
    second = json.dumps(handler.requests[1])
    assert "no JSON object was found" in second and "I think it" in second  # the conversation continued


def test_llm_verdict_exhausted_on_sagemaker(sagemaker, client):
    sagemaker.add_endpoint("judge", FakeLlama2Handler(["nope", "still nope"]))
    with pytest.raises(VerdictError) as info:
        LlmVerdict(SageMakerChatModel("judge", client=client), max_attempts=2).invoke({"caption": "x"})
    assert info.value.outputs == ["nope", "still nope"]
