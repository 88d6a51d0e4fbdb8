"""modchain: composable content moderation for generative-AI applications.

``import modchain`` is light: no boto3, torch or transformers until a backend that needs them is used.
"""

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
    PromptSafetyViolation,
    ToxicityViolation,
)
from modchain.core.registry import create_backend, register_backend
from modchain.core.results import FilterResult, Finding, ModerationResult
from modchain.core.vault import AnonymizationVault
from modchain.text.chain import ModerationChain
from modchain.text.documents import DocumentGuard
from modchain.text.documents_report import DocumentGuardConfig, DocumentReport
from modchain.text.restore import RestorePii
from modchain.text.streaming import (
    StreamConfig,
    StreamGuard,
    StreamPiiViolation,
    StreamPromptSafetyViolation,
    StreamToxicityViolation,
    StreamViolation,
)
from modchain.text.tool_guard import (
    ToolGuardConfig,
    ToolOutputGuard,
    ToolOutputViolation,
    guard_tool,
    guard_tools,
)

__version__ = "0.1.0"

#: Exported names whose modules import heavy optional libraries: loaded on first access (PEP 562).
_LAZY = {"ModerationMiddleware": "modchain.text.agent_middleware"}


def __getattr__(name: str) -> object:
    # `import modchain` must not import langchain (and through it langgraph): only the middleware needs it.
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'modchain' has no attribute {name!r}")

__all__ = [
    "AnonymizationVault",
    "BackendConfig",
    "BackendError",
    "BackendThrottledError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "ConfigurationError",
    "ConversationScope",
    "ConversationStore",
    "DocumentGuard",
    "DocumentGuardConfig",
    "DocumentReport",
    "FilterResult",
    "Finding",
    "InputError",
    "ModchainError",
    "ModerationCallbackHandler",
    "ModerationChain",
    "ModerationConfig",
    "ModerationMiddleware",
    "ModerationResult",
    "ModerationViolation",
    "PiiConfig",
    "PiiViolation",
    "PromptSafetyConfig",
    "PromptSafetyViolation",
    "RestorePii",
    "StreamConfig",
    "StreamGuard",
    "StreamPiiViolation",
    "StreamPromptSafetyViolation",
    "StreamToxicityViolation",
    "StreamViolation",
    "ToolGuardConfig",
    "ToolOutputGuard",
    "ToolOutputViolation",
    "ToxicityConfig",
    "ToxicityViolation",
    "ViolationCounter",
    "create_backend",
    "guard_tool",
    "guard_tools",
    "register_backend",
]
