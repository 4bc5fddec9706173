"""How many ULP does course_lib lose? Every activation, derivative, softmax and logit loss.

Prints one table per dtype: the worst ULP error of each function over the standard grid of
``course_lib.mpref`` (subnormals to the largest float, dense on [-20, 20], ±inf, nan), against
the mpmath reference, the input where it occurs, the target of the course and PASS/FAIL.

Targets (float64): forward at most 2 ULP for sigmoid, tanh, softplus, the ReLU family, ELU,
SELU, LiSHT, log_softmax and the cross-entropies from logits; at most 4 ULP for the three
GELUs, swish/SiLU, mish and softmax; derivatives at most 4 ULP (the softmax Jacobian 8); the
focal loss from logits and its derivative at most 8 ULP (``mpref.ULP_TARGETS``, for gamma <= 2),
leaving out inputs within 0.1 of an interior zero of the derivative (found numerically and
listed under the table). float32: 0.5 ULP of float32, over the inputs where the float64 result
meets its own target. Softmax-type functions run on ``mpref.standard_rows`` for K = 2, 3, 5
and 10; the losses call course_lib.losses on one sample at a time (N = 1), so that each value
is one per-element loss (the focal loss with labels 0 and 1 and three (alpha, gamma) pairs).

Run: ``python benchmarks/accuracy.py`` (about 50 s). The exit code is 0 whatever the figures.
"""

from __future__ import annotations

import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from course_lib import mpref

ELEMENTWISE = mpref.ELEMENTWISE_CASES
EXTRA_GRADIENTS: list[tuple[str, dict[str, float]]] = [
    ("prelu_grad_alpha", {"alpha": 0.25}),
    ("swish_grad_beta", {}),
    ("swish_grad_beta", {"beta": 1.5}),
]
VECTOR = ["softmax", "log_softmax", "softmax_jacobian", "log_softmax_jacobian"]
ROW_LENGTHS = (2, 3, 5, 10)
# Binary targets: the two labels and two soft targets that float32 holds exactly.
BCE_TARGETS = (0.0, 1.0, 0.25, 0.875)
# The focal loss from logits takes labels only: the defaults (alpha = 0.25, gamma = 2), half of
# BCE (alpha = 1/2, gamma = 0), and gamma < 1, where sigma(-u)**(gamma - 1) would be infinite.
FOCAL_CASES: list[dict[str, float]] = [
    {},
    {"alpha": 0.5, "gamma": 0.0},
    {"alpha": 0.75, "gamma": 0.5},
]
FOCAL_LABELS = (0.0, 1.0)
DTYPES = (np.float64, np.float32)


class Row:
    """One line of the table: the worst result over the cases of one function."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.results: dict[str, mpref.Accuracy | None] = {}
        self.notes: list[str] = []

    def add(self, dtype_name: str, result: mpref.Accuracy) -> None:
        current = self.results.get(dtype_name)
        if current is None:
            self.results[dtype_name] = result
            return
        worst = result if result.max_ulp > current.max_ulp else current
        self.results[dtype_name] = replace(
            worst,
            points=current.points + result.points,
            skipped=current.skipped + result.skipped,
            dtype_ok=current.dtype_ok and result.dtype_ok,
        )
        finite = max(current, result, key=lambda r: r.finite_max_ulp)
        self.results[dtype_name] = replace(
            self.results[dtype_name],
            finite_max_ulp=finite.finite_max_ulp,
            finite_at=finite.finite_at,
        )

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def _measure(row: Row, name: str, fn: Callable[..., Any], x: np.ndarray, **params: Any) -> None:
    """Run ``mpref.accuracy`` for one dtype; record RuntimeWarnings and errors as notes."""
    dtype_name = str(x.dtype)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = mpref.accuracy(name, fn, x, x.dtype, **params)
        for warning in caught:
            if issubclass(warning.category, RuntimeWarning):
                row.note(f"{dtype_name} warns: {warning.message}")
        row.add(dtype_name, result)
        if not result.dtype_ok:
            row.note(f"{dtype_name} input gives another dtype")
    except Exception as error:  # a benchmark reports, it does not stop
        row.note(f"{dtype_name} error: {type(error).__name__}: {error}")
        traceback.print_exc(limit=2, file=sys.stderr)


def _label(name: str, params: dict[str, float]) -> str:
    if not params:
        return name
    return f"{name}({', '.join(f'{k}={v:g}' for k, v in params.items())})"


def elementwise_rows(activations: Any) -> list[Row]:
    rows = []
    cases = []
    for name, params in ELEMENTWISE:
        cases.append((name, params))
        cases.append((f"{name}_grad", params))
    cases += EXTRA_GRADIENTS
    for name, params in cases:
        row = Row(_label(name, params))
        fn = getattr(activations, name, None)
        if fn is None:
            row.note(f"course_lib.activations.{name} is missing")
        else:
            for dtype in DTYPES:
                _measure(row, name, fn, mpref.standard_grid(dtype), **params)
        zeros = mpref.derivative_zeros(name, **params) if mpref.is_derivative(name) else []
        if zeros:
            row.note(
                f"left out |x - x0| < {mpref.ZERO_WINDOW:g}, x0 = "
                + ", ".join(f"{z:.6f}" for z in zeros)
            )
        rows.append(row)
        if zeros and fn is not None:
            band = Row(_label(name, params) + " near its zero")
            for dtype in DTYPES:
                _measure(band, name, fn, mpref.standard_grid(dtype), near_zero=True, **params)
            band.note(
                f"only {mpref.NEAR_ZERO_INNER:g} <= |x - x0| < {mpref.ZERO_WINDOW:g}, "
                f"where the terms of the derivative cancel: target {mpref.NEAR_ZERO_TARGET:g}"
            )
            rows.append(band)
    return rows


def vector_rows(activations: Any) -> list[Row]:
    rows = []
    for name in VECTOR:
        row = Row(name)
        fn = getattr(activations, name, None)
        if fn is None:
            row.note(f"course_lib.activations.{name} is missing")
            rows.append(row)
            continue
        for dtype in DTYPES:
            for k in ROW_LENGTHS:
                _measure(row, name, fn, mpref.standard_rows(k, dtype, seed=k))
        rows.append(row)
    return rows


def _one_sample(loss: Callable[..., Any], per_row: bool) -> Callable[..., np.ndarray]:
    """Turn a mean loss (or its gradient) into a per-element function of the logits."""

    def elementwise(x: np.ndarray, y_true: Any, **params: Any) -> np.ndarray:
        y = np.broadcast_to(np.asarray(y_true, dtype=x.dtype), x.shape)
        if per_row:
            values = [loss(y[i : i + 1], x[i : i + 1], **params) for i in range(len(x))]
        else:
            values = [
                loss(y.ravel()[i : i + 1], x.ravel()[i : i + 1], **params) for i in range(x.size)
            ]
        out = [np.asarray(v, dtype=np.float64).reshape(-1) for v in values]
        with np.errstate(over="ignore"):
            # A loss is a Python float: round it once to the input's dtype, as the API does.
            if per_row and np.ndim(values[0]) > 0:
                return np.array(out).astype(x.dtype).reshape(x.shape)
            return np.concatenate(out).astype(x.dtype).reshape(x.shape[:1] if per_row else x.shape)

    return elementwise


def loss_rows(losses: Any) -> list[Row]:
    rows = []
    for name in ("binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_grad"):
        row = Row(name + ("" if name.endswith("grad") else " (per element)"))
        fn = getattr(losses, name, None)
        if fn is None:
            row.note(f"course_lib.losses.{name} is missing")
            rows.append(row)
            continue
        for dtype in DTYPES:
            for y in BCE_TARGETS:
                _measure(
                    row, name, _one_sample(fn, per_row=False), mpref.standard_grid(dtype), y_true=y
                )
        if name.endswith("grad"):
            zeros = [z for y in BCE_TARGETS for z in mpref.derivative_zeros(name, y_true=y)]
            row.note(
                f"soft y: left out |x - logit(y)| < {mpref.ZERO_WINDOW:g}, x0 = "
                + ", ".join(f"{z:.6f}" for z in zeros)
            )
        row.note("y in {0, 1, 0.25, 0.875}")
        rows.append(row)
    for name in ("focal_loss_with_logits", "focal_loss_with_logits_grad"):
        fn = getattr(losses, name, None)
        for params in FOCAL_CASES:
            # "(per element)" only on the default row: a label longer than 48 characters
            # would push the columns of the table out of line.
            per = "" if name.endswith("grad") or params else " (per element)"
            row = Row(_label(name, params) + per)
            if fn is None:
                row.note(f"course_lib.losses.{name} is missing")
                rows.append(row)
                break
            for dtype in DTYPES:
                for y in FOCAL_LABELS:
                    _measure(
                        row,
                        name,
                        _one_sample(fn, per_row=False),
                        mpref.standard_grid(dtype),
                        y_true=y,
                        **params,
                    )
            row.note("y in {0, 1}; the derivative has no interior zero")
            rows.append(row)
    for name in ("softmax_cross_entropy", "softmax_cross_entropy_grad"):
        row = Row(name + ("" if name.endswith("grad") else " (per row)"))
        fn = getattr(losses, name, None)
        if fn is None:
            row.note(f"course_lib.losses.{name} is missing")
            rows.append(row)
            continue
        soft_worst = 0.0
        for dtype in DTYPES:
            for k in ROW_LENGTHS:
                logits = mpref.standard_rows(k, dtype, seed=k)
                top, bottom, soft = _class_targets(logits, k)
                for y_true in (top, bottom):
                    _measure(row, name, _one_sample(fn, per_row=True), logits, y_true=y_true)
                # Soft targets: only rows whose spread max - min is itself finite, and the
                # gradient p - y reported without a target: it cancels where p = y.
                with np.errstate(over="ignore", invalid="ignore"):
                    finite = np.isfinite(np.ptp(logits.astype(np.float64), axis=1))
                if name.endswith("_grad"):
                    result = mpref.accuracy(
                        name, _one_sample(fn, per_row=True), logits[finite], dtype,
                        y_true=soft[finite],
                    )  # fmt: skip
                    soft_worst = max(soft_worst, result.max_ulp)
                else:
                    _measure(
                        row, name, _one_sample(fn, per_row=True), logits[finite],
                        y_true=soft[finite],
                    )  # fmt: skip
        row.note("y one-hot on the top class and on the bottom class, and soft")
        if name.endswith("_grad"):
            row.note(
                f"soft y: p - y cancels where p = y (a vector interior zero); worst "
                f"{_fmt_ulp(soft_worst)} ULP, reported without a target"
            )
        else:
            row.note(
                "soft y: rows whose spread overflows (1.8e308 and -1.8e308) left out: there "
                "log p = -inf and the loss is inf where the exact value is finite"
            )
        rows.append(row)
    return rows


def _class_targets(logits: np.ndarray, k: int) -> list[np.ndarray]:
    """One-hot on the largest logit (confident and right), on the smallest (confident and
    wrong), and soft rows (Dirichlet, held exactly in float32)."""
    finite = np.where(np.isnan(logits), 0.0, logits.astype(np.float64))
    eye = np.eye(k)
    top = eye[np.argmax(finite, axis=1)]
    bottom = eye[np.argmin(finite, axis=1)]
    rng = np.random.default_rng(k)
    soft = rng.dirichlet(np.ones(k), size=len(logits)).astype(np.float32).astype(np.float64)
    return [top, bottom, soft]


def _fmt_ulp(value: float) -> str:
    if not np.isfinite(value):
        return str(value)
    if value >= 1e4:
        return f"{value:.2e}"
    return f"{value:.3g}" if value < 10 else f"{value:.0f}"


def _fmt_x(at: Any, full: bool = False) -> str:
    if at is None:
        return "-"
    if isinstance(at, list):
        if not full:
            return f"row {len(at)} (below)"
        return "[" + ", ".join(repr(float(v)) for v in at) + "]"
    return f"{at:.10g}" if not full else repr(float(at))


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n## {title}\n")
    header = (
        f"{'function':48s} {'f64 max ULP':>12s} {'at x':>22s} {'target':>6s} {'':4s} "
        f"{'f32 max ULP':>12s} {'at x':>22s} {'':4s}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        cells = [f"{row.label:48s}"]
        for dtype_name in ("float64", "float32"):
            result = row.results.get(dtype_name)
            if result is None:
                width = 12 + 1 + 22 + (8 if dtype_name == "float64" else 0)
                cells.append(f"{'n/a':>{width}s} {'FAIL':4s}")
                continue
            cells.append(f"{_fmt_ulp(result.max_ulp):>12s} {_fmt_x(result.at):>22s}")
            if dtype_name == "float64":
                cells.append(f"{result.target:>6g}")
            cells.append(f"{'PASS' if result.passed else 'FAIL':4s}")
        print(" ".join(cells).rstrip())
        for dtype_name in ("float64", "float32"):
            result = row.results.get(dtype_name)
            if result is not None and isinstance(result.at, list):
                row.note(f"{dtype_name} max at row {_fmt_x(result.at, full=True)}")
            if result is not None and result.finite_max_ulp < result.max_ulp:
                row.note(
                    f"{dtype_name}, finite inputs only: {_fmt_ulp(result.finite_max_ulp)} ULP "
                    f"at x = {_fmt_x(result.finite_at, full=True)}"
                )
        for note in row.notes:
            print(f"{'':4s}- {note}")


def main() -> int:
    start = time.perf_counter()
    print("Accuracy of course_lib against mpmath (course_lib.mpref), in ULP")
    print("float32 column: ULP of float32 against the reference; target 0.5 where the float64")
    print("result meets its target (inputs where it does not are left out and counted).")
    sections: list[tuple[str, list[Row]]] = []
    try:
        from course_lib import activations

        sections.append(("Activations and their derivatives", elementwise_rows(activations)))
        sections.append(("Softmax, log-softmax and their Jacobians", vector_rows(activations)))
    except ImportError as error:
        print(f"course_lib.activations could not be imported: {error}")
    try:
        from course_lib import losses

        sections.append(("Losses from logits, one sample at a time", loss_rows(losses)))
    except ImportError as error:
        print(f"course_lib.losses could not be imported: {error}")
    failures = []
    for title, rows in sections:
        print_table(title, rows)
        for row in rows:
            for dtype_name in ("float64", "float32"):
                result = row.results.get(dtype_name)
                if result is None or not result.passed:
                    failures.append(f"{row.label} [{dtype_name}]")
    print(f"\n{len(failures)} FAIL: " + ("; ".join(failures) if failures else "none"))
    print(f"Total run time: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    main()
    sys.exit(0)
