"""One error tree (issue 15): every violation lives in ``modchain.core.errors``, is named ``*Violation``, and
survives pickling (worker processes, Ray) with what it carries."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil

import pytest

import modchain
from modchain.core import errors
from modchain.core.errors import ModerationViolation, ToolOutputViolation, UnsafeImageViolation
from modchain.text.documents.report import DocumentVerdict


def _all_modules():
    for info in pkgutil.walk_packages(modchain.__path__, "modchain."):
        if ".testing" in info.name or info.name.startswith("modchain.serving"):
            continue  # test doubles and the HTTP handlers define no violations and pull in optional libraries
        try:
            yield importlib.import_module(info.name)
        except ImportError:  # an optional extra (torch, ray, ...) that this environment lacks
            continue


def test_every_violation_class_is_defined_in_core_errors_and_named_violation():
    seen = {}
    for module in _all_modules():
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, ModerationViolation):
                seen[value] = name
    assert UnsafeImageViolation in seen and ToolOutputViolation in seen
    strays = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in seen if cls.__module__ != errors.__name__)
    assert not strays, f"violations defined outside core.errors: {strays}"
    badly_named = sorted(cls.__qualname__ for cls in seen if not cls.__qualname__.endswith("Violation"))
    assert not badly_named


def test_old_import_paths_give_the_core_classes():
    from modchain.image_moderation.image_chain import UnsafeImageViolation as from_vision
    from modchain.text.documents.tool_guard import ToolOutputViolation as from_tools

    assert from_tools is ToolOutputViolation
    assert from_vision is UnsafeImageViolation


@pytest.mark.parametrize("violation", [
    ToolOutputViolation(verdict=DocumentVerdict(index=0, action="drop", flags=("injection",)), tool="search"),
    UnsafeImageViolation(),
])
def test_violations_pickle_with_what_they_carry(violation):
    copy = pickle.loads(pickle.dumps(violation))
    assert type(copy) is type(violation)
    assert str(copy) == str(violation)
    if isinstance(violation, ToolOutputViolation):
        assert copy.tool == "search"
        assert copy.verdict == violation.verdict
