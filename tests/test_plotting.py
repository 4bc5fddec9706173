"""Tests of course_lib.plotting: every helper draws what it says and returns its Axes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_lib import activations as act  # noqa: E402
from course_lib import plotting as cplt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_plot_fn_draws_the_function_on_the_default_grid():
    ax = cplt.plot_fn(act.sigmoid, label="sigmoid")
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "sigmoid"]
    z, a = line.get_data()
    assert z[0] == -5.0 and z[-1] == 5.0 and len(z) == 1001
    np.testing.assert_array_equal(a, act.sigmoid(z))
    assert len(ax.get_lines()) == 3  # the curve and the two axes through the origin


def test_plot_fn_without_origin_lines_and_on_a_given_axes():
    _, ax = plt.subplots()
    assert cplt.plot_fn(act.relu, np.geomspace(1e-3, 1e3, 50), ax=ax, origin=False) is ax
    ax.set_xscale("log")
    assert len(ax.get_lines()) == 1


def test_plot_fn_and_grad_uses_two_axes():
    ax_f, ax_g = cplt.plot_fn_and_grad(act.tanh, act.tanh_grad, name="tanh")
    assert ax_f.get_title() == "$tanh(z)$" and ax_g.get_title() == "$tanh'(z)$"
    np.testing.assert_array_equal(ax_g.get_lines()[0].get_ydata(), act.tanh_grad(cplt.grid()))


def test_compare_labels_every_function():
    ax = cplt.compare({"ReLU": act.relu, "GELU": act.gelu}, title="two")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ReLU", "GELU"]


def test_plot_curve_against_steps_or_a_given_x():
    ax = cplt.plot_curve([3.0, 2.0, 1.0], logy=True)
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [0, 1, 2])
    assert ax.get_yscale() == "log"
    ax = cplt.plot_curve([1.0, 0.5], x=[4, 8], xlabel="depth")
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [4, 8])
    assert ax.get_xlabel() == "depth"


def test_plot_decision_boundary_draws_points_and_a_contour():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    ax = cplt.plot_decision_boundary(lambda P: act.sigmoid(5 * P[:, 0]), X, y, resolution=30)
    assert len(ax.collections) >= 2  # the filled contours, the boundary and the scatter


def test_slider_draws_once_with_the_initial_value():
    seen = []
    cplt.slider(lambda alpha: seen.append(alpha), alpha=(0.0, 1.0, 0.1, 0.3))
    assert seen == [0.3]


def test_static_slider_draws_once_names_the_ranges_and_makes_no_widget(monkeypatch, capsys):
    monkeypatch.setenv(cplt.STATIC_ENV, "1")
    seen = []
    out = cplt.slider(lambda w, a0: seen.append((w, a0)), w=(0.5, 12.0, 0.5, 1.0), a0=(0, 1, 0.1))
    assert out is None and seen == [(1.0, 0)]  # a0 has no initial value: its minimum
    assert (
        capsys.readouterr().out == "In JupyterLab, sliders move w from 0.5 to 12, a0 from 0 to 1.\n"
    )


def test_live_slider_returns_the_widget(monkeypatch):
    monkeypatch.delenv(cplt.STATIC_ENV, raising=False)
    out = cplt.slider(lambda alpha: None, alpha=(0.0, 1.0, 0.1, 0.3))
    assert out is not None and out.widget.children[0].value == 0.3
