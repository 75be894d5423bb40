"""Runs of tuple-lines: determinism, cells, checkpoint + resume, configs and the CLI (small
configs; the quick-preset claims are marked slow). The SNR estimator's tests are in
tests/test_stats.py (unbiasedness, coverage with binomial acceptance bounds) and
tests/test_lines_snr.py."""

import json

import numpy as np
import pytest

from failgeom import cli
from failgeom.experiments import get
from failgeom.experiments import tuple_lines as tl
from failgeom.experiments import tuple_lines_snr as snr
from failgeom.training import CheckpointError

EXPERIMENT = get("tuple-lines")
TINY = tl.TupleLinesConfig(ks=(1, 2), batch=3, steps_end_to_end=6, steps_decomposition=4, train_size=8,
                           eval_every=2, eval_size=6, eval_chunk=4, checkpoint_every=2, replicas=2)


def run(config, seed, **kw):
    return EXPERIMENT.run(config, seed, **kw)


class Interrupt(Exception):
    pass


def interrupting_progress(after):
    """A progress factory that raises after ``after`` training steps in total."""
    count = {"n": 0}

    class Bar:
        def update(self, n=1):
            count["n"] += n
            if count["n"] >= after:
                raise Interrupt

        def close(self):
            pass

    return lambda total, desc="": Bar()


@pytest.fixture(scope="module")
def whole():
    """An uninterrupted run of TINY with seed 3."""
    return run(TINY, 3)


def test_same_seed_same_numbers_and_seeds_differ(whole):
    a, b, c = whole, run(TINY, 3), run(TINY, 2)
    # compared as JSON: the step-0 training loss is NaN, and NaN != NaN
    assert json.dumps(a.curves) == json.dumps(b.curves) and a.metrics == b.metrics
    assert json.dumps(a.curves) != json.dumps(c.curves)


@pytest.mark.parametrize("after", [1, 5, 7, 13])
def test_resume_gives_the_numbers_of_an_uninterrupted_run(tmp_path, after, whole):
    """Interrupted after ``after`` steps (inside the first cell, at a cell boundary, inside a
    later cell), then resumed: identical curves and metrics."""
    with pytest.raises(Interrupt):
        run(TINY, 3, progress=interrupting_progress(after), checkpoint_dir=tmp_path)
    assert after < TINY.checkpoint_every or list(tmp_path.glob(f"*/{tl.CHECKPOINT_NAME}"))
    resumed = run(TINY, 3, checkpoint_dir=tmp_path, resume=True)
    assert json.dumps(resumed.curves) == json.dumps(whole.curves)
    assert resumed.metrics == whole.metrics


def test_resume_refuses_another_config(tmp_path):
    with pytest.raises(Interrupt):
        run(TINY, 0, progress=interrupting_progress(3), checkpoint_dir=tmp_path)
    other = tl.TupleLinesConfig(**{**TINY.to_dict(), "ks": (1, 2), "batch": 4})
    with pytest.raises(CheckpointError, match="another config"):
        run(other, 0, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="another config"):
        run(TINY, 1, checkpoint_dir=tmp_path, resume=True)


def test_cell_runs_alone_and_a_finished_cell_is_reused(tmp_path, whole):
    key = (2, "end_to_end")
    out = tl.run_cell(TINY, 3, key, checkpoint_dir=tmp_path)
    assert json.dumps(out["curves"]) == json.dumps(whole.curves["k=2/end_to_end"])
    assert (tmp_path / tl.DONE_NAME).exists()
    again = tl.run_cell(TINY, 3, key, checkpoint_dir=tmp_path, resume=True)
    assert again == json.loads(json.dumps(out))
    with pytest.raises(ValueError, match="not a cell"):
        tl.run_cell(TINY, 3, (4, "end_to_end"))


def test_result_layout_and_figure(whole):
    r = whole
    for k in TINY.ks:
        for a in tl.APPROACHES:
            c = r.curves[f"k={k}/{a}"]
            assert c["steps"][0] == 0 and c["steps"][-1] == TINY.steps(a)
            assert c["steps"] == sorted(set(c["steps"]))
            acc = np.asarray(c["accuracy"])
            assert acc.shape == (len(c["steps"]), TINY.replicas)
            # accuracies over eval_size tuples are multiples of 1 / eval_size
            np.testing.assert_allclose(acc * TINY.eval_size, np.round(acc * TINY.eval_size), atol=1e-9)
    fig = EXPERIMENT.figure(r)
    assert len(fig.axes) == len(TINY.ks)
    assert "k=1" in EXPERIMENT.summary(r)


@pytest.mark.parametrize("field, value", [("batch", 0), ("ks", (1, 1)), ("beta2", 1.0),
                                          ("checkpoint_every", 3), ("lr", -1.0), ("data", "x"),
                                          ("approaches", ("both",)), ("conv_init", "he")])
def test_bad_config(field, value):
    with pytest.raises(ValueError, match=field):
        tl.TupleLinesConfig(**{field: value}).validate()


# ---- CLI


def test_cli_run_and_resume(tmp_path, capsys):
    sets = ["--set", "ks=1", "--set", "batch=2", "--set", "steps_end_to_end=4", "--set", "train_size=5",
            "--set", "steps_decomposition=2", "--set", "eval_every=2", "--set", "eval_size=4",
            "--set", "eval_chunk=4", "--set", "checkpoint_every=2", "--seeds", "1"]
    assert cli.main(["run", "tuple-lines", "--out", str(tmp_path), "--quiet", "--no-plot"] + sets) == 0
    first = json.loads((tmp_path / "tuple-lines" / "result.json").read_text())
    args = ["run", "tuple-lines", "--out", str(tmp_path), "--quiet", "--no-plot"]
    assert cli.main(args + ["--resume"] + sets) == 0
    second = json.loads((tmp_path / "tuple-lines" / "result.json").read_text())
    assert json.dumps(first["curves"]) == json.dumps(second["curves"])
    assert cli.main(["run", "tuple-lines", "--set", "batch=0", "--out", str(tmp_path)]) == 2
    assert "batch" in capsys.readouterr().err
    assert get("tuple-lines").resumable and not get("tuple-lines-snr").resumable


# ---- paper-scale claims (slow)


@pytest.mark.slow
def test_quick_preset_shows_the_paper_result():
    """Sec. 3.1 / Figure 3: decomposition learns every k; end-to-end at chance for k >= 3."""
    r = run(tl.PRESETS["quick"], 0)
    for k in (1, 2, 3, 4):
        assert all(r.metrics[f"k={k}/decomposition"]["learned"]), k
    for k in (3, 4):
        assert all(r.metrics[f"k={k}/end_to_end"]["at_chance"]), k


@pytest.mark.slow
def test_snr_quick_preset_resolves_the_decomposition_and_bounds_end_to_end():
    """Figure 5's direction at the quick preset (8,000 pool images): at every k the
    end-to-end upper bound lies below the decomposition's estimate."""
    r = get("tuple-lines-snr").run(snr.PRESETS["quick"], 0)
    for k in (2, 3, 4):
        e2e = r.metrics[f"k={k}/end_to_end"][0]
        dec = r.metrics[f"k={k}/decomposition"][0]
        assert e2e["snr_high"] < dec["snr"], k
