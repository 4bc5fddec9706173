"""The references of course_lib.mpref against independent values, and ulp_error's conventions.

The accuracy tests trust mpref, so mpref is checked here without mpref: exact binary
fractions, SymPy evaluated at 50 digits, mpmath identities other than the formulas mpref uses,
and CPython's correctly rounded ``int / int`` division as an independent rounding.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import sympy
from mpmath import mp, mpf

from course_lib import mpref

F64 = np.float64
F32 = np.float32


def _fraction(value) -> Fraction:
    """The exact rational value of a finite mpf."""
    sign, man, exp, _ = value._mpf_
    magnitude = Fraction(man) * Fraction(2) ** exp
    return -magnitude if sign else magnitude


def _float_of(value) -> float:
    """Correctly rounded float64 of a finite mpf: CPython's Fraction -> float is exact-rounding."""
    return float(_fraction(value))


def _float32_of(value) -> float:
    """Correctly rounded float32 of a finite mpf, by comparing exact distances to the
    neighbours of a first guess (ties to the even significand)."""
    exact = _fraction(value)
    with np.errstate(over="ignore"):
        guess = np.float32(float(exact))
    candidates = {np.nextafter(guess, np.float32(-np.inf)), guess, np.nextafter(guess, F32(np.inf))}
    finite = [c for c in candidates if np.isfinite(c)]

    def key(c):
        even = int(np.float32(c).view(np.uint32)) & 1
        return (abs(Fraction(float(c)) - exact), even)

    return float(min(finite, key=key))


def _sympy_value(expression, x: float) -> float:
    """Evaluate a SymPy expression in z at the exact float x with 50 digits, then round."""
    value = sympy.N(expression.subs(Z, sympy.Rational(*x.as_integer_ratio())), 50)
    return float(Fraction(str(value)))


Z = sympy.Symbol("z", real=True)


# --------------------------------------------------------------------------- exact values


def test_sigmoid_of_zero_is_one_half_exactly():
    """sigma(0) = 1/(1 + e^0) = 1/2, a float exactly (so exact equality is right)."""
    assert mpref.exact("sigmoid", 0.0) == 0.5
    assert mpref.exact("sigmoid", 0.0, dtype=F32) == np.float32(0.5)


@pytest.mark.parametrize(
    ("name", "x", "expected"),
    [
        # Exact by construction: relu(2.5) = 2.5, identity keeps -0.0, step(0) = 1 (x >= 0).
        ("relu", 2.5, 2.5),
        ("identity", -1.25, -1.25),
        ("binary_step", 0.0, 1.0),
        ("binary_step", -0.0, 1.0),
        ("binary_step", -1e-300, 0.0),
        # Left derivative at the kinks (docs/notation.md).
        ("relu_grad", 0.0, 0.0),
        ("relu_grad", -0.0, 0.0),
        ("leaky_relu_grad", 0.0, 0.01),
        ("elu_grad", 0.0, 1.0),
        # Limits at +-inf: sigma -> 0, 1; GELU -> 0 at -inf; LiSHT' = tanh + x sech^2 -> -1, 1.
        ("sigmoid", -math.inf, 0.0),
        ("sigmoid", math.inf, 1.0),
        ("gelu", -math.inf, 0.0),
        ("gelu_grad", math.inf, 1.0),
        ("lisht_grad", -math.inf, -1.0),
        ("lisht", -math.inf, math.inf),
        ("mish", -math.inf, 0.0),
        ("elu", -math.inf, -1.0),
        ("softplus", math.inf, math.inf),
        ("swish_grad", -math.inf, 0.0),
    ],
)
def test_exact_values_by_construction(name, x, expected):
    """Values that are exact floats by definition, kinks and limits."""
    got = mpref.exact(name, x)
    assert got == expected, f"mpref.exact({name!r}, {x!r}) = {got!r}, expected {expected!r}"


def test_leaky_relu_grad_at_zero_uses_the_given_alpha():
    """leaky_relu_grad(0, alpha) is alpha itself (the left derivative), for any alpha."""
    assert mpref.exact("leaky_relu_grad", 0.0, alpha=0.2) == 0.2
    assert mpref.exact("elu_grad", 0.0, alpha=0.5) == 0.5


def test_selu_limit_at_minus_inf_is_minus_scale_times_alpha():
    """selu(-inf) = -lambda alpha; lambda alpha = 1.7580993408473768599... (mpmath, 50 digits:
    mp.dps = 50; mpf('1.0507009873554804934193349852946') * mpf('1.6732632423543772848170429916717'))."""
    with mp.workdps(50):
        product = mpf("1.0507009873554804934193349852946") * mpf(
            "1.6732632423543772848170429916717"
        )
        expected = _float_of(-product)
    assert mpref.exact("selu", -math.inf) == expected


def test_nan_gives_nan():
    """nan in, nan out, for an elementwise function, a loss and a softmax row."""
    assert np.isnan(mpref.exact("tanh", math.nan))
    assert np.isnan(mpref.exact("binary_cross_entropy_with_logits", math.nan, y_true=1.0))
    assert np.all(np.isnan(mpref.exact("softmax", [math.nan, 1.0])))


def test_minus_zero_keeps_its_sign_for_odd_functions():
    """tanh(-0.0) = -0.0 in IEEE arithmetic; relu(-0.0) is returned as +0.0 (max(x, 0))."""
    assert math.copysign(1.0, mpref.exact("tanh", -0.0)) == -1.0
    assert math.copysign(1.0, mpref.exact("gelu", -0.0)) == -1.0
    assert math.copysign(1.0, mpref.exact("relu", -0.0)) == 1.0


# ------------------------------------------------------------------ independent references

# tanh through an identity mpref does not use: tanh x = (e^{2x} - 1)/(e^{2x} + 1), evaluated
# with expm1 at 50 digits (mpref calls mpmath's tanh).
TANH_POINTS = [1e-300, 2.0**-30, 0.1, 0.5, 1.0, 3.0, 17.5, 19.06]


@pytest.mark.parametrize("x", TANH_POINTS)
def test_tanh_against_the_expm1_identity(x):
    """tanh(x) = expm1(2x) / (expm1(2x) + 2), at 50 digits, rounded independently."""
    with mp.workdps(50):
        t = mp.expm1(2 * mpf(x))
        expected = _float_of(t / (t + 2))
    assert mpref.exact("tanh", x) == expected
    assert mpref.exact("tanh", -x) == -expected


# SymPy at 50 digits: the textbook formulas, exact rational x, sympy.N(expr, 50).
SYMPY_CASES = [
    ("gelu", Z * (1 + sympy.erf(Z / sympy.sqrt(2))) / 2, [-8.65, -3.0, -0.75, 0.5, 2.0]),
    ("softplus", sympy.log(1 + sympy.exp(Z)), [-50.0, -1.0, 0.0, 3.0, 40.0]),
    # At -17.625 the result moves by 6 ULP if 1.702 is taken as its float64 value.
    ("gelu_sigmoid", Z / (1 + sympy.exp(-sympy.Rational(1702, 1000) * Z)), [-17.625, -2.0, 1.0]),
    ("mish", Z * sympy.tanh(sympy.log(1 + sympy.exp(Z))), [-30.0, -1.19, 0.3, 5.0]),
    ("silu_grad", sympy.diff(Z / (1 + sympy.exp(-Z)), Z), [-30.0, -2.0, 0.7, 12.0]),
    (
        "gelu_tanh",
        Z
        / 2
        * (1 + sympy.tanh(sympy.sqrt(2 / sympy.pi) * (Z + sympy.Rational(44715, 10**6) * Z**3))),
        [-5.0, -1.0, 0.25, 3.0],
    ),
]


@pytest.mark.parametrize(
    ("name", "expression", "x"),
    [(name, expression, x) for name, expression, points in SYMPY_CASES for x in points],
)
def test_against_sympy_at_50_digits(name, expression, x):
    """mpref agrees with sympy.N(textbook formula, 50) rounded to float64."""
    expected = _sympy_value(expression, x)
    got = mpref.exact(name, x)
    assert got == expected, f"{name}({x!r}): mpref {got!r}, sympy {expected!r}"


def test_selu_constants_match_the_published_digits():
    """The closed form of SELU's alpha and lambda gives the 32 published digits
    (alpha = 1.6732632423543772848170429916717, lambda = 1.0507009873554804934193349852946,
    Klambauer et al. 2017)."""
    with mp.workdps(50):
        alpha, scale = mpref._selu_constants()
        assert abs(alpha - mpf("1.6732632423543772848170429916717")) < mpf("1e-31")
        assert abs(scale - mpf("1.0507009873554804934193349852946")) < mpf("1e-31")


def test_confident_class_keeps_its_tiny_log_probability():
    """log_softmax([200, 0])[0] = -log(1 + e^-200) = -1.3838965267367376e-87, which
    log(1 + rest) at 40 digits would round to 0. SymPy needs 150 digits for it, since it forms
    1 + e^-200 first: N(-log(1 + exp(-200)), 150); at 50 digits it returns 0 too."""
    expected = float(Fraction(str(sympy.N(-sympy.log(1 + sympy.exp(-200)), 150))))
    assert expected != 0.0
    assert mpref.exact("log_softmax", [200.0, 0.0])[0] == expected
    # BCE'(x = 200, y = 1) = sigma(200) - 1 = -e^-200/(1 + e^-200), the same kind of number.
    expected_grad = float(Fraction(str(sympy.N(-sympy.exp(-200) / (1 + sympy.exp(-200)), 50))))
    got = mpref.exact("binary_cross_entropy_with_logits_grad", 200.0, y_true=1.0)
    assert got == expected_grad


def test_softmax_family_on_a_row_of_equal_entries():
    """softmax([0, 0]) = [1/2, 1/2]; Jacobian s_i(delta_ij - s_j) = +-1/4; log-softmax
    Jacobian delta_ij - s_j = +-1/2: exact binary fractions. log_softmax = -log 2
    (mpmath: float(-mp.log(2)) = -0.6931471805599453)."""
    row = np.array([0.0, 0.0])
    np.testing.assert_array_equal(mpref.exact("softmax", row), [0.5, 0.5])
    np.testing.assert_array_equal(
        mpref.exact("softmax_jacobian", row), [[0.25, -0.25], [-0.25, 0.25]]
    )
    np.testing.assert_array_equal(
        mpref.exact("log_softmax_jacobian", row), [[0.5, -0.5], [-0.5, 0.5]]
    )
    np.testing.assert_array_equal(mpref.exact("log_softmax", row), [-0.6931471805599453] * 2)


def test_cross_entropies_against_their_definitions():
    """BCE(x = 0) = log 2 for any y; CE of a one-hot row = -log_softmax of that class;
    BCE with y = 1 equals softplus(-x), with y = 0 softplus(x)."""
    log2 = 0.6931471805599453  # mpmath: float(mp.log(2))
    for y in (0.0, 0.3, 1.0):
        assert mpref.exact("binary_cross_entropy_with_logits", 0.0, y_true=y) == log2
    x = np.array([-800.0, -3.5, 0.25, 40.0])
    np.testing.assert_array_equal(
        mpref.exact("binary_cross_entropy_with_logits", x, y_true=1.0), mpref.exact("softplus", -x)
    )
    np.testing.assert_array_equal(
        mpref.exact("binary_cross_entropy_with_logits", x, y_true=0.0), mpref.exact("softplus", x)
    )
    logits = np.array([[2.0, -1.0, 0.5], [300.0, 0.0, -40.0]])
    onehot = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    expected = -mpref.exact("log_softmax", logits)[onehot == 1]
    np.testing.assert_array_equal(
        mpref.exact("softmax_cross_entropy", logits, y_true=onehot), expected
    )


# The focal loss from logits in its textbook form, p = sigma(z) then -alpha_t (1 - p_t)^gamma
# ln p_t, which mpref does not use (it uses sigma(-u) and softplus(-u)). 1 - p cancels, so
# SymPy evaluates at 100 digits; the largest logit, 40, leaves 80 of them.
_P = 1 / (1 + sympy.exp(-Z))
FOCAL_TEXTBOOK = {
    1: -sympy.Rational(1, 4) * (1 - _P) ** 2 * sympy.log(_P),
    0: -sympy.Rational(3, 4) * _P**2 * sympy.log(1 - _P),
}
FOCAL_POINTS = [-800.0, -40.0, -3.5, 0.0, 0.25, 2.0, 17.5, 40.0]


def _sympy_value_100(expression, x: float) -> float:
    value = sympy.N(expression.subs(Z, sympy.Rational(*x.as_integer_ratio())), 100)
    return float(Fraction(str(value)))


@pytest.mark.parametrize("label", [0, 1])
@pytest.mark.parametrize("x", FOCAL_POINTS)
def test_focal_loss_with_logits_against_the_textbook_form(label, x):
    """The focal loss from logits and its derivative (alpha = 0.25, gamma = 2) agree with
    sympy.N(textbook formula and its sympy.diff, 100 digits) rounded to float64."""
    expression = FOCAL_TEXTBOOK[label]
    expected = _sympy_value_100(expression, x)
    got = mpref.exact("focal_loss_with_logits", x, y_true=label)
    assert got == expected, f"loss(y={label}, x={x!r}): mpref {got!r}, sympy {expected!r}"
    expected_grad = _sympy_value_100(sympy.diff(expression, Z), x)
    got_grad = mpref.exact("focal_loss_with_logits_grad", x, y_true=label)
    assert got_grad == expected_grad, f"grad(y={label}, x={x!r}): {got_grad!r}, {expected_grad!r}"


def test_focal_loss_with_logits_limits_and_half_bce():
    """Limits at +-inf (an easy sample 0; a wrong one inf, pulling with -s alpha_t), and
    gamma = 0, alpha = 1/2: exactly half the BCE reference (halving is exact in binary)."""
    inf = math.inf
    assert mpref.exact("focal_loss_with_logits", inf, y_true=1.0) == 0.0
    assert mpref.exact("focal_loss_with_logits", -inf, y_true=1.0) == inf
    assert mpref.exact("focal_loss_with_logits", inf, y_true=0.0) == inf
    assert mpref.exact("focal_loss_with_logits", -inf, y_true=0.0, alpha=1.0) == 0.0
    assert mpref.exact("focal_loss_with_logits_grad", -inf, y_true=1.0) == -0.25
    assert mpref.exact("focal_loss_with_logits_grad", inf, y_true=0.0, alpha=0.5) == 0.5
    assert np.isnan(mpref.exact("focal_loss_with_logits", math.nan, y_true=1.0))
    x = np.array([-700.0, -3.5, 0.0, 0.25, 40.0, 700.0])
    for label in (0.0, 1.0):
        half = mpref.exact("focal_loss_with_logits", x, y_true=label, alpha=0.5, gamma=0.0)
        bce = mpref.exact("binary_cross_entropy_with_logits", x, y_true=label)
        np.testing.assert_array_equal(half, bce / 2)


def test_focal_loss_with_logits_derivative_has_no_interior_zero():
    """The bracket sigma(-u) + gamma sigma(u) softplus(-u) is positive: nothing to leave out."""
    for label in (0.0, 1.0):
        for gamma in (0.0, 0.5, 2.0):
            name = "focal_loss_with_logits_grad"
            assert mpref.derivative_zeros(name, y_true=label, gamma=gamma) == []


def test_derivative_zeros_against_sympy_nsolve():
    """GELU' = Phi + x phi and SiLU' vanish at -0.75179152469... and -1.27846454276...
    (SymPy: nsolve(diff(expr, z), z, -0.75 / -1.3) at 30 digits); LiSHT' only at 0, left out."""
    gelu = Z * (1 + sympy.erf(Z / sympy.sqrt(2))) / 2
    silu = Z / (1 + sympy.exp(-Z))
    for name, expression, start in (("gelu_grad", gelu, -0.75), ("silu_grad", silu, -1.3)):
        root = float(sympy.nsolve(sympy.diff(expression, Z), Z, start, prec=30))
        zeros = mpref.derivative_zeros(name)
        assert len(zeros) == 1 and abs(zeros[0] - root) < 1e-12, (name, zeros, root)
    assert mpref.derivative_zeros("lisht_grad") == []
    assert mpref.derivative_zeros("sigmoid_grad") == []


# ---------------------------------------------------------------------------- rounding


def _random_mp_values(rng, count):
    """Values of 40 digits spread over the whole exponent range, and around its edges."""
    with mp.workdps(40):
        values = []
        for exponent in np.concatenate(
            [
                rng.integers(-1080, 1030, size=count),
                rng.integers(-152, 131, size=count),
                [-1075, -1074, -1073, -1022, 1023, -150, -149, -126, 127],
            ]
        ):
            mantissa = mpf(float(rng.uniform(1.0, 2.0))) + mpf(float(rng.uniform(0, 1))) * 2**-60
            values.append(mp.ldexp(mantissa, int(exponent)) * (1 if rng.random() < 0.5 else -1))
        return values


def test_rounding_to_float64_matches_exact_rational_rounding():
    """round_to_dtype(float64) equals CPython's correctly rounded Fraction -> float, including
    subnormals; values of 2^1024 and beyond give inf."""
    rng = np.random.default_rng(0)
    for value in _random_mp_values(rng, 300):
        try:
            expected = _float_of(value)
        except OverflowError:
            expected = math.copysign(math.inf, float(mp.sign(value)))
        assert mpref.round_to_dtype(value, F64) == expected, value


def test_rounding_to_float32_is_direct_not_double():
    """round_to_dtype(float32) is the nearest float32 (checked by exact distances), and differs
    from double rounding: 1 + 2^-24 + 2^-60 rounds to 1 + 2^-23 directly, but through float64
    (1 + 2^-24, a float32 tie) to 1."""
    rng = np.random.default_rng(1)
    for value in _random_mp_values(rng, 300):
        if abs(_fraction(value)) >= Fraction(2) ** 128 - Fraction(2) ** 103:
            expected = math.copysign(math.inf, float(mp.sign(value)))
        else:
            expected = _float32_of(value)
        assert mpref.round_to_dtype(value, F32) == expected, value
    with mp.workdps(40):
        value = 1 + mpf(2) ** -24 + mpf(2) ** -60
        assert mpref.round_to_dtype(value, F32) == 1 + 2.0**-23
        assert np.float32(mpref.round_to_dtype(value, F64)) == np.float32(1.0)


def test_ties_go_to_even():
    """1 + 2^-53 is halfway between 1 and 1 + 2^-52: to even, 1. 1 + 3 * 2^-53: 1 + 2^-51."""
    with mp.workdps(40):
        assert mpref.round_to_dtype(1 + mpf(2) ** -53, F64) == 1.0
        assert mpref.round_to_dtype(1 + 3 * mpf(2) ** -53, F64) == 1 + 2.0**-51
        # Half the smallest subnormal rounds to 0 (even), three halves to 2 * 2^-1074.
        assert mpref.round_to_dtype(mpf(2) ** -1075, F64) == 0.0
        assert mpref.round_to_dtype(3 * mpf(2) ** -1075, F64) == 2 * 5e-324


def test_exact_returns_the_requested_dtype_and_shape():
    """Arrays keep their shape; a scalar gives a NumPy scalar; Jacobians add an axis."""
    x = np.zeros((2, 3))
    assert mpref.exact("sigmoid", x).shape == (2, 3)
    assert mpref.exact("sigmoid", x, dtype=F32).dtype == F32
    assert isinstance(mpref.exact("sigmoid", 1.0), np.float64)
    assert mpref.exact("softmax_jacobian", x).shape == (2, 3, 3)
    assert mpref.exact("softmax_cross_entropy", x, y_true=np.eye(3)[:2]).shape == (2,)


# ---------------------------------------------------------------------------- ulp_error


def test_ulp_error_conventions():
    """Equal (inf, -inf, nan, 0 vs -0) -> 0; a non-finite result for a finite value -> inf;
    disagreeing infinities -> inf; a finite result for inf -> inf."""
    got = np.array([1.0, np.inf, -np.inf, np.nan, -0.0, np.inf, np.nan, np.inf, 1.0])
    ref = np.array([1.0, np.inf, -np.inf, np.nan, 0.0, 1.0, 1.0, -np.inf, np.inf])
    expected = np.array([0, 0, 0, 0, 0, np.inf, np.inf, np.inf, np.inf])
    np.testing.assert_array_equal(mpref.ulp_error(got, ref), expected)


def test_ulp_error_counts_spacings_of_the_result_dtype():
    """One float64 step above 1 is 1 ULP; one float32 step is 1 ULP of float32; a float32 1.0
    for the value 1 + 2^-24 is half a float32 ULP; at 0 the spacing is the smallest subnormal."""
    assert mpref.ulp_error(np.nextafter(1.0, 2.0), 1.0) == 1.0
    assert mpref.ulp_error(np.nextafter(F32(1), F32(2)), 1.0) == 1.0
    assert mpref.ulp_error(F32(1), 1 + 2.0**-24) == 0.5
    assert mpref.ulp_error(3 * 5e-324, 0.0) == 3.0
    assert mpref.ulp_error(-2.0, -2.0 - 2 * 2.0**-51) == 2.0


# ------------------------------------------------------------------------- standard grid


@pytest.mark.parametrize("dtype", [F64, F32])
def test_standard_grid_holds_the_extremes(dtype):
    """The grid has -0.0 and 0.0, +-inf, nan, +-max, a subnormal and both signs of the
    exp thresholds, in the requested dtype and sorted."""
    grid = mpref.standard_grid(dtype)
    info = np.finfo(dtype)
    assert grid.dtype == dtype
    finite = grid[np.isfinite(grid)]
    assert np.all(np.diff(finite) >= 0)
    assert np.isnan(grid[-1]) and np.isposinf(grid).any() and np.isneginf(grid).any()
    zeros = grid[grid == 0]
    assert sorted(np.signbit(zeros).tolist()) == [False, True]
    for value in (info.max, info.smallest_subnormal, dtype(709.8), dtype(745.0)):
        assert value in finite and -value in finite, value
    assert np.sum(np.abs(finite) <= 20) >= 1600
    assert 1500 <= grid.size <= 2500


# ------------------------------------------------------------------------------ accuracy

SMALL = np.array([-800.0, -40.0, -3.0, -1.25, -0.5, 0.0, 0.5, 2.0, 36.0, 800.0])


def test_accuracy_passes_the_reference_itself():
    """The reference measured against itself: 0 ULP in float64; float32 correctly rounded is
    at most 0.5 ULP of float32."""
    result = mpref.accuracy("sigmoid", lambda x: mpref.exact("sigmoid", x), SMALL, F64)
    assert result.passed and result.max_ulp == 0.0
    result32 = mpref.accuracy("sigmoid", lambda x: mpref.exact("sigmoid", x, dtype=F32), SMALL, F32)
    assert result32.passed and result32.max_ulp <= 0.5


def test_accuracy_fails_a_textbook_gradient():
    """s * (1 - s) at x = 36 gives 2.2204e-16 (1 - s is one float step) for the exact
    2.3195e-16 (mpmath: e^-36/(1 + e^-36)^2), about 2e14 ULP: accuracy must report it there."""

    def textbook(x):
        with np.errstate(over="ignore"):
            s = 1 / (1 + np.exp(-x))
        return s * (1 - s)

    result = mpref.accuracy("sigmoid_grad", textbook, SMALL, F64)
    assert not result.passed
    assert result.at == 36.0


def test_accuracy_flags_a_float64_result_for_float32_input():
    """A float32 input must give float32 out: a float64 result is reported (dtype_ok False)."""
    result = mpref.accuracy("tanh", lambda x: np.tanh(x.astype(F64)), SMALL, F32)
    assert not result.dtype_ok and not result.passed


def test_accuracy_leaves_out_the_window_around_an_interior_zero():
    """SiLU' vanishes at -1.2785: inputs within ZERO_WINDOW of it are left out (-1.25 among them)."""
    result = mpref.accuracy("silu_grad", lambda x: mpref.exact("silu_grad", x), SMALL, F64)
    # x0 = -1.27846454276107379510... : mpmath.findroot(lambda x: d/dx(x*sigmoid(x)), -1.3)
    near = np.abs(SMALL.astype(np.float64) + 1.2784645427610738) < mpref.ZERO_WINDOW
    assert -1.25 in SMALL[near]
    assert result.skipped == near.sum() and result.points == SMALL.size - near.sum()
    band = mpref.accuracy(
        "silu_grad", lambda x: mpref.exact("silu_grad", x), SMALL, F64, near_zero=True
    )
    assert band.points == (near & (np.abs(SMALL + 1.2784645427610738) >= 0.1)).sum()
