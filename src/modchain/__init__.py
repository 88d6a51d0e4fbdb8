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
from modchain.text.restore import RestorePii

__version__ = "0.1.0"

__all__ = [
    "AnonymizationVault",
    "BackendConfig",
    "BackendError",
    "BackendThrottledError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "ConfigurationError",
    "FilterResult",
    "Finding",
    "InputError",
    "ModchainError",
    "ModerationCallbackHandler",
    "ModerationChain",
    "ModerationConfig",
    "ModerationResult",
    "ModerationViolation",
    "PiiConfig",
    "PiiViolation",
    "PromptSafetyConfig",
    "PromptSafetyViolation",
    "RestorePii",
    "ToxicityConfig",
    "ToxicityViolation",
    "create_backend",
    "register_backend",
]
