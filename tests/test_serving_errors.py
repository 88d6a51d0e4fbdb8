"""The local endpoint never logs what a request carried when a handler fails unexpectedly."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

import pytest

from modchain.serving.server import LocalEndpoint
from modchain.serving.stable_diffusion_handler import StableDiffusionHandler

SECRET = "portrait of Jane Roe, SSN 123-45-6789"


def _failing_generator(prompt: str, negative_prompt: str, seed: int):
    raise RuntimeError(f"CUDA out of memory while drawing {prompt!r}")  # the kind of message that quotes input


def _post(url: str, body: dict) -> urllib.error.HTTPError:
    request = urllib.request.Request(f"{url}/invocations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Accept": "application/json;jpeg"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    return caught.value


def test_unexpected_handler_error_logs_only_its_type(caplog, monkeypatch):
    monkeypatch.delenv("MODCHAIN_DEBUG", raising=False)
    with caplog.at_level(logging.DEBUG), LocalEndpoint(StableDiffusionHandler(_failing_generator)) as endpoint:
        error = _post(endpoint.url, {"prompt": SECRET, "seed": 1})
        body = error.read().decode()  # while the server is up: after shutdown the read can come up short
    assert error.code == 500
    assert "RuntimeError" in body and "Jane" not in body and "123-45" not in body
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "RuntimeError" in logged
    assert "Jane" not in logged and "123-45" not in logged


def test_debug_mode_logs_the_traceback(caplog, monkeypatch):
    monkeypatch.setenv("MODCHAIN_DEBUG", "1")
    with caplog.at_level(logging.DEBUG), LocalEndpoint(StableDiffusionHandler(_failing_generator)) as endpoint:
        _post(endpoint.url, {"prompt": "a lighthouse", "seed": 1})
    assert any(r.exc_info for r in caplog.records if "handler failed" in r.getMessage())
