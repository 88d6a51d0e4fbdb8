"""The flat module paths backends had before they were grouped into ``aws/``, ``hf/`` and ``local/``.

``import modchain.backends.comprehend`` (and every other old path below) still works: the import system is
asked to hand back the moved module itself, not a copy, so ``from ... import`` of any name, ``monkeypatch`` on
either path and pickles made under the old path all reach the one real module. Importing an old path warns,
so users can move to the new one; the README changelog lists the moves. One table instead of one shim file
per old module keeps ``backends/`` readable.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

#: old module under ``modchain.backends`` -> where it lives now
MOVED_MODULES: dict[str, str] = {
    "aws_common": "aws.common",
    "aws_responses": "aws.responses",
    "bedrock": "aws.bedrock",
    "blip2_sagemaker": "aws.sagemaker_blip2",
    "comprehend": "aws.comprehend",
    "rekognition": "aws.rekognition_moderation",
    "rekognition_labels": "aws.rekognition_detector",
    "s3_images": "aws.s3_images",
    "sagemaker_llm": "aws.sagemaker_llm",
    "sagemaker_stable_diffusion": "aws.sagemaker_stable_diffusion",
    "visual_sagemaker": "aws.sagemaker_visual",
    "blip2_local": "hf.blip2",
    "diffusers_generator": "hf.diffusers_generator",
    "embedding_injection": "hf.sentence_encoder",
    "grounding_dino": "hf.grounding_dino",
    "hf_classifier": "hf.classifier",
    "hf_common": "hf.common",
    "hf_ner": "hf.ner",
    "hf_vision_common": "hf.vision_common",
    "owlv2": "hf.owlv2",
    "sam": "hf.sam",
    "sam_decoding": "hf.sam_decoding",
    "transformers_chat": "hf.chat",
    "nudenet_labeler": "local.nudenet",
}

_PACKAGE = "modchain.backends"


def new_path(old_name: str) -> str:
    return f"{_PACKAGE}.{MOVED_MODULES[old_name]}"


class _OldPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old path with the moved module object (registered under both names in ``sys.modules``)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        package, _, name = fullname.rpartition(".")
        if package != _PACKAGE or name not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> ModuleType:
        old_name = spec.name.rpartition(".")[2]
        warnings.warn(f"{spec.name} moved to {new_path(old_name)}; the old path will be removed in a later "
                      "release", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new_path(old_name))

    def exec_module(self, module: ModuleType) -> None:
        # The moved module has already run; executing it again would create a second copy of its state.
        return None


def install() -> None:
    if not any(isinstance(finder, _OldPathFinder) for finder in sys.meta_path):
        sys.meta_path.append(_OldPathFinder())
