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
                           eval_every=2, eval_size=6, eval_chunk=4, checkpoint_every=2, replicas=2,
                           focus_ks=(2,), focus_replicas=3, stop_after_learned=0)


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
    resumed = run(TINY, 3, checkpoint_dir=tmp_path)
    assert json.dumps(resumed.curves) == json.dumps(whole.curves)
    assert resumed.metrics == whole.metrics


def test_resume_refuses_another_config(tmp_path):
    with pytest.raises(Interrupt):
        run(TINY, 0, progress=interrupting_progress(3), checkpoint_dir=tmp_path)
    other = tl.TupleLinesConfig(**{**TINY.to_dict(), "ks": (1, 2), "batch": 4})
    with pytest.raises(CheckpointError, match="another config"):
        run(other, 0, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="another config"):
        run(TINY, 1, checkpoint_dir=tmp_path)


def test_a_seed_runs_alone_with_its_numbers_among_others(tmp_path, whole):
    key = ("k", 2, "end_to_end", "replica", 2)
    out = EXPERIMENT.compute_cell(TINY, 3, key, checkpoint_dir=tmp_path)
    column = {n: [row[2] for row in v] if n != "steps" else v
              for n, v in whole.curves["k=2/end_to_end"].items()}
    assert json.dumps({n: [x[0] for x in v] if n != "steps" else v for n, v in out["curves"].items()}) \
        == json.dumps(column)
    again = EXPERIMENT.compute_cell(TINY, 3, key, checkpoint_dir=tmp_path)  # from its last checkpoint
    assert json.dumps(again["curves"]) == json.dumps(out["curves"])
    with pytest.raises(ValueError, match="not a cell"):
        EXPERIMENT.compute_cell(TINY, 3, ("k", 2, "end_to_end", "replica", 3))
    with pytest.raises(ValueError, match="not a cell"):
        EXPERIMENT.compute_cell(TINY, 3, ("k", 4, "end_to_end", "replica", 0))


def test_focus_ks_run_more_seeds():
    keys = tl.cells(TINY)
    assert [k for k in keys if k[1:3] == (2, "end_to_end")] == [("k", 2, "end_to_end", "replica", r) for r in range(3)]
    assert [k for k in keys if k[1:3] == (2, "decomposition")] == [("k", 2, "decomposition", "replica", r)
                                                                  for r in range(2)]


def _curves(accuracy, every=100):
    from failgeom.training import Curves

    c = Curves()
    for i, a in enumerate(accuracy):
        c.record(i * every, accuracy=[a])
    return c


def test_learned_since_and_the_stop_rule():
    assert tl.learned_since([0, 100, 200, 300], [0.5, 0.8, 0.6, 0.9]) == 300
    assert tl.learned_since([0, 100, 200], [0.5, 0.8, 0.7]) is None
    assert tl.learned_since([0, 100, 200, 300], [0.5, 0.8, 0.9, np.nan]) == 100
    config = tl.TupleLinesConfig(stop_after_learned=200)
    until = tl.stop_rule(config, "end_to_end")
    assert tl.stop_rule(config, "decomposition") is None
    assert tl.stop_rule(tl.TupleLinesConfig(stop_after_learned=0), "end_to_end") is None
    assert not until(_curves([0.5, 0.8, 0.9]))       # learned for 100 steps only
    assert until(_curves([0.5, 0.8, 0.9, 0.8]))      # for 200 steps
    assert not until(_curves([0.5, 0.8, 0.7, 0.8]))  # a dip restarts the count


def _output(accuracy, steps, stopped):
    acc = [[a] for a in accuracy]
    curves = {"steps": [i * 2 for i in range(len(accuracy))], "train_loss": acc, "accuracy": acc,
              "image_accuracy": acc, "eval_loss": acc}
    return {"curves": curves, "stopped_early": stopped, "time": {"wall_s": 1.0, "cpu_s": 1.0}}


def test_merge_pads_a_seed_that_stopped_early_and_counts_learned_seeds():
    config = tl.TupleLinesConfig(ks=(1,), approaches=("end_to_end",), steps_end_to_end=6, eval_every=2,
                                 checkpoint_every=2, replicas=3, focus_ks=(), eval_size=100)
    outputs = {("k", 1, "end_to_end", "replica", 0): _output([0.5, 0.8, 0.9], 4, True),
               ("k", 1, "end_to_end", "replica", 1): _output([0.5, 0.5, 0.52, 0.49], 6, False),
               ("k", 1, "end_to_end", "replica", 2): _output([0.5, 0.6, 0.9, 0.95], 6, False)}
    r = EXPERIMENT.merge_cells(config, 0, outputs)
    acc = np.asarray(r.curves["k=1/end_to_end"]["accuracy"])
    assert acc.shape == (4, 3) and np.isnan(acc[3, 0]) and not np.isnan(acc[:, 1:]).any()
    m = r.metrics["k=1/end_to_end"]
    assert m["final_accuracy"] == [0.9, 0.49, 0.95] and m["steps_run"] == [4, 6, 6]
    assert m["learned"] == [True, False, True] and m["learned_from_step"] == [2, None, 4]
    f = m["learned_fraction"]
    assert (f["learned"], f["seeds"]) == (2, 3) and f["interval"][0] < 2 / 3 < f["interval"][1]
    assert m["at_chance_throughout"] == [False, True, False]
    bad = dict(outputs)
    bad[("k", 1, "end_to_end", "replica", 1)] = _output([0.5, 0.5], 2, False)
    bad[("k", 1, "end_to_end", "replica", 1)]["curves"]["steps"] = [0, 3]
    with pytest.raises(ValueError, match="other steps"):
        EXPERIMENT.merge_cells(config, 0, bad)


def test_chance_band_over_run_widens_with_evaluations():
    one, many = tl.chance_band_over_run(2000, 1), tl.chance_band_over_run(2000, 200)
    assert 0.5 / np.sqrt(2000) * 1.9 < one < many < 0.5 / np.sqrt(2000) * 4


def test_result_layout_and_figure(whole):
    r = whole
    for k in TINY.ks:
        for a in tl.APPROACHES:
            c = r.curves[f"k={k}/{a}"]
            assert c["steps"][0] == 0 and c["steps"][-1] == TINY.steps(a)
            assert c["steps"] == sorted(set(c["steps"]))
            acc = np.asarray(c["accuracy"])
            assert acc.shape == (len(c["steps"]), TINY.replicas_of(k, a))
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
    assert cli.main(args + sets) == 0  # a second run continues from the stored cells
    second = json.loads((tmp_path / "tuple-lines" / "result.json").read_text())
    assert json.dumps(first["curves"]) == json.dumps(second["curves"])
    assert cli.main(["run", "tuple-lines", "--set", "batch=0", "--out", str(tmp_path)]) == 2
    assert "batch" in capsys.readouterr().err


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
