"""Experiments of another installed package join the registry through the entry-point group
``failgeom.experiments``: the example of docs/architecture.md ("Adding an experiment"),
installed as a plugin in a temporary folder, is listed and run by the CLI."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _example_module() -> str:
    page = (ROOT / "docs" / "architecture.md").read_text()
    section = page[page.index("## Adding an experiment"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _install_plugin(folder: Path, module: str, source: str, entry: str) -> None:
    (folder / f"{module}.py").write_text(source)
    info = folder / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[failgeom.experiments]\n{entry}\n")


def _failgeom(folder: Path, *args, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder), str(ROOT)]))
    return subprocess.run([sys.executable, "-m", "failgeom", *args], capture_output=True, text=True,
                          env=env, cwd=cwd or folder, timeout=300)


def test_the_documented_example_is_listed_and_runs_as_a_plugin(tmp_path):
    _install_plugin(tmp_path, "toy_failgeom", _example_module(), "toy-mean = toy_failgeom")
    listed = _failgeom(tmp_path, "list")
    assert listed.returncode == 0 and "toy-mean" in listed.stdout, listed.stderr
    ran = _failgeom(tmp_path, "run", "toy-mean", "--out", str(tmp_path / "out"), "--jobs", "2", "--quiet")
    assert ran.returncode == 0, ran.stderr
    result = json.loads((tmp_path / "out" / "toy-mean" / "result.json").read_text())
    errors = [result["metrics"][f"n={n}"]["mean_error"] for n in (10, 100, 1000)]
    assert errors[2] < errors[0]  # 1/sqrt(n): from 0.25 to 0.025 in mean, 5 replicas each


def test_a_broken_plugin_is_named_and_the_rest_still_works(tmp_path):
    _install_plugin(tmp_path, "broken_failgeom", "raise ImportError('no such thing')\n",
                    "broken = broken_failgeom")
    listed = _failgeom(tmp_path, "list")
    assert listed.returncode == 0 and "parity" in listed.stdout
    assert "broken_failgeom" in listed.stderr and "no such thing" in listed.stderr
