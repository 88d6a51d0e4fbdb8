"""Backends grouped by where they run (``aws/``, ``hf/``, ``local/``), old flat paths kept, typed dispatch."""

from __future__ import annotations

import asyncio
import importlib
import threading

import pytest

from modchain.backends.base import FILTER_KINDS, Scored, TextBackend, filter_kind
from modchain.core import registry
from modchain.core.config import BackendConfig
from modchain.core.errors import ConfigurationError
from modchain.core.protocols import TextDetector

# old flat module -> where it lives now
MOVED = {
    "aws_common": "aws.common", "aws_responses": "aws.responses", "comprehend": "aws.comprehend",
    "bedrock": "aws.bedrock", "rekognition": "aws.rekognition_moderation",
    "rekognition_labels": "aws.rekognition_detector", "s3_images": "aws.s3_images",
    "sagemaker_llm": "aws.sagemaker_llm", "sagemaker_stable_diffusion": "aws.sagemaker_stable_diffusion",
    "visual_sagemaker": "aws.sagemaker_visual", "blip2_sagemaker": "aws.sagemaker_blip2",
    "hf_classifier": "hf.classifier", "hf_common": "hf.common", "hf_ner": "hf.ner",
    "hf_vision_common": "hf.vision_common", "blip2_local": "hf.blip2", "grounding_dino": "hf.grounding_dino",
    "owlv2": "hf.owlv2", "sam": "hf.sam", "sam_decoding": "hf.sam_decoding",
    "diffusers_generator": "hf.diffusers_generator", "transformers_chat": "hf.chat",
    "embedding_injection": "hf.sentence_encoder", "nudenet_labeler": "local.nudenet",
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_the_old_path_is_the_moved_module(old):
    moved = importlib.import_module(f"modchain.backends.{MOVED[old]}")
    assert importlib.import_module(f"modchain.backends.{old}") is moved  # so patching either patches both
    assert getattr(importlib.import_module("modchain.backends"), old) is moved


def test_old_from_imports_keep_working():
    from modchain.backends.comprehend import ComprehendBackend
    from modchain.backends.hf_common import LazyModel
    from modchain.backends.rekognition import MAX_IMAGE_BYTES, encode_jpeg_within

    assert ComprehendBackend.__module__ == "modchain.backends.aws.comprehend"
    assert LazyModel.__module__ == "modchain.backends.hf.common"
    assert MAX_IMAGE_BYTES > 0 and callable(encode_jpeg_within)


class _PiiOnly(TextBackend):
    name = "pii-only"

    def __init__(self) -> None:
        self.threads: list[str] = []

    def _pii(self, texts, config):
        self.threads.append(threading.current_thread().name)
        return [Scored(raw=text) for text in texts]


class _AsyncToxicity(TextBackend):
    name = "async-toxicity"

    def _toxicity(self, texts, config):
        return [Scored(raw="sync") for _ in texts]

    async def _atoxicity(self, texts, config):
        return [Scored(raw="async") for _ in texts]


def test_a_backend_supports_the_kinds_it_implements():
    backend = _PiiOnly()
    assert isinstance(backend, TextDetector)
    assert [backend.supports(kind) for kind in FILTER_KINDS] == [True, False, False]
    assert not backend.supports("sentiment")
    assert filter_kind("toxicity") == "toxicity" and filter_kind("sentiment") is None


def test_run_and_arun_dispatch_per_kind():
    backend = _PiiOnly()
    assert [s.raw for s in backend.run("pii", ("a", "b"), None)] == ["a", "b"]
    assert [s.raw for s in asyncio.run(backend.arun("pii", ["c"], None))] == ["c"]
    assert backend.threads[-1] != threading.main_thread().name  # the sync scorer ran in a worker thread
    assert backend.run("pii", [], None) == [] and len(backend.threads) == 2  # nothing to score, no call
    async_backend = _AsyncToxicity()
    assert [s.raw for s in async_backend.run("toxicity", ["x"], None)] == ["sync"]
    assert [s.raw for s in asyncio.run(async_backend.arun("toxicity", ["x"], None))] == ["async"]


@pytest.mark.parametrize("kind", ["toxicity", "sentiment"])
def test_an_unsupported_or_unknown_kind_is_a_configuration_error(kind):
    with pytest.raises(ConfigurationError, match=f"cannot run the '{kind}' filter"):
        _PiiOnly().run(kind, ["x"], None)
    with pytest.raises(ConfigurationError, match=f"cannot run the '{kind}' filter"):
        asyncio.run(_PiiOnly().arun(kind, ["x"], None))


def test_create_backend_returns_a_text_detector():
    assert isinstance(registry.create_backend(BackendConfig(name="local")), TextDetector)


@pytest.mark.parametrize(("module", "extra"), [("modchain.backends.aws.missing", "aws"),
                                               ("modchain.backends.hf.missing", "local"),
                                               ("somewhere.else", "all")])
def test_the_missing_extra_follows_the_backend_package(monkeypatch, module, extra):
    monkeypatch.setitem(registry._BACKENDS, "new-service", f"{module}:Backend.from_config")
    with pytest.raises(ConfigurationError, match=rf"pip install 'modchain\[{extra}\]'"):
        registry.create_backend(BackendConfig(name="new-service"))


def test_importing_an_old_path_warns_and_names_the_new_one():
    import sys

    sys.modules.pop("modchain.backends.owlv2", None)
    with pytest.warns(DeprecationWarning, match=r"modchain\.backends\.hf\.owlv2"):
        module = importlib.import_module("modchain.backends.owlv2")
    assert module is importlib.import_module("modchain.backends.hf.owlv2")


def test_the_alias_table_matches_this_test():
    from modchain._old_paths import MOVED as ALIASES

    prefix = "modchain.backends."
    backends = {old.removeprefix(prefix): new.removeprefix(prefix)
                for old, new in ALIASES.items() if old.startswith(prefix)}
    assert backends == MOVED
    assert all(new.startswith(prefix) for old, new in ALIASES.items() if old.startswith(prefix))
