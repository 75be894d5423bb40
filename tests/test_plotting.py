"""The shared figure helpers of failgeom.plotting."""

from __future__ import annotations

import pytest

from failgeom import plotting


def test_accuracy_axes_dresses_the_panel():
    fig, axes = plotting.figure(1, 2)
    plotting.accuracy_axes(axes[0, 0])
    a = axes[0, 0]
    assert a.get_xlabel() == "iterations" and a.get_ylabel() == "" and a.get_ylim() == (0.35, 1.02)
    (line,) = a.lines
    assert list(line.get_ydata()) == [0.5, 0.5] and line.get_linestyle() == "--"
    b = axes[0, 1]
    b.set_ylim(0, 2)
    plotting.accuracy_axes(b, "SGD step", "accuracy", ylim=None, chance=0.25)
    assert b.get_xlabel() == "SGD step" and b.get_ylabel() == "accuracy" and b.get_ylim() == (0, 2)
    assert list(b.lines[0].get_ydata()) == [0.25, 0.25]
    plotting.close(fig)


def test_log_n_axis_ticks_inside_the_range():
    fig, axes = plotting.figure(1, 2)
    plotting.log_n_axis(axes[0, 0], [8, 30, 120])
    assert axes[0, 0].get_xscale() == "log"
    assert list(axes[0, 0].xaxis.get_major_locator().locs) == [10, 20, 50, 100]
    plotting.log_n_axis(axes[0, 1], [6, 9])  # fewer than two round numbers inside: the ends
    assert list(axes[0, 1].xaxis.get_major_locator().locs) == [6, 9]
    with pytest.raises(ValueError, match="ns"):
        plotting.log_n_axis(axes[0, 1], [])
    plotting.close(fig)
