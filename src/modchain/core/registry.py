"""Backends by name, imported only when first used so ``import modchain`` never pulls boto3 or torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modchain.core.errors import ConfigurationError

if TYPE_CHECKING:
    from modchain.core.config import BackendConfig

# name -> "module:factory"; the factory takes a BackendConfig.
_BACKENDS: dict[str, str | Callable[[BackendConfig], Any]] = {
    "local": "modchain.backends.local.backend:LocalBackend.from_config",
    "comprehend": "modchain.backends.comprehend:ComprehendBackend.from_config",
    "bedrock": "modchain.backends.bedrock:BedrockGuardrailsBackend.from_config",
    # Model-backed, offline once the model is on disk (`pip install 'modchain[local]'`); BackendConfig.model
    # picks the model id or path, BackendConfig.device the torch device.
    "hf-ner": "modchain.backends.hf_ner:HuggingFaceNerBackend.from_config",
    "hf-toxicity": "modchain.backends.hf_classifier:HuggingFaceClassifierBackend.from_config",
    "hf-prompt-safety": "modchain.backends.hf_classifier:HuggingFaceClassifierBackend.from_config",
    "spacy-ner": "modchain.backends.hf_ner:SpacyNerBackend.from_config",
    # Needs a chat model object, so it cannot be built from a config: the factory explains how to pass one
    # (ModerationChain(config, backends={"llm-judge": LlmJudgeBackend(llm)})).
    "llm-judge": "modchain.backends.llm_judge:LlmJudgeBackend.from_config",
}

# The extra that installs a backend's optional dependencies, for the error message when they are missing.
_EXTRAS = {"comprehend": "aws", "bedrock": "aws", "hf-ner": "local", "hf-toxicity": "local",
           "hf-prompt-safety": "local"}


def register_backend(name: str, factory: Callable[[BackendConfig], Any] | str) -> None:
    """Make ``name`` usable in configs; ``factory`` builds the backend from a :class:`BackendConfig`."""
    _BACKENDS[name] = factory


def known_backends() -> frozenset[str]:
    return frozenset(_BACKENDS)


def create_backend(config: BackendConfig) -> Any:
    factory = _BACKENDS.get(config.name)
    if factory is None:
        raise ConfigurationError(f"unknown backend {config.name!r}; known: {sorted(_BACKENDS)}")
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as exc:
            extra = _EXTRAS.get(config.name, "all")
            raise ConfigurationError(
                f"backend {config.name!r} needs optional dependencies: pip install 'modchain[{extra}]' ({exc})"
            ) from exc
        for part in attr.split("."):
            target = getattr(target, part)
        factory = target
    return factory(config)
