"""A real ``dask scheduler`` and ``dask worker`` (separate processes), the scheduler killed with
SIGKILL in the middle of ``failgeom run --scheduler``: one line on stderr naming the address,
what is stored and the command that resumes; exit 1; none of distributed's own log lines; and
the resumed run on a fresh scheduler reuses every stored cell and gives the serial numbers.

Marked ``slow`` (about 20 s of process start-up): ``pytest -m slow tests/test_runner_scheduler_lost.py``.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_runner_toys import TOY, ToyConfig, numbers

from failgeom import experiments
from failgeom.results import Result
from failgeom.store import CellStore

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(port: int) -> list[subprocess.Popen]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT)]))
    address = f"tcp://127.0.0.1:{port}"
    common = dict(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], **common)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                               "--nworkers", "1", "--no-dashboard"], **common)
    return [scheduler, worker]


def stop(procs) -> None:
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def test_a_lost_scheduler_is_one_line_with_what_is_stored_and_how_to_resume(tmp_path, monkeypatch, capfd, caplog):
    from failgeom.cli import main

    monkeypatch.setitem(experiments.REGISTRY, "toy", TOY)
    config = ToyConfig(parts=6, sleep=1.0)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    argv = ["run", "toy", "--out", str(tmp_path), "--set", "parts=6", "--set", "sleep=1.0", "--no-plot",
            "--scheduler", address]
    cells = CellStore(tmp_path / "toy", "toy", config, 0)
    procs = start_cluster(port)
    try:
        def kill_after_two_cells():
            deadline = time.monotonic() + 120
            while len(list(cells.dir.glob("*.json"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.killpg(procs[0].pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_after_two_cells)
        monkeypatch.setattr(sys, "argv", ["failgeom", *argv])
        time.sleep(3)  # the scheduler listens
        killer.start()
        status = main(argv)
        killer.join()
    finally:
        stop(procs)
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    stored = len(list(cells.dir.glob("*.json")))
    assert status == 1 and 2 <= stored < 6
    assert lines == [f"failgeom: error: lost the Dask scheduler at {address}; {stored} of 6 cells are stored in "
                     f"{tmp_path / 'toy'}; with a scheduler running again, resume with: failgeom {' '.join(argv)}"], err
    assert "NoneType" not in err and "distributed" not in err
    assert not [r for r in caplog.records if r.name.split(".")[0] in ("distributed", "tornado")]

    port = free_port()
    procs = start_cluster(port)
    try:
        time.sleep(3)
        assert main([*argv[:-1], f"tcp://127.0.0.1:{port}"]) == 0
    finally:
        stop(procs)
    ran = f"{6 - stored} cell{'s' if 6 - stored != 1 else ''} run"
    assert f"{ran}, {stored} reused, 0 failed" in capfd.readouterr().out
    assert numbers(Result.load(tmp_path / "toy")) == numbers(TOY.run(config, 0, preset="quick"))
