"""Real processes killed with SIGKILL: the driver in the middle of ``reproduce`` (the rerun reuses
every completed cell and gives the numbers of an uninterrupted run), and the holder of an output
folder's lock (a second run refuses in one line while it lives, and takes the lock over once it
is dead)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_runner_toys import TOY, ToyConfig, numbers

from failgeom import experiments, reproduction
from failgeom.results import Result, file_checksum
from failgeom.store import CellStore

ROOT = Path(__file__).resolve().parents[1]
PRELUDE = textwrap.dedent(f"""
    import sys
    sys.path[:0] = [{str(ROOT / "tests")!r}, {str(ROOT)!r}]
    from test_runner_toys import TOY, ToyConfig
    from failgeom import experiments, reproduction
    experiments.REGISTRY["toy"] = TOY
    experiments._load_all = lambda: None  # the toy is all these runs need
""")


def start(code: str) -> subprocess.Popen:
    # a session of its own, so that the driver's worker processes can be stopped with it
    return subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, proc, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the process ended early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.05)


def kill_session(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the orphaned worker processes of that driver
    except ProcessLookupError:
        pass
    proc.stdout.close()
    proc.stderr.close()


def test_kill_9_of_the_driver_mid_reproduce_then_the_rerun_reuses_every_completed_cell(tmp_path, monkeypatch):
    config = ToyConfig(parts=6, sleep=0.25)
    out = tmp_path / "out"
    proc = start(f"""
        config = ToyConfig(parts=6, sleep=0.25)
        reproduction.reproduce("quick", {str(out)!r}, ["toy"], 1, 0, True, configs={{"toy": config}}, verify=False)
    """)
    store = CellStore(out / "toy", "toy", config, 0)
    wait_for(lambda: len(list(store.dir.glob("*.json"))) >= 2, proc)
    kill_session(proc)
    done = {p: p.stat().st_mtime_ns for p in store.dir.glob("*.json")}
    assert 2 <= len(done) < 6 and not (out / "toy" / "result.json").exists()

    monkeypatch.setitem(experiments.REGISTRY, "toy", TOY)
    assert reproduction.reproduce("quick", out, ["toy"], 1, 0, True, configs={"toy": config}, verify=False) == 0
    assert {p: p.stat().st_mtime_ns for p in done} == done  # reused, not recomputed
    assert numbers(Result.load(out / "toy")) == numbers(TOY.run(config, 0, preset="quick"))
    assert len(list(store.dir.glob("*.json"))) == 6 and not list(out.rglob("*.tmp"))
    assert "| `toy` | ran |" in (out / "report.md").read_text()


def test_a_second_run_refuses_while_the_first_lives_and_takes_a_dead_ones_lock_over(tmp_path, monkeypatch, capsys):
    from failgeom.cli import main

    folder = tmp_path / "toy"
    proc = start(f"""
        from failgeom.store import FolderLock
        import time
        lock = FolderLock({str(folder)!r}).acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)
    assert proc.stdout.readline().strip() == "locked"
    monkeypatch.setitem(experiments.REGISTRY, "toy", TOY)
    argv = ["run", "toy", "--out", str(tmp_path), "--jobs", "1", "--no-plot"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == (f"failgeom: error: {folder} is being written by another failgeom run (pid {proc.pid} on "
                   f"{os.uname().nodename}); wait for it to finish or stop it\n")
    assert not (folder / "result.json").exists() and not (folder / "cells").exists()

    kill_session(proc)
    assert f"pid {proc.pid}" in (folder / ".lock").read_text()  # a stale lock file of a dead run
    assert main(argv) == 0
    assert f"pid {os.getpid()}" in (folder / ".lock").read_text()
    assert numbers(Result.load(folder)) == numbers(TOY.run(ToyConfig(), 0, preset="quick"))


def test_concurrent_runs_of_one_folder_never_mix_files(tmp_path):
    """Two drivers started together into one folder: one runs, the other refuses in one line."""
    code = f"""
        from failgeom.cli import main
        sys.exit(main(["run", "toy", "--out", {str(tmp_path)!r}, "--jobs", "1", "--set", "sleep=0.2"]))
    """
    procs = [start(code) for _ in range(2)]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        outcomes.append((proc.returncode, err))
    codes = sorted(code for code, _ in outcomes)
    assert codes in ([0, 0], [0, 1]), outcomes  # the second may also start after the first ended
    for code, err in outcomes:
        if code == 1:
            assert err.count("\n") == 1 and "is being written by another failgeom run (pid" in err
    result = Result.load(tmp_path / "toy")
    assert numbers(result) == numbers(TOY.run(ToyConfig(sleep=0.2), 0, preset="custom"))
    recorded = json.loads((tmp_path / "toy" / "result.json").read_text())["files"]["figure.png"]
    assert recorded == file_checksum(tmp_path / "toy" / "figure.png")  # the pair is of one run
