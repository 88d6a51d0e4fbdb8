"""modchain: composable content moderation for generative-AI applications.

``import modchain`` is light: no boto3, torch or transformers until a backend that needs them is used.
Every area is reachable from here (``modchain.__all__``): text moderation, streaming, documents and tools,
image moderation, the visual chain, generation, screening, evaluation and serving. Names outside the text
core load on first use (PEP 562), so importing the package costs only what the text chain needs.
"""

# First, before any other modchain module loads: importing _old_paths installs the finder that answers old
# module paths (``modchain.vision``, ``modchain.text.stream_windows``, ``modchain.backends.comprehend``, ...)
# with the moved modules themselves.
from modchain import _old_paths  # noqa: F401  (imported for its effect)
from modchain.core.callbacks import ModerationCallbackHandler
from modchain.core.config import (
    BackendConfig,
    ModerationConfig,
    PiiConfig,
    PromptSafetyConfig,
    ToxicityConfig,
)
from modchain.core.conversation import ConversationScope, ConversationStore, ViolationCounter
from modchain.core.errors import (
    BackendError,
    BackendThrottledError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigurationError,
    InputError,
    ModchainError,
    ModerationViolation,
    PiiViolation,
    PromptRejectedViolation,
    PromptSafetyViolation,
    ToxicityViolation,
    UnsafeGenerationViolation,
    UnsupportedLanguageError,
)
from modchain.core.events import ModerationEvent
from modchain.core.language import detect_language
from modchain.core.registry import create_backend, register_backend
from modchain.core.results import FilterResult, Finding, ModerationResult, Outcome
from modchain.core.vault import AnonymizationVault
from modchain.text.chain import ModerationChain
from modchain.text.documents import (
    DocumentGuard,
    DocumentGuardConfig,
    DocumentReport,
    ToolGuardConfig,
    ToolOutputGuard,
    ToolOutputViolation,
    guard_tool,
    guard_tools,
)
from modchain.text.restore import RestorePii
from modchain.text.streaming import (
    StreamConfig,
    StreamGuard,
    StreamPiiViolation,
    StreamPromptSafetyViolation,
    StreamToxicityViolation,
    StreamViolation,
)

__version__ = "0.1.0"


def _from(module: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, module)


#: Exported names loaded on first access (PEP 562): the middleware imports langchain (and through it
#: langgraph); the image, visual, generation, screening, eval and serving areas add modules that a text-only
#: service never needs, so ``import modchain`` stays as fast as the text chain alone.
_LAZY: dict[str, str] = {
    "ModerationMiddleware": "modchain.text.documents.agent_middleware",
    **_from("modchain.image_moderation", "Cascade", "ImageEvidence", "ImageFinding", "ImageModerationChain",
            "ImageModerationResult", "LlmVerdict", "ModerationPolicy", "UnsafeImageViolation", "Blip2VQA",
            "ImageModerationConfig"),
    **_from("modchain.visual_chain", "Detection", "ImageChain", "ImageChainConfig", "ImageChainResult", "ImageStore",
            "RedactionResult", "Redactor", "Segment", "VisualPrompt", "redact", "GroundingDino", "Owlv2", "Sam"),
    **_from("modchain.generation", "BlurConfig", "Denylist", "GenerationResult", "PromptCheck", "PromptGuard",
            "PromptGuardConfig", "SafeGenerationConfig", "SafeImageGenerator", "StableDiffusion"),
    **_from("modchain.screening", "DatasetScreener", "ItemResult", "ScreeningConfig", "ScreeningReport"),
    **_from("modchain.eval.runner", "evaluate"),
    **_from("modchain.serving", "LocalEndpoint"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'modchain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    # text moderation and the shared model (core)
    "AnonymizationVault",
    "BackendConfig",
    "BackendError",
    "BackendThrottledError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "ConfigurationError",
    "ConversationScope",
    "ConversationStore",
    "FilterResult",
    "Finding",
    "InputError",
    "ModchainError",
    "ModerationCallbackHandler",
    "ModerationChain",
    "ModerationConfig",
    "ModerationEvent",
    "ModerationMiddleware",
    "ModerationResult",
    "ModerationViolation",
    "Outcome",
    "PiiConfig",
    "PiiViolation",
    "PromptSafetyConfig",
    "PromptSafetyViolation",
    "RestorePii",
    "ToxicityConfig",
    "ToxicityViolation",
    "UnsupportedLanguageError",
    "ViolationCounter",
    "create_backend",
    "detect_language",
    "register_backend",
    # documents (RAG) and tools (agents)
    "DocumentGuard",
    "DocumentGuardConfig",
    "DocumentReport",
    "ToolGuardConfig",
    "ToolOutputGuard",
    "ToolOutputViolation",
    "guard_tool",
    "guard_tools",
    # streaming
    "StreamConfig",
    "StreamGuard",
    "StreamPiiViolation",
    "StreamPromptSafetyViolation",
    "StreamToxicityViolation",
    "StreamViolation",
    # image moderation
    "Cascade",
    "ImageEvidence",
    "ImageFinding",
    "ImageModerationChain",
    "ImageModerationResult",
    "LlmVerdict",
    "ModerationPolicy",
    "UnsafeImageViolation",
    "Blip2VQA",
    "ImageModerationConfig",
    # the visual chain (text -> boxes -> masks) and redaction
    "Detection",
    "ImageChain",
    "ImageChainConfig",
    "ImageChainResult",
    "ImageStore",
    "RedactionResult",
    "Redactor",
    "Segment",
    "VisualPrompt",
    "redact",
    "GroundingDino",
    "Owlv2",
    "Sam",
    # safe image generation
    "BlurConfig",
    "Denylist",
    "GenerationResult",
    "PromptCheck",
    "PromptGuard",
    "PromptGuardConfig",
    "SafeGenerationConfig",
    "SafeImageGenerator",
    "StableDiffusion",
    "PromptRejectedViolation",
    "UnsafeGenerationViolation",
    # dataset screening
    "DatasetScreener",
    "ItemResult",
    "ScreeningConfig",
    "ScreeningReport",
    # evaluation and serving
    "evaluate",
    "LocalEndpoint",
]
