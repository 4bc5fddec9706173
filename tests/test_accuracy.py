"""Accuracy targets of course_lib, in ULP against mpmath (course_lib.mpref).

The targets of the course (float64): forward at most 2 ULP for sigmoid, tanh, softplus, the
ReLU family, ELU, SELU, LiSHT, log_softmax and the cross-entropies from logits; at most 4 ULP
for the three GELUs, swish/SiLU, mish and softmax; derivatives at most 4 ULP (the softmax
Jacobian 8; the focal loss from logits and its derivative 8, for gamma <= 2), except near an
interior zero x0 of the derivative, where every fixed-precision formula cancels: within
``mpref.ZERO_WINDOW`` (1.25) of x0 the bound is ``mpref.NEAR_ZERO_TARGET`` (32 ULP), and
nearer than 0.1 nothing is measured. float32 (computed in float64, rounded once): 0.5 ULP,
where the float64 result meets its own target. The targets live in ``mpref.ULP_TARGETS``; the
benchmark ``benchmarks/accuracy.py`` measures the same on a denser grid and prints a table.

The grid here is smaller than ``mpref.standard_grid`` but keeps its extremes: subnormals,
1e-300, 1e300, the largest float, the exp thresholds 709.8/745 (88.7/103.9 for float32),
±inf, nan and -0.0, plus [-20, 20] at step 1/8 and the tails out to 1000.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from course_lib import activations, losses, mpref

DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]

ELEMENTWISE = mpref.ELEMENTWISE_CASES
CASES = [
    *ELEMENTWISE,
    *[(f"{name}_grad", params) for name, params in ELEMENTWISE],
    ("prelu_grad_alpha", {"alpha": 0.25}),
    ("swish_grad_beta", {}),
]


def _case_id(name: str, params: dict) -> str:
    return name + "".join(f"[{k}={v:g}]" for k, v in params.items())


def small_grid(dtype) -> np.ndarray:
    """About 470 inputs with every extreme of ``mpref.standard_grid``."""
    dtype = np.dtype(dtype)
    info = np.finfo(dtype)
    is64 = dtype == np.float64
    extremes = [
        float(info.smallest_subnormal),
        1e-310 if is64 else 1e-40,
        float(info.smallest_normal),
        1e-300 if is64 else 1e-30,
        1e300 if is64 else 1e30,
        float(info.max),
        709.8,
        710.0,
        745.0,
        746.0,
        88.7,
        103.9,
        36.7,
        37.0,
    ]
    low, high = math.log10(info.smallest_subnormal), math.log10(info.max) * (1 - 1e-12)
    positive = np.concatenate(
        [extremes, np.geomspace(20.0, 1000.0, 30), np.logspace(low, high, 30)]
    )
    with np.errstate(over="ignore"):
        finite = np.concatenate([positive, -positive, np.linspace(-20.0, 20.0, 321)]).astype(dtype)
    finite = np.unique(finite[np.isfinite(finite) & (finite != 0)])
    return np.concatenate([finite, np.array([-0.0, 0.0, np.inf, -np.inf, np.nan], dtype=dtype)])


def _likely_cause(result: mpref.Accuracy) -> str:
    at = result.at
    if not result.dtype_ok:
        return "float32 in must give float32 out; a NumPy float64 constant upcasts (NEP 50)"
    if isinstance(at, list):
        return "a confident class: 1 - s or log(1 + tiny) loses the tiny part; or a huge spread"
    if at is None or not math.isfinite(at):
        return "the limit at +-inf or nan: a formula computes inf*0 or inf-inf"
    if abs(at) > 20:
        return "the tail: exp under/overflow, a subnormal intermediate, or the rounding error"
    if mpref.is_derivative(result.name):
        return "two terms of the derivative nearly cancel (close to an interior zero?)"
    return "a rounding error that the formula amplifies"


def _message(result: mpref.Accuracy, fn, params: dict) -> str:
    at = result.at
    detail = ""
    if at is not None and not isinstance(at, list):
        expected = mpref.exact(result.name, at, **params)
        got = np.asarray(fn(np.array([at], dtype=result.dtype), **params))[0]
        detail = f"; expected {float(expected)!r}, got {float(got)!r}"
    return (
        f"{result.name} [{result.dtype}]: {result.max_ulp:.4g} ULP at x = {at!r} "
        f"(target {result.target:g} ULP{detail}; finite inputs only: "
        f"{result.finite_max_ulp:.4g} ULP at {result.finite_at!r}). "
        f"Likely cause: {_likely_cause(result)}."
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("name", "params"), [pytest.param(n, p, id=_case_id(n, p)) for n, p in CASES]
)
def test_activation_accuracy(name, params, dtype):
    """An activation or its derivative stays within its ULP target from subnormals to inf."""
    fn = getattr(activations, name)
    result = mpref.accuracy(name, fn, small_grid(dtype), dtype, **params)
    assert result.passed, _message(result, fn, params)


WITH_INTERIOR_ZERO = [
    (name, params)
    for name, params in CASES
    if mpref.is_derivative(name) and mpref.derivative_zeros(name, **params)
]


@pytest.mark.parametrize(
    ("name", "params"), [pytest.param(n, p, id=_case_id(n, p)) for n, p in WITH_INTERIOR_ZERO]
)
def test_derivative_accuracy_near_its_zero(name, params):
    """Between 0.1 and 1.25 from an interior zero, a derivative still keeps all but 5 bits."""
    fn = getattr(activations, name)
    x = np.linspace(-3.0, 3.0, 2401)
    result = mpref.accuracy(name, fn, x, np.float64, near_zero=True, **params)
    assert result.points > 0, "the band around the zero holds no grid point"
    assert result.passed, _message(result, fn, params)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "name", ["softmax", "log_softmax", "softmax_jacobian", "log_softmax_jacobian"]
)
def test_softmax_accuracy(name, dtype):
    """Softmax, log-softmax and their Jacobians meet their targets on rows with big spreads."""
    fn = getattr(activations, name)
    for k in (2, 5):
        rows = mpref.standard_rows(k, dtype, count=15, seed=k)
        result = mpref.accuracy(name, fn, rows, dtype)
        assert result.passed, _message(result, fn, {})


def _per_element(loss, per_row: bool):
    """A mean loss (or its gradient) called on one sample at a time (N = 1)."""

    def elementwise(x: np.ndarray, y_true, **params) -> np.ndarray:
        y = np.broadcast_to(np.asarray(y_true, dtype=x.dtype), x.shape)
        if per_row:
            values = [np.asarray(loss(y[i : i + 1], x[i : i + 1], **params)) for i in range(len(x))]
            shape = x.shape if values[0].ndim else x.shape[:1]
        else:
            flat_y, flat_x = y.ravel(), x.ravel()
            values = [
                np.asarray(loss(flat_y[i : i + 1], flat_x[i : i + 1], **params))
                for i in range(x.size)
            ]
            shape = x.shape
        with np.errstate(over="ignore"):  # a Python float beyond float32's range is inf there
            return np.array([v.reshape(-1) for v in values]).astype(x.dtype).reshape(shape)

    return elementwise


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("y_true", [0.0, 1.0, 0.25, 0.875])
@pytest.mark.parametrize(
    "name", ["binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_grad"]
)
def test_binary_cross_entropy_from_logits_accuracy(name, y_true, dtype):
    """BCE from logits per element (2 ULP) and its derivative (4 ULP, away from logit(y))."""
    fn = _per_element(getattr(losses, name), per_row=False)
    result = mpref.accuracy(name, fn, small_grid(dtype), dtype, y_true=y_true)
    assert result.passed, _message(result, fn, {"y_true": y_true})


# The defaults (alpha = 0.25, gamma = 2), half of BCE (gamma = 0), and gamma < 1.
FOCAL_PARAMS = [{}, {"alpha": 0.5, "gamma": 0.0}, {"alpha": 0.75, "gamma": 0.5}]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("y_true", [0.0, 1.0])
@pytest.mark.parametrize(
    "params", [pytest.param(p, id=_case_id("", p) or "defaults") for p in FOCAL_PARAMS]
)
@pytest.mark.parametrize("name", ["focal_loss_with_logits", "focal_loss_with_logits_grad"])
def test_focal_loss_from_logits_accuracy(name, params, y_true, dtype):
    """The focal loss from logits per element and its derivative: 8 ULP (mpref.ULP_TARGETS,
    measured 6 and 7 at the defaults), float32 0.5 ULP; the derivative has no interior zero."""
    fn = _per_element(getattr(losses, name), per_row=False)
    result = mpref.accuracy(name, fn, small_grid(dtype), dtype, y_true=y_true, **params)
    assert result.skipped == 0 or dtype == np.float32, "no input may be left out in float64"
    assert result.passed, _message(result, fn, {"y_true": y_true, **params})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["softmax_cross_entropy", "softmax_cross_entropy_grad"])
def test_softmax_cross_entropy_accuracy(name, dtype):
    """CE from logits per row (2 ULP) and its gradient (4 ULP): one-hot on the top class, on
    the bottom class, and soft targets (float32-exact)."""
    fn = _per_element(getattr(losses, name), per_row=True)
    k = 5
    logits = mpref.standard_rows(k, dtype, count=15, seed=k)
    finite = np.where(np.isnan(logits), 0.0, logits.astype(np.float64))
    rng = np.random.default_rng(0)
    soft = rng.dirichlet(np.ones(k), size=len(logits)).astype(np.float32).astype(np.float64)
    for y_true in (np.eye(k)[finite.argmax(1)], np.eye(k)[finite.argmin(1)]):
        result = mpref.accuracy(name, fn, logits, dtype, y_true=y_true)
        assert result.passed, _message(result, fn, {"y_true": y_true})
    # Soft targets, on rows whose spread z_max - z_min is finite. A known limitation: when the
    # spread itself overflows (a row holding 1.8e308 and -1.8e308), log p = -inf and a soft
    # target gets inf where the exact loss is finite. The gradient p - y cancels where p ~ y,
    # the vector form of an interior zero, so it gets mpref.NEAR_ZERO_TARGET.
    with np.errstate(over="ignore", invalid="ignore"):
        spread_ok = np.isfinite(np.ptp(finite, axis=1))
    result = mpref.accuracy(name, fn, logits[spread_ok], dtype, y_true=soft[spread_ok])
    if name.endswith("_grad") and dtype == np.float64:
        assert result.max_ulp <= mpref.NEAR_ZERO_TARGET, _message(result, fn, {"y_true": soft})
    else:
        assert result.passed, _message(result, fn, {"y_true": soft})


def test_import_course_lib_does_not_load_heavy_modules():
    """`import course_lib` must not import sympy, matplotlib or scipy (lazy loading)."""
    code = (
        "import sys, course_lib; "
        "print(' '.join(m for m in ('sympy', 'matplotlib', 'scipy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = result.stdout.split()
    assert loaded == [], (
        f"import course_lib loaded {loaded}; import them inside the functions that need them"
    )
