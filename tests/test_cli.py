"""The failgeom command: listing, running, bad input (one line on stderr, exit 2), safe writes."""

import json
import subprocess
import sys

import pytest

from failgeom.cli import main

TINY = ["--set", "dims=3", "--set", "steps=50", "--set", "eval_every=25", "--seeds", "2"]


def _lines(out: str) -> list[str]:
    lines = out.splitlines()
    assert lines and max(len(line) for line in lines) <= 100, max(lines, key=len)
    return lines


def test_list_groups_by_family_under_headings_and_fits_100_columns(capsys, monkeypatch):
    from failgeom.claims import FAMILY_TITLES
    from failgeom.experiments import get, names

    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal still gets 100 columns
    assert main(["list"]) == 0
    lines = _lines(capsys.readouterr().out)
    headings = [line for line in lines if line and not line.startswith(" ") and "(failure family" in line]
    assert headings == [f"{title} (failure family {f})" for f, title in FAMILY_TITLES.items()]
    # each experiment once, under its family's heading, its description wrapped on word boundaries
    family, seen = None, {}
    for line in lines:
        if line in headings:
            family = int(line.rsplit(" ", 1)[1].rstrip(")"))
        elif line.startswith("  ") and line[2] != " ":
            name = line.split()[0]
            assert get(name).family == family
            seen[name] = [line[2 + len(name):].strip()]
        elif line.startswith("   ") and seen:
            seen[list(seen)[-1]].append(line.strip())
    assert list(seen) == names()
    for name, parts in seen.items():
        assert " ".join(parts) == get(name).description


def test_a_long_experiment_name_gets_a_line_of_its_own(capsys, monkeypatch):
    import dataclasses

    from failgeom import experiments

    long = dataclasses.replace(experiments.get("parity"), name="a-plugin-experiment-with-a-very-long-name")
    monkeypatch.setitem(experiments.REGISTRY, long.name, long)
    assert main(["list"]) == 0
    lines = _lines(capsys.readouterr().out)
    at = lines.index(f"  {long.name}")
    assert lines[at + 1].split() == long.description.split()[:len(lines[at + 1].split())]


def test_a_reader_that_stops_early_gets_no_error():
    # `failgeom list | head -1`: the pipe's reader is gone before failgeom writes
    proc = subprocess.Popen([sys.executable, "-m", "failgeom", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    assert proc.wait(timeout=120) == 141
    assert proc.stderr.read() == ""


def test_list_wraps_to_a_narrow_terminal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "72")
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 72 < max(len(line) for line in lines) + 6


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
    assert data["preset"] == "custom"  # --set and --seeds change the quick preset
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
    (["show", "parity", "--preset", "quick"], "unrecognized arguments: --preset quick"),
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
    assert first.startswith("parity (custom, from the quick preset: replicas=2, dims=3, steps=50, eval_every=25): d=3")
    assert " run, 0 reused, 0 failed" in first and f"wrote {tmp_path / 'parity' / 'result.json'}" in first
    assert main(["run", "parity", "--out", str(tmp_path), *TINY]) == 0
    again = capsys.readouterr().out
    assert "0 cells run, 0 reused, 0 failed (1 complete result reused)" in again
    assert f"reused {tmp_path / 'parity' / 'result.json'}" in again and "wrote" not in again


def test_a_grid_is_custom_and_its_table_says_from_which_preset(tmp_path, capsys):
    assert main(["run", "parity", "--out", str(tmp_path), "--quiet", "--no-plot", *TINY, "--grid", "lr=0.01,0.02"]) == 0
    folder = tmp_path / "parity"
    assert (folder / "grid.md").read_text().startswith(
        "# parity grid (custom, from the quick preset with replicas=2, dims=3, steps=50, eval_every=25)")
    for point in ("lr=0.01", "lr=0.02"):
        assert json.loads((folder / point / "result.json").read_text())["preset"] == "custom"


def _show_table(out: str) -> dict[str, list[str]]:
    """``failgeom show``'s table read back by column: {field: [paper, quick, meaning]}, each cell's
    wrapped lines joined (values after a comma without a space, text with one)."""
    lines = _lines(out)
    (header,) = [i for i, line in enumerate(lines) if line.split()[:3] == ["field", "paper", "quick"]]
    starts = [lines[header].index(word) for word in ("field", "paper", "quick", "meaning")]
    table = {}
    for line in lines[header + 1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
        if cells[0]:
            table[cells[0]] = cells[1:]
        else:
            row = table[list(table)[-1]]
            row[0] += cells[1]
            row[1] += cells[2]
            row[2] += " " + cells[3] if cells[3] else ""
    return table


def test_show_prints_paper_and_quick_side_by_side_within_100_columns(capsys, monkeypatch):
    import dataclasses

    from failgeom.cli import _value
    from failgeom.experiments import get, names

    monkeypatch.setenv("COLUMNS", "200")
    for name in names():
        assert main(["show", name]) == 0
        table = _show_table(capsys.readouterr().out)
        paper, quick = get(name).config("paper"), get(name).config("quick")
        rows = {r["name"]: r for r in quick.describe(quick)}
        assert list(table) == [f.name for f in dataclasses.fields(quick)]
        for field, (paper_text, quick_text, meaning) in table.items():
            assert (paper_text, quick_text) == (_value(getattr(paper, field)), _value(getattr(quick, field)))
            row = rows[field]
            assert meaning == (f"{row['doc']} ({row['accepted']})" if row["doc"] else f"({row['accepted']})")


def test_show_names_the_presets_and_how_to_change_a_field(capsys):
    assert main(["show", "parity"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "the paper and quick presets side by side" in out
    assert "failgeom run parity --set steps=10000" in out  # half the quick steps
    # the accepted values, from param(): open-ended sizes and a bounded rate
    assert "replicas 5 5 independent replicas" in out and "(an integer >= 1)" in out
    assert "(a finite number in (0, 3.40282e+38])" in out


def test_help_is_for_users_and_every_option_says_its_default(capsys, monkeypatch):
    import argparse

    from failgeom.cli import build_parser

    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    _lines(out)
    assert "``" not in out and ":func:" not in out  # no docstring markup
    for command in ("list", "show NAME", "run NAME", "reproduce", "verify"):
        assert f"\n  {command} " in out
    parser = build_parser(with_verify=False)
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name in ("run", "reproduce"):
        for action in sub.choices[name]._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and "(default: " in action.help, (name, action.option_strings)
        with pytest.raises(SystemExit):
            main([name, "--help"])
        _lines(capsys.readouterr().out)


def test_no_command_prints_usage_on_stderr_and_exits_2(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: failgeom") and "a command is required" in captured.err


@pytest.mark.parametrize("argv, hint", [
    (["run", "parit"], "did you mean 'parity' or 'parity-gf2'?"),
    (["show", "pwl_fc"], "did you mean 'pwl-fc'?"),
    (["reproduce", "--only", "parity", "tuple-line"], "unknown experiment 'tuple-line' (did you mean 'tuple-lines'"),
])
def test_a_misspelt_experiment_gets_the_closest_names(argv, hint, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "out")] if argv[0] != "show" else argv) == 2
    err = capsys.readouterr().err
    assert hint in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["run", "parity"], ["reproduce"]])
def test_an_empty_output_folder_is_refused(command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err == "failgeom: error: argument --out: expected a folder, got an empty path\n"
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_is_not_its_preset_is_labelled_custom():
    from failgeom.cli import _config, _custom
    from failgeom.experiments import get

    parity = get("parity")
    assert _custom(parity, "quick", parity.config("quick")) == ("quick", "")
    assert _custom(parity, "paper", _config(parity, "paper", None, None, ["steps=50000"])) == ("paper", "")
    assert _custom(parity, "quick", _config(parity, "quick", 8, None, ["steps=6000"])) == \
        ("custom", "replicas=8, steps=6000")
    assert _custom(parity, "quick", _config(parity, "quick", None, "float64", [])) == ("custom", "dtype=float64")


def test_import_failgeom_exposes_subpackages_lazily():
    code = ("import sys, failgeom; assert 'numpy' not in sys.modules and 'failgeom.runtime' not in sys.modules; "
            "print(failgeom.runtime.usable_cores() >= 1, 'failgeom.runtime' in sys.modules, 'numpy' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True", "False"]
    import failgeom

    assert failgeom.theory.condition_number(1000) > 1e10 and "theory" in dir(failgeom)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = failgeom.nope


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
