"""SageMaker JumpStart Llama endpoints as LangChain chat models.

Three payload formats, each a content handler (messages -> request bytes, response bytes -> text):

* ``llama2``: the Llama 2 chat dialog format, ``{"inputs": [[{"role": "system", ...}, {"role": "user", ...}]],
  "parameters": {...}}`` -> ``[{"generation": {"role": "assistant", "content": ...}}]``; the endpoint needs the
  custom attribute ``accept_eula=true``.
* ``llama3``: Llama 3 string prompts with its special tokens, ``{"inputs": "<|begin_of_text|>...",
  "parameters": {...}}`` -> ``{"generated_text": ...}`` (or a list of those).
* ``messages``: the Messages API (OpenAI-style), ``{"messages": [...], "max_tokens": ...}`` ->
  ``{"choices": [{"message": {"content": ...}}]}``.

``SageMakerChatModel`` calls ``sagemaker-runtime`` ``InvokeEndpoint`` through boto3 (imported lazily), with
SDK errors mapped by :func:`modchain.backends.aws.common.call_aws`. It is a LangChain ``BaseChatModel``, so
it works wherever a chat model does, e.g. ``LlmVerdict(SageMakerChatModel("my-llama", format="llama3"))``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from modchain.core.errors import BackendError, ConfigurationError

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool", "function": "tool",
          "chat": "user"}


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "\n".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content
                     if isinstance(p, str) or (isinstance(p, dict) and p.get("type") == "text"))


def to_dialog(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """``[{"role", "content"}]``: system messages merged into one leading system turn, consecutive turns of
    the same role merged (Llama 2 dialogs must alternate user / assistant)."""
    system = [_text(m) for m in messages if m.type == "system"]
    dialog: list[dict[str, str]] = [{"role": "system", "content": "\n\n".join(system)}] if system else []
    for message in messages:
        if message.type == "system":
            continue
        role = _ROLES.get(message.type, "user")
        role = "assistant" if role == "assistant" else "user"
        if dialog and dialog[-1]["role"] == role:
            dialog[-1] = {"role": role, "content": dialog[-1]["content"] + "\n\n" + _text(message)}
        else:
            dialog.append({"role": role, "content": _text(message)})
    return dialog


class ContentHandler:
    """Messages -> request body, response body -> generated text, for one endpoint format."""

    content_type: ClassVar[str] = "application/json"
    accepts: ClassVar[str] = "application/json"

    def transform_input(self, messages: Sequence[BaseMessage], parameters: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def transform_output(self, body: bytes) -> str:
        raise NotImplementedError

    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            return json.loads(body)
        except ValueError as exc:
            raise BackendError("sagemaker-llm: the endpoint's response is not JSON", backend="sagemaker-llm",
                               operation="InvokeEndpoint") from exc

    @staticmethod
    def _unexpected(what: str) -> BackendError:
        return BackendError(f"sagemaker-llm: unexpected response shape ({what})", backend="sagemaker-llm",
                            operation="InvokeEndpoint")


class Llama2ChatHandler(ContentHandler):
    """JumpStart Llama 2 chat models (dialog format)."""

    def transform_input(self, messages: Sequence[BaseMessage], parameters: dict[str, Any]) -> bytes:
        return json.dumps({"inputs": [to_dialog(messages)], "parameters": parameters}).encode()

    def transform_output(self, body: bytes) -> str:
        data = self._json(body)
        try:
            item = data[0] if isinstance(data, list) else data
            content = item["generation"]
            content = content["content"] if isinstance(content, dict) else content
        except (KeyError, IndexError, TypeError):
            raise self._unexpected("expected [{'generation': {'content': ...}}]") from None
        if not isinstance(content, str):
            raise self._unexpected("generation content is not text")
        return content


def _neutralize(text: str) -> str:
    # Message text must not be able to write Llama 3 special tokens (<|eot_id|>...) and forge a turn.
    return text.replace("<|", "< |").replace("|>", "| >")


class Llama3PromptHandler(ContentHandler):
    """JumpStart Llama 3 / 3.1 models with string prompts in Llama 3's chat format."""

    @staticmethod
    def prompt(messages: Sequence[BaseMessage]) -> str:
        parts = ["<|begin_of_text|>"]
        for turn in to_dialog(messages):
            parts.append(f"<|start_header_id|>{turn['role']}<|end_header_id|>\n\n{_neutralize(turn['content'])}"
                         "<|eot_id|>")
        parts.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
        return "".join(parts)

    def transform_input(self, messages: Sequence[BaseMessage], parameters: dict[str, Any]) -> bytes:
        params = {"stop": ["<|eot_id|>"], **parameters}
        return json.dumps({"inputs": self.prompt(messages), "parameters": params}).encode()

    def transform_output(self, body: bytes) -> str:
        data = self._json(body)
        item = data[0] if isinstance(data, list) and data else data
        text = item.get("generated_text") if isinstance(item, dict) else None
        if not isinstance(text, str):
            raise self._unexpected("expected {'generated_text': ...}")
        return text.split("<|eot_id|>", 1)[0]


class MessagesApiHandler(ContentHandler):
    """Endpoints serving the Messages API (OpenAI-style chat completions)."""

    def transform_input(self, messages: Sequence[BaseMessage], parameters: dict[str, Any]) -> bytes:
        params = dict(parameters)
        if "max_new_tokens" in params:
            params.setdefault("max_tokens", params.pop("max_new_tokens"))
        return json.dumps({"messages": to_dialog(messages), **params}).encode()

    def transform_output(self, body: bytes) -> str:
        data = self._json(body)
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise self._unexpected("expected {'choices': [{'message': {'content': ...}}]}") from None
        if not isinstance(content, str):
            raise self._unexpected("message content is not text")
        return content


HANDLERS: dict[str, type[ContentHandler]] = {
    "llama2": Llama2ChatHandler,
    "llama3": Llama3PromptHandler,
    "messages": MessagesApiHandler,
}


class SageMakerChatModel(BaseChatModel):
    """A chat model served by a SageMaker endpoint (JumpStart Llama 2 / Llama 3 / Messages API).

    Args:
        endpoint_name: the SageMaker endpoint.
        client: a boto3 ``sagemaker-runtime`` client; made from ``region_name`` / ``profile_name`` /
            ``endpoint_url`` when unset.
        format: ``"llama2"``, ``"llama3"`` or ``"messages"``.
        accept_eula: send ``CustomAttributes="accept_eula=true"`` (JumpStart Llama endpoints require it).
        parameters: generation parameters (``max_new_tokens``, ``temperature``, ``top_p``, ...).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    endpoint_name: str
    client: Any = Field(default=None, exclude=True)
    format: Literal["llama2", "llama3", "messages"] = "llama2"
    region_name: str | None = None
    profile_name: str | None = None
    endpoint_url: str | None = None
    accept_eula: bool = True
    parameters: dict[str, Any] = Field(default_factory=lambda: {"max_new_tokens": 512, "temperature": 0.01,
                                                                "top_p": 0.9})
    timeout_s: float = 60.0
    max_retries: int = 3
    _handler: ContentHandler = PrivateAttr()

    def __init__(self, endpoint_name: str | None = None, **kwargs: Any) -> None:
        if endpoint_name is not None:
            kwargs["endpoint_name"] = endpoint_name
        super().__init__(**kwargs)
        self._handler = HANDLERS[self.format]()

    @property
    def _llm_type(self) -> str:
        return f"sagemaker-{self.format}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"endpoint_name": self.endpoint_name, "format": self.format, "parameters": self.parameters}

    def _client(self) -> Any:
        if self.client is None:
            from modchain.backends.aws.common import make_client

            self.client = make_client("sagemaker-runtime", region_name=self.region_name,
                                      profile_name=self.profile_name, endpoint_url=self.endpoint_url,
                                      timeout_s=self.timeout_s, max_retries=self.max_retries, max_concurrency=10)
        return self.client

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        from modchain.backends.aws.common import call_aws

        if not messages:
            raise ConfigurationError("sagemaker-llm: no messages to send")
        params = {**self.parameters, **kwargs}
        if stop:
            params["stop"] = [*params.get("stop", []), *stop]
        body = self._handler.transform_input(messages, params)
        request: dict[str, Any] = {"EndpointName": self.endpoint_name, "Body": body,
                                   "ContentType": self._handler.content_type, "Accept": self._handler.accepts}
        if self.accept_eula:
            request["CustomAttributes"] = "accept_eula=true"
        response = call_aws("sagemaker-llm", "InvokeEndpoint", self._client().invoke_endpoint, **request)
        text = self._handler.transform_output(response["Body"].read())
        if stop:  # endpoints may include the stop sequence
            for s in stop:
                text = text.split(s, 1)[0] if s else text
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])
