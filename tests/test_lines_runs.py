"""Runs of tuple-lines and tuple-lines-snr: determinism, checkpoint + resume, the unbiased SNR
estimator, configs and the CLI (small configs; the paper-scale claims are marked slow)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failgeom import cli
from failgeom.experiments import get
from failgeom.experiments import tuple_lines as tl
from failgeom.experiments import tuple_lines_snr as snr

TINY = tl.TupleLinesConfig(ks=(1, 2), batch=3, steps_end_to_end=6, steps_decomposition=4,
                           eval_every=2, eval_size=6, eval_chunk=4, checkpoint_every=2, replicas=2)


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
    return tl.run(TINY, seed=3)


def test_same_seed_same_numbers_and_seeds_differ(whole):
    a, b, c = whole, tl.run(TINY, seed=3), tl.run(TINY, seed=2)
    # compared as JSON: the step-0 training loss is NaN, and NaN != NaN
    assert json.dumps(a.curves) == json.dumps(b.curves) and a.metrics == b.metrics
    assert json.dumps(a.curves) != json.dumps(c.curves)


@pytest.mark.parametrize("after", [1, 5, 7, 13])
def test_resume_gives_the_numbers_of_an_uninterrupted_run(tmp_path, after, whole):
    """Interrupted after ``after`` steps (inside the first phase, at a phase boundary, inside a
    later phase), then resumed: identical curves and metrics."""
    with pytest.raises(Interrupt):
        tl.run(TINY, seed=3, progress=interrupting_progress(after), checkpoint_dir=tmp_path)
    assert (tmp_path / tl.CHECKPOINT_NAME).exists()
    resumed = tl.run(TINY, seed=3, checkpoint_dir=tmp_path, resume=True)
    assert json.dumps(resumed.curves) == json.dumps(whole.curves)
    assert resumed.metrics == whole.metrics


def test_resume_refuses_another_config(tmp_path):
    with pytest.raises(Interrupt):
        tl.run(TINY, seed=0, progress=interrupting_progress(3), checkpoint_dir=tmp_path)
    other = tl.TupleLinesConfig(**{**TINY.to_dict(), "ks": (1, 2), "batch": 4})
    with pytest.raises(ValueError, match="another config or seed"):
        tl.run(other, seed=0, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="another config or seed"):
        tl.run(TINY, seed=1, checkpoint_dir=tmp_path, resume=True)


def test_result_layout_and_figure(whole):
    r = whole
    for k in TINY.ks:
        for a in tl.APPROACHES:
            c = r.curves[f"k={k}/{a}"]
            assert c["steps"][0] == 0 and c["steps"][-1] == TINY.steps(a)
            acc = np.asarray(c["accuracy"])
            assert acc.shape == (len(c["steps"]), TINY.replicas)
            # accuracies over eval_size tuples are multiples of 1 / eval_size
            np.testing.assert_allclose(acc * TINY.eval_size, np.round(acc * TINY.eval_size), atol=1e-9)
    fig = tl.figure(r)
    assert len(fig.axes) == len(TINY.ks)
    assert "k=1" in tl.summary(r)


@pytest.mark.parametrize("field, value", [("batch", 0), ("ks", (1, 1)), ("beta2", 1.0),
                                          ("checkpoint_every", 3), ("lr", -1.0)])
def test_bad_config(field, value):
    with pytest.raises(ValueError, match=field):
        tl.TupleLinesConfig(**{field: value}).validate()


def test_snr_bad_config():
    with pytest.raises(ValueError, match="dtype"):
        snr.TupleLinesSNRConfig(dtype="float32").validate()
    with pytest.raises(ValueError, match="groups"):
        snr.TupleLinesSNRConfig(samples=10, groups=20).validate()


# ---- the unbiased signal estimator (Figure 5)


@settings(deadline=None, max_examples=8)
@given(D=st.integers(1, 6), M=st.integers(3, 40), scale=st.floats(0.0, 2.0),
       seed=st.integers(0, 2**32 - 1))
def test_signal_estimator_is_unbiased(D, M, scale, seed):
    """Averaged over many independent data sets with known mean mu and covariance, the estimate
    matches ||mu||^2 within 5 standard errors, while the plain ||mean||^2 sits tr(Cov)/M above."""
    rng = np.random.default_rng(seed)
    mu = scale * rng.standard_normal(D)
    A = rng.standard_normal((D, D))
    cov_trace = float(np.sum(A * A))
    reps = 4000
    g = mu + rng.standard_normal((reps, M, D)) @ A.T  # Cov = A A^T
    S = g.sum(axis=1)
    Q = np.sum(g * g, axis=(1, 2))
    signal = (np.sum(S * S, axis=1) - Q) / (M * (M - 1))
    noise = (Q - np.sum(S * S, axis=1) / M) / (M - 1)
    se = signal.std() / np.sqrt(reps)
    assert abs(signal.mean() - mu @ mu) < 5 * se
    assert abs(noise.mean() - cov_trace) < 5 * noise.std() / np.sqrt(reps)
    naive = np.sum((S / M) ** 2, axis=1)
    assert abs(naive.mean() - (mu @ mu + cov_trace / M)) < 5 * naive.std() / np.sqrt(reps)
    # the library's estimator on each data set (split into 3 groups) gives the same numbers
    for i in range(3):
        groups = np.array_split(np.arange(M), 3)
        stats_ = snr.snr_statistics([g[i, ix].sum(0) for ix in groups],
                                    [np.sum(g[i, ix] ** 2) for ix in groups], [len(ix) for ix in groups])
        assert np.isclose(stats_.signal, signal[i], rtol=1e-9, atol=1e-12)
        assert np.isclose(stats_.noise, noise[i], rtol=1e-9, atol=1e-12)


def test_snr_interval_covers_and_resolves():
    """A clear signal is resolved and its interval covers the truth; a zero signal is reported
    as unresolved (interval containing 0) in most draws."""
    rng = np.random.default_rng(0)
    M, G, D = 4000, 20, 10
    covered, unresolved = 0, 0
    trials = 40
    for _ in range(trials):
        for mu_norm, kind in ((0.3, "signal"), (0.0, "zero")):
            mu = np.zeros(D)
            mu[0] = mu_norm
            g = mu + rng.standard_normal((M, D))
            ix = np.array_split(np.arange(M), G)
            s = snr.snr_statistics([g[i].sum(0) for i in ix], [np.sum(g[i] ** 2) for i in ix],
                                   [len(i) for i in ix])
            if kind == "signal":
                assert s.resolved
                covered += s.snr_low <= mu_norm**2 / D <= s.snr_high
            else:
                unresolved += not s.resolved
                # the bound is never tighter than the resolution (the interval's half-width)
                assert s.upper_bound >= 0.5 * (s.snr_high - s.snr_low) > 0
    # nominal 95%: at least 32 of 40 with a margin for the jackknife's approximation
    assert covered >= 32 and unresolved >= 32


def test_snr_tiny_run_and_figure():
    cfg = snr.TupleLinesSNRConfig(ks=(1, 3), samples=40, groups=4, chunk=16, replicas=2)
    r = snr.run(cfg, seed=0)
    for k in cfg.ks:
        for a in tl.APPROACHES:
            items = r.metrics[f"k={k}/{a}"]
            assert len(items) == 2
            for s in items:
                assert s["samples"] == 40 and s["noise"] > 0
                assert s["snr_low"] <= s["snr"] <= s["snr_high"]
    assert snr.run(cfg, seed=0).metrics == r.metrics
    snr.figure(r)
    assert "k=3" in snr.summary(r)


# ---- CLI


def test_cli_run_and_resume(tmp_path, capsys):
    sets = ["--set", "ks=1", "--set", "batch=2", "--set", "steps_end_to_end=4",
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
    r = tl.run(tl.PRESETS["quick"], seed=0)
    for k in (1, 2, 3, 4):
        assert all(r.metrics[f"k={k}/decomposition"]["learned"]), k
    for k in (3, 4):
        assert all(r.metrics[f"k={k}/end_to_end"]["at_chance"]), k


@pytest.mark.slow
def test_snr_decomposition_resolved_end_to_end_not():
    """Figure 5's direction at a sample size that can resolve it (20,000 tuples, about 10 min on
    one core): for k >= 3 the decomposition SNR at initialisation is resolved (interval above 0)
    while the end-to-end SNR is not (its interval includes 0)."""
    cfg = snr.TupleLinesSNRConfig(samples=20_000, groups=50, chunk=100, replicas=1, ks=(3, 4))
    r = snr.run(cfg, seed=0)
    for k in cfg.ks:
        assert all(s["resolved"] for s in r.metrics[f"k={k}/decomposition"]), k
        assert not any(s["resolved"] for s in r.metrics[f"k={k}/end_to_end"]), k
