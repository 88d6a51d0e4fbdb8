"""SageMaker-compatible inference handlers (``/ping``, ``/invocations``) and a local server that runs them.

Importing this package is light; torch and transformers load with the model.
"""

from __future__ import annotations

from modchain.serving.blip2_handler import Blip2Handler, InvocationError
from modchain.serving.server import LocalEndpoint, serve

__all__ = ["Blip2Handler", "InvocationError", "LocalEndpoint", "serve"]
