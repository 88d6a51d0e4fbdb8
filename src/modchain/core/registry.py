"""Text backends by name, imported only when first used so ``import modchain`` never pulls boto3 or torch.

A name maps to ``"module:factory"`` (or a callable); the factory takes a :class:`BackendConfig` and returns a
:class:`~modchain.core.protocols.TextDetector`. Adding a service is one module under ``modchain.backends``
and one line here. This is the one place ``core`` names backend modules (as data, imported on first use);
:func:`s3_fetcher` is the other backend function core needs, for ``s3://`` images.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modchain.core.errors import ConfigurationError

if TYPE_CHECKING:
    from modchain.core.config import BackendConfig
    from modchain.core.protocols import TextDetector

#: Builds a text backend from its config.
BackendFactory = Callable[["BackendConfig"], "TextDetector"]

# name -> "module:factory"; the factory takes a BackendConfig.
_BACKENDS: dict[str, str | BackendFactory] = {
    "local": "modchain.backends.local.backend:LocalBackend.from_config",
    "comprehend": "modchain.backends.aws.comprehend:ComprehendBackend.from_config",
    "bedrock": "modchain.backends.aws.bedrock:BedrockGuardrailsBackend.from_config",
    # Model-backed, offline once the model is on disk (`pip install 'modchain[local]'`); BackendConfig.model
    # picks the model id or path, BackendConfig.device the torch device.
    "hf-ner": "modchain.backends.hf.ner:HuggingFaceNerBackend.from_config",
    "hf-toxicity": "modchain.backends.hf.classifier:HuggingFaceClassifierBackend.from_config",
    "hf-prompt-safety": "modchain.backends.hf.classifier:HuggingFaceClassifierBackend.from_config",
    "spacy-ner": "modchain.backends.hf.ner:SpacyNerBackend.from_config",
    # Needs a chat model object, so it cannot be built from a config: the factory explains how to pass one
    # (ModerationChain(config, backends={"llm-judge": LlmJudgeBackend(llm)})).
    "llm-judge": "modchain.backends.llm_judge:LlmJudgeBackend.from_config",
}

# The extra that installs a backend's optional dependencies, for the error message when they are missing:
# it follows the package the backend lives in (backends are grouped by where they run), unless named here.
_EXTRA_BY_PACKAGE = {"modchain.backends.aws.": "aws", "modchain.backends.hf.": "local"}
_EXTRAS = {"spacy-ner": "all"}


def _extra_for(name: str, module_name: str) -> str:
    if name in _EXTRAS:
        return _EXTRAS[name]
    return next((extra for package, extra in _EXTRA_BY_PACKAGE.items() if module_name.startswith(package)), "all")


def register_backend(name: str, factory: BackendFactory | str) -> None:
    """Make ``name`` usable in configs; ``factory`` builds the backend from a :class:`BackendConfig`."""
    _BACKENDS[name] = factory


def known_backends() -> frozenset[str]:
    return frozenset(_BACKENDS)


#: The S3 image fetcher: it maps botocore errors at the backend boundary, so it lives in ``backends``.
_S3_FETCHER = "modchain.backends.aws.s3_images:fetch_s3_image"


def s3_fetcher() -> Callable[..., bytes]:
    """``fetch_s3_image(s3_client, bucket, key, max_bytes=...)`` from the AWS backends (imported on first use)."""
    module_name, _, attr = _S3_FETCHER.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"s3:// images need optional dependencies: pip install 'modchain[aws]' ({exc})") from exc
    return getattr(module, attr)


def create_backend(config: BackendConfig) -> TextDetector:
    factory = _BACKENDS.get(config.name)
    if factory is None:
        raise ConfigurationError(f"unknown backend {config.name!r}; known: {sorted(_BACKENDS)}")
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as exc:
            extra = _extra_for(config.name, module_name)
            raise ConfigurationError(
                f"backend {config.name!r} needs optional dependencies: pip install 'modchain[{extra}]' ({exc})"
            ) from exc
        for part in attr.split("."):
            target = getattr(target, part)
        factory = target
    return factory(config)
