"""A local transformers chat model (Llama and any causal LM with a chat template) as a LangChain chat model.

``TransformersChatModel("meta-llama/Llama-3.1-8B-Instruct")`` formats the conversation with the tokenizer's
own chat template, generates with ``model.generate`` (greedy by default, so verdicts are repeatable) and
returns the new tokens as an ``AIMessage``. torch and transformers are imported on first use only; the model
loads once, on the first call, from any thread. Use it anywhere a chat model goes, e.g.
``LlmVerdict(TransformersChatModel(path))``.
"""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from modchain.core.errors import BackendError, ConfigurationError

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool", "chat": "user"}


class TransformersChatModel(BaseChatModel):
    """A causal LM with a chat template, run locally with transformers.

    Args:
        model_id_or_path: a Hugging Face model id or a local directory (``save_pretrained`` output).
        device: torch device (``cpu``, ``cuda``, ``cuda:1``, ``mps``); unset: cuda if available.
        max_new_tokens: the most tokens generated per answer.
        do_sample / temperature / top_p: sampling (off by default: greedy decoding).
        torch_dtype: e.g. ``"float16"`` on a GPU; unset: the checkpoint's default.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    model_id_or_path: str
    device: str | None = None
    max_new_tokens: int = Field(256, ge=1)
    do_sample: bool = False
    temperature: float | None = None
    top_p: float | None = None
    torch_dtype: str | None = None
    revision: str | None = None
    _model: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)
    _device: Any = PrivateAttr(default=None)
    _load_lock: Any = PrivateAttr(default_factory=threading.Lock)
    _run_lock: Any = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, model_id_or_path: str | None = None, **kwargs: Any) -> None:
        if model_id_or_path is not None:
            kwargs["model_id_or_path"] = model_id_or_path
        super().__init__(**kwargs)

    @property
    def _llm_type(self) -> str:
        return "modchain-transformers-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_id_or_path": self.model_id_or_path, "max_new_tokens": self.max_new_tokens,
                "do_sample": self.do_sample}

    def _load(self) -> tuple[Any, Any, Any]:
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    from modchain.backends.hf.common import require_hf, resolve_device

                    torch, transformers = require_hf()
                    device = resolve_device(self.device)
                    kwargs: dict[str, Any] = {"revision": self.revision}
                    if self.torch_dtype:
                        dtype = getattr(torch, self.torch_dtype, None)
                        if not isinstance(dtype, torch.dtype):
                            raise ConfigurationError(f"unknown torch_dtype {self.torch_dtype!r}")
                        kwargs["dtype"] = dtype
                    try:
                        tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_id_or_path,
                                                                               revision=self.revision)
                        model = transformers.AutoModelForCausalLM.from_pretrained(self.model_id_or_path, **kwargs)
                    except (OSError, ValueError) as exc:
                        raise ConfigurationError(f"cannot load chat model {self.model_id_or_path!r}: "
                                                 f"{type(exc).__name__}: {exc}") from exc
                    if not getattr(tokenizer, "chat_template", None):
                        raise ConfigurationError(f"the tokenizer of {self.model_id_or_path!r} has no chat template")
                    try:
                        model = model.to(device)
                    except (RuntimeError, AssertionError, ValueError) as exc:
                        raise ConfigurationError(f"cannot use device {self.device!r}: {type(exc).__name__}") from None
                    model.eval()
                    self._tokenizer, self._device, self._model = tokenizer, device, model
        return self._model, self._tokenizer, self._device

    @staticmethod
    def _conversation(messages: list[BaseMessage]) -> list[dict[str, str]]:
        turns = []
        for m in messages:
            content = m.content if isinstance(m.content, str) else "\n".join(
                p if isinstance(p, str) else str(p.get("text", "")) for p in m.content
                if isinstance(p, str) or (isinstance(p, dict) and p.get("type") == "text"))
            turns.append({"role": _ROLES.get(m.type, "user"), "content": content})
        return turns

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        from modchain.backends.hf.common import require_hf

        torch, _ = require_hf()
        model, tokenizer, device = self._load()
        inputs = tokenizer.apply_chat_template(self._conversation(messages), add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
        inputs = {k: v.to(device) for k, v in inputs.items()}
        options: dict[str, Any] = {"max_new_tokens": int(kwargs.pop("max_new_tokens", self.max_new_tokens)),
                                   "do_sample": self.do_sample}
        if self.do_sample:
            options.update({k: v for k, v in (("temperature", self.temperature), ("top_p", self.top_p))
                            if v is not None})
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is not None:
            options["pad_token_id"] = pad
        try:
            with self._run_lock, torch.inference_mode():
                output = model.generate(**inputs, **options)
        except RuntimeError as exc:  # out of memory, device errors
            raise BackendError(f"transformers-chat: generation failed: {type(exc).__name__}",
                               backend="transformers-chat", operation="generate") from exc
        new_tokens = output[0, inputs["input_ids"].shape[1]:]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        for s in stop or ():
            if s:
                text = text.split(s, 1)[0]
        generation = ChatGeneration(message=AIMessage(content=text),
                                    generation_info={"new_tokens": int(new_tokens.shape[0])})
        return ChatResult(generations=[generation])
