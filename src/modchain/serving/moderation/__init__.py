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
from modchain.serving.moderation.command import add_arguments, main, run, serve_in_thread
from modchain.serving.moderation.guard import ServiceLimits

__all__ = ["API_KEYS_ENV", "ServiceLimits", "add_arguments", "create_app", "main", "run", "serve_in_thread"]
