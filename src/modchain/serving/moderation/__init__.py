"""``modchain serve moderation``: an HTTP moderation service (``pip install 'modchain[serve]'``).

* ``POST /v1/moderations``: OpenAI's moderation API (strings, lists, text and ``image_url`` parts), so any
  OpenAI SDK is a client: ``OpenAI(base_url="http://host:8000/v1", api_key=KEY).moderations.create(...)``;
* ``POST /v1/moderate``: modchain's full :class:`~modchain.core.results.ModerationResult` per text;
* ``GET /health`` (no key) and ``GET /metrics`` (Prometheus).

FastAPI, uvicorn and prometheus-client are imported when an app is created, not by this package.
See docs/moderation_service.md.
"""

from __future__ import annotations

from modchain.serving.moderation.app import API_KEYS_ENV, create_app
from modchain.serving.moderation.guard import ServiceLimits
from modchain.serving.moderation.server import serve_in_thread

#: The command's names, kept here for callers from before the CLI moved to modchain.cli; loaded on first use
#: so the service package does not import the command line at load time.
_COMMAND_NAMES = ("add_arguments", "main", "run")


def __getattr__(name: str) -> object:
    if name in _COMMAND_NAMES:
        from modchain.cli import moderation_service

        return getattr(moderation_service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["API_KEYS_ENV", "ServiceLimits", "add_arguments", "create_app", "main", "run", "serve_in_thread"]
