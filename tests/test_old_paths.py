"""Old module paths keep working after the moves: the same module objects, one DeprecationWarning each.

Components were renamed for what they do (``vision`` -> ``image_moderation``, ``visual`` -> ``visual_chain``),
``text/`` grew ``streaming/`` and ``documents/`` packages, and backends were grouped by where they run. One
import hook (``modchain._old_paths``) answers every old path with the moved module itself.
"""

from __future__ import annotations

import ast
import importlib
import pickle
import sys
import warnings
from pathlib import Path

import pytest

import modchain
from modchain import _old_paths
from modchain._old_paths import MOVED, new_path

SRC = Path(__file__).resolve().parents[1] / "src" / "modchain"

# The component moves, written out here so that a change to the table is a change to this test too.
COMPONENT_MOVES = {
    "modchain.vision": "modchain.image_moderation",
    "modchain.visual": "modchain.visual_chain",
    "modchain.text.stream_checks": "modchain.text.streaming.checks",
    "modchain.text.stream_chunks": "modchain.text.streaming.chunks",
    "modchain.text.stream_reasoning": "modchain.text.streaming.reasoning",
    "modchain.text.stream_violations": "modchain.text.streaming.violations",
    "modchain.text.stream_windows": "modchain.text.streaming.windows",
    "modchain.text.agent_middleware": "modchain.text.documents.agent_middleware",
    "modchain.text.document_cues": "modchain.text.documents.cues",
    "modchain.text.document_injection": "modchain.text.documents.injection",
    "modchain.text.document_injection_embedding": "modchain.text.documents.injection_embedding",
    "modchain.text.document_injection_scoring": "modchain.text.documents.injection_scoring",
    "modchain.text.documents_report": "modchain.text.documents.report",
    "modchain.text.guarded_tool": "modchain.text.documents.guarded_tool",
    "modchain.text.tool_guard": "modchain.text.documents.tool_guard",
}

# Modules under a moved package: answered through the package entry, not one entry each.
UNDER_MOVED_PACKAGES = {
    "modchain.vision.image_chain": "modchain.image_moderation.image_chain",
    "modchain.vision.verdict": "modchain.image_moderation.verdict",
    "modchain.vision.errors": "modchain.image_moderation.errors",
    "modchain.visual.chain": "modchain.visual_chain.chain",
    "modchain.visual.image_store": "modchain.visual_chain.image_store",
    "modchain.visual.redaction": "modchain.visual_chain.redaction",
}


def _forget(old: str) -> None:
    """Drop the alias entries (never the real modules), so the next import goes through the hook again."""
    for name in [n for n in sys.modules if n == old or n.startswith(old + ".")]:
        if new_path(name) is not None:
            del sys.modules[name]


def test_the_table_holds_the_component_moves():
    assert {old: new for old, new in MOVED.items() if not old.startswith("modchain.backends.")} == COMPONENT_MOVES


@pytest.mark.parametrize("old", sorted(MOVED) + sorted(UNDER_MOVED_PACKAGES))
def test_an_old_path_is_the_new_module_and_warns_once(old):
    new = new_path(old)
    assert new == MOVED.get(old, UNDER_MOVED_PACKAGES.get(old))
    moved = importlib.import_module(new)
    _forget(old)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {new}\b") as caught:
        assert importlib.import_module(old) is moved
    assert len([w for w in caught if str(w.message).startswith(f"{old} moved")]) == 1
    assert caught[-1].filename == __file__  # the warning names the importing line, not importlib
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # imported once: no second warning
        assert importlib.import_module(old) is moved
    assert moved.__spec__.name == new  # the alias did not replace the module's own spec


def test_from_imports_through_old_paths_give_the_same_objects():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from modchain.text.documents_report import DocumentGuardConfig
        from modchain.text.stream_windows import StreamConfig
        from modchain.vision import ImageModerationChain
        from modchain.vision.image_chain import ImageModerationResult
        from modchain.visual.chain import ImageChain

    assert ImageModerationChain is modchain.ImageModerationChain
    assert ImageModerationResult is modchain.ImageModerationResult
    assert ImageChain is modchain.ImageChain
    assert StreamConfig is modchain.StreamConfig and DocumentGuardConfig is modchain.DocumentGuardConfig
    assert sys.modules["modchain.vision"] is sys.modules["modchain.image_moderation"]


def test_streaming_and_documents_keep_their_names_as_packages():
    from modchain.text.documents import REMOVED_NOTICE, DocumentGuard, DocumentGuardConfig, DocumentReport
    from modchain.text.streaming import StreamConfig, StreamGuard, StreamToxicityViolation, StreamViolation

    assert DocumentGuard is modchain.DocumentGuard and DocumentGuard.__module__ == "modchain.text.documents.guard"
    assert DocumentGuardConfig is modchain.DocumentGuardConfig and DocumentReport is modchain.DocumentReport
    assert REMOVED_NOTICE
    assert StreamGuard is modchain.StreamGuard and StreamConfig is modchain.StreamConfig
    assert issubclass(StreamToxicityViolation, StreamViolation)


def test_a_missing_module_under_a_moved_package_is_not_found_under_its_old_name():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ModuleNotFoundError, match=r"modchain\.vision\.no_such_module"):
            importlib.import_module("modchain.vision.no_such_module")


def test_the_finder_runs_before_the_path_finder():
    """Else ``modchain.vision.image_chain`` would load a second copy from the aliased package's directory."""
    ours = [i for i, finder in enumerate(sys.meta_path) if isinstance(finder, _old_paths._OldPathFinder)]
    assert len(ours) == 1 and ours[0] < sys.meta_path.index(importlib.machinery.PathFinder)


def test_a_patch_through_an_old_package_path_reaches_the_new_module(monkeypatch):
    import modchain.visual_chain.chain as chain_module

    marker = object()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        monkeypatch.setattr("modchain.visual.chain.logger", marker)
        monkeypatch.setattr("modchain.text.stream_windows.StreamWindows.marker", marker, raising=False)
    assert chain_module.logger is marker
    from modchain.text.streaming.windows import StreamWindows

    assert StreamWindows.marker is marker


def _repickled(obj: object, new_module: str, old_module: str) -> object:
    """``obj`` pickled as an older release wrote it: its class named under ``old_module``."""
    data = pickle.dumps(obj, protocol=2)  # protocol 2 names classes as text lines ("c<module>\\n<name>\\n")
    assert f"{new_module}\n".encode() in data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pickle.loads(data.replace(f"{new_module}\n".encode(), f"{old_module}\n".encode()))


def test_pickles_made_under_the_old_paths_still_load():
    result = modchain.ImageModerationResult(allowed=False, flagged=True, category="Violence",
                                            reason="a drawn weapon")
    loaded = _repickled(result, "modchain.image_moderation.image_chain", "modchain.vision.image_chain")
    assert type(loaded) is modchain.ImageModerationResult and loaded == result
    config = modchain.StreamConfig()
    loaded = _repickled(config, "modchain.text.streaming.windows", "modchain.text.stream_windows")
    assert type(loaded) is modchain.StreamConfig and loaded == config
    guard = modchain.StreamGuard(guard=modchain.ModerationChain())
    loaded = _repickled(guard, "modchain.text.streaming.guard", "modchain.text.streaming")
    assert type(loaded) is modchain.StreamGuard  # the class was in the module that is now the package
    guard = modchain.DocumentGuard()
    loaded = _repickled(guard, "modchain.text.documents.guard", "modchain.text.documents")
    assert type(loaded) is modchain.DocumentGuard


def _absolute_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_library_itself_uses_only_new_paths():
    old = sorted(f"{path.relative_to(SRC)} imports {name}" for path in SRC.rglob("*.py")
                 for name in _absolute_imports(path) if name.startswith("modchain.") and new_path(name))
    assert not old, "\n".join(old)
    assert not [module for module in modchain._LAZY.values() if new_path(module)]
