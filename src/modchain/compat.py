"""Drop-in replacement for ``langchain_experimental.comprehend_moderation``: change the import, keep the code.

``from modchain.compat import AmazonComprehendModerationChain, BaseModerationConfig, ...`` accepts the
same constructor arguments, configs (objects or dicts), exceptions and callback handler base, keeps the old
``Chain`` call forms (``chain({"input": ...})``, ``return_only_outputs``, ``include_run_info``, ``run``,
``acall``, ``arun``, ``apply``), the constructor's ``callbacks`` / ``tags`` / ``metadata`` / ``verbose``
(``on_text`` through the callbacks; ``verbose`` adds LangChain's stdout handler, as ``Chain`` did), and
returns the same ``{"input": ..., "output": ...}`` dict, while running on modchain's chain. Fixed on the way:

* callbacks are awaited in order (the old chain called ``asyncio.create_task`` and crashed outside a loop);
* redaction masks exactly the entity (the old one masked one character too many);
* toxicity segments never exceed 1 KB, and PII / prompt-safety text is split at the service limits;
* every chat message is checked, not only the last one;
* no NLTK, so nothing is downloaded at run time;
* ``filters=[]`` returns the input unchanged (the old chain returned an empty string);
* the prompt-safety callback is really called (the old chain looked for a non-existent ``on_after_intent``);
* a dict filter that fits several config classes (``{"threshold": 0.8}``) is an error, not silently a PII one.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modchain.core.callbacks import ModerationCallbackHandler, register_base_handler_class
from modchain.core.config import (
    PII_LABELS,
    TOXICITY_LABELS,
    ModerationConfig,
    PiiConfig,
    PromptSafetyConfig,
    ToxicityConfig,
    short_validation_message,
)
from modchain.core.errors import (
    ConfigurationError,
    ModerationViolation,
    PiiViolation,
    PromptSafetyViolation,
    ToxicityViolation,
)
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

    @field_validator("filters", mode="before")
    @classmethod
    def _dict_filters(cls, filters: Any) -> Any:
        # pydantic alone would make any dict that fits several classes (every field has a default) the first
        # of them, a PII filter: pick the class from the keys and labels, and refuse what stays ambiguous.
        if not isinstance(filters, (list, tuple)):
            return filters
        return [_filter_from_dict(i, f) if isinstance(f, dict) else f for i, f in enumerate(filters)]

    def to_native(self) -> ModerationConfig:
        return ModerationConfig(filters=[f.to_native() for f in self.filters])


_OLD_FILTERS = {"pii": ModerationPiiConfig, "toxicity": ModerationToxicityConfig,
                "prompt_safety": ModerationPromptSafetyConfig}


def _filter_from_dict(index: int, data: dict[str, Any]) -> BaseModel:
    if "redact" in data or "mask_character" in data:
        return ModerationPiiConfig.model_validate(data)
    labels = {str(label).upper() for label in data.get("labels") or ()}
    if labels and labels <= PII_LABELS:
        return ModerationPiiConfig.model_validate(data)
    if labels and labels <= set(TOXICITY_LABELS):
        return ModerationToxicityConfig.model_validate(data)
    if labels:  # neither kind: the native check names the label and the closest known ones
        PiiConfig(labels=tuple(labels))
    raise ConfigurationError(
        f"filter {index}: a dict with only {sorted(data) or 'no keys'} fits a PII, toxicity and prompt-safety "
        "filter alike; use ModerationPiiConfig(...), ModerationToxicityConfig(...) or "
        "ModerationPromptSafetyConfig(...), or modchain's own {'type': 'pii' | 'toxicity' | 'prompt_safety'}")


def _coerce_config(config: Any) -> BaseModerationConfig | ModerationConfig:
    """The old field accepted a BaseModerationConfig or a dict in its shape; modchain's ModerationConfig (or a
    dict in its shape: filters with a ``type``, or a ``backend``) works too."""
    if config is None:
        return BaseModerationConfig()
    if isinstance(config, (BaseModerationConfig, ModerationConfig)):
        return config
    if isinstance(config, dict):
        filters = config.get("filters") or []
        native = {"backend", "fail_open"} & set(config) or any(isinstance(f, dict) and "type" in f for f in filters)
        if native:
            return ModerationConfig.from_dict(config)
        try:
            return BaseModerationConfig.model_validate(config)
        except ValidationError as exc:
            raise ConfigurationError(short_validation_message(exc, "BaseModerationConfig")) from None
    raise ConfigurationError(f"moderation_config must be a BaseModerationConfig, ModerationConfig or dict, "
                             f"not {type(config).__name__}")


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
    """The old ``Chain``'s constructor, attributes, call forms and output shape on top of
    :class:`ModerationChain` with Comprehend.

    Each call is one chain run, as with ``Chain``: callbacks from the constructor and from the call (or the
    ``config``) see ``on_chain_start``, the old ``on_text`` messages and ``on_chain_end`` / ``on_chain_error``,
    and modchain's chain runs as its child (so tracers show the filters inside it).
    """

    def __init__(
        self,
        moderation_config: BaseModerationConfig | ModerationConfig | dict[str, Any] | None = None,
        client: Any = None,
        region_name: str | None = None,
        credentials_profile_name: str | None = None,
        moderation_callback: ModerationCallbackHandler | None = None,
        unique_id: str | None = None,
        verbose: bool | None = None,
        input_key: str = "input",
        output_key: str = "output",
        callbacks: Callbacks = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        from langchain_core.globals import get_verbose

        from modchain.backends.aws.comprehend import ComprehendBackend

        config = _coerce_config(moderation_config)
        native = config.to_native() if isinstance(config, BaseModerationConfig) else config
        self.moderation_config = config
        self.client = client
        self.region_name = region_name
        self.credentials_profile_name = credentials_profile_name
        self.moderation_callback = moderation_callback
        self.unique_id = unique_id
        self.verbose = get_verbose() if verbose is None else verbose  # Chain's default: langchain's global
        self.callbacks, self.tags, self.metadata = callbacks, tags, metadata
        self.memory = None  # a Chain field; this chain never had memory
        self.input_key, self.output_key = input_key, output_key
        self.name = "AmazonComprehendModerationChain"
        backend = ComprehendBackend(client, region_name=region_name, profile_name=credentials_profile_name)
        handlers = [_SingleTextBeacons(moderation_callback)] if moderation_callback is not None else []
        self.chain = ModerationChain(native, backend=backend, callbacks=handlers, unique_id=unique_id)

    @property
    def input_keys(self) -> list[str]:
        return [self.input_key]

    @property
    def output_keys(self) -> list[str]:
        return [self.output_key]

    # -- Chain's input and output handling ---------------------------------------------------------------

    def _prep_inputs(self, input: Any) -> dict[str, Any]:
        inputs = dict(input) if isinstance(input, dict) else {self.input_key: input}
        if self.input_key not in inputs:
            raise ValueError(f"Missing some input keys: {{{self.input_key!r}}}")  # Chain's message, no values
        return inputs

    def _finish(self, inputs: dict[str, Any], outputs: dict[str, Any], run: Any, kwargs: dict[str, Any]) -> Any:
        final = dict(outputs) if kwargs.get("return_only_outputs") else {**inputs, **outputs}
        if kwargs.get("include_run_info"):
            from langchain_core.outputs import RunInfo

            final["__run"] = RunInfo(run_id=run.run_id)
        return final

    def _managers(self, config: RunnableConfig | None, manager_class: Any) -> tuple[RunnableConfig, Any]:
        from langchain_core.runnables.config import ensure_config

        config = ensure_config(config)
        manager = manager_class.configure(config.get("callbacks"), self.callbacks, self.verbose, config.get("tags"),
                                          self.tags, config.get("metadata"), self.metadata)
        return config, manager

    def _texts(self, error: BaseException | None) -> list[str]:
        """The old chain's per-filter ``on_text`` lines (every filter, or those up to the one that blocked),
        then its "stopping" line for a violation, whose message names labels and counts, never the text."""
        names = [f.type for f in self.chain.config.filters]
        blocked = getattr(error, "filter_type", None)
        if blocked in names:
            names = names[: names.index(blocked) + 1]
        lines = [f"Running {name} Validation...\n" for name in names]
        what = {"pii": "PII content", "toxicity": "Toxic content", "prompt_safety": "Harmful intention"}
        if blocked in what:
            lines.append(f"Found {what[blocked]}..stopping..\n{error}\n")
        return lines

    # -- runs --------------------------------------------------------------------------------------------

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        from langchain_core.callbacks import CallbackManager
        from langchain_core.runnables.config import patch_config

        config, manager = self._managers(config, CallbackManager)
        inputs = self._prep_inputs(input)
        run = manager.on_chain_start(None, inputs, config.get("run_id"), name=config.get("run_name") or self.name)
        error: BaseException | None = None
        try:
            run.on_text("Running AmazonComprehendModerationChain...\n")
            try:
                moderated = self.chain.invoke(inputs[self.input_key], patch_config(config, callbacks=run.get_child()))
            except ModerationViolation as exc:
                error = exc
                raise
            finally:
                for line in self._texts(error):
                    run.on_text(line)
            outputs = {self.output_key: moderated}
        except BaseException as exc:
            run.on_chain_error(exc)
            raise
        run.on_chain_end(outputs)
        return self._finish(inputs, outputs, run, kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        from langchain_core.callbacks import AsyncCallbackManager
        from langchain_core.runnables.config import patch_config

        config, manager = self._managers(config, AsyncCallbackManager)
        inputs = self._prep_inputs(input)
        run = await manager.on_chain_start(None, inputs, config.get("run_id"),
                                           name=config.get("run_name") or self.name)
        error: BaseException | None = None
        try:
            await run.on_text("Running AmazonComprehendModerationChain...\n")
            try:
                moderated = await self.chain.ainvoke(inputs[self.input_key],
                                                     patch_config(config, callbacks=run.get_child()))
            except ModerationViolation as exc:
                error = exc
                raise
            finally:
                for line in self._texts(error):
                    await run.on_text(line)
            outputs = {self.output_key: moderated}
        except BaseException as exc:
            await run.on_chain_error(exc)
            raise
        await run.on_chain_end(outputs)
        return self._finish(inputs, outputs, run, kwargs)

    # -- the old Chain call forms ------------------------------------------------------------------------

    @staticmethod
    def _call_config(callbacks: Callbacks, tags: list[str] | None, metadata: dict[str, Any] | None,
                     run_name: str | None) -> RunnableConfig:
        values = {"callbacks": callbacks, "tags": tags, "metadata": metadata, "run_name": run_name}
        return RunnableConfig(**{k: v for k, v in values.items() if v is not None})  # type: ignore[typeddict-item]

    def __call__(self, inputs: Any, return_only_outputs: bool = False, callbacks: Callbacks = None, *,
                 tags: list[str] | None = None, metadata: dict[str, Any] | None = None, run_name: str | None = None,
                 include_run_info: bool = False) -> dict[str, Any]:
        """``chain({"input": ...})``: ``Chain.__call__``."""
        return self.invoke(inputs, self._call_config(callbacks, tags, metadata, run_name),
                           return_only_outputs=return_only_outputs, include_run_info=include_run_info)

    async def acall(self, inputs: Any, return_only_outputs: bool = False, callbacks: Callbacks = None, *,
                    tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
                    run_name: str | None = None, include_run_info: bool = False) -> dict[str, Any]:
        return await self.ainvoke(inputs, self._call_config(callbacks, tags, metadata, run_name),
                                  return_only_outputs=return_only_outputs, include_run_info=include_run_info)

    def _run_input(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if len(args) == 1 and not kwargs:
            return args[0]
        if kwargs and not args:
            return kwargs
        raise ValueError("`run` takes one positional argument or keyword arguments, not both or neither")

    def run(self, *args: Any, callbacks: Callbacks = None, tags: list[str] | None = None,
            metadata: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """The old ``Chain.run``: the moderated value alone."""
        return self(self._run_input(args, kwargs), callbacks=callbacks, tags=tags, metadata=metadata)[self.output_key]

    async def arun(self, *args: Any, callbacks: Callbacks = None, tags: list[str] | None = None,
                   metadata: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        outputs = await self.acall(self._run_input(args, kwargs), callbacks=callbacks, tags=tags, metadata=metadata)
        return outputs[self.output_key]

    def apply(self, input_list: list[Any], callbacks: Callbacks = None) -> list[dict[str, Any]]:
        """``Chain.apply``: one output dict per input."""
        return self.batch(input_list, RunnableConfig(callbacks=callbacks) if callbacks is not None else None)


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
