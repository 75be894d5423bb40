"""The README's Python example runs as printed (with fewer steps) and docs name files that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_training_loop_runs(capsys):
    text = (ROOT / "README.md").read_text()
    block = text.split("## Use from Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "range(2000)" in block
    exec(compile(block.replace("range(2000)", "range(20)"), "README.md", "exec"), {})
    losses, cond = capsys.readouterr().out.rsplit("]", 1)
    assert float(cond) > 1e12  # cond(W^T W) at n = 1000 grows like n^4


def test_docs_link_only_files_in_the_repository():
    missing = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(ROOT)} -> {target}")
    assert missing == []
