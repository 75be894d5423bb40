"""The failgeom command: listing, running, bad input (one line on stderr, exit 2), safe writes."""

import json
import subprocess
import sys

import pytest

from failgeom.cli import main

TINY = ["--set", "dims=3", "--set", "steps=50", "--set", "eval_every=25", "--seeds", "2"]


def test_list(capsys):
    assert main(["list"]) == 0
    assert "parity" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "failgeom" in capsys.readouterr().out


def test_run_writes_result_and_figure(tmp_path, capsys):
    assert main(["run", "parity", "--out", str(tmp_path), "--quiet", *TINY]) == 0
    folder = tmp_path / "parity"
    data = json.loads((folder / "result.json").read_text())
    assert data["experiment"] == "parity" and data["config"]["dims"] == [3]
    assert data["seeds"] == {"seed": 0, "replicas": 2}
    assert (folder / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out == ""


def test_no_plot(tmp_path):
    assert main(["run", "parity", "--out", str(tmp_path), "--quiet", "--no-plot", *TINY]) == 0
    assert not (tmp_path / "parity" / "figure.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["run", "nope"], "unknown experiment 'nope'"),
    (["run", "parity", "--set", "bogus=1"], "unknown config key 'bogus'"),
    (["run", "parity", "--set", "steps=ten"], "--set steps: expected an integer"),
    (["run", "parity", "--set", "steps=0"], "steps must be "),
    (["run", "parity", "--set", "dims=5,-1"], "dims must be "),
    (["run", "parity", "--seeds", "0"], "argument --seeds: expected an integer from 1 to 10000, got 0"),
    (["run", "parity", "--seeds", "1000000000000"], "argument --seeds: expected an integer from 1 to 10000"),
    (["run", "parity", "--seed", "-1"], "argument --seed: expected an integer from 0"),
    (["run", "parity", "--jobs", "0"], "argument --jobs: expected an integer from 1 to 4096, got 0"),
    (["run", "parity", "--grid", "lr"], "--grid expects key=v1,v2"),
    (["run", "parity", "--grid", "bogus=1,2"], "unknown config key 'bogus'"),
    (["run", "parity", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["show", "nope"], "unknown experiment 'nope'"),
    (["show", "parity", "--preset", "huge"], "invalid choice"),
    (["run", "parity", "--set", "novalue"], "--set expects key=value"),
    (["run", "parity", "--preset", "huge"], "invalid choice"),
    (["reproduce", "--only", "nope"], "unknown experiment 'nope'"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()  # nothing touched before the input was checked


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "parity", "--out", str(blocker), *TINY]) == 2
    assert "not writable" in capsys.readouterr().err
    assert blocker.read_text() == "x"


def test_failed_run_keeps_previous_result(tmp_path, capsys):
    assert main(["run", "parity", "--out", str(tmp_path), "--quiet", *TINY]) == 0
    before = (tmp_path / "parity" / "result.json").read_text()
    # a learning rate that diverges: exit 1, one line, and the old result untouched
    capsys.readouterr()
    assert main(["run", "parity", "--out", str(tmp_path), "--quiet", *TINY, "--set", "lr=1e30"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("failgeom: parity") and "NonFiniteLossError" in err and err.count("\n") == 1
    assert (tmp_path / "parity" / "result.json").read_text() == before


def test_run_again_reuses_the_result_and_prints_the_final_line(tmp_path, capsys):
    assert main(["run", "parity", "--out", str(tmp_path), *TINY]) == 0
    first = capsys.readouterr().out
    assert " run, 0 reused, 0 failed" in first and f"wrote {tmp_path / 'parity' / 'result.json'}" in first
    assert main(["run", "parity", "--out", str(tmp_path), *TINY]) == 0
    assert "0 cells run, 0 reused, 0 failed (1 complete result reused)" in capsys.readouterr().out


def test_show_prints_every_field_with_value_default_range_and_meaning(capsys):
    import dataclasses

    from failgeom.experiments import get

    assert main(["show", "parity", "--preset", "quick"]) == 0
    out = capsys.readouterr().out
    config = get("parity").config("quick")
    rows = {r["name"]: r for r in config.describe(config)}
    for f in dataclasses.fields(config):
        (line,) = [ln for ln in out.splitlines() if ln.split()[:1] == [f.name]]
        value, default = getattr(config, f.name), f.default
        as_text = [",".join(map(str, v)) if isinstance(v, tuple) else "none" if v is None else str(v)
                   for v in (value, default)]
        assert line.split()[1:3] == as_text
        assert rows[f.name]["accepted"] in line and line.rstrip().endswith(rows[f.name]["doc"])
    assert "replicas" in out and "in [1, 10000]" in out  # a declared range, from param()


def test_import_failgeom_exposes_subpackages_lazily():
    code = ("import sys, failgeom; assert 'numpy' not in sys.modules and 'failgeom.runtime' not in sys.modules; "
            "print(failgeom.runtime.usable_cores() >= 1, 'failgeom.runtime' in sys.modules, 'numpy' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "False"]
    import failgeom

    assert failgeom.theory.condition_number(1000) > 1e10 and "theory" in dir(failgeom)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        failgeom.nope


def test_nothing_imports_the_cli():
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "failgeom"
    importers = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names += [f"{node.module or ''}.{a.name}" for a in node.names]
            if any(n.split(".")[-1] == "cli" for n in names) and path.name not in ("__main__.py", "cli.py"):
                importers.append(path.name)
    assert importers == []


def test_reproduce_writes_index(tmp_path, monkeypatch):
    from failgeom import cli

    real = cli._config
    monkeypatch.setattr(cli, "_config", lambda e, p, s, d, sets: real(e, p, s, d, ["dims=3", "steps=40", "eval_every=20", "replicas=2"]))
    assert main(["reproduce", "--only", "parity", "--out", str(tmp_path), "--quiet", "--jobs", "1"]) == 0
    index = (tmp_path / "index.md").read_text()
    assert "parity/result.json" in index and "parity/figure.png" in index


def test_console_entry_point_exit_status():
    proc = subprocess.run([sys.executable, "-m", "failgeom", "run", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "failgeom: error: unknown experiment 'nope' (known: " + proc.stderr.split("(known: ")[1].strip()


def test_verify_is_an_ordinary_subcommand(capsys):
    import json as _json

    assert main(["verify", "--quick", "--only", "lemma1.", "--json"]) == 0
    rows = _json.loads(capsys.readouterr().out)["checks"]
    assert rows and all(r["id"].startswith("lemma1.") and r["passed"] for r in rows)
    for argv, message in [(["verify", "--only", "zzz"], "no check id starts with 'zzz'"),
                          (["verify", "--bogus"], "unrecognized arguments: --bogus")]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
