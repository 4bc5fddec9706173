"""Tests of course_lib.symbolic, and of the NumPy references against its SymPy derivatives.

Three layers:

1. SymPy against the textbook: every derivative and identity the lessons state is proved
   with ``sympy.simplify`` (the expressions are rewritten in ``exp`` first, which lets
   ``simplify`` see that ``sigmoid*(1 - sigmoid)`` and ``1/(4 cosh(z/2)**2)`` are equal).
2. ``symbolic.lambdify``: shapes, dtypes, the left derivative at kinks, erf.
3. NumPy against SymPy: every activation, gradient, loss and loss gradient of
   ``course_lib`` agrees with the lambdified expression away from kinks.
"""

from __future__ import annotations

import doctest
import math
import subprocess
import sys

import mpmath
import numpy as np
import pytest
import sympy as sp

from course_lib import activations as act
from course_lib import losses
from course_lib import symbolic as sym
from course_lib.symbolic import alpha, beta, y, y_hat, z

EPS64 = np.finfo(np.float64).eps

# The lambdified expressions are textbook formulas evaluated in float64. In the tails they
# cancel: GELU's z/2*(1 + erf(z/sqrt(2))) at z = -8 is 0 instead of -5e-15. The measured
# excess over rtol is at most 1.2 eps in absolute terms on [-10, 10], hence this atol.
RTOL = 1e-10
ATOL = 8 * EPS64

KINKED = {"binary_step", "relu", "leaky_relu", "prelu", "elu", "selu"}

# One row per (activation, parameters): the NumPy default (empty dict) and one other value.
# prelu has no default, so it gets two values.
ACTIVATION_CASES = [(name, {}) for name in sym.ACTIVATION_NAMES if name != "prelu"] + [
    ("leaky_relu", {"alpha": 0.2}),
    ("prelu", {"alpha": 0.25}),
    ("prelu", {"alpha": 0.1}),
    ("elu", {"alpha": 0.5}),
    ("swish", {"beta": 1.702}),
    ("swish", {"beta": 0.5}),
]


def case_id(case: tuple[str, dict]) -> str:
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


def vanishes(e: sp.Expr) -> bool:
    """True when SymPy proves ``e == 0`` (rewritten in exp, then simplified)."""
    return sp.simplify(sp.sympify(e).rewrite(sp.exp)) == 0


def sigmoid(u: sp.Expr) -> sp.Expr:
    """The logistic sigmoid, written here again so the tests do not trust the module's."""
    return 1 / (1 + sp.exp(-u))


def z_grid(name: str) -> np.ndarray:
    """[-10, 10] in steps of 0.005; without |z| <= 1e-3 for a function with a kink at 0."""
    grid = np.linspace(-10.0, 10.0, 4001)
    return grid[np.abs(grid) > 1e-3] if name in KINKED else grid


# =============================================================== the module's surface


def test_import_does_not_load_matplotlib() -> None:
    """Importing course_lib.symbolic must not import matplotlib (lessons pay for it once)."""
    code = "import sys, course_lib.symbolic; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "symbolic imported matplotlib; keep it lazy"


def test_symbols_carry_their_assumptions() -> None:
    """z, y and y_hat are real; the parameters are positive (gamma may be 0)."""
    assert sym.z.is_real and sym.y.is_real and sym.y_hat.is_real
    for s in (sym.alpha, sym.beta, sym.delta, sym.margin):
        assert s.is_positive, f"{s} should be declared positive"
    assert sym.gamma.is_nonnegative, "gamma = 0 is the plain (weighted) cross-entropy"


def test_docstring_examples_run() -> None:
    """Every >>> example in course_lib/symbolic.py gives the output it shows."""
    result = doctest.testmod(sym, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10, "the examples were not collected"
    assert result.failed == 0, f"{result.failed} docstring example(s) fail; run doctest -v"


def test_every_numpy_activation_has_an_expression() -> None:
    """sym.expr knows exactly the elementwise activations of course_lib.activations."""
    elementwise = set(act.ACTIVATIONS) - {"softmax", "log_softmax"}
    assert set(sym.ACTIVATION_NAMES) == elementwise, (
        f"only in activations: {sorted(elementwise - set(sym.ACTIVATION_NAMES))}; "
        f"only in symbolic: {sorted(set(sym.ACTIVATION_NAMES) - elementwise)}"
    )


def test_every_symbolic_loss_exists_in_numpy() -> None:
    """Every loss_expr name is a loss of course_lib.losses, with a gradient."""
    missing = set(sym.LOSS_NAMES) - set(losses.LOSSES)
    assert not missing, f"loss_expr names not in losses.LOSSES: {sorted(missing)}"
    assert {f"{name}_grad" for name in sym.LOSS_NAMES} <= set(losses.LOSS_GRADIENTS)


def test_parameters_stay_symbols_unless_given() -> None:
    """No value: a symbol. A float: that exact double. defaults=True: the NumPy default."""
    assert sym.expr("elu").free_symbols == {z, alpha}
    assert sym.expr("elu", alpha=0.5).free_symbols == {z}
    assert sym.expr("leaky_relu", defaults=True) == sym.expr("leaky_relu", alpha=0.01)
    # 0.01 is kept as the double 0.01, not rounded to 15 digits nor turned into 1/100.
    slope = sym.derivative("leaky_relu", alpha=0.01).subs(z, -1)
    assert isinstance(slope, sp.Float) and float(slope) == 0.01  # exact by construction
    # An integer-valued float is an Integer: the same number, and simpler expressions.
    assert sym.expr("swish", beta=1.0) == sym.expr("silu")
    # PReLU's alpha is learned: defaults=True leaves it a symbol.
    assert sym.expr("prelu", defaults=True).free_symbols == {z, alpha}
    assert sym.loss_expr("huber").free_symbols == {y, y_hat, sym.delta}
    assert sym.loss_expr("focal_loss", defaults=True).free_symbols == {y, y_hat}
    assert sym.loss_expr("focal_loss_with_logits").free_symbols == {y, z, alpha, sym.gamma}


def test_parameter_defaults_are_those_of_numpy() -> None:
    """params_of reports the same defaults as the NumPy signatures."""
    import inspect

    for name in [*sym.ACTIVATION_NAMES, *sym.LOSS_NAMES]:
        fn = act.ACTIVATIONS.get(name) or losses.LOSSES[name]
        signature = inspect.signature(fn).parameters
        for param, default in sym.params_of(name).items():
            numpy_default = signature[param].default
            expected = None if numpy_default is inspect.Parameter.empty else numpy_default
            assert default == expected, f"{name}({param}=...): {default} vs NumPy {expected}"


def test_bad_names_and_parameters_are_refused() -> None:
    """A typo in a name or a parameter raises, naming what is known."""
    with pytest.raises(ValueError, match="known: identity"):
        sym.expr("rectifier")
    with pytest.raises(TypeError, match="no parameter"):
        sym.expr("relu", alpha=0.1)
    with pytest.raises(TypeError, match="alpha"):
        sym.derivative("elu", beta=2.0)
    with pytest.raises(ValueError, match="unknown loss"):
        sym.loss_expr("cross_entropy")
    with pytest.raises(TypeError):
        sym.expr("elu", alpha=True)
    with pytest.raises(ValueError):
        sym.softmax_exprs(0)


# ================================================== derivatives against the textbook

# Textbook derivatives of the smooth activations, written independently of the module.
_C = sp.sqrt(2 / sp.pi)
_K = sp.Rational(44715, 1_000_000)
_U = _C * (z + _K * z**3)  # the argument of tanh in gelu_tanh
_G = sp.Rational(1702, 1000)
_SOFTPLUS = sp.log(1 + sp.exp(z))
TEXTBOOK_DERIVATIVES = {
    "identity": sp.Integer(1),
    "binary_step": sp.Integer(0),  # zero wherever it exists; 0 at the jump by convention
    "sigmoid": sigmoid(z) * (1 - sigmoid(z)),
    "tanh": 1 - sp.tanh(z) ** 2,
    "gelu": (1 + sp.erf(z / sp.sqrt(2))) / 2 + z * sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi),
    "gelu_tanh": (1 + sp.tanh(_U)) / 2 + z / 2 * (1 - sp.tanh(_U) ** 2) * _C * (1 + 3 * _K * z**2),
    "gelu_sigmoid": sigmoid(_G * z) + _G * z * sigmoid(_G * z) * (1 - sigmoid(_G * z)),
    "swish": sigmoid(beta * z) + beta * z * sigmoid(beta * z) * (1 - sigmoid(beta * z)),
    "silu": sigmoid(z) + z * sigmoid(z) * (1 - sigmoid(z)),
    "lisht": sp.tanh(z) + z * (1 - sp.tanh(z) ** 2),
    "mish": sp.tanh(_SOFTPLUS) + z * sigmoid(z) * (1 - sp.tanh(_SOFTPLUS) ** 2),
    "softplus": sigmoid(z),
}


@pytest.mark.parametrize("name", sorted(TEXTBOOK_DERIVATIVES))
def test_derivative_is_the_textbook_one(name: str) -> None:
    """sym.derivative(name) minus the textbook derivative simplifies to 0."""
    got = sym.derivative(name)
    assert vanishes(got - TEXTBOOK_DERIVATIVES[name]), (
        f"{name}: derivative() gave {got}, which SymPy cannot match to {TEXTBOOK_DERIVATIVES[name]}"
    )


_POS = sp.Symbol("p", positive=True)
_NEG = sp.Symbol("n", negative=True)
_L, _A = sym.SELU_SCALE, sym.SELU_ALPHA
# name: (derivative for z > 0, derivative for z < 0, as functions of z)
KINK_BRANCHES = {
    "relu": (1, 0),
    "leaky_relu": (1, alpha),
    "prelu": (1, alpha),
    "elu": (1, alpha * sp.exp(z)),
    "selu": (_L, _L * _A * sp.exp(z)),
    "binary_step": (0, 0),
}


@pytest.mark.parametrize("name", sorted(KINK_BRANCHES))
def test_piecewise_derivative_branches_and_left_derivative_at_kink(name: str) -> None:
    """Right of 0 the right branch, left of 0 the left branch, and at 0 the left one."""
    d = sym.derivative(name)
    right, left = (sp.sympify(b) for b in KINK_BRANCHES[name])
    assert vanishes(d.subs(z, _POS) - right.subs(z, _POS)), f"{name}'(z > 0) = {d}"
    assert vanishes(d.subs(z, _NEG) - left.subs(z, _NEG)), f"{name}'(z < 0) = {d}"
    at_kink = d.subs(z, 0)
    assert vanishes(at_kink - left.subs(z, 0)), (
        f"{name}'(0) = {at_kink}; the course convention is the left derivative "
        f"{left.subs(z, 0)} (a Piecewise must test z > 0 first)"
    )


# ================================================================= identities


def test_tanh_is_a_rescaled_sigmoid() -> None:
    r"""$\tanh z = 2\sigma(2z) - 1$."""
    assert vanishes(sym.expr("tanh") - (2 * sym.expr("sigmoid").subs(z, 2 * z) - 1))


def test_named_special_cases() -> None:
    """SiLU is swish with beta=1, gelu_sigmoid is swish with beta=1.702, SELU a scaled ELU."""
    assert vanishes(sym.expr("swish", beta=1) - sym.expr("silu"))
    assert vanishes(sym.expr("swish", beta=sp.Rational(1702, 1000)) - sym.expr("gelu_sigmoid"))
    scaled_elu = sym.SELU_SCALE * sym.expr("elu", alpha=sym.SELU_ALPHA)
    for value in (_POS, _NEG):
        assert vanishes((sym.expr("selu") - scaled_elu).subs(z, value))


def test_softmax_of_two_classes_is_a_sigmoid() -> None:
    r"""$\mathrm{softmax}(z_0, z_1)_0 = \sigma(z_0 - z_1)$."""
    z0, z1 = sym.logit_symbols(2)
    s0, s1 = sym.softmax_exprs(2)
    assert vanishes(s0 - sigmoid(z0 - z1))
    assert vanishes(s1 - sigmoid(z1 - z0))


@pytest.mark.parametrize("k", [2, 3])
def test_softmax_jacobian_is_s_i_delta_ij_minus_s_j(k: int) -> None:
    r"""$\partial s_i/\partial z_j = s_i(\delta_{ij} - s_j)$, and for log-softmax $\delta_{ij} - s_j$."""
    s = sym.softmax_exprs(k)
    jac = sym.softmax_jacobian_expr(k)
    log_jac = sym.log_softmax_jacobian_expr(k)
    assert jac.shape == (k, k)
    for i in range(k):
        for j in range(k):
            kron = sp.KroneckerDelta(i, j)
            assert vanishes(jac[i, j] - s[i] * (kron - s[j])), f"J[{i},{j}] = {jac[i, j]}"
            assert vanishes(log_jac[i, j] - (kron - s[j])), f"log J[{i},{j}]"


def test_log_softmax_is_the_log_of_softmax() -> None:
    """log_softmax_exprs(k)[i] = log(softmax_exprs(k)[i]) (logs of positive reals)."""
    for s_i, log_s_i in zip(sym.softmax_exprs(3), sym.log_softmax_exprs(3), strict=True):
        assert vanishes(sp.expand_log(sp.log(s_i), force=True) - log_s_i)


def test_sigmoid_then_bce_has_gradient_sigmoid_minus_y() -> None:
    r"""$\partial/\partial z\,\mathrm{BCE}(y, \sigma(z)) = \sigma(z) - y$."""
    composed = sym.loss_expr("binary_cross_entropy").subs(y_hat, sigmoid(z))
    assert vanishes(sp.diff(composed, z) - (sigmoid(z) - y))
    assert vanishes(sym.loss_derivative("binary_cross_entropy_with_logits") - (sigmoid(z) - y))


def test_bce_with_logits_is_bce_of_the_sigmoid() -> None:
    r"""$\ln(1 + e^z) - yz = -y\ln\sigma(z) - (1 - y)\ln(1 - \sigma(z))$."""
    composed = sym.loss_expr("binary_cross_entropy").subs(y_hat, sigmoid(z))
    difference = sym.loss_expr("binary_cross_entropy_with_logits") - composed
    assert vanishes(sp.expand_log(difference, force=True))


@pytest.mark.parametrize("label", [0, 1])
def test_focal_with_logits_is_focal_of_the_sigmoid(label: int) -> None:
    r"""$\alpha_t\,\sigma(-u)^\gamma\ln(1 + e^{-u}) = -\alpha_t(1 - p_t)^\gamma\ln p_t$ at
    $p = \sigma(z)$, $u = (2y - 1)z$, for symbolic $\alpha$ and several $\gamma$."""
    composed = sym.loss_expr("focal_loss").subs(y, label).subs(y_hat, sigmoid(z))
    from_logits = sym.loss_expr("focal_loss_with_logits").subs(y, label)
    for g in (0, sp.Rational(1, 2), 2, 5):
        difference = (from_logits - composed).subs(sym.gamma, g)
        assert vanishes(sp.expand_log(difference, force=True)), f"y = {label}, gamma = {g}"


@pytest.mark.parametrize("label", [0, 1])
def test_focal_with_logits_gradient_is_the_stable_form(label: int) -> None:
    r"""$\partial\ell/\partial z = -s\,\alpha_t\,\sigma(-u)^\gamma\,[\sigma(-u) +
    \gamma\,\sigma(u)\ln(1 + e^{-u})]$, $s = 2y - 1$, $u = sz$: the form of
    ``losses.focal_loss_with_logits_grad`` (and ``mpref``), with symbolic $\alpha$, $\gamma$."""
    s_val = 2 * label - 1
    u = s_val * z
    alpha_t = alpha if label == 1 else 1 - alpha
    gamma = sym.gamma
    stable = (
        -s_val
        * alpha_t
        * sigmoid(-u) ** gamma
        * (sigmoid(-u) + gamma * sigmoid(u) * sp.log(1 + sp.exp(-u)))
    )
    through_p = sp.diff(sym.loss_expr("focal_loss").subs(y, label).subs(y_hat, sigmoid(z)), z)
    for g in (0, sp.Rational(1, 2), 2, 5):
        for derived in (through_p, sym.loss_derivative("focal_loss_with_logits").subs(y, label)):
            difference = (derived - stable).subs(gamma, g)
            assert vanishes(sp.expand_log(difference, force=True)), f"y = {label}, gamma = {g}"


@pytest.mark.parametrize("k", [2, 3])
def test_softmax_then_cross_entropy_has_gradient_p_minus_y(k: int) -> None:
    r"""With one-hot (summing to 1) targets, $\partial\ell/\partial z_i = s_i - y_i$."""
    ys, zs, s = sym.label_symbols(k), sym.logit_symbols(k), sym.softmax_exprs(k)
    targets_sum_to_one = {ys[-1]: 1 - sp.Add(*ys[:-1])}
    # The loss built from softmax_exprs in the test, and the module's log-softmax form.
    from_softmax = -sp.Add(*(y_i * sp.log(s_i) for y_i, s_i in zip(ys, s, strict=True)))
    for loss in (from_softmax, sym.cross_entropy_exprs(k)):
        for i in range(k):
            grad = sp.diff(loss, zs[i]).subs(targets_sum_to_one)
            expected = (s[i] - ys[i]).subs(targets_sum_to_one)
            assert vanishes(sp.expand_log(grad - expected, force=True)), f"dl/dz_{i}"


def test_loss_derivatives_are_the_textbook_ones() -> None:
    """mse, BCE, hinge and contrastive derivatives; piecewise ones on each side of the kink."""
    assert vanishes(sym.loss_derivative("mse") - 2 * (y_hat - y))
    assert vanishes(
        sym.loss_derivative("binary_cross_entropy") - (-y / y_hat + (1 - y) / (1 - y_hat))
    )
    d = sym.loss_derivative("contrastive_loss")
    m = sym.margin
    assert vanishes(d.subs(y_hat, m / 2) - (y * m / 2 - (1 - y) * (m - m / 2)))
    assert vanishes(d.subs(y_hat, 2 * m) - y * 2 * m)
    hinge = sym.loss_derivative("hinge")
    assert hinge.subs({y: 1, y_hat: sp.Rational(1, 2)}) == -1
    assert hinge.subs({y: -1, y_hat: sp.Rational(1, 2)}) == 1
    assert hinge.subs({y: 1, y_hat: 2}) == 0


# ================================================================== SELU constants

# Provenance of both literals: the closed forms of Klambauer et al. (2017), in mpmath:
#   from mpmath import mp, erfc, sqrt, exp, pi, e; mp.dps = 50; c = erfc(1/sqrt(2))
#   alpha = -sqrt(2/pi)/(c*exp(0.5) - 1)
#   lam = (1 - c*sqrt(e))*sqrt(2*pi)/sqrt(2*erfc(sqrt(2))*e**2 + pi*c**2*e
#                                       - 2*(2 + pi)*c*sqrt(e) + pi + 2)
SELU_ALPHA_32 = "1.6732632423543772848170429916717"
SELU_SCALE_32 = "1.0507009873554804934193349852946"


def _selu_closed_forms(dps: int) -> tuple[mpmath.mpf, mpmath.mpf]:
    with mpmath.workdps(dps):
        c, e = mpmath.erfc(1 / mpmath.sqrt(2)), mpmath.e
        a = -mpmath.sqrt(2 / mpmath.pi) / (c * mpmath.exp(mpmath.mpf(1) / 2) - 1)
        denominator = mpmath.sqrt(
            2 * mpmath.erfc(mpmath.sqrt(2)) * e**2
            + mpmath.pi * c**2 * e
            - 2 * (2 + mpmath.pi) * c * mpmath.sqrt(e)
            + mpmath.pi
            + 2
        )
        lam = (1 - c * mpmath.sqrt(e)) * mpmath.sqrt(2 * mpmath.pi) / denominator
        return +a, +lam


def test_selu_constants_from_the_fixed_point() -> None:
    """selu_constants() equals the published 32 digits and the paper's closed forms."""
    a, lam = sym.selu_constants(50)
    assert abs(a - sp.Float(SELU_ALPHA_32, 50)) < sp.Float("1e-31")
    assert abs(lam - sp.Float(SELU_SCALE_32, 50)) < sp.Float("1e-31")
    ref_a, ref_lam = _selu_closed_forms(60)
    with mpmath.workdps(60):
        assert abs(mpmath.mpf(str(a)) - ref_a) < mpmath.mpf("1e-48")
        assert abs(mpmath.mpf(str(lam)) - ref_lam) < mpmath.mpf("1e-48")


def test_selu_constants_make_mean_zero_and_variance_one() -> None:
    """With the derived constants, SELU of N(0, 1) has mean 0 and second moment 1."""
    with mpmath.workdps(30):
        a, lam = (mpmath.mpf(str(c)) for c in sym.selu_constants(30))
        phi = mpmath.npdf

        def selu(t):
            return lam * (t if t > 0 else a * mpmath.expm1(t))

        mean = mpmath.quad(lambda t: selu(t) * phi(t), [-mpmath.inf, 0, mpmath.inf])
        second = mpmath.quad(lambda t: selu(t) ** 2 * phi(t), [-mpmath.inf, 0, mpmath.inf])
    assert abs(mean) < 1e-25 and abs(second - 1) < 1e-25


def test_selu_module_constants() -> None:
    """SELU_ALPHA/SELU_SCALE hold 30 correct digits, and NumPy's are their rounding."""
    a, lam = sym.selu_constants(40)
    assert abs(sym.SELU_ALPHA - a) < sp.Float("1e-29") and abs(sym.SELU_SCALE - lam) < 1e-29
    # Both sides are the correctly rounded double of the same real number.
    assert act.SELU_ALPHA == float(a) and act.SELU_SCALE == float(lam)
    closed_a, closed_lam = sym.selu_constants(None)
    assert closed_a.free_symbols == set() and closed_a.has(sp.erf)


# ======================================================================== lambdify


def test_lambdify_keeps_the_left_derivative_at_kinks() -> None:
    """relu'(0) = 0, leaky'(0) = alpha, elu'(0) = alpha, through lambdify."""
    at_zero = np.array([0.0, -0.0])
    np.testing.assert_array_equal(sym.lambdify(sym.derivative("relu"))(at_zero), [0.0, 0.0])
    leaky = sym.lambdify(sym.derivative("leaky_relu"), z, alpha)
    np.testing.assert_array_equal(leaky(at_zero, 0.3), [0.3, 0.3])
    np.testing.assert_array_equal(
        sym.lambdify(sym.derivative("leaky_relu", defaults=True))(0.0), 0.01
    )
    elu = sym.lambdify(sym.derivative("elu"), z, alpha)
    np.testing.assert_array_equal(elu(at_zero, 0.7), [0.7, 0.7])  # 0.7 * exp(0), exact
    np.testing.assert_array_equal(sym.lambdify(sym.derivative("elu", alpha=1.0))(0.0), 1.0)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("relu", {}),
        ("leaky_relu", {}),
        ("prelu", {"alpha": 0.25}),
        ("elu", {}),
        ("elu", {"alpha": 0.5}),
        ("selu", {}),
        ("binary_step", {}),
    ],
)
def test_numpy_and_sympy_agree_at_the_kink(name: str, params: dict) -> None:
    """At z = 0 and -0.0, course_lib's _grad equals the lambdified SymPy (left) derivative."""
    at_zero = np.array([0.0, -0.0])
    got = getattr(act, f"{name}_grad")(at_zero, **params)
    expected = sym.lambdify(sym.derivative(name, defaults=True, **params))(at_zero)
    # SELU's lambda*alpha is one product of doubles in NumPy, a 30-digit product here.
    np.testing.assert_allclose(got, expected, rtol=2 * EPS64, atol=0)


def test_lambdify_heaviside_and_dirac_follow_the_convention() -> None:
    """Heaviside(0) is 0 (not SymPy's 1/2); DiracDelta, zero off its kink, is 0."""
    points = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(sym.lambdify(sp.Heaviside(z))(points), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(sym.lambdify(sp.Heaviside(z, 1))(points), [0.0, 0.0, 1.0])
    d_max = sp.diff(sp.Max(z, 0), z)  # Heaviside(z), the derivative of max(z, 0)
    np.testing.assert_array_equal(sym.lambdify(d_max)(points), [0.0, 0.0, 1.0])
    d_relu = sp.diff(z * sp.Heaviside(z), z)  # Heaviside(z) + z*DiracDelta(z)
    np.testing.assert_array_equal(sym.lambdify(d_relu)(points), [0.0, 0.0, 1.0])


def test_lambdify_sign_is_zero_at_zero() -> None:
    """mae's derivative is 0 where y == y_hat, as losses.mae_grad."""
    d = sym.lambdify(sym.loss_derivative("mae"), y, y_hat)
    np.testing.assert_array_equal(d([1.0, 1.0, 1.0], [0.0, 1.0, 3.0]), [-1.0, 0.0, 1.0])


def test_lambdify_constants_have_the_input_shape() -> None:
    """derivative('identity') == 1 gives ones of the input's shape, float64, a new array."""
    x = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    ones = sym.lambdify(sym.derivative("identity"))(x)
    assert isinstance(ones, np.ndarray) and ones.shape == (2, 3) and ones.dtype == np.float64
    np.testing.assert_array_equal(ones, np.ones((2, 3)))
    ones[0, 0] = 5.0  # writable, and it is not a view of anything shared
    np.testing.assert_array_equal(sym.lambdify(sp.Integer(1))(x), np.ones((2, 3)))
    zeros = sym.lambdify(sym.derivative("binary_step"))(x)
    np.testing.assert_array_equal(zeros, np.zeros((2, 3)))
    scalar = sym.lambdify(sym.expr("sigmoid"))(0.0)
    assert isinstance(scalar, np.ndarray) and scalar.shape == () and scalar == 0.5


def test_lambdify_dtype_broadcasting_and_inputs() -> None:
    """float32 or int in, float64 out; arguments broadcast; inputs are not modified."""
    x32 = np.array([-1.0, 2.0], dtype=np.float32)
    before = x32.copy()
    out = sym.lambdify(sym.expr("relu"))(x32)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(x32, before)
    assert sym.lambdify(sym.expr("identity"))([1, 2]).dtype == np.float64
    grid = sym.lambdify(alpha * z, z, alpha)(np.ones((3, 1)), np.arange(4.0))
    assert grid.shape == (3, 4)
    np.testing.assert_array_equal(grid, np.broadcast_to(np.arange(4.0), (3, 4)))
    with pytest.raises(TypeError, match="expected 2"):
        sym.lambdify(alpha * z, z, alpha)(1.0)


def test_lambdify_refuses_free_symbols() -> None:
    """A symbol that is neither an argument nor substituted is named in the error."""
    with pytest.raises(ValueError, match="alpha"):
        sym.lambdify(sym.expr("leaky_relu"))


def test_lambdify_maps_erf_to_scipy() -> None:
    """erf and erfc evaluate (NumPy has neither); compare with the C library's math.erf."""
    x = np.linspace(-6.0, 6.0, 241)
    erf_ref = np.array([math.erf(t) for t in x])
    erfc_ref = np.array([math.erfc(t) for t in x])
    # scipy.special.erfc is within about 11 ULP on [0, 4] (docs: shared accuracy notes).
    np.testing.assert_allclose(sym.lambdify(sp.erf(z))(x), erf_ref, rtol=32 * EPS64, atol=0)
    np.testing.assert_allclose(sym.lambdify(sp.erfc(z))(x), erfc_ref, rtol=32 * EPS64, atol=0)


def test_lambdify_lists_and_matrices_stack_on_the_last_axes() -> None:
    """A list of k expressions gives (..., k); a k x k matrix gives (..., k, k)."""
    zs = sym.logit_symbols(3)
    logits = np.arange(12.0).reshape(4, 3)
    s = sym.lambdify(sym.softmax_exprs(3), *zs)(*np.moveaxis(logits, -1, 0))
    assert s.shape == (4, 3)
    jac = sym.lambdify(sym.softmax_jacobian_expr(3), *zs)(*np.moveaxis(logits, -1, 0))
    assert jac.shape == (4, 3, 3)


# ============================================ NumPy references against SymPy: activations


@pytest.mark.parametrize("case", ACTIVATION_CASES, ids=case_id)
def test_activation_matches_sympy(case: tuple[str, dict]) -> None:
    """activations.<name>(z) equals lambdify(expr(name)) on [-10, 10], kinks included."""
    name, params = case
    x = np.linspace(-10.0, 10.0, 4001)
    expected = sym.lambdify(sym.expr(name, defaults=True, **params))(x)
    got = getattr(act, name)(x, **params)
    np.testing.assert_allclose(
        got, expected, rtol=RTOL, atol=ATOL, err_msg=f"activations.{name}({params}) vs SymPy"
    )


@pytest.mark.parametrize("case", ACTIVATION_CASES, ids=case_id)
def test_activation_grad_matches_sympy_derivative(case: tuple[str, dict]) -> None:
    """activations.<name>_grad(z) equals lambdify(derivative(name)) away from kinks."""
    name, params = case
    x = z_grid(name)
    expected = sym.lambdify(sym.derivative(name, defaults=True, **params))(x)
    got = getattr(act, f"{name}_grad")(x, **params)
    np.testing.assert_allclose(
        got,
        expected,
        rtol=RTOL,
        atol=ATOL,
        err_msg=f"activations.{name}_grad({params}) vs simplify(diff(expr)); "
        "a wrong branch at the kink or a sign slip shows up here",
    )


@pytest.mark.parametrize("value", [0.25, 0.1])
def test_prelu_grad_alpha_matches_sympy(value: float) -> None:
    """prelu_grad_alpha = d prelu / d alpha: 0 for z > 0, z otherwise."""
    x = z_grid("prelu")
    d_alpha = sp.diff(sym.expr("prelu"), alpha)
    expected = sym.lambdify(d_alpha, z, alpha)(x, value)
    np.testing.assert_allclose(act.prelu_grad_alpha(x, value), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("value", [1.0, 1.702, 0.5])
def test_swish_grad_beta_matches_sympy(value: float) -> None:
    """swish_grad_beta = d swish / d beta = z^2 sigma(beta z)(1 - sigma(beta z))."""
    x = np.linspace(-10.0, 10.0, 4001)
    d_beta = sp.diff(sym.expr("swish"), beta)
    assert vanishes(d_beta - z**2 * sigmoid(beta * z) * (1 - sigmoid(beta * z)))
    expected = sym.lambdify(d_beta, z, beta)(x, value)
    np.testing.assert_allclose(act.swish_grad_beta(x, value), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("k", [2, 4])
def test_softmax_and_log_softmax_match_sympy(k: int) -> None:
    """softmax, log_softmax and both Jacobians (..., k, k) agree with SymPy on random logits."""
    rng = np.random.default_rng(0)
    logits = rng.uniform(-10.0, 10.0, size=(50, k))
    zs = sym.logit_symbols(k)
    columns = np.moveaxis(logits, -1, 0)
    pairs = [
        (sym.softmax_exprs(k), act.softmax),
        (sym.log_softmax_exprs(k), act.log_softmax),
        (sym.softmax_jacobian_expr(k), act.softmax_jacobian),
        (sym.log_softmax_jacobian_expr(k), act.log_softmax_jacobian),
    ]
    for expression, reference in pairs:
        expected = sym.lambdify(expression, *zs)(*columns)
        np.testing.assert_allclose(
            reference(logits), expected, rtol=RTOL, atol=ATOL, err_msg=reference.__name__
        )


# ================================================= NumPy references against SymPy: losses

N = 64  # samples per batch; losses.<name>_grad includes the 1/N of the mean


def _away(values: np.ndarray, kink: np.ndarray | float, width: float = 1e-3) -> np.ndarray:
    """Push values within `width` of a kink out to `kink + 2*width` (keeps the shape)."""
    return np.where(np.abs(values - kink) < width, kink + 2 * width, values)


def loss_data(name: str, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) for a loss, seeded, away from its kinks."""
    rng = np.random.default_rng(0)
    labels01 = rng.integers(0, 2, size=N).astype(np.float64)
    if name in ("mse", "mae", "huber"):
        y_true = rng.normal(size=N)
        y_pred = y_true + rng.normal(scale=2.0, size=N)
        y_pred = _away(y_pred, y_true)  # mae's kink at r = 0
        if name == "huber":
            d = params.get("delta", 1.0)
            y_pred = _away(_away(y_pred, y_true + d), y_true - d)
        return y_true, y_pred
    if name in ("binary_cross_entropy", "focal_loss"):
        return labels01, rng.uniform(0.01, 0.99, size=N)  # far from the eps clipping
    if name in ("binary_cross_entropy_with_logits", "focal_loss_with_logits"):
        return labels01, rng.uniform(-10.0, 10.0, size=N)
    if name == "hinge":
        y_true = rng.choice([-1.0, 1.0], size=N)
        scores = rng.uniform(-3.0, 3.0, size=N)
        return y_true, _away(scores, y_true)  # y*s == 1 at s == y
    if name == "contrastive_loss":
        margin = params.get("margin", 1.0)
        return labels01, _away(rng.uniform(0.0, 3.0, size=N), margin)
    raise AssertionError(f"no data for {name}")


LOSS_CASES = [(name, {}) for name in sym.LOSS_NAMES] + [
    ("huber", {"delta": 0.5}),
    ("focal_loss", {"alpha": 0.5, "gamma": 0.0}),
    ("focal_loss", {"alpha": 0.75, "gamma": 1.5}),
    ("focal_loss_with_logits", {"alpha": 0.5, "gamma": 0.0}),
    ("focal_loss_with_logits", {"alpha": 0.75, "gamma": 0.5}),
    ("contrastive_loss", {"margin": 2.0}),
]
LOGIT_LOSSES = ("binary_cross_entropy_with_logits", "focal_loss_with_logits")


def _wrt(name: str) -> sp.Symbol:
    return z if name in LOGIT_LOSSES else y_hat


@pytest.mark.parametrize("case", LOSS_CASES, ids=case_id)
def test_loss_matches_sympy(case: tuple[str, dict]) -> None:
    """losses.<name>(y, y_hat) is the mean of the per-sample loss_expr."""
    name, params = case
    y_true, y_pred = loss_data(name, params)
    per_sample = sym.lambdify(sym.loss_expr(name, defaults=True, **params), y, _wrt(name))
    expected = float(np.mean(per_sample(y_true, y_pred)))
    got = getattr(losses, name)(y_true, y_pred, **params)
    assert got == pytest.approx(expected, rel=RTOL, abs=ATOL), f"losses.{name}({params})"


@pytest.mark.parametrize("case", LOSS_CASES, ids=case_id)
def test_loss_grad_matches_sympy(case: tuple[str, dict]) -> None:
    """losses.<name>_grad is the per-sample SymPy derivative divided by N."""
    name, params = case
    y_true, y_pred = loss_data(name, params)
    derivative = sym.loss_derivative(name, defaults=True, **params)
    expected = sym.lambdify(derivative, y, _wrt(name))(y_true, y_pred) / N
    got = getattr(losses, f"{name}_grad")(y_true, y_pred, **params)
    np.testing.assert_allclose(
        got,
        expected,
        rtol=RTOL,
        atol=ATOL / N,
        err_msg=f"losses.{name}_grad({params}) vs diff(loss_expr)/N; is the 1/N there?",
    )


@pytest.mark.parametrize("k", [2, 5])
def test_cross_entropy_losses_match_sympy(k: int) -> None:
    """softmax, sparse and categorical cross-entropy and their gradients agree with SymPy."""
    rng = np.random.default_rng(0)
    logits = rng.uniform(-5.0, 5.0, size=(N, k))
    labels = rng.integers(0, k, size=N)
    one_hot = np.eye(k)[labels]
    ys, zs = sym.label_symbols(k), sym.logit_symbols(k)
    loss = sym.cross_entropy_exprs(k)
    args = [*np.moveaxis(one_hot, -1, 0), *np.moveaxis(logits, -1, 0)]
    expected_loss = float(np.mean(sym.lambdify(loss, *ys, *zs)(*args)))
    gradient = [sp.diff(loss, z_i) for z_i in zs]
    expected_grad = sym.lambdify(gradient, *ys, *zs)(*args) / N

    assert losses.softmax_cross_entropy(one_hot, logits) == pytest.approx(expected_loss, rel=RTOL)
    assert losses.sparse_categorical_cross_entropy(labels, logits) == pytest.approx(
        expected_loss, rel=RTOL
    )
    for grad_fn, target in (
        (losses.softmax_cross_entropy_grad, one_hot),
        (losses.sparse_categorical_cross_entropy_grad, labels),
    ):
        np.testing.assert_allclose(
            grad_fn(target, logits),
            expected_grad,
            rtol=RTOL,
            atol=ATOL / N,
            err_msg=grad_fn.__name__,
        )

    # In probabilities: l = -sum y_i log p_i, so dl/dp_i = -y_i/p_i.
    ps = sp.symbols(f"p_0:{k}", positive=True)
    loss_p = -sp.Add(*(y_i * sp.log(p_i) for y_i, p_i in zip(ys, ps, strict=True)))
    probs = act.softmax(logits)
    args_p = [*np.moveaxis(one_hot, -1, 0), *np.moveaxis(probs, -1, 0)]
    expected_p = float(np.mean(sym.lambdify(loss_p, *ys, *ps)(*args_p)))
    grad_p = sym.lambdify([sp.diff(loss_p, p_i) for p_i in ps], *ys, *ps)(*args_p) / N
    assert losses.categorical_cross_entropy(one_hot, probs) == pytest.approx(expected_p, rel=RTOL)
    np.testing.assert_allclose(
        losses.categorical_cross_entropy_grad(one_hot, probs), grad_p, rtol=RTOL, atol=ATOL / N
    )


def test_equal_sees_through_hyperbolic_forms():
    """sym.equal proves identities that plain simplify(a - b) == 0 misses, and only those."""
    s = sym.expr("sigmoid")
    assert sym.equal(sym.derivative("sigmoid"), s * (1 - s))
    assert sym.equal(sp.tanh(sym.z), 2 * s.subs(sym.z, 2 * sym.z) - 1)
    assert not sym.equal(sym.derivative("sigmoid"), s * (1 + s))
