"""The package's layering (docs/architecture.md), read from the import graph of failgeom/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "failgeom"
MODULES = sorted(p for p in ROOT.rglob("*.py"))
#: the bottom layers may use numpy/scipy/sympy and each other as listed, nothing above them
BOTTOM = {"nn": {"nn", "initializers", "validation"},
          "theory": {"theory", "initializers", "nn", "validation"},
          "problems": {"problems", "nn", "initializers", "validation"},
          "initializers": {"initializers", "validation"}, "validation": {"validation"}, "stats": {"stats", "validation"},
          "gf2": {"gf2"}}
TOP = {"runner", "store", "executors", "reproduction", "report", "cli", "verify", "claims", "checks"}


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(imported module, imported names) of every import in the file, resolved to absolute."""
    tree = ast.parse(path.read_text(), str(path))
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield module, [a.name for a in node.names]


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_respects_the_layering(path):
    me = _layer(_name(path))
    for module, _ in _imports(path):
        if not module.startswith("failgeom"):
            continue
        target = _layer(module)
        assert target != "cli" or me in ("cli", "__main__"), f"{path.name} imports failgeom.cli; only __main__ may"
        if me in BOTTOM and target:
            assert target in BOTTOM[me], f"{_name(path)} (layer {me}) imports {module}"
        if me in ("training", "results", "experiments") and target:
            assert target not in TOP, f"{_name(path)} imports {module}, which sits above it"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_crosses_a_package(path):
    me = _name(path)
    my_package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for module, names in _imports(path):
        if not module.startswith("failgeom"):
            continue
        inside = module == my_package or module.startswith(my_package + ".")
        private_module = any(part.startswith("_") and part != "__init__" for part in module.split("."))
        private_names = [n for n in names if n.startswith("_") and n != "__version__"]
        if not inside:
            assert not private_module, f"{me} imports the private module {module}"
            assert not private_names, f"{me} imports private names {private_names} from {module}"


#: a module longer than this gets a warning (a hint that it may hold two jobs), never a failure:
#: a module is split by job, not by size
WARN_LINES = 800


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_says_its_one_job(path):
    text = path.read_text()
    doc = ast.get_docstring(ast.parse(text))
    assert doc and len(doc.split()) >= 4, f"{path.relative_to(ROOT)} has no opening docstring saying its job"
    lines = len(text.splitlines())
    if lines > WARN_LINES:
        import warnings

        warnings.warn(f"{path.relative_to(ROOT)} has {lines} lines: does it still do one job?", stacklevel=1)


def _registers(path: Path) -> bool:
    """Does the module declare an experiment (a call of ``register(...)``)?"""
    tree = ast.parse(path.read_text(), str(path))
    return any(isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "register"
               for node in ast.walk(tree))


EXPERIMENTS = ROOT / "experiments"
REGISTERING = {_name(p) for p in EXPERIMENTS.rglob("*.py") if _registers(p)}


def _package_chain(module: str) -> list[str]:
    """``failgeom.experiments.pwl.learners`` -> the packages importing it runs, and itself."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(3, len(parts) + 1)]


@pytest.mark.parametrize("module", sorted(REGISTERING))
def test_no_experiment_module_imports_another(module):
    """An experiment module imports the layers and its own helper modules, never another module
    that declares experiments (importing a package's submodule runs the package too)."""
    path = next(p for p in EXPERIMENTS.rglob("*.py") if _name(p) == module)
    for imported, names in _imports(path):
        targets = [imported] + [f"{imported}.{n}" for n in names]
        for target in targets:
            crossed = [m for m in _package_chain(target) if m in REGISTERING and m != module
                       and not module.startswith(m + ".")]
            assert not crossed, f"{module} imports {target}, which runs the experiment module(s) {crossed}"


def test_the_experiment_rule_sees_a_crossing():
    # the rule reads real registering modules: it must know at least the paper's experiments
    assert "failgeom.experiments.parity" in REGISTERING and len(REGISTERING) >= 10
