"""docs/theory.md's Python example runs as printed and gives what Theorem 1 states."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_theorem1_for_your_own_network_runs_and_holds(capsys):
    text = (ROOT / "docs" / "theory.md").read_text()
    block = text.split("**Theorem 1 for your own network and class.**", 1)[1].split("```python\n", 1)[1]
    block = block.split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, "docs/theory.md", "exec"), namespace)
    var, bound = namespace["var"], namespace["bound"]
    # Theorem 1 for the 2^8 parities (an orthonormal class): Var <= G^2 / |H|, and not vacuous
    assert 0 < var <= bound
    assert var > 0.5 * bound
    assert re.fullmatch(r"Var = \S+ <= G\^2/\|H\| = \S+\n", capsys.readouterr().out)
