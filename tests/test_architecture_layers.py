"""Imports point down: ``core`` depends on no other modchain package; backends depend only on ``core``.

Every import statement under ``src/modchain`` counts, wherever it is: at module level, inside a function (a lazy
import is still a dependency), under ``TYPE_CHECKING``, and relative imports (resolved to absolute names).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "modchain"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` for every import in the file (``from modchain import image_moderation``
    counts as ``modchain.image_moderation``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "modchain":  # ``from modchain import text`` / ``from .. import text``: a subpackage
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names if alias.name != "*"]
            else:
                found.append((node.lineno, target))
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def offenders(layer: str, allowed: tuple[str, ...]) -> list[str]:
    """``file:line imports module`` for every modchain import of ``layer`` outside ``allowed`` packages."""
    out = []
    for path in sorted((PACKAGE / layer.rpartition(".")[2]).rglob("*.py")):
        for line, module in imported_modules(path):
            if within(module, "modchain") and not any(within(module, ok) for ok in allowed):
                out.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    return sorted(set(out))


def test_the_import_walker_sees_lazy_relative_and_from_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "modchain" / "backends"
    pkg.mkdir(parents=True)
    (pkg / "demo.py").write_text(
        "from . import base\nfrom ..image_moderation import errors\nfrom .. import text\n"
        "def f():\n    import modchain.text.chain\n    from modchain.visual_chain.types import Detection\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    found = {m for _, m in imported_modules(pkg / "demo.py")}
    assert {"modchain.backends", "modchain.image_moderation", "modchain.text", "modchain.text.chain",
            "modchain.visual_chain.types"} <= found


def test_core_imports_no_other_modchain_package():
    bad = offenders("modchain.core", ("modchain.core",))
    assert not bad, "modchain.core must import only modchain.core:\n  " + "\n  ".join(bad)


def test_backends_import_only_core_and_backends():
    bad = offenders("modchain.backends", ("modchain.core", "modchain.backends"))
    assert not bad, ("modules under modchain.backends must import only modchain.core and modchain.backends "
                     "(move shared types to core, component logic to its package):\n  " + "\n  ".join(bad))


CORE_MODULES = ("errors", "regions", "masks", "images", "vqa", "image_findings", "protocols", "text_splitting")
HEAVY = ("PIL", "numpy", "boto3", "botocore", "torch", "transformers", "onnxruntime")


def test_core_stays_light():
    """Importing core's modules pulls in no heavy library (they are imported where they are used, lazily)."""
    code = (f"import sys, importlib\nfor name in {CORE_MODULES!r}: importlib.import_module('modchain.core.' + name)\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"importing modchain.core loaded heavy libraries: {out}"


def test_core_names_other_modchain_modules_only_in_the_registry():
    # A module path in a string (importlib.import_module("modchain.backends...")) is a dependency the import
    # walker cannot see. core may name backends only as the registry's data.
    offenders = []
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        if path.name == "registry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                value = node.value.strip()
                if value.startswith("modchain.") and not value.startswith("modchain.core") and _is_module(value):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno} names {value}")
    assert not offenders, "\n".join(offenders)


def _is_module(dotted: str) -> bool:
    """Whether ``dotted`` (optionally ``module:attr``) names a module of the package (not, say, a logger)."""
    path = SRC.joinpath(*dotted.partition(":")[0].split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()
