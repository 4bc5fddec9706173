"""Plotting helpers shared by every lesson, so that all figures look alike.

Each helper takes ``ax=None`` (a new figure is made when it is None) and returns the
Axes it drew on, so a lesson can add to it. matplotlib is imported here, not in
``course_lib/__init__.py``, to keep ``import course_lib`` fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

Z_RANGE = (-5.0, 5.0)

STYLE = {
    "figure.figsize": (6.0, 3.6),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 2.0,
    "legend.frameon": False,
}
plt.rcParams.update(STYLE)


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots()
    return ax


def grid(lo: float = Z_RANGE[0], hi: float = Z_RANGE[1], n: int = 1001) -> np.ndarray:
    """The default evaluation grid, ``np.linspace(lo, hi, n)``."""
    return np.linspace(lo, hi, n)


def _origin_lines(ax: Axes) -> None:
    ax.axhline(0.0, color="0.6", linewidth=0.8, zorder=0)
    ax.axvline(0.0, color="0.6", linewidth=0.8, zorder=0)


def plot_fn(
    fn: Callable[[np.ndarray], np.ndarray],
    z: np.ndarray | None = None,
    *,
    ax: Axes | None = None,
    label: str | None = None,
    xlabel: str = "$z$",
    ylabel: str | None = None,
    origin: bool = True,
    **line_kwargs,
) -> Axes:
    """Plot ``fn(z)`` against ``z`` (default grid: [-5, 5]), with the axes through the origin
    unless ``origin=False`` (for a log-scaled axis, say)."""
    ax = _axes(ax)
    z = grid() if z is None else np.asarray(z)
    ax.plot(z, fn(z), label=label, **line_kwargs)
    if origin:
        _origin_lines(ax)
    ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if label is not None:
        ax.legend()
    return ax


def plot_fn_and_grad(
    fn: Callable[[np.ndarray], np.ndarray],
    grad: Callable[[np.ndarray], np.ndarray],
    z: np.ndarray | None = None,
    *,
    name: str = "f",
    axes: Sequence[Axes] | None = None,
) -> tuple[Axes, Axes]:
    """The d2l rhythm: the function on the left, its derivative on the right."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10.0, 3.6))
    ax_f, ax_g = axes
    plot_fn(fn, z, ax=ax_f, color="C0")
    ax_f.set_title(f"${name}(z)$")
    plot_fn(grad, z, ax=ax_g, color="C1")
    ax_g.set_title(f"${name}'(z)$")
    return ax_f, ax_g


def compare(
    fns: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    z: np.ndarray | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "$z$",
) -> Axes:
    """Several functions on one Axes, labelled by the keys of ``fns``."""
    ax = _axes(ax)
    for label, fn in fns.items():
        plot_fn(fn, z, ax=ax, label=label, xlabel=xlabel)
    if title is not None:
        ax.set_title(title)
    return ax


def plot_curve(
    values: Sequence[float] | np.ndarray,
    *,
    x: Sequence[float] | np.ndarray | None = None,
    ax: Axes | None = None,
    label: str | None = None,
    xlabel: str = "step",
    ylabel: str = "cost $J$",
    logy: bool = False,
) -> Axes:
    """A curve of ``values`` against ``x`` (default: the step number 0, 1, 2, ...).

    For a training curve (cost, accuracy), or any quantity against depth, an input or a
    parameter (``x=depths, xlabel="layer"``).
    """
    ax = _axes(ax)
    ax.plot(np.arange(len(values)) if x is None else np.asarray(x), values, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if label is not None:
        ax.legend()
    return ax


def plot_decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    *,
    ax: Axes | None = None,
    resolution: int = 200,
    level: float = 0.5,
) -> Axes:
    """Scatter 2-D points coloured by label, with the contour ``predict(X) == level``.

    ``predict`` maps an ``(M, 2)`` array to ``M`` scores (a probability, or a margin
    with ``level=0``).
    """
    ax = _axes(ax)
    X = np.asarray(X)
    pad = 0.5
    x0 = np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, resolution)
    x1 = np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, resolution)
    g0, g1 = np.meshgrid(x0, x1)
    scores = np.asarray(predict(np.column_stack([g0.ravel(), g1.ravel()]))).reshape(g0.shape)
    ax.contourf(g0, g1, scores, levels=20, cmap="RdBu_r", alpha=0.25)
    ax.contour(g0, g1, scores, levels=[level], colors="k", linewidths=1.5)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", edgecolors="k", s=20)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.grid(False)
    return ax


STATIC_ENV = "COURSE_STATIC_SLIDERS"
"""Set to 1 (the HTML edition, the notebook tests), ``slider`` draws once and makes no widget."""


def slider(plot: Callable[..., object], **params):
    """An ipywidgets slider for each keyword; ``plot(**values)`` redraws the figure.

    Each keyword is ``(min, max, step)`` or ``(min, max, step, initial)``, for example
    ``slider(draw, alpha=(0.0, 1.0, 0.01, 0.1))``. Outside a live kernel the figure is drawn
    once with the initial values. With the environment variable ``COURSE_STATIC_SLIDERS=1``
    no widget is made at all, only that figure and a line naming the sliders: the static
    HTML edition has no kernel to move them, and a notebook runner (nbclient 0.11) can wait
    for ever on the reply to a cell that opens widgets, about one run in two on a busy
    2-core machine (measured on lesson 02).
    """
    ranges = {}
    for name, spec in params.items():
        lo, hi, step, *rest = spec
        ranges[name] = (lo, hi, step, rest[0] if rest else lo)
    if os.environ.get(STATIC_ENV) == "1":
        plot(**{name: r[3] for name, r in ranges.items()})
        listed = ", ".join(f"{name} from {r[0]:g} to {r[1]:g}" for name, r in ranges.items())
        print(f"In JupyterLab, sliders move {listed}.")
        return None
    import ipywidgets as widgets

    sliders = {
        name: widgets.FloatSlider(
            value=initial, min=lo, max=hi, step=step, description=name, continuous_update=False
        )
        for name, (lo, hi, step, initial) in ranges.items()
    }
    return widgets.interact(plot, **sliders)
