"""Tests of course_lib.activations: values, properties, gradients, extremes and hygiene.

Accuracy in ULP over the whole floating-point range is tested in test_accuracy.py, and
agreement with the SymPy derivatives in test_symbolic.py.
"""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course_lib import activations as act

EPS64 = np.finfo(np.float64).eps

# Parameters used whenever a function needs one (prelu's alpha has no default).
PARAMS: dict[str, dict] = {"prelu": {"alpha": 0.25}, "prelu_grad": {"alpha": 0.25}}
PARAMS["prelu_grad_alpha"] = PARAMS["prelu"]
ELEMENTWISE = [n for n in act.ACTIVATIONS if n not in ("softmax", "log_softmax")]
GRADS = [n for n in act.GRADIENTS if "jacobian" not in n]
ALL_ELEMENTWISE = ELEMENTWISE + GRADS

# Inputs that break textbook formulas: overflow of exp, subnormals, infinities, -0.0.
EXTREMES = np.array(
    [-1.7976931348623157e308, -1e300, -1e3, -745.2, -709.8, -40.0, -1e-300, -5e-324, -0.0, 0.0,
     5e-324, 1e-300, 40.0, 709.8, 745.2, 1e3, 1e300, 1.7976931348623157e308]
)  # fmt: skip


def call(name: str, x, **kwargs):
    fn = act.ACTIVATIONS.get(name) or act.GRADIENTS[name]
    return fn(x, **{**PARAMS.get(name, {}), **kwargs})


# ------------------------------------------------------------------ fixed values
# Each value: mpmath at 50 digits, rounded to float64, e.g.
#   from mpmath import mp; mp.dps = 50; float(1/(1+mp.exp(-mp.mpf(2))))
FIXED = [
    # float(1/(1+mp.exp(-2)))
    ("sigmoid", 2.0, 0.8807970779778824),
    # float(mp.exp(-800)/(1+mp.exp(-800))) underflows to 0.0; the textbook form overflows here
    ("sigmoid", -800.0, 0.0),
    # float(1/(1+mp.exp(mp.mpf(700))))
    ("sigmoid", -700.0, 9.85967654375977e-305),
    # float(mp.exp(-40)/(1+mp.exp(-40))**2)
    ("sigmoid_grad", 40.0, 4.248354255291589e-18),
    # float(mp.sech(20)**2)
    ("tanh_grad", 20.0, 1.6993417021166355e-17),
    # float(mp.tanh(mp.mpf('0.5')))
    ("tanh", 0.5, 0.46211715726000974),
    # float(mp.log1p(mp.exp(-40)))
    ("softplus", -40.0, 4.248354255291589e-18),
    # float(mp.log1p(mp.exp(mp.mpf(1000))))
    ("softplus", 1000.0, 1000.0),
    # float(mp.expm1(-1))
    ("elu", -1.0, -0.6321205588285577),
    # float(mp.mpf('1.0507009873554804934193349852946')*mp.mpf('1.6732632423543772848170429916717')*mp.expm1(-1))
    ("selu", -1.0, -1.1113307378125628),
    # float(mp.ncdf(1))
    ("gelu", 1.0, 0.8413447460685429),
    # float(-10*mp.ncdf(-10))
    ("gelu", -10.0, -7.619853024160526e-23),
    # float(mp.ncdf(-3) - 3*mp.npdf(-3))
    ("gelu_grad", -3.0, -0.011945647204183927),
    # k = mp.sqrt(2/mp.pi); float(mp.mpf(1)/2*(1+mp.tanh(k*(1+mp.mpf('0.044715')))))
    ("gelu_tanh", 1.0, 0.8411919906082767),
    # float(mp.mpf(1)/(1+mp.exp(-mp.mpf('1.702'))))
    ("gelu_sigmoid", 1.0, 0.8457957659328212),
    # float(-30/(1+mp.exp(30)))
    ("silu", -30.0, -2.8072868906517896e-12),
    # s = 1/(1+mp.exp(-2)); float(s*(1+2*(1-s)))
    ("silu_grad", 2.0, 1.0907842487848955),
    # float(2*mp.tanh(2))
    ("lisht", 2.0, 1.9280551601516338),
    # float(mp.mpf(-1)*mp.tanh(mp.log1p(mp.exp(-1))))
    ("mish", -1.0, -0.3034014613741089),
    # float(-800*mp.tanh(mp.log1p(mp.exp(-800))))
    ("mish", -800.0, 0.0),
    # sp = mp.log1p(mp.exp(1)); float(mp.tanh(sp) + 1/(1+mp.exp(-1))*mp.sech(sp)**2)
    ("mish_grad", 1.0, 1.0490362200997922),
]


@pytest.mark.parametrize(("name", "x", "expected"), FIXED)
def test_fixed_values(name, x, expected):
    got = call(name, np.float64(x))
    np.testing.assert_allclose(got, expected, rtol=8 * EPS64, atol=0.0)


def test_selu_constants():
    # 50-digit values from Klambauer et al. (2017), re-derived in symbolic.selu_constants().
    assert act.SELU_ALPHA == float("1.6732632423543772848170429916717")
    assert act.SELU_SCALE == float("1.0507009873554804934193349852946")


@pytest.mark.parametrize(
    ("name", "x", "expected"),
    [
        # The left derivative at every kink (docs/notation.md): exact by definition.
        ("relu_grad", 0.0, 0.0),
        ("relu_grad", -0.0, 0.0),
        ("leaky_relu_grad", 0.0, 0.01),
        ("prelu_grad", 0.0, 0.25),
        ("elu_grad", 0.0, 1.0),
        ("selu_grad", 0.0, act.SELU_SCALE * act.SELU_ALPHA),
        ("binary_step", 0.0, 1.0),
        ("relu", -3.0, 0.0),
    ],
)
def test_kink_conventions(name, x, expected):
    assert call(name, x) == expected


# ------------------------------------------------------------------- properties

finite = st.floats(min_value=-700, max_value=700, allow_nan=False)
moderate = st.floats(min_value=-30, max_value=30, allow_nan=False)


@given(finite)
def test_sigmoid_symmetry_and_bounds(x):
    s, s_neg = act.sigmoid(x), act.sigmoid(-x)
    assert 0.0 <= s <= 1.0
    assert abs((1.0 - s) - s_neg) <= 2 * EPS64


@given(moderate)
def test_tanh_is_two_sigmoid_minus_one(x):
    assert abs(act.tanh(x) - (2 * act.sigmoid(2 * x) - 1)) <= 4 * EPS64


@given(finite, finite)
def test_monotonic_functions(x1, x2):
    lo, hi = min(x1, x2), max(x1, x2)
    for name in ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "softplus"):
        assert call(name, lo) <= call(name, hi), name


@given(moderate)
def test_derivative_bounds(x):
    # The maxima 1/4 and 1 are reached at 0; rounding may land one ULP above them.
    assert 0.0 <= act.sigmoid_grad(x) <= 0.25 * (1 + EPS64)
    assert 0.0 <= act.tanh_grad(x) <= 1.0 + EPS64
    assert act.lisht(x) >= 0.0


@given(moderate)
def test_softplus_grad_is_sigmoid_and_softplus_above_relu(x):
    assert act.softplus_grad(x) == act.sigmoid(x)
    assert act.softplus(x) >= act.relu(x)


@given(moderate)
def test_swish_family(x):
    assert act.silu(x) == act.swish(x, beta=1.0)
    np.testing.assert_allclose(act.swish(x, beta=0.0), x / 2, rtol=2 * EPS64, atol=1e-300)
    # beta -> infinity gives ReLU: at beta = 1e4 they differ by at most |x| e^{-1e4 |x|}.
    assert abs(act.swish(x, beta=1e4) - act.relu(x)) <= 1e-4
    # gelu_sigmoid uses the decimal 1.702 exactly; swish the nearest double to it.
    np.testing.assert_allclose(
        act.gelu_sigmoid(x), act.swish(x, beta=act.GELU_SIGMOID_C), rtol=64 * EPS64, atol=1e-300
    )


@given(moderate)
def test_gelu_approximations_are_close(x):
    # Hendrycks and Gimpel's approximations: measured max errors (lesson 08) are
    # about 4.7e-4 (tanh) and 2.1e-2 (sigmoid); these bounds leave margin.
    assert abs(act.gelu_tanh(x) - act.gelu(x)) < 1e-3
    assert abs(act.gelu_sigmoid(x) - act.gelu(x)) < 3e-2


@given(arrays(np.float64, st.integers(1, 6), elements=st.floats(-50, 50)))
def test_softmax_is_a_distribution(z):
    p = act.softmax(z)
    assert np.all(p >= 0)
    assert abs(p.sum() - 1.0) <= 8 * EPS64
    np.testing.assert_allclose(act.log_softmax(z), np.log(p), rtol=1e-12, atol=1e-12)
    # Shift invariance: softmax(z + c) == softmax(z).
    np.testing.assert_allclose(act.softmax(z + 17.0), p, rtol=1e-12, atol=1e-300)


@given(st.floats(-700, 700), st.floats(-700, 700))
def test_two_class_softmax_is_sigmoid(z0, z1):
    p = act.softmax(np.array([z0, z1]))
    np.testing.assert_allclose(p[0], act.sigmoid(z0 - z1), rtol=1e-13, atol=1e-300)


def test_softmax_axis_and_infinities():
    z = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(act.softmax(z, axis=0).sum(axis=0), 1.0, rtol=4 * EPS64)
    np.testing.assert_allclose(act.softmax(z, axis=-1).sum(axis=-1), 1.0, rtol=4 * EPS64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(act.softmax(np.array([1000.0, 0.0])), [1.0, 0.0])
        np.testing.assert_array_equal(act.softmax(np.array([np.inf, 3.0])), [1.0, 0.0])
        np.testing.assert_array_equal(act.log_softmax(np.array([np.inf, 3.0])), [0.0, -np.inf])
        # log_softmax([0, -1000]) = [-log1p(e^-1000), -1000 - log1p(e^-1000)] = [-0.0, -1000]
        np.testing.assert_allclose(act.log_softmax(np.array([0.0, -1000.0])), [0.0, -1000.0])


def test_softmax_jacobian_formula():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 5))
    s = act.softmax(z)
    jac = act.softmax_jacobian(z)
    assert jac.shape == (4, 5, 5)
    # s_i (delta_ij - s_j), built independently with einsum.
    expected = np.einsum("bi,ij->bij", s, np.eye(5)) - np.einsum("bi,bj->bij", s, s)
    np.testing.assert_allclose(jac, expected, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(jac.sum(axis=1), 0.0, atol=1e-15)  # columns sum to 0
    np.testing.assert_allclose(
        act.log_softmax_jacobian(z), np.eye(5) - s[:, None, :], rtol=1e-14, atol=1e-16
    )


# ------------------------------------------------------ gradients vs differences


def central_difference(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(1)
    x = rng.uniform(-6, 6, size=200)
    x = x[np.abs(x) > 1e-3]  # away from the kinks at 0
    grad_name = f"{name}_grad"
    numeric = central_difference(lambda v: call(name, v), x)
    # Central differences carry O(h^2 f''') truncation and O(eps/h) rounding error.
    np.testing.assert_allclose(call(grad_name, x), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("name", "param"), [("prelu", "alpha"), ("swish", "beta")])
def test_parameter_gradients(name, param):
    x = np.linspace(-5, 5, 101)
    value = 0.3
    fn = act.ACTIVATIONS[name]
    numeric = (fn(x, **{param: value + 1e-6}) - fn(x, **{param: value - 1e-6})) / 2e-6
    analytic = act.GRADIENTS[f"{name}_grad_{param}"](x, **{param: value})
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_softmax_jacobian_matches_finite_differences():
    z = np.array([0.3, -1.2, 2.0, 0.5])
    numeric = np.stack(
        [
            central_difference(lambda t, j=j: act.softmax(z + t * np.eye(4)[j]), 0.0)
            for j in range(4)
        ],
        axis=1,
    )
    np.testing.assert_allclose(act.softmax_jacobian(z), numeric, rtol=1e-7, atol=1e-9)


# --------------------------------------------------------------- extremes, hygiene


@pytest.mark.parametrize("name", ALL_ELEMENTWISE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extremes_are_quiet_and_finite(name, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # casting 1e300 to float32 is the test's business
        x = EXTREMES.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = call(name, x)
    # selu(x) = 1.0507 x exceeds the largest float for the largest inputs: inf is exact there.
    exact_overflow = np.abs(x) > np.finfo(dtype).max / act.SELU_SCALE
    keep = np.isfinite(x) & ~(exact_overflow & (name == "selu"))
    assert np.all(np.isfinite(out[keep])), (name, x, out)


@pytest.mark.parametrize("name", ALL_ELEMENTWISE)
def test_limits_and_nan(name):
    x = np.array([-np.inf, np.inf, np.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = call(name, x)
    assert np.isnan(out[2])
    assert not np.isnan(out[0]) and not np.isnan(out[1]), (name, out)


def test_limit_values():
    # The mathematical limits at -inf and +inf.
    x = np.array([-np.inf, np.inf])
    np.testing.assert_array_equal(act.sigmoid(x), [0.0, 1.0])
    np.testing.assert_array_equal(act.gelu(x), [0.0, np.inf])
    np.testing.assert_array_equal(act.silu(x), [0.0, np.inf])
    np.testing.assert_array_equal(act.mish(x), [0.0, np.inf])
    np.testing.assert_array_equal(act.elu(x), [-1.0, np.inf])
    np.testing.assert_array_equal(act.gelu_grad(x), [0.0, 1.0])
    np.testing.assert_array_equal(act.mish_grad(x), [0.0, 1.0])
    np.testing.assert_array_equal(act.lisht_grad(x), [-1.0, 1.0])


@pytest.mark.parametrize("name", [*ALL_ELEMENTWISE, "softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_dtype_shape_and_input_preserved(name, dtype):
    x = np.arange(-6, 6).reshape(3, 4).astype(dtype)
    before = x.copy()
    out = call(name, x)
    assert isinstance(out, np.ndarray)
    assert out.shape == x.shape
    assert out.dtype == (np.float32 if dtype == np.float32 else np.float64)
    np.testing.assert_array_equal(x, before)
    assert not np.shares_memory(out, x)


@pytest.mark.parametrize("name", ALL_ELEMENTWISE)
def test_scalars_and_lists(name):
    out = call(name, 0.5)
    assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == np.float64
    assert call(name, [0.5, -0.5]).shape == (2,)
    assert call(name, np.array([], dtype=np.float32)).dtype == np.float32


def test_float32_is_rounded_once_from_float64():
    x = np.linspace(-20, 20, 401).astype(np.float32)
    for name in ALL_ELEMENTWISE:
        np.testing.assert_array_equal(
            call(name, x), call(name, x.astype(np.float64)).astype(np.float32), err_msg=name
        )


def test_prelu_broadcasts_alpha_per_channel():
    x = np.array([[-1.0, -2.0, 3.0], [4.0, -5.0, -6.0]])
    alpha = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(act.prelu(x, alpha), [[-0.1, -0.4, 3.0], [4.0, -1.0, -1.8]])
    np.testing.assert_array_equal(act.prelu_grad_alpha(x, alpha), [[-1, -2, 0], [0, -5, -6]])
    assert act.prelu_grad(x, alpha).shape == x.shape


@settings(max_examples=50)
@given(arrays(np.float64, st.integers(0, 5), elements=st.floats(allow_nan=False)))
def test_no_warnings_anywhere(x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ALL_ELEMENTWISE:
            call(name, x)
        act.softmax(x)
        act.log_softmax(x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_reads_its_input_and_never_writes_it(name):
    # float64 input is used without a copy inside: it must still come back untouched, also
    # on the +inf path (which builds a replacement array) and with nan and -inf rows.
    x = np.array([[1.0, np.inf, 3.0], [-np.inf, -np.inf, -np.inf], [np.nan, 0.0, 1.0]])
    before = x.copy()
    out = call(name, x)
    np.testing.assert_array_equal(x, before)
    assert not np.shares_memory(out, x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_peak_memory_is_four_inputs(name):
    # A (128, 50000) batch of float64 logits is 51 MB. The stable form needs hi, lo, e and
    # one scratch array alive at once: 4 inputs' worth (it was 7.25 before the scratch
    # array was reused). tracemalloc counts NumPy's allocations exactly, whatever the load.
    x = np.random.default_rng(0).normal(size=(128, 50_000))
    call(name, x)  # first call: any lazy set-up out of the way
    tracemalloc.start()
    try:
        call(name, x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 4.1 * x.nbytes, f"peak {peak / x.nbytes:.2f} x the input"
