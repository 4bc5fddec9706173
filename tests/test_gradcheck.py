"""Tests of course_lib.gradcheck: central differences (elementwise and Jacobian), rel_error.

Expected derivatives come from calculus identities evaluated with NumPy (d/dx sin = cos,
d/dx x^3 = 3x^2, the softmax Jacobian s_i(delta_ij - s_j)), never from typed-in numbers;
the few literal values are exact by construction and say why in a comment.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import activations as act
from course_lib import losses
from course_lib.gradcheck import numerical_grad, rel_error

# Central differences with h = 1e-6 keep about 9 digits for values of order 1.
FD_RTOL = 1e-8


def _softmax_jacobian(z: np.ndarray) -> np.ndarray:
    s = np.exp(z - z.max())
    s /= s.sum()
    return np.diag(s) - np.outer(s, s)


# ------------------------------------------------------------------ numerical_grad


def test_elementwise_derivative_of_sin_is_cos():
    """numerical_grad(np.sin, x) is cos(x), with x's shape."""
    x = np.linspace(-3.0, 3.0, 13)
    grad = numerical_grad(np.sin, x)
    assert grad.shape == x.shape
    np.testing.assert_allclose(grad, np.cos(x), rtol=FD_RTOL, atol=FD_RTOL)


def test_elementwise_matches_course_lib_derivatives():
    """sigmoid and tanh: the central difference agrees with the analytic derivative."""
    z = np.linspace(-4.0, 4.0, 17)
    for f, f_grad in ((act.sigmoid, act.sigmoid_grad), (act.tanh, act.tanh_grad)):
        assert rel_error(numerical_grad(f, z), f_grad(z)) < 1e-8


def test_full_jacobian_of_softmax():
    """For softmax (not elementwise) the default gives the K x K Jacobian s_i(delta_ij - s_j)."""
    z = np.array([0.5, -1.0, 2.0, 0.25])
    jac = numerical_grad(act.softmax, z)
    assert jac.shape == (4, 4)
    np.testing.assert_allclose(jac, _softmax_jacobian(z), rtol=1e-7, atol=1e-9)


def test_explicit_elementwise_flag_is_obeyed():
    """elementwise=False on an elementwise f gives the diagonal Jacobian diag(f'(x))."""
    x = np.array([0.1, 0.7, -0.4])
    jac = numerical_grad(np.sin, x, elementwise=False)
    np.testing.assert_allclose(jac, np.diag(np.cos(x)), rtol=FD_RTOL, atol=FD_RTOL)


def test_elementwise_true_needs_matching_shapes():
    """elementwise=True on a function that changes the shape is an error, not a silent guess."""
    with pytest.raises(ValueError, match="x's shape"):
        numerical_grad(np.sum, np.ones(3), elementwise=True)


def test_gradient_of_a_scalar_function_has_the_input_shape():
    """For a loss, the Jacobian shape () + x.shape is the gradient; d/dx sum(x^3) = 3x^2."""
    x = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.5]])
    grad = numerical_grad(lambda v: float(np.sum(v**3)), x)
    assert grad.shape == x.shape
    np.testing.assert_allclose(grad, 3 * x**2, rtol=FD_RTOL, atol=1e-6)


def test_gradient_of_mse_matches_mse_grad():
    """The gradient property a lesson checks: mse_grad against differences of mse."""
    rng = np.random.default_rng(0)
    y, y_hat = rng.normal(size=(2, 6))
    numeric = numerical_grad(lambda p: losses.mse(y, p), y_hat)
    assert rel_error(numeric, losses.mse_grad(y, y_hat)) < 1e-7


def test_jacobian_of_a_matrix_product():
    """f(W) = W v with W of shape (2, 3): the Jacobian (2, 2, 3) has entries delta_ik v_j."""
    v = np.array([1.0, -2.0, 0.5])
    w = np.arange(6.0).reshape(2, 3)
    jac = numerical_grad(lambda m: m @ v, w)
    expected = np.einsum("ik,j->ikj", np.eye(2), v)
    assert jac.shape == (2, 2, 3)
    np.testing.assert_allclose(jac, expected, rtol=FD_RTOL, atol=1e-9)


def test_scalar_input():
    """A 0-d input works, elementwise or not: d/dx x^2 at 3 is 6."""
    for elementwise in (None, True, False):
        grad = numerical_grad(lambda v: v**2, 3.0, elementwise=elementwise)
        assert grad.shape == ()
        assert abs(float(grad) - 6.0) < 1e-8  # 6 = 2 * 3, exact


def test_input_is_not_modified_and_lists_work():
    """The caller's array is never touched; a list is accepted."""
    x = np.array([0.2, -0.3])
    before = x.copy()
    numerical_grad(np.exp, x)
    numerical_grad(np.exp, x, elementwise=False)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(numerical_grad(np.exp, [0.2, -0.3]), np.exp(before), rtol=FD_RTOL)


def test_central_difference_error_is_second_order():
    """Dividing h by 10 divides the truncation error by about 100 (a one-sided one: 10)."""
    x = np.array([0.3, 1.1])
    err_big = np.abs(numerical_grad(np.sin, x, h=1e-2) - np.cos(x))
    err_small = np.abs(numerical_grad(np.sin, x, h=1e-3) - np.cos(x))
    ratio = err_big / err_small
    assert np.all((ratio > 80) & (ratio < 120))


def test_step_must_be_positive():
    with pytest.raises(ValueError, match="h must be > 0"):
        numerical_grad(np.sin, np.ones(2), h=0.0)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=6),
    st.floats(-2.0, 2.0),
    st.floats(-2.0, 2.0),
)
def test_polynomials(xs, a, b):
    """For f = a x^3 + b x^2 + x, numerical_grad agrees with 3a x^2 + 2b x + 1."""
    x = np.array(xs)
    grad = numerical_grad(lambda v: a * v**3 + b * v**2 + v, x)
    np.testing.assert_allclose(grad, 3 * a * x**2 + 2 * b * x + 1, rtol=1e-7, atol=1e-7)


# ------------------------------------------------------------------------ rel_error


def test_rel_error_exact_values():
    """|a - b| / max(1e-8, |a| + |b|), the largest entry; these values are exact in binary."""
    assert rel_error([1.0, 3.0], [1.0, 5.0]) == 0.25  # |3 - 5| / (3 + 5) = 2/8
    assert rel_error(2.0, -2.0) == 1.0  # |2 - (-2)| / (2 + 2): opposite signs give 1
    assert rel_error(0.0, 0.0) == 0.0


def test_rel_error_floor_near_zero():
    """Where both entries are tiny, the 1e-8 floor stands in for |a| + |b|."""
    # 1e-9 / max(1e-8, 1e-9) = 0.1 up to rounding of the decimal inputs
    assert rel_error(0.0, 1e-9) == pytest.approx(0.1, rel=1e-12)


def test_rel_error_is_symmetric_broadcasts_and_handles_edge_cases():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 5))
    assert rel_error(a, b) == rel_error(b, a)
    assert rel_error(a, a) == 0.0
    assert rel_error(np.ones((2, 3)), 1.0) == 0.0
    assert rel_error(np.zeros(0), np.zeros(0)) == 0.0
    assert np.isnan(rel_error([np.nan], [1.0]))


@settings(max_examples=50, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6))
def test_rel_error_lies_between_0_and_1(a, b):
    """The triangle inequality |a - b| <= |a| + |b| bounds it by 1."""
    assert 0.0 <= rel_error(a, b) <= 1.0
