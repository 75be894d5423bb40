"""The store under damage: cell records and results that are truncated, empty, garbled, reshaped,
foreign or mismatched are named in one line and recomputed, never reused; leftover temporary
files are removed; a failed write (no space, permissions, read-only) is one line and exit 1 with
nothing earlier lost."""

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_runner_toys import TOY, ToyConfig, numbers

from failgeom import results, runner
from failgeom.executors import SerialExecutor
from failgeom.results import Result, checksum
from failgeom.store import CellStore, FolderLock, LockedError

ROOT = Path(__file__).resolve().parents[1]


def run_toy(folder, config=None, seed=0, plot=False):
    messages = []
    job = runner.Job(TOY, config or ToyConfig(), folder, seed, "quick", plot)
    stats = runner.run_jobs([job], executor=SerialExecutor(), say=messages.append)
    return job, stats, messages


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A complete run (result, figure, four cell records) and a run of another seed."""
    base = tmp_path_factory.mktemp("store")
    job, _, _ = run_toy(base / "seed0", plot=True)
    run_toy(base / "seed1", seed=1)
    return base, job


@pytest.fixture
def folder(reference, tmp_path):
    base, _ = reference
    shutil.copytree(base / "seed0", tmp_path / "run")
    return tmp_path / "run"


def resign(data):
    data = {k: v for k, v in data.items() if k != "sha256"}
    data["sha256"] = checksum(data, allow_nan=True)
    return data


def rewrite(path, edit):
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))


CELL_DAMAGE = {
    "truncated": (lambda p, other: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]), "is not valid JSON"),
    "zero-byte": (lambda p, other: p.write_bytes(b""), "is empty"),
    "garbled": (lambda p, other: p.write_bytes(p.read_bytes()[:40] + b"\xff\x00\x13" + p.read_bytes()[43:]),
                "is not valid JSON"),
    "top-level list": (lambda p, other: rewrite(p, lambda d: [d]), "holds a list, not a cell record"),
    "number edited": (lambda p, other: rewrite(p, lambda d: {**d, "output": {**d["output"], "mean": 0.5}}),
                      "has a wrong checksum"),
    "output reshaped": (lambda p, other: rewrite(p, lambda d: resign({**d, "output": [[1.0]]})), "has no output"),
    "output null": (lambda p, other: rewrite(p, lambda d: resign({**d, "output": None})), "has no output"),
    "other seed": (lambda p, other: shutil.copy(other / p.name, p), "belongs to another seed (1)"),
    "other version": (lambda p, other: rewrite(p, lambda d: resign({**d, "failgeom": "0.0.1"})),
                      "belongs to another failgeom (0.0.1)"),
    "other cell": (lambda p, other: shutil.copy(p.with_name(sorted(x.name for x in p.parent.glob("part,1*"))[0]), p),
                   "belongs to another cell (['part', 1])"),
    "other format": (lambda p, other: rewrite(p, lambda d: resign({**d, "version": 99})), "is not a failgeom cell"),
}


@pytest.mark.parametrize("how", list(CELL_DAMAGE))
def test_a_damaged_cell_record_is_named_and_recomputed(how, folder, reference):
    base, ref = reference
    (folder / "result.json").unlink()
    store = CellStore(folder, "toy", ToyConfig(), 0)
    path = store.path(("part", 0))
    other = CellStore(base / "seed1", "toy", ToyConfig(), 1).dir
    damage, reason = CELL_DAMAGE[how]
    damage(path, other)
    job, stats, messages = run_toy(folder)
    assert (stats.cells_run, stats.cells_reused) == (1, 3)
    assert messages == [f"recomputing toy part=0: {path} {reason}"] or reason in messages[0], messages
    assert len(messages) == 1 and "\n" not in messages[0]
    assert numbers(job.outcome.result) == numbers(ref.outcome.result)
    assert store.load(("part", 0))[2] == ""  # the record is whole again


RESULT_DAMAGE = {
    "top-level list": (lambda f: rewrite(f / "result.json", lambda d: [d]), "the top level is a list"),
    "config a list": (lambda f: rewrite(f / "result.json", lambda d: {**d, "config": [1, 2]}), "'config' is list"),
    "metrics null": (lambda f: rewrite(f / "result.json", lambda d: {**d, "metrics": None}), "'metrics' is NoneType"),
    "curves null": (lambda f: rewrite(f / "result.json", lambda d: {**d, "curves": None}), "'curves' is NoneType"),
    "truncated": (lambda f: (f / "result.json").write_bytes((f / "result.json").read_bytes()[:100]), "not valid JSON"),
    "zero-byte": (lambda f: (f / "result.json").write_bytes(b""), "not valid JSON"),
    "number edited": (lambda f: rewrite(f / "result.json", lambda d: {**d, "seeds": {"seed": 0, "replicas": 3}}),
                      "checksum mismatch"),
    "zero-byte figure": (lambda f: (f / "figure.png").write_bytes(b""), "figure.png does not match result.json"),
    "figure of another run": (lambda f: (f / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 50),
                              "figure.png does not match result.json"),
    "figure missing": (lambda f: (f / "figure.png").unlink(), None),
}


@pytest.mark.parametrize("how", list(RESULT_DAMAGE))
def test_a_damaged_result_or_figure_is_not_reused(how, folder, reference):
    _, ref = reference
    damage, reason = RESULT_DAMAGE[how]
    damage(folder)
    result, why = runner.reusable(folder, ToyConfig(), "quick", 0)
    assert result is None and why and "\n" not in why
    job, stats, messages = run_toy(folder, plot=True)
    assert job.outcome.status == "ran" and (stats.cells_run, stats.cells_reused) == (0, 4)  # merged again
    if reason is not None:
        assert len(messages) == 1 and reason in messages[0] and str(folder / "result.json") in messages[0]
    assert numbers(Result.load(folder)) == numbers(ref.outcome.result)
    assert runner.reusable(folder, ToyConfig(), "quick", 0)[0] is not None


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftover_temporaries_of_a_dead_writer_are_removed_and_nothing_else(folder):
    from failgeom.results import host_tag

    (folder / "result.json").unlink()
    gone, me = f"failgeom-{host_tag()}-{dead_pid()}", f"failgeom-{host_tag()}-{os.getpid()}"
    left = [folder / f".result.json.{gone}-k2j3.tmp", folder / "cells" / "x" / f".part,0.json.{gone}-abc.tmp",
            folder / f".write-check.{gone}-q1.tmp"]
    kept = [folder / ".todo.tmp", folder / ".result.json.k2j3.tmp",  # a user's file; an old-style name
            folder / f".figure.png.{me}-live.tmp",  # a live writer's (this process)
            folder / "point" / f".result.json.{gone}-zz.tmp"]  # another run's folder (it has a .lock)
    (folder / "point").mkdir()
    (folder / "point" / ".lock").write_text("")
    for path in left + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    job, _, messages = run_toy(folder)
    assert not any(p.exists() for p in left) and job.outcome.status == "ran"
    assert all(p.read_text() == "half" for p in kept)
    assert f"removed 3 temporary file(s) left by an interrupted run in {folder}" in messages


def test_the_lock_refuses_a_second_writer_in_one_line(tmp_path):
    with FolderLock(tmp_path):
        with pytest.raises(LockedError) as exc:
            runner.run_jobs([runner.Job(TOY, ToyConfig(), tmp_path, plot=False)], executor=SerialExecutor())
        text = str(exc.value)
        assert f"pid {os.getpid()}" in text and str(tmp_path) in text and "\n" not in text
    job, _, _ = run_toy(tmp_path)  # released: the next run goes ahead
    assert job.outcome.status == "ran"


# --------------------------------------------------------------------------------------------
# failed writes


def fail_on(monkeypatch, match, err):
    """Make the one low-level writer fail with ``err`` for files whose name contains ``match``."""
    real = results._write_all

    def writer(fd, data):
        if match in os.path.basename(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(err, os.strerror(err))
        return real(fd, data)

    monkeypatch.setattr(results, "_write_all", writer)


@pytest.mark.parametrize("match, err", [
    ("part,2", errno.ENOSPC), ("figure", errno.ENOSPC), ("result", errno.EACCES), ("part,0", errno.EROFS),
])
def test_a_failed_write_is_one_line_exit_1_and_keeps_what_was_written(match, err, tmp_path, monkeypatch, capsys):
    from failgeom import experiments
    from failgeom.cli import main

    monkeypatch.setitem(experiments.REGISTRY, "toy", TOY)
    argv = ["run", "toy", "--out", str(tmp_path), "--jobs", "1", "--quiet"]
    assert main(argv) == 0
    before = (tmp_path / "toy" / "result.json").read_bytes()
    capsys.readouterr()
    fail_on(monkeypatch, match, err)
    assert main([*argv, "--set", "size=65"]) == 1
    err_text = capsys.readouterr().err
    assert err_text.count("\n") == 1 and err_text.startswith("failgeom: could not write ")
    assert err_text.rstrip().endswith(f": {os.strerror(err)}") and str(tmp_path / "toy") in err_text
    assert "Traceback" not in err_text and "non-finite" not in err_text
    assert (tmp_path / "toy" / "result.json").read_bytes() == before  # the old result stands
    assert not list(tmp_path.rglob("*.tmp"))
    monkeypatch.undo()
    store = CellStore(tmp_path / "toy", "toy", ToyConfig(size=65), 0)
    written = sum(store.load(("part", i))[0] is not None for i in range(4))
    assert written < 4 if match.startswith("part") else written == 4
    job, stats, _ = run_toy(tmp_path / "toy", ToyConfig(size=65))  # the cells written before are reused
    assert (stats.cells_reused, stats.cells_run) == (written, 4 - written)


TMPFS_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path[:0] = [{tests!r}, {root!r}]
    from test_runner_toys import TOY, ToyConfig
    from failgeom import experiments
    from failgeom.cli import main
    from failgeom.store import CellStore
    experiments.REGISTRY["toy"] = TOY
    experiments._load_all = lambda: None  # the toy is all this test needs
    status = main(["run", "toy", "--out", {out!r}, "--jobs", "1", "--quiet", "--no-plot",
                   "--set", "keep=true", "--set", "size=2500", "--set", "parts=8"])
    store = CellStore({out!r} + "/toy", "toy", ToyConfig(keep=True, size=2500, parts=8), 0)
    complete = [store.load(("part", i))[0] is not None for i in range(8)]
    import pathlib
    tmp = [str(p) for p in pathlib.Path({out!r}).rglob("*.tmp")]
    print(json.dumps({{"status": status, "complete": complete, "tmp": tmp}}))
""")


def test_a_full_tmpfs_is_one_line_exit_1(tmp_path):
    """A real 200 KB tmpfs (in a private mount namespace): the cells that fit stay valid."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare on this machine")
    mount = tmp_path / "small"
    mount.mkdir()
    script = TMPFS_SCRIPT.format(tests=str(ROOT / "tests"), root=str(ROOT), out=str(mount))
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=200k none {mount}"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (no user namespaces)")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size=200k none {mount} && '
                           f'exec "{sys.executable}" -c "$0"', script], capture_output=True, text=True)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == 1 and report["tmp"] == []
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"failgeom: could not write {mount}/toy/") and line.endswith("No space left on device")
    complete = report["complete"]
    assert 0 < sum(complete) < 8 and complete == sorted(complete, reverse=True), report  # the first ones fit
