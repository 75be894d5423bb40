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
    (["run", "parity", "--set", "steps=0"], "steps must be an integer in [1, "),
    (["run", "parity", "--set", "dims=5,-1"], "every element of dims must be an integer in [1, "),
    (["run", "parity", "--seeds", "0"], "replicas must be an integer in [1, 10000]"),
    (["run", "parity", "--set", "novalue"], "--set expects key=value"),
    (["run", "parity", "--preset", "huge"], "invalid choice"),
    (["run", "parity", "--resume"], "does not checkpoint"),
    (["reproduce", "--only", "nope"], "unknown experiment 'nope'"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path)] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "parity", "--out", str(blocker), *TINY]) == 2
    assert "not writable" in capsys.readouterr().err
    assert blocker.read_text() == "x"


def test_failed_run_keeps_previous_result(tmp_path):
    assert main(["run", "parity", "--out", str(tmp_path), "--quiet", *TINY]) == 0
    before = (tmp_path / "parity" / "result.json").read_text()
    # a learning rate that diverges: exit 1, one line, and the old result untouched
    assert main(["run", "parity", "--out", str(tmp_path), "--quiet", *TINY, "--set", "lr=1e30"]) == 1
    assert (tmp_path / "parity" / "result.json").read_text() == before


def test_reproduce_writes_index(tmp_path, monkeypatch):
    from failgeom import cli

    real = cli._config
    monkeypatch.setattr(cli, "_config", lambda e, p, s, d, sets: real(e, p, s, d, ["dims=3", "steps=40", "eval_every=20", "replicas=2"]))
    assert main(["reproduce", "--only", "parity", "--out", str(tmp_path), "--quiet"]) == 0
    index = (tmp_path / "index.md").read_text()
    assert "parity/result.json" in index and "parity/figure.png" in index


def test_console_entry_point_exit_status():
    proc = subprocess.run([sys.executable, "-m", "failgeom", "run", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "failgeom: error: unknown experiment 'nope' (known: " + proc.stderr.split("(known: ")[1].strip()
