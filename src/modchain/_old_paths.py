"""Module paths that moved, and the import hook that keeps the old ones working.

``import modchain.vision.image_chain`` (and every other old path below) still works: the import system is asked
to hand back the moved module itself, not a copy, so ``from ... import`` of any name, ``monkeypatch`` on either
path and pickles made under the old path all reach the one real module. Importing an old path warns, so users
can move to the new one; the README changelog lists the moves. One table instead of one shim file per old
module keeps the packages readable.

An entry names a module or a whole package; a package entry also answers every module under it
(``modchain.vision.verdict`` -> ``modchain.image_moderation.verdict``). ``modchain/__init__.py`` imports this
module before anything else, which installs the hook.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

#: old module under ``modchain.backends`` -> where it lives now (backends grouped by where they run)
_BACKENDS: dict[str, str] = {
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

#: old module (or package) path -> where it lives now
MOVED: dict[str, str] = {
    # components, named for what they do
    "modchain.vision": "modchain.image_moderation",
    "modchain.visual": "modchain.visual_chain",
    # streaming: modchain.text.streaming became a package (same name, so no entry of its own)
    "modchain.text.stream_checks": "modchain.text.streaming.checks",
    "modchain.text.stream_chunks": "modchain.text.streaming.chunks",
    "modchain.text.stream_reasoning": "modchain.text.streaming.reasoning",
    "modchain.text.stream_violations": "modchain.text.streaming.violations",
    "modchain.text.stream_windows": "modchain.text.streaming.windows",
    # documents (RAG) and tools (agents): modchain.text.documents became a package too
    "modchain.text.agent_middleware": "modchain.text.documents.agent_middleware",
    "modchain.text.document_cues": "modchain.text.documents.cues",
    "modchain.text.document_injection": "modchain.text.documents.injection",
    "modchain.text.document_injection_embedding": "modchain.text.documents.injection_embedding",
    "modchain.text.document_injection_scoring": "modchain.text.documents.injection_scoring",
    "modchain.text.documents_report": "modchain.text.documents.report",
    "modchain.text.guarded_tool": "modchain.text.documents.guarded_tool",
    "modchain.text.tool_guard": "modchain.text.documents.tool_guard",
    **{f"modchain.backends.{old}": f"modchain.backends.{new}" for old, new in _BACKENDS.items()},
}


def new_path(old: str) -> str | None:
    """Where the module imported as ``old`` lives now, or ``None`` if it did not move."""
    if old in MOVED:
        return MOVED[old]
    package = old
    while "." in package:
        package = package.rpartition(".")[0]
        if package in MOVED:
            return MOVED[package] + old[len(package):]
    return None


def _import_machinery(filename: str) -> bool:
    return filename == __file__ or filename.startswith("<frozen importlib") or filename.endswith(
        ("importlib/__init__.py", "importlib\\__init__.py"))


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the code that ran the import, so the warning names the user's line, not importlib's
    (Python's default filters show a DeprecationWarning only when it is attributed to ``__main__``)."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and _import_machinery(frame.f_code.co_filename):
        frame = frame.f_back
        # ``warnings`` itself skips importlib's bootstrap frames when it counts levels; count the others.
        name = frame.f_code.co_filename
        level += not ("importlib" in name and "_bootstrap" in name)
    return level


class _OldPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old path with the moved module object (registered under both names in ``sys.modules``)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith("modchain."):  # every import in the process asks this finder first
            return None
        moved = new_path(fullname)
        if moved is None or (moved not in sys.modules and importlib.util.find_spec(moved) is None):
            return None  # not moved, or under a moved package but missing there too: "No module named ..."
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> ModuleType:
        moved = new_path(spec.name)
        warnings.warn(f"{spec.name} moved to {moved}; the old path will be removed in a later release",
                      DeprecationWarning, stacklevel=_caller_stacklevel())
        module = importlib.import_module(moved)
        # The import system sets ``__spec__`` of what this returns to the alias spec; keep the real one.
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The moved module has already run; executing it again would create a second copy of its state.
        module.__spec__ = module.__spec__.loader_state


def install() -> None:
    """Put the finder first: for a package alias (``modchain.vision``) the normal path finder would otherwise
    find ``modchain.vision.image_chain`` in the aliased package's directory and load a second copy of it."""
    if not any(isinstance(finder, _OldPathFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _OldPathFinder())


install()
