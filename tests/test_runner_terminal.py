"""What a user of the runner sees: arguments refused in one line naming them, a plain progress line
when stderr is not a terminal (with a time left weighted by each cell's expected cost), a clean
Ctrl-C, and one line saying what to add to a script without a ``__main__`` guard."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_runner_toys import TOY, TRAIN, ToyConfig, TrainConfig

from failgeom import progress, runner
from failgeom.executors import SerialExecutor, has_main_guard

ROOT = Path(__file__).resolve().parents[1]
PRELUDE = (f"import sys, signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
           f"sys.path[:0] = [{str(ROOT / 'tests')!r}, {str(ROOT)!r}]\n")


BAD_CALLS = {
    "workers=0": (dict(workers=0), ValueError, "workers must be an integer from 1 to 4096, got 0"),
    "workers=-3": (dict(workers=-3), ValueError, "workers must be an integer from 1 to 4096, got -3"),
    "workers=2.0": (dict(workers=2.0), TypeError, "workers must be an integer"),
    "jobs=[None]": (dict(jobs=[None]), TypeError, "jobs[0] must be a runner.Job, got NoneType"),
    "jobs a Job": (dict(jobs="job"), TypeError, "jobs must be a list of runner.Job, got Job"),
    "config of another experiment": (dict(jobs=[runner.Job(TOY, TrainConfig(), "x")]), TypeError,
                                     "jobs[0].config must be a ToyConfig (experiment 'toy'), got TrainConfig"),
    "config None": (dict(jobs=[runner.Job(TRAIN, None, "x")]), TypeError,
                    "jobs[0].config must be a TrainConfig (experiment 'toy-train'), got NoneType"),
    "experiment a string": (dict(jobs=[runner.Job("toy", ToyConfig(), "x", name="toy")]), TypeError,
                            "jobs[0].experiment must be an experiment spec"),
    "seed -1": (dict(jobs=[runner.Job(TOY, ToyConfig(), "x", seed=-1)]), ValueError, "jobs[0].seed must be"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_run_jobs_refuses_bad_arguments_in_one_line_naming_them(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kwargs, kind, text = BAD_CALLS[case]
    kwargs = {"jobs": [runner.Job(TOY, ToyConfig(), "x")], **kwargs}
    if kwargs["jobs"] == "job":
        kwargs["jobs"] = runner.Job(TOY, ToyConfig(), "x")
    with pytest.raises(kind) as exc:
        runner.run_jobs(**kwargs)
    assert text in str(exc.value) and "\n" not in str(exc.value)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_one_cell_is_one_cell():
    assert runner.RunStats(cells_run=1, cells_reused=2, results_reused=1).line() == \
        "1 cell run, 2 reused, 0 failed (1 complete result reused)"
    assert runner.RunStats(cells_run=2).line() == "2 cells run, 0 reused, 0 failed"


def test_without_a_terminal_a_progress_line_comes_every_interval(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "EVERY_S", 0.2)
    lines = []
    job = runner.Job(TOY, ToyConfig(parts=3, sleep=0.5), tmp_path, plot=False)
    runner.run_jobs([job], executor=SerialExecutor(), say=lines.append)
    beats = [line for line in lines if line.startswith("progress: ")]
    assert 3 <= len(beats) <= 12, lines
    assert beats[0].startswith("progress: 0/3 cells done, 0 s elapsed")
    assert any("1/3 cells done" in b and "about 1 s left; last: toy part=" in b for b in beats), beats
    assert all("\n" not in b for b in beats)


def test_the_time_left_weights_each_cell_by_its_expected_cost():
    beat = progress.Heartbeat(lambda line: None, {"a": 100.0, "b": 10.0, "c": None}, reused=2, workers=2, every=60)
    try:
        assert beat.left() == pytest.approx((100 + 10 + 55) / 2)  # unknown: the mean of the known
        beat.done("a", 90.0, "x a")
        assert beat.left() == pytest.approx((10 + (10 + 90) / 2) / 2)
        assert beat.line().startswith("progress: 3/5 cells done (2 reused), 0 s elapsed, about 30 s left; last: x a")
    finally:
        beat.stop()
    assert progress.duration(3725) == "1 h 02 min" and progress.duration(65) == "1 min 05 s"


def test_ctrl_c_ends_a_run_on_local_workers_in_one_line(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    code = PRELUDE + textwrap.dedent(f"""
        from test_runner_toys import TOY
        from failgeom import experiments
        from failgeom.cli import main
        experiments.REGISTRY["toy"] = TOY
        experiments._load_all = lambda: None
        if __name__ == "__main__":
            sys.exit(main(["run", "toy", "--out", {str(tmp_path)!r}, "--jobs", "2", "--set", "sleep=30",
                           "--set", "marker_dir={marks}"]))
    """)
    script = tmp_path / "run.py"
    script.write_text(code)
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: to the whole process group
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and err == "failgeom: interrupted\n", err


def test_a_script_without_a_main_guard_is_told_what_to_add(tmp_path):
    script = tmp_path / "noguard.py"
    script.write_text(PRELUDE + textwrap.dedent(f"""
        from test_runner_toys import TOY, ToyConfig
        from failgeom import runner
        runner.run_jobs([runner.Job(TOY, ToyConfig(), {str(tmp_path / 'out')!r}, plot=False)], workers=2)
    """))
    assert not has_main_guard(script)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last == (
        f"failgeom.executors.WorkersLostError: the worker processes could not start: {script} calls failgeom's "
        "runner when it is imported, and each worker process imports it again; put that call under "
        "'if __name__ == \"__main__\":'")
    assert "spawn_main" not in proc.stderr and "bootstrapping" not in proc.stderr  # nothing from the workers
    guarded = tmp_path / "guarded.py"
    guarded.write_text(script.read_text().replace("runner.run_jobs(", "if __name__ == '__main__':\n    runner.run_jobs("))
    assert has_main_guard(guarded)
    assert subprocess.run([sys.executable, str(guarded)], capture_output=True, timeout=120).returncode == 0


def test_a_live_bar_shows_the_cost_weighted_time_left():
    from failgeom.progress import Heartbeat

    class Bar:
        postfix = ""

        def set_postfix_str(self, text, refresh=True):
            self.postfix = text

    bar = Bar()
    beat = Heartbeat(None, {"slow": 100.0, "fast": 1.0, "new": None}, reused=0, workers=1, bar=bar)
    assert "about 2 min 32 s" in bar.postfix  # 100 + 1 + the mean 50.5 for the untimed cell
    beat.done("slow", 100.0, "slow")
    assert "about 52 s" in bar.postfix  # 1 + the mean of the expected 1 and the measured 100
    beat.done("fast", 1.0, "fast")
    beat.done("new", 3.0, "new")
    assert bar.postfix == "time left: ?"
    beat.stop()
