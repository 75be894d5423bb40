"""Fault drivers for the store and the runner, one class per section (the table of
``python tests/fault_table.py`` counts them): what is reused, which files are touched, what a
special file where a record should be does, how a failed write and a damaged checkpoint read.

Each class is driven over its cases (parametrized, or with hypothesis where the cases form a
space); a case is *clean* when the run does what docs/scaling.md ("On the disk") says: reuse only
what is exactly what it claims, name anything else in one line and compute it again, touch only
failgeom's own files, and stop with one line (exit 1) on a file it must not use.
"""

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_runner_toys import TOY, TRAIN, ToyConfig, TrainConfig, numbers

from failgeom import experiments, runner, store
from failgeom.cli import main
from failgeom.executors import SerialExecutor
from failgeom.experiments.base import Experiment
from failgeom.results import Result, checksum, host_tag, temporary_writer
from failgeom.store import CellStore, FolderLock, LockedError, LockFileError

TOY_COPY = dataclasses.replace(TOY, name="toy-copy")  # same config class and preset: a twin


def needs_key(key, output):
    if "mean" not in output:
        raise KeyError("mean")


@dataclasses.dataclass(frozen=True)
class CheckedExperiment(Experiment):
    """The toy with an output check (an experiment may define ``check_output(key, output)``)."""

    def check_output(self, key, output):
        needs_key(key, output)


CHECKED = CheckedExperiment(**{f.name: getattr(TOY, f.name) for f in dataclasses.fields(TOY)})


def run(folder, experiment=TOY, config=None, seed=0, plot=False):
    messages = []
    job = runner.Job(experiment, config or ToyConfig(), folder, seed, "quick", plot)
    stats = runner.run_jobs([job], executor=SerialExecutor(), say=messages.append)
    return job, stats, messages


def resign(path, edit):
    data = edit(json.loads(path.read_text()))
    data = {k: v for k, v in data.items() if k not in ("sha256",)}
    data["sha256"] = checksum(data, allow_nan=True)
    path.write_text(json.dumps(data))


def resign_result(path, edit):
    data = edit(json.loads(path.read_text()))
    data.pop("sha256", None)
    data["sha256"] = checksum(data)
    path.write_text(json.dumps(data, indent=1))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    job, _, _ = run(base / "toy", plot=True)
    return base / "toy", job.outcome.result


@pytest.fixture
def folder(reference, tmp_path):
    shutil.copytree(reference[0], tmp_path / "toy")
    return tmp_path / "toy"


@pytest.fixture
def alarm():
    """A read that blocks (a FIFO) fails the test after 20 s instead of hanging the suite."""
    def hang(signum, frame):
        raise TimeoutError("blocked for 20 s")
    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------------------------
# class "reuse": a result or cell record is reused only if it is exactly what it claims


def _copied_from_another_experiment(folder):
    twin = folder.parent / "toy-copy"
    twin.mkdir()
    for name in ("result.json", "figure.png"):
        shutil.copy(folder / name, twin / name)
    return twin, TOY_COPY, "result.json belongs to another experiment ('toy')"


def _renamed_and_resigned(folder):
    resign_result(folder / "result.json", lambda d: {**d, "experiment": "parity"})
    return folder, TOY, "result.json belongs to another experiment ('parity')"


REUSE_RESULT = {"copied from another experiment": _copied_from_another_experiment,
                "renamed, checksum recomputed": _renamed_and_resigned}


@pytest.mark.parametrize("case", list(REUSE_RESULT))
def test_reuse_a_result_of_another_experiment_is_named_and_merged_again(case, folder, reference):
    where, experiment, reason = REUSE_RESULT[case](folder)
    job, stats, messages = run(where, experiment, plot=True)
    assert stats.results_reused == 0 and job.outcome.status == "ran"
    assert messages == [f"{experiment.name}: not reusing {where / 'result.json'}: {reason}"]
    result = Result.load(where)
    assert result.experiment == experiment.name
    assert {k: v for k, v in numbers(result).items() if k != "experiment"} == \
        {k: v for k, v in numbers(reference[1]).items() if k != "experiment"}
    assert runner.reusable(where, ToyConfig(), "quick", 0, experiment=experiment.name)[0] is not None


CELL_OUTPUTS = {  # a whole, checksummed record whose output this code cannot use
    "empty output": ({}, TOY, "has an empty output"),
    "a key merge needs missing": ({"part": 0, "nan": None}, TOY, "the stored outputs do not merge (KeyError: 'mean')"),
    "wrong type inside": ({"mean": "x", "head": 3, "part": 0}, TOY, "the stored outputs do not merge (TypeError"),
    "fails the experiment's check": ({"head": [1, 2, 3, 4]}, CHECKED,
                                     "has an output the experiment cannot use (KeyError: 'mean')"),
}


@pytest.mark.parametrize("case", list(CELL_OUTPUTS))
def test_reuse_a_resigned_cell_record_that_cannot_be_used_is_named_and_recomputed(case, folder, reference):
    output, experiment, reason = CELL_OUTPUTS[case]
    (folder / "result.json").unlink()
    cells = CellStore(folder, "toy", ToyConfig(), 0)
    path = cells.path(("part", 0))
    resign(path, lambda d: {**d, "output": output})
    job, stats, messages = run(folder, experiment)
    assert job.outcome.status == "ran", job.outcome.error
    assert (stats.cells_run, stats.cells_reused) == (1, 3)
    assert len(messages) == 1 and reason in messages[0] and "\n" not in messages[0], messages
    assert "part=0" in messages[0]
    assert numbers(job.outcome.result) == numbers(reference[1])
    assert cells.load(("part", 0))[0] == json.loads(json.dumps(reference_output(0)))


def reference_output(i):
    return TOY.compute_cell(ToyConfig(), 0, ("part", i))


def broken_merge(config, outputs):
    return {k: v["missing"] for k, v in outputs.items()}


def empty_cell(config, cell):
    return {}


MERGE_FAULTS = {
    "merge raises on fresh outputs": (dataclasses.replace(TOY, name="toy-bad-merge", merge=broken_merge),
                                      "toy-bad-merge: merge of 4 cells (part=0, part=1, part=2, part=3): "
                                      "KeyError: 'missing'"),
    "a cell returns {}": (dataclasses.replace(TOY, name="toy-empty", run_cell=empty_cell),
                          "toy-empty part=0: run_cell has an empty output"),
}


@pytest.mark.parametrize("case", list(MERGE_FAULTS))
def test_reuse_a_merge_never_sees_an_unchecked_output_and_its_failure_names_experiment_and_cells(case, tmp_path):
    experiment, error = MERGE_FAULTS[case]
    job, stats, messages = run(tmp_path / "x", experiment)
    assert job.outcome.status == "failed" and job.outcome.error == error
    assert not (tmp_path / "x" / "result.json").exists()
    if case == "a cell returns {}":
        assert stats.cells_failed == 4 and not list((tmp_path / "x" / "cells").rglob("*.json"))
    else:  # the cells are stored: the rerun recomputes one as a probe, finds it as stored, and
        # fails the same way without recomputing the others
        job, stats, messages = run(tmp_path / "x", experiment)
        assert job.outcome.error == error and (stats.cells_run, stats.cells_reused) == (1, 3)
        assert len(messages) == 1 and messages[0].startswith("recomputing toy-bad-merge part=")
        assert messages[0].endswith(": the stored outputs do not merge (KeyError: 'missing')")


def test_reuse_a_record_of_main_s_layout_is_reused(folder):
    """The names a stored record is found by do not change (the paper record is keyed by them)."""
    ident = store.identity("toy", ToyConfig(), 0)
    assert store.cell_name(("part", 3)) == "part,3-" + checksum(["part", 3])[:6]
    assert store.cell_name((5, "end_to_end")) == "5,end_to_end-" + checksum([5, "end_to_end"])[:6]
    assert CellStore(folder, "toy", ToyConfig(), 0).dir == folder / "cells" / checksum(ident)[:16]
    assert set(ident) == {"experiment", "config", "seed", "failgeom"}
    job, stats, _ = run(folder, plot=True)
    assert stats.results_reused == 1


# --------------------------------------------------------------------------------------------
# class "touch": only failgeom's own files are written or removed


def _symlink_outside(folder):
    outside = folder.parent / "precious.txt"
    outside.write_text("keep me")
    (folder / ".lock").symlink_to(outside)
    return lambda: outside.read_text() == "keep me", "a symbolic link"


def _dangling_symlink(folder):
    outside = folder.parent / "created-outside"
    (folder / ".lock").symlink_to(outside)
    return lambda: not outside.exists(), "a symbolic link"


def _fifo(folder):
    os.mkfifo(folder / ".lock")
    return lambda: True, "a FIFO"


def _directory(folder):
    (folder / ".lock").mkdir()
    return lambda: True, "a directory"


def _hard_link(folder):
    outside = folder.parent / "linked.txt"
    outside.write_text("keep me")
    os.link(outside, folder / ".lock")
    return lambda: outside.read_text() == "keep me", "a file with 2 hard links"


LOCK_FILES = {"symlink to a file outside": _symlink_outside, "dangling symlink": _dangling_symlink,
              "FIFO": _fifo, "directory": _directory, "hard link to a file outside": _hard_link}


@pytest.mark.parametrize("case", list(LOCK_FILES))
def test_touch_a_lock_that_is_not_a_regular_file_of_ours_is_named_and_left_alone(case, tmp_path, monkeypatch,
                                                                                   capsys, alarm):
    folder = tmp_path / "toy"
    folder.mkdir()
    intact, kind = LOCK_FILES[case](folder)
    with pytest.raises(LockFileError, match=f"{folder / '.lock'} is {kind}, not a lock file failgeom created"):
        FolderLock(folder).acquire()
    monkeypatch.setitem(experiments.REGISTRY, "toy", TOY)
    assert main(["run", "toy", "--out", str(tmp_path), "--jobs", "1", "--no-plot"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(folder / ".lock") in err and kind in err
    assert intact() and not (folder / "cells").exists()


def test_touch_the_lock_holder_is_the_process_the_kernel_names(tmp_path):
    """An unrelated process holding the flock is named by its pid and command, not by the text a
    failgeom run left in the file."""
    (tmp_path / ".lock").write_text("pid 1 on some-old-host\n")
    code = ("import fcntl, sys, time; f = open(sys.argv[1], 'r'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockedError) as exc:
            FolderLock(tmp_path).acquire()
        text = str(exc.value)
        assert f"another process (pid {proc.pid}: {sys.executable} -c import fcntl" in text, text
        assert "some-old-host" not in text
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    with FolderLock(tmp_path):  # the holder is gone: the lock is ours
        assert (tmp_path / ".lock").read_text() == f"pid {os.getpid()} on {socket.gethostname()}\n"


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


DEAD, LIVE = _dead_pid(), os.getppid()  # the pytest parent process lives as long as the test
TMP_NAMES = st.one_of(
    st.tuples(st.just("failgeom"), st.sampled_from(["dead", "live", "other-old", "other-new"]),
              st.sampled_from(["result.json", "part,3-abc123.json", "figure.png", "state.npz", "write-check"])),
    st.tuples(st.just("user"), st.from_regex(r"\.[a-z][a-z0-9_.-]{0,12}\.tmp", fullmatch=True),
              st.just("")),
)


@settings(max_examples=30)
@given(files=st.lists(TMP_NAMES, min_size=1, max_size=8, unique=True), in_subfolder=st.booleans())
def test_touch_only_temporaries_failgeom_wrote_whose_writer_is_gone_are_removed(files, in_subfolder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("clean")
    sub = folder / "cells" / "abc" if in_subfolder else folder
    sub.mkdir(parents=True, exist_ok=True)
    expect_removed, made = set(), []
    for n, (kind, what, target) in enumerate(files):
        if kind == "user":
            path = sub / what
        else:
            host, pid = (host_tag(), DEAD if what == "dead" else LIVE) if what in ("dead", "live") else ("otherhost", 7)
            path = sub / f".{target}.failgeom-{host}-{pid}-x{n}.tmp"
            if what in ("dead", "other-old"):
                expect_removed.add(path)
        if path.exists():
            continue
        path.write_text("x")
        if kind != "user" and what == "other-old":
            old = time.time() - store.FOREIGN_TMP_AGE_S - 60
            os.utime(path, (old, old))
        made.append(path)
    removed = set(store.clean_temporaries(folder))
    assert removed == expect_removed & set(made)
    assert all(p.exists() for p in made if p not in removed)


def test_touch_a_grid_run_and_a_plain_run_cannot_clean_each_other_s_files(tmp_path):
    """A plain run of an experiment and a --grid run of it share the experiment folder: the grid's
    points are subfolders with locks of their own, and a live writer's temporary is never removed."""
    root = tmp_path / "toy"
    point = root / "size=65"
    code = ("import sys, time; sys.path[:0] = sys.argv[2:]; from failgeom.store import FolderLock; "
            "from failgeom.results import temporary_prefix; from pathlib import Path; "
            "lock = FolderLock(sys.argv[1]).acquire(); "
            "Path(sys.argv[1], temporary_prefix('result.json') + 'live.tmp').write_text('half'); "
            "print('writing', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(point), str(Path(__file__).parents[1])],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        (live,) = point.glob(".result.json.failgeom-*.tmp")
        assert temporary_writer(live) == (host_tag(), proc.pid)
        job, _, messages = run(root)  # the plain run
        assert job.outcome.status == "ran" and live.read_text() == "half" and not messages
        os.unlink(point / ".lock")  # even without the subfolder's lock, a live writer's file stays
        assert store.clean_temporaries(root) == [] and live.exists()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert store.clean_temporaries(root) == [live]  # its writer is gone now


# --------------------------------------------------------------------------------------------
# class "special": a FIFO, directory or symbolic link where a record should be is named, not read


def _place(folder, name, kind):
    path = {"cell record": CellStore(folder, "toy", ToyConfig(), 0).path(("part", 1)),
            "result.json": folder / "result.json", "figure.png": folder / "figure.png"}[name]
    path.unlink()
    if name == "cell record":
        (folder / "result.json").unlink()
    if kind == "FIFO":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        (folder.parent / "elsewhere").write_text("{}")
        path.symlink_to(folder.parent / "elsewhere")
    return path


@pytest.mark.parametrize("kind", ["FIFO", "directory", "symbolic link"])
@pytest.mark.parametrize("name", ["cell record", "result.json", "figure.png"])
def test_special_files_where_a_record_should_be_are_named_never_read(name, kind, folder, monkeypatch, capsys, alarm):
    path = _place(folder, name, kind)
    monkeypatch.setitem(experiments.REGISTRY, "toy", TOY)
    status = main(["run", "toy", "--out", str(folder.parent), "--jobs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    if kind == "directory":  # nothing replaces a directory: one line naming it, exit 1
        assert status == 1 and err[-1] == f"failgeom: could not write {path}: Is a directory", err
    else:  # named in one line, computed or merged again, and written as a file of its own
        assert status == 0 and len(err) == 1 and str(path) in err[0] and f"is a {kind}" in err[0], err
        assert path.is_file() and not path.is_symlink()
    if kind == "symbolic link":
        assert (folder.parent / "elsewhere").read_text() == "{}"


def test_special_a_checkpoint_that_is_a_fifo_is_named_with_the_command_that_starts_over(tmp_path, monkeypatch,
                                                                                       capsys, alarm):
    monkeypatch.setitem(experiments.REGISTRY, TRAIN.name, TRAIN)
    ckpt = CellStore(tmp_path / TRAIN.name, TRAIN.name, TrainConfig(), 0).checkpoint_dir(("part", 0))
    ckpt.mkdir(parents=True)
    os.mkfifo(ckpt / "state.npz")
    assert main(["run", TRAIN.name, "--out", str(tmp_path), "--jobs", "1", "--no-plot"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"checkpoint {ckpt / 'state.npz'} is a FIFO, not a regular file" in line
    assert line.endswith(f"to start this cell over: rm -r {ckpt}") and "without --resume" not in line


# --------------------------------------------------------------------------------------------
# class "messages": a failed write is exit 1 before or during the run, and names its file


@pytest.mark.parametrize("err", [13, 28, 30, 122])  # EACCES, ENOSPC, EROFS, EDQUOT
def test_messages_an_output_folder_found_unwritable_before_the_run_is_exit_1_naming_it(err, tmp_path, monkeypatch,
                                                                                      capsys):
    from failgeom import results

    def refuse(*args, **kwargs):
        raise OSError(err, os.strerror(err))

    monkeypatch.setitem(experiments.REGISTRY, "toy", TOY)
    monkeypatch.setattr(results.tempfile, "mkstemp", refuse)
    assert main(["run", "toy", "--out", str(tmp_path), "--jobs", "1"]) == 1
    assert capsys.readouterr().err == f"failgeom: could not write {tmp_path / 'toy'}: {os.strerror(err)}\n"


def test_messages_a_damaged_checkpoint_says_rm_r_and_not_without_resume(tmp_path, monkeypatch, capsys):
    from failgeom.training import CheckpointError
    from failgeom.worker import failure

    exc = CheckpointError("checkpoint /x/state.npz is damaged (checksum mismatch); run again without --resume "
                          "to start over")
    info = failure(exc, "/x/cell.ckpt")
    assert info["error"] == ("CheckpointError: checkpoint /x/state.npz is damaged (checksum mismatch); "
                             "to start this cell over: rm -r /x/cell.ckpt")


# --------------------------------------------------------------------------------------------
# class "orphans": workers end with their driver and never write without its lock


def test_orphans_workers_die_with_a_killed_driver_and_write_nothing_after(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "out"
    code = (f"import sys; sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parents[1])!r}]\n"
            "from test_runner_toys import TOY, ToyConfig\nfrom failgeom import runner\n"
            f"config = ToyConfig(parts=4, sleep=30, marker_dir={str(marks)!r})\n"
            f"runner.run_jobs([runner.Job(TOY, config, {str(out)!r}, plot=False)], workers=2)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.05)
    workers = [int(p.name.rsplit("-", 1)[1]) for p in marks.iterdir()]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    alive = workers
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in workers if _alive(pid)]
        time.sleep(0.05)
    try:
        assert not alive, f"workers {alive} outlived their driver"
    finally:
        for pid in alive:
            os.kill(pid, signal.SIGKILL)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_orphans_a_cell_whose_driver_lost_the_lock_writes_no_checkpoint(tmp_path):
    from failgeom.worker import CellTask, execute_cell

    folder = tmp_path / TRAIN.name
    cells = CellStore(folder, TRAIN.name, TrainConfig(), 0)
    ckpt = cells.checkpoint_dir(("part", 0))
    task = CellTask(TRAIN, TrainConfig(), 0, ("part", 0), "toy-train part=0", str(ckpt), None,
                    str(folder / ".lock"))
    folder.mkdir(parents=True)
    info = execute_cell(task)  # nobody holds the lock: the driver is gone
    assert not info["ok"] and info["error"].startswith("LockLostError: not writing ")
    assert not ckpt.exists() or not any(ckpt.iterdir())
    with FolderLock(folder):  # held (here by this process, as the driver): the cell runs
        assert execute_cell(task)["ok"]


def test_orphans_a_run_on_local_workers_driven_from_a_thread_completes(tmp_path):
    """The parent death signal follows the thread that started a worker: a run driven from
    another thread relies on the watchdog alone, and its workers live as long as the driver."""
    import threading

    jobs = [runner.Job(TOY, ToyConfig(parts=3, sleep=0.3), tmp_path / f"t{i}", plot=False) for i in range(2)]
    threads = [threading.Thread(target=runner.run_jobs, args=([job],), kwargs={"workers": 2}) for job in jobs]
    for thread in threads:
        thread.start()
        thread.join(120)  # the first thread has ended before the second starts its workers
    assert all(job.outcome.status == "ran" for job in jobs)
    assert numbers(jobs[1].outcome.result) == numbers(TOY.run(ToyConfig(parts=3, sleep=0.3), 0, preset="custom"))


def test_several_files_are_written_as_one_unit(tmp_path, monkeypatch):
    """A disk that fills while report.md, report.html, ... are written leaves the old ones whole
    (none replaced) and no temporary behind; written files all appear together."""
    import errno

    from failgeom import results

    old = {tmp_path / "report.md": b"old md", tmp_path / "report.html": b"old html"}
    for path, data in old.items():
        path.write_bytes(data)
    real, calls = results._write_all, []

    def fill_on_second(fd, data):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(results, "_write_all", fill_on_second)
    with pytest.raises(OSError, match="report.html"):
        results.atomic_write_files({path: b"new" for path in old})
    assert {p: p.read_bytes() for p in old} == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.md"]
    monkeypatch.setattr(results, "_write_all", real)
    results.atomic_write_files({path: b"new" for path in old})
    assert all(p.read_bytes() == b"new" for p in old)
