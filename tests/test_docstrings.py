"""Every callable of the public API (``PUBLIC_API`` below; docs/architecture.md, "Errors and
docstrings") has a numpydoc docstring: a ``Parameters`` section naming each argument of its
signature, and a ``Returns`` (or ``Yields``) section when its source returns a value; a literal
``raise ValueError`` or ``raise TypeError`` in its body is named in a ``Raises`` section. Classes
document their constructor's parameters in the class docstring (a dataclass may list its fields
under ``Attributes``). A method overriding a documented base-class method with the same
parameters (every layer's ``init``/``forward``/``backward`` of the contract in
``failgeom.nn.Layer``) has its own docstring but may leave Parameters and Returns to the base's.

Terse helpers may be terse: a callable with no arguments (beyond ``self``/``cls``) whose body is
at most ``TERSE_STATEMENTS`` statements may say what it returns in its summary instead of a
Returns section. A short body alone does not exempt anything: ``theory.condition_number(n)`` and
``training.train(...)`` (14 arguments) are one to three statements long, and their arguments are
exactly what a user needs explained."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "failgeom"
#: The public API held to numpydoc, the one list of it (docs/architecture.md names it in prose):
#: module -> the names a user imports from it, ``None`` for every public function and class the
#: module defines (a package: its own and its modules'), ``"__all__"`` for the module's
#: ``__all__`` (re-exports included: ``failgeom.theory``'s closed forms live in its submodules).
PUBLIC_API: dict[str, list[str] | str | None] = {
    "failgeom.nn": None,
    "failgeom.problems": None,
    "failgeom.training": None,
    "failgeom.validation": None,
    "failgeom.stats": None,
    "failgeom.testing": "__all__",
    "failgeom.theory": "__all__",
    "failgeom.record": ["PaperRecord", "cell_status", "folder_bytes", "load", "paper_verdicts", "provenance"],
    "failgeom.experiments": ["get", "names", "register"],
    "failgeom.experiments.base": ["Cell", "Experiment", "ExperimentConfig", "cell_label", "param"],
    "failgeom.runtime": ["configure"],
    "failgeom.reproduction": ["reproduce"],
}
#: dunder methods that are public API (``step(r)`` calls ``StepFunction.__call__``)
PUBLIC_DUNDERS = {"__call__"}
#: at most this many statements (nested ones counted) make an argument-free callable terse
TERSE_STATEMENTS = 3


def _package_modules(name: str) -> list[str]:
    """``name`` and, for a package of failgeom, every module in it."""
    folder = ROOT.joinpath(*name.split(".")[1:])
    if not folder.is_dir():
        return [name]
    return [name + ("" if p.stem == "__init__" else f".{p.stem}") for p in sorted(folder.glob("*.py"))]


MODULES = sorted(m for name, names in PUBLIC_API.items() if names is None for m in _package_modules(name))


def sections(doc: str) -> dict[str, list[str]]:
    """numpydoc sections of a docstring: a header line followed by a line of dashes."""
    lines = inspect.cleandoc(doc).splitlines()
    out: dict[str, list[str]] = {}
    current = None
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and line.strip() and re.fullmatch(r"-{3,}", lines[i + 1].strip()) \
                and not re.fullmatch(r"-+", line.strip()):
            current = line.strip()
            out[current] = []
        elif current is not None and not (re.fullmatch(r"-{3,}", line.strip()) and not out[current]):
            out[current].append(line)
    return out


def documented_names(lines: list[str]) -> set[str]:
    """Names of the entries of a Parameters-like section (``a, b : type`` lines, not indented)."""
    names = set()
    for line in lines:
        if line.strip() and not line[0].isspace():
            names.update(n.strip().lstrip("*") for n in line.split(":", 1)[0].split(","))
    return names


def _own_nodes(fn: ast.AST):
    """The nodes of a function's body, without those of nested functions, lambdas or classes."""
    todo = list(ast.iter_child_nodes(fn))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def _source_facts(fn) -> tuple[bool, bool, set[str], int]:
    """(returns a value, yields, names of the exceptions raised literally, number of statements
    of the body without its docstring, nested ones counted) from the source."""
    try:
        source = inspect.getsource(inspect.unwrap(fn))
    except (OSError, TypeError):  # generated (a dataclass's __init__) or compiled
        return False, False, set(), 0
    tree = ast.parse(textwrap.dedent(source))
    node = tree.body[0]
    returns = yields = False
    raised = set()
    statements = sum(isinstance(sub, ast.stmt) for sub in _own_nodes(node)) - bool(ast.get_docstring(node))
    for sub in _own_nodes(node):
        if isinstance(sub, ast.Return) and sub.value is not None \
                and not (isinstance(sub.value, ast.Constant) and sub.value.value is None):
            returns = True
        elif isinstance(sub, (ast.Yield, ast.YieldFrom)):
            yields = True
        elif isinstance(sub, ast.Raise) and isinstance(sub.exc, ast.Call) \
                and isinstance(sub.exc.func, ast.Name) and sub.exc.func.id in ("ValueError", "TypeError"):
            raised.add(sub.exc.func.id)
    return returns, yields, raised, statements


def _parameter_names(fn) -> list[str]:
    return [p.name for p in inspect.signature(fn).parameters.values() if p.name not in ("self", "cls")]


def check_function(fn, doc: str | None = None, returns_doc: bool = True, shared: str | None = None,
                   also: tuple[str, ...] = ()) -> list[str]:
    """Problems of one function's docstring (``doc``: the docstring to read, default its own).

    ``shared``: the docstring of the base-class method it overrides, which documents the
    parameters and returns when ``doc`` has no Parameters section of its own. ``also``: sections
    whose entries count as documented parameters too (``Attributes`` of a dataclass).
    """
    doc = fn.__doc__ if doc is None else doc  # its own: an override does not inherit one
    if not doc or not doc.strip():
        return ["no docstring"]
    problems = []
    found = sections(doc)
    contract = sections(shared) if shared and "Parameters" not in found else found
    documented = documented_names(sum((contract.get(s, []) for s in ("Parameters", "Other Parameters", *also)), []))
    names = _parameter_names(fn)
    missing = [n for n in names if n not in documented]
    if missing:
        problems.append(f"Parameters does not list {missing}")
    returns, yields, raised, statements = _source_facts(fn)
    terse = not names and statements <= TERSE_STATEMENTS
    if returns_doc and returns and not terse and "Returns" not in contract:
        problems.append("returns a value but has no Returns section")
    if yields and "Yields" not in contract:
        problems.append("yields but has no Yields section")
    undocumented = sorted(e for e in raised if e not in " ".join(found.get("Raises", [])))
    if undocumented:
        problems.append(f"raises {undocumented} but its Raises section does not name them")
    return problems


def check_class(cls) -> list[str]:
    """Problems of a class docstring: present, and listing the constructor's parameters."""
    doc = cls.__dict__.get("__doc__")
    if not doc or not doc.strip():
        return ["no docstring"]
    if "__init__" not in vars(cls):
        return []
    also = ("Attributes",) if dataclasses.is_dataclass(cls) else ()
    return check_function(cls.__init__, doc, returns_doc=False, also=also)


def contract_doc(owner, name: str) -> str | None:
    """The docstring of the base-class method that ``owner.name`` overrides, if that docstring
    passes the check for the same parameters (``Layer.forward`` for every layer's ``forward``,
    ``numpy.random.SeedSequence.spawn`` for ``Streams.spawn``)."""
    fn = vars(owner)[name]
    for base in owner.__mro__[1:]:
        member = vars(base).get(name)
        if member is not None and inspect.isroutine(member):
            try:
                same = _parameter_names(member) == _parameter_names(fn)
            except (TypeError, ValueError):  # no signature
                return None
            return member.__doc__ if same and not check_function(member) else None
    return None


def check(obj, owner=None) -> list[str]:
    """Problems of the docstring of a function, a class (its own docstring) or a property;
    ``owner``: the class a method is defined in."""
    if isinstance(obj, property):
        return [] if (obj.fget.__doc__ or "").strip() else ["no docstring"]
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if inspect.isclass(obj):
        return check_class(obj)
    return check_function(obj, shared=contract_doc(owner, obj.__name__) if owner else None)


def public_callables(module, names=None) -> dict[str, tuple]:
    """Every public function, class and public method (or property) defined in ``module`` (or,
    given ``names``, those of its attributes, wherever defined), as ``qualified name -> (object,
    class it is defined in or None)``."""
    out = {}
    if names is None:
        chosen = {name: obj for name, obj in vars(module).items()
                  if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__}
    else:  # an imported name in the list is public here
        chosen = {name: getattr(module, name) for name in names}
    for name, obj in chosen.items():
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue  # constants
        out[f"{module.__name__}.{name}"] = (obj, None)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr not in PUBLIC_DUNDERS:
                    continue
                if isinstance(member, (property, staticmethod, classmethod)) or inspect.isfunction(member):
                    out[f"{module.__name__}.{name}.{attr}"] = (member, obj)
    return out


def api_callables() -> dict[str, tuple]:
    """The callables of ``PUBLIC_API``."""
    out = {}
    for name in MODULES:
        out.update(public_callables(importlib.import_module(name)))
    for name, names in PUBLIC_API.items():
        if names is not None:
            module = importlib.import_module(name)
            out.update(public_callables(module, module.__all__ if names == "__all__" else names))
    return out


CALLABLES = api_callables()


@pytest.mark.parametrize("name", sorted(CALLABLES))
def test_public_callable_has_a_numpydoc_docstring(name):
    problems = check(*CALLABLES[name])
    assert not problems, f"{name}: {'; '.join(problems)}"


def test_every_module_and_the_layer_contract_are_covered():
    assert {"failgeom.training", "failgeom.nn.layers", "failgeom.problems.pwl"} <= set(MODULES)
    for name in ("failgeom.nn.sequential.Sequential.init", "failgeom.nn.layers.Dense.backward",
                 "failgeom.nn.conv.Conv2D.per_example_grads", "failgeom.training.fit",
                 "failgeom.problems.steps.StepFunction.__call__", "failgeom.training.Curves.from_dict"):
        assert name in CALLABLES
    assert not any(".truncated_normal" in name for name in CALLABLES)  # imported, not defined here
    assert len(CALLABLES) > 150


def test_the_checker_reports_a_bad_docstring():
    def bad(x, y, *args, flag=False):
        """Add things.

        Parameters
        ----------
        x : int
        args : tuple
        """
        if flag:
            raise ValueError("no flags")
        return x + y

    def good(x, y, *args, flag=False):
        """Add things.

        Parameters
        ----------
        x, y : int
            Summands.
        *args : int
        flag : bool

        Returns
        -------
        int

        Raises
        ------
        ValueError
            If ``flag``.
        """
        if flag:
            raise ValueError("no flags")
        return x + y

    class Undocumented:
        def __init__(self, width):
            self.width = width

        def method(self):
            return self.width

    problems = check(bad)
    assert any("['y', 'flag']" in p for p in problems)
    assert any("no Returns" in p for p in problems)
    assert any("ValueError" in p for p in problems)
    assert check(good) == []
    assert check(Undocumented) == ["no docstring"]
    assert check(Undocumented.method) == ["no docstring"]
    Undocumented.__doc__ = "A width.\n\nParameters\n----------\nheight : int\n"
    assert check(Undocumented) == ["Parameters does not list ['width']"]
    assert sections("Summary.\n\nReturns\n-------\nx : int\n    The value.\n") == {
        "Returns": ["x : int", "    The value."]}


def test_the_checker_holds_overrides_of_the_layer_contract():
    from failgeom.nn import Layer

    class Silent(Layer):
        def forward(self, params, x):
            return x, None

        def backward(self, params, cache, dy, need_dx=True):
            """Identity, sharing the contract of :meth:`Layer.backward`."""
            return dy, {}

        def init(self, rng, R, in_shape, dtype=None, extra=0):
            """Another signature: must list its own parameters."""
            return {}, in_shape

    assert check(vars(Silent)["forward"], Silent) == ["no docstring"]
    assert check(vars(Silent)["backward"], Silent) == []
    assert check(vars(Silent)["init"], Silent)[0].startswith("Parameters does not list")


def test_the_terse_exemption_covers_only_short_argument_free_callables():
    def terse():
        """The answer, as an int."""
        return 42

    def short_with_an_argument(n):
        """The answer."""
        return n

    def long_without_arguments():
        """The answer."""
        total = 0
        for i in range(3):
            total += i
        return total

    @dataclasses.dataclass
    class Fit:
        """A fit.

        Attributes
        ----------
        slope : float
        """

        slope: float

    assert check(terse) == []
    assert check(short_with_an_argument) == ["Parameters does not list ['n']",
                                             "returns a value but has no Returns section"]
    assert check(long_without_arguments) == ["returns a value but has no Returns section"]
    assert check(Fit) == []
