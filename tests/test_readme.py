"""The README's Python examples run as printed and print what the README shows; docs name files
that exist."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _examples() -> list[tuple[str, str]]:
    """The ``python`` blocks of "Use from Python", each with the output block shown after it."""
    section = (ROOT / "README.md").read_text().split("## Use from Python", 1)[1].split("\n## ", 1)[0]
    pairs = re.findall(r"```python\n(.*?)```\n\nprints[^\n]*\n\n```\n(.*?)```", section, re.S)
    assert len(pairs) == 2
    return pairs


def _same_output(printed: str, shown: str, atol: float) -> None:
    # the words must be the README's; the numbers the README's to within atol (they are equal on
    # the machine that wrote it; another BLAS build may round a float32 product differently)
    assert NUMBER.sub("#", printed).split() == NUMBER.sub("#", shown).split()
    assert np.allclose([float(x) for x in NUMBER.findall(printed)], [float(x) for x in NUMBER.findall(shown)],
                       rtol=0, atol=atol)


@pytest.mark.parametrize("which", [0, 1], ids=["experiment", "training-loop"])
def test_readme_python_example_prints_what_the_readme_shows(which, capsys):
    code, shown = _examples()[which]
    assert 'config("quick", steps=' in code if which == 0 else "range(2000)" in code
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    _same_output(capsys.readouterr().out, shown, atol=0.1)


def test_readme_theory_number():
    import failgeom

    text = " ".join((ROOT / "README.md").read_text().split())
    assert "`failgeom.theory.condition_number(1000)` is 1.30e12" in text
    assert f"{failgeom.theory.condition_number(1000):.2e}" == "1.30e+12"


def test_docs_link_only_files_in_the_repository():
    missing = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(ROOT)} -> {target}")
    assert missing == []
