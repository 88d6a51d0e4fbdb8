"""Drop-in replacement for ``langchain_experimental.comprehend_moderation``: change the import, keep the code.

``from modchain.compat import AmazonComprehendModerationChain, BaseModerationConfig, ...`` accepts the
same constructor arguments, configs, exceptions and callback handler base, and returns the same
``{"input": ..., "output": ...}`` dict, while running on modchain's chain. Fixed on the way:

* callbacks are awaited in order (the old chain called ``asyncio.create_task`` and crashed outside a loop);
* redaction masks exactly the entity (the old one masked one character too many);
* toxicity segments never exceed 1 KB, and PII / prompt-safety text is split at the service limits;
* every chat message is checked, not only the last one;
* no NLTK, so nothing is downloaded at run time;
* ``filters=[]`` returns the input unchanged (the old chain returned an empty string);
* the prompt-safety callback is really called (the old chain looked for a non-existent ``on_after_intent``).
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, ConfigDict, Field

from modchain.core.callbacks import ModerationCallbackHandler, register_base_handler_class
from modchain.core.config import ModerationConfig, PiiConfig, PromptSafetyConfig, ToxicityConfig
from modchain.core.errors import PiiViolation, PromptSafetyViolation, ToxicityViolation
from modchain.text.chain import ModerationChain

# The old exception names are the new classes, so either name catches the error.
ModerationPiiError = PiiViolation
ModerationToxicityError = ToxicityViolation
ModerationPromptSafetyError = PromptSafetyViolation


class ModerationPiiConfig(BaseModel):
    threshold: float = 0.5
    labels: list[str] = Field(default_factory=list)
    redact: bool = False
    mask_character: str = "*"

    def to_native(self) -> PiiConfig:
        return PiiConfig(threshold=self.threshold, labels=tuple(self.labels),
                         action="redact" if self.redact else "block", mask_character=self.mask_character)


class ModerationToxicityConfig(BaseModel):
    threshold: float = 0.5
    labels: list[str] = Field(default_factory=list)

    def to_native(self) -> ToxicityConfig:
        return ToxicityConfig(threshold=self.threshold, labels=tuple(self.labels))


class ModerationPromptSafetyConfig(BaseModel):
    threshold: float = 0.5

    def to_native(self) -> PromptSafetyConfig:
        return PromptSafetyConfig(threshold=self.threshold)


class BaseModerationConfig(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    filters: list[ModerationPiiConfig | ModerationToxicityConfig | ModerationPromptSafetyConfig] = Field(
        default_factory=lambda: [ModerationPiiConfig(), ModerationToxicityConfig(), ModerationPromptSafetyConfig()]
    )

    def to_native(self) -> ModerationConfig:
        return ModerationConfig(filters=[f.to_native() for f in self.filters])


class BaseModerationCallbackHandler(ModerationCallbackHandler):
    """The old base class: subclasses override at least one ``async def on_after_*``."""

    def __init__(self) -> None:
        if not any(self.handles(step) for step in ("pii", "toxicity", "prompt_safety")):
            raise NotImplementedError(
                "Subclasses must override at least one of on_after_pii(), on_after_toxicity(), "
                "or on_after_prompt_safety() functions."
            )

    @property
    def pii_callback(self) -> bool:
        return self.handles("pii")

    @property
    def toxicity_callback(self) -> bool:
        return self.handles("toxicity")

    @property
    def prompt_safety_callback(self) -> bool:
        return self.handles("prompt_safety")


register_base_handler_class(BaseModerationCallbackHandler)


class _SingleTextBeacons:
    """Hands a handler the old beacon shape: for a single text, the text itself and that text's backend
    output (modchain's beacons always hold lists, one entry per message checked)."""

    def __init__(self, handler: ModerationCallbackHandler) -> None:
        self.handler = handler

    def handles(self, step: str) -> bool:
        return self.handler.handles(step)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.handler, name)
        if not name.startswith("on_after_"):
            return method

        def call(beacon: dict[str, Any], unique_id: str | None, **kwargs: Any) -> Any:
            for key in ("moderation_input", "moderation_output"):
                value = beacon.get(key)
                if isinstance(value, list) and len(value) == 1:
                    beacon = {**beacon, key: value[0]}
            return method(beacon, unique_id, **kwargs)

        return call


class AmazonComprehendModerationChain(Runnable[Any, dict[str, Any]]):
    """The old chain's constructor and output shape on top of :class:`ModerationChain` with Comprehend."""

    def __init__(
        self,
        moderation_config: BaseModerationConfig | ModerationConfig | None = None,
        client: Any = None,
        region_name: str | None = None,
        credentials_profile_name: str | None = None,
        moderation_callback: ModerationCallbackHandler | None = None,
        unique_id: str | None = None,
        verbose: bool = False,
        input_key: str = "input",
        output_key: str = "output",
        **_: Any,
    ) -> None:
        from modchain.backends.comprehend import ComprehendBackend

        config = moderation_config or BaseModerationConfig()
        native = config.to_native() if isinstance(config, BaseModerationConfig) else config
        self.moderation_config = config
        self.client = client
        self.verbose = verbose
        self.input_key, self.output_key = input_key, output_key
        backend = ComprehendBackend(client, region_name=region_name, profile_name=credentials_profile_name)
        callbacks = [_SingleTextBeacons(moderation_callback)] if moderation_callback is not None else []
        self.chain = ModerationChain(native, backend=backend, callbacks=callbacks,
                                     unique_id=unique_id, name="AmazonComprehendModerationChain")

    @property
    def input_keys(self) -> list[str]:
        return [self.input_key]

    @property
    def output_keys(self) -> list[str]:
        return [self.output_key]

    def _wrap(self, input: Any) -> dict[str, Any]:
        return dict(input) if isinstance(input, dict) else {self.input_key: input}

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        inputs = self._wrap(input)
        if self.verbose:
            print("Running AmazonComprehendModerationChain...")
        moderated = self.chain.invoke(inputs[self.input_key], config)
        return {**inputs, self.output_key: moderated}

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        inputs = self._wrap(input)
        moderated = await self.chain.ainvoke(inputs[self.input_key], config)
        return {**inputs, self.output_key: moderated}

    def batch(self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False,
              **kwargs: Any) -> list[Any]:
        wrapped = [self._wrap(i) for i in inputs]
        outputs = self.chain.batch([w[self.input_key] for w in wrapped], config, return_exceptions=return_exceptions)
        return [o if isinstance(o, Exception) else {**w, self.output_key: o} for w, o in zip(wrapped, outputs)]

    def run(self, input: Any) -> Any:
        """The old ``Chain.run``: the moderated value alone."""
        return self.invoke(input)[self.output_key]


__all__ = [
    "AmazonComprehendModerationChain",
    "BaseModerationCallbackHandler",
    "BaseModerationConfig",
    "ModerationPiiConfig",
    "ModerationPiiError",
    "ModerationPromptSafetyConfig",
    "ModerationPromptSafetyError",
    "ModerationToxicityConfig",
    "ModerationToxicityError",
]
