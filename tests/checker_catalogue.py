"""A catalogue of student implementations for testing ``course_lib.checking``.

``WRONG``: implementations with one typical bug each, and the hint category
(``course_lib.checking.HINTS``) that ``check`` must give for it. ``VALID``: alternative
formulations that are mathematically equal to the reference and numerically sound, which
``check`` must accept. ``test_checking.py`` runs both.

Each function is written the way a student would write it, with the bug in plain sight;
the docstring says what is wrong (or why the alternative is fine). A few wrong ones also
upcast float32 on the side (``np.sqrt(2.0)``, ``.astype(float)``), as such code does; the
test asserts the hint of the bug named in the entry, not the only hint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from scipy import special


class Entry(NamedTuple):
    name: str  # the reference it is checked against
    fn: Callable[..., Any]
    hint: str | None = None  # the hint category check must report (WRONG only)
    params: tuple[tuple[str, Any], ...] = ()  # passed to check(name, fn, **params)

    @property
    def id(self) -> str:
        return f"{self.name}-{self.fn.__name__}"


# ------------------------------------------------------------------ shared helpers


def _floats(x):
    """x as an array; float32 stays float32, everything else becomes float64."""
    x = np.asarray(x)
    return x if x.dtype == np.float32 else x.astype(np.float64)


def _sigmoid(x):
    """Stable sigmoid: exp only ever sees -|x|."""
    x = _floats(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def _log_softmax(z, axis=-1):
    m = np.max(z, axis=axis, keepdims=True)
    return (z - m) - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


def _softmax(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


# ======================================================================= WRONG
# ------------------------------------------------------------- activations


def sigmoid_naive(x):
    """Textbook form: exp(-x) overflows for x = -1000 (the value is right, the warning is not)."""
    return 1.0 / (1.0 + np.exp(-_floats(x)))


def sigmoid_flipped(x):
    """Sign error inside exp: this is sigmoid(-x)."""
    x = _floats(x)
    e = np.exp(-np.abs(x))
    return np.where(x < 0, 1.0, e) / (1.0 + e)


def sigmoid_float64_constant(x):
    """Stable, but np.float64(1.0) upcasts float32 input to float64 (NEP 50)."""
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, np.float64(1.0), e) / (np.float64(1.0) + e)


def tanh_exp(x):
    """(e^x - e^-x)/(e^x + e^-x): inf/inf = nan at x = ±1000."""
    x = _floats(x)
    return (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))


def softplus_naive(x):
    """log(1 + e^x): 0 instead of e^x for x < -37 (and inf for x > 709)."""
    return np.log(1.0 + np.exp(_floats(x)))


def softplus_log1p_overflow(x):
    """log1p keeps the left tail, but exp(x) still overflows at x = 1000."""
    return np.log1p(np.exp(_floats(x)))


def relu_list(x):
    """A Python loop that returns a list."""
    return [max(v, 0.0) for v in np.atleast_1d(x)]


def relu_in_place(x):
    """Zeroes the caller's array in place."""
    x[x < 0] = 0.0
    return x


def relu_column(x):
    """An extra axis: shape (n, 1) for input (n,)."""
    return np.maximum(x, 0.0)[..., None]


def relu_bool_times(x):
    """Returns the mask (the derivative), not x times the mask."""
    return (np.asarray(x) > 0).astype(float)


def leaky_relu_default(x, alpha=0.1):
    """Default slope 0.1 instead of the reference's 0.01."""
    x = _floats(x)
    return np.where(x >= 0, x, alpha * x)


def leaky_relu_hardcoded(x, alpha=0.01):
    """Ignores alpha: the slope 0.01 is hard-coded."""
    x = _floats(x)
    return np.where(x >= 0, x, 0.01 * x)


def elu_no_minus_one(x, alpha=1.0):
    """Forgets the -1: alpha*e^x instead of alpha*(e^x - 1)."""
    x = _floats(x)
    return np.where(x > 0, x, alpha * np.exp(np.minimum(x, 0.0)))


def selu_rounded_scale(x):
    """lambda rounded to 1.05: every output is off by the factor 1.05/1.0507."""
    x = _floats(x)
    return 1.05 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0.0)))


def gelu_erf(x):
    """x/2 (1 + erf(x/sqrt 2)): 1 + erf cancels to 0 in the left tail."""
    x = _floats(x)
    return 0.5 * x * (1.0 + special.erf(x / np.sqrt(2.0)))


def gelu_tanh_textbook(x):
    """x/2 (1 + tanh(u)): 1 + tanh(u) cancels for u << 0; x**3 also overflows at 1e300."""
    x = _floats(x)
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def swish_ignores_beta(x, beta=1.0):
    """Always the SiLU: beta is ignored."""
    return _floats(x) * _sigmoid(x)


def mish_naive(x):
    """x tanh(log(1 + e^x)): exp overflows at x = 1000."""
    x = _floats(x)
    return x * np.tanh(np.log1p(np.exp(x)))


def lisht_negated(x):
    """Sign error: -x tanh(x)."""
    x = _floats(x)
    return -x * np.tanh(x)


def binary_step_bool(x):
    """Returns booleans, not floats."""
    return np.asarray(x) >= 0


def identity_same_object(x):
    """Returns the caller's array itself, not a new array."""
    return x


def softmax_no_max(x, axis=-1):
    """No max subtraction: exp(1000) = inf, inf/inf = nan."""
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_axis0(x, axis=-1):
    """Normalises the columns: axis=0 hard-coded."""
    e = np.exp(x - np.max(x, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


def softmax_ignores_axis(x, axis=-1):
    """Always the last axis, whatever axis says."""
    return _softmax(x, axis=-1)


def log_softmax_of_softmax(x, axis=-1):
    """log(softmax(x)): the softmax underflows to 0 at a spread of 1000, and log(0) = -inf."""
    return np.log(_softmax(x, axis=axis))


# --------------------------------------------------------- activation gradients


def sigmoid_grad_s_one_minus_s(x):
    """s(1 - s): 1 - s cancels to 0 for x > 37."""
    s = _sigmoid(x)
    return s * (1.0 - s)


def sigmoid_grad_is_sigmoid(x):
    """Returns sigmoid(x) itself instead of its derivative."""
    return _sigmoid(x)


def sigmoid_grad_naive(x):
    """e^-x/(1 + e^-x)^2: inf/inf = nan at x = -1000."""
    e = np.exp(-_floats(x))
    return e / (1.0 + e) ** 2


def tanh_grad_one_minus_t2(x):
    """1 - tanh^2: cancels to 0 for |x| > 19."""
    return 1.0 - np.tanh(x) ** 2


def tanh_grad_negated(x):
    """tanh^2 - 1: the sign is flipped."""
    e = np.exp(-2.0 * np.abs(_floats(x)))
    return -4.0 * e / (1.0 + e) ** 2


def relu_grad_ge(x):
    """x >= 0 gives 1 at the kink; the course's convention is the left derivative 0."""
    return (np.asarray(x) >= 0).astype(float)


def leaky_relu_grad_ge(x, alpha=0.01):
    """x >= 0 gives 1 at the kink instead of alpha."""
    return np.where(np.asarray(x) >= 0, 1.0, alpha)


def leaky_relu_grad_no_alpha(x, alpha=0.01):
    """0 instead of alpha for negative x (the ReLU's derivative)."""
    return np.where(np.asarray(x) > 0, 1.0, 0.0)


def elu_grad_ge(x, alpha=1.0):
    """x >= 0 picks the right derivative 1 at 0 instead of alpha (visible when alpha != 1)."""
    x = _floats(x)
    return np.where(x >= 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))


def softplus_grad_flipped(x):
    """sigmoid(-x) instead of sigmoid(x)."""
    return _sigmoid(-_floats(x))


def gelu_grad_erf(x):
    """Phi(x) + x phi(x) with Phi = (1 + erf)/2: cancels in the left tail."""
    x = _floats(x)
    return 0.5 * (1.0 + special.erf(x / np.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / np.sqrt(
        2.0 * np.pi
    )


def silu_grad_naive(x):
    """s + x s (1 - s) with the textbook sigmoid: exp overflows at x = -1000."""
    x = _floats(x)
    s = 1.0 / (1.0 + np.exp(-x))
    return s + x * s * (1.0 - s)


def swish_grad_ignores_beta(x, beta=1.0):
    """The SiLU's derivative, whatever beta is."""
    x = _floats(x)
    s = _sigmoid(x)
    return s * (1.0 + x * _sigmoid(-x))


def log_softmax_jacobian_transposed(x):
    """delta_ij - s_i instead of delta_ij - s_j: rows and columns swapped."""
    s = _softmax(_floats(x))
    return np.eye(s.shape[-1]) - s[..., :, None]


def softmax_jacobian_textbook(x):
    """diag(s) - s s^T: on the diagonal s_i - s_i^2 cancels for a confident class."""
    s = _softmax(_floats(x))
    eye = np.eye(s.shape[-1], dtype=s.dtype)
    return np.einsum("...i,ij->...ij", s, eye) - np.einsum("...i,...j->...ij", s, s)


def softmax_jacobian_eye64(x):
    """Right values, but np.eye is float64 and turns a float32 Jacobian into float64."""
    s = _softmax(_floats(x))
    return s[..., :, None] * (np.eye(s.shape[-1]) - s[..., None, :])


def softmax_jacobian_no_max(x):
    """s_i (delta_ij - s_j) with a softmax that overflows: nan for entries near 1000."""
    x = _floats(x)
    e = np.exp(x)
    s = e / np.sum(e, axis=-1, keepdims=True)
    return s[..., :, None] * (np.eye(s.shape[-1]) - s[..., None, :])


# ------------------------------------------------------------------------ losses


def mse_per_sample(y_true, y_pred):
    """Forgets the mean: one squared error per sample."""
    return (np.asarray(y_true) - np.asarray(y_pred)) ** 2


def mse_sum(y_true, y_pred):
    """Sum instead of mean."""
    return float(np.sum((np.asarray(y_true) - np.asarray(y_pred)) ** 2))


def huber_default_delta(y_true, y_pred, delta=2.0):
    """Default delta 2.0 instead of 1.0."""
    r = np.abs(np.asarray(y_true) - np.asarray(y_pred))
    return float(np.mean(np.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta))))


def bce_no_clip(y_true, probs, eps=1e-7):
    """No clipping: log(0) = -inf for probabilities of exactly 0 or 1."""
    y, p = np.asarray(y_true), np.asarray(probs)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def bce_logits_through_sigmoid(y_true, logits):
    """-log(1 - sigmoid(z)): 1 - sigmoid(40) = 0, and log(0) = -inf."""
    y, s = np.asarray(y_true), _sigmoid(logits)
    return float(-np.mean(y * np.log(s) + (1 - y) * np.log(1 - s)))


def cce_mean_over_entries(y_true, probs, eps=1e-7):
    """np.mean over all N*K entries: divides by K too many."""
    p = np.clip(np.asarray(probs), eps, 1.0)
    return float(np.mean(-np.asarray(y_true) * np.log(p)))


def softmax_ce_naive(y_true, logits):
    """log of a softmax without max subtraction: nan at logits of 1000."""
    z = _floats(logits)
    p = np.exp(z) / np.sum(np.exp(z), axis=1, keepdims=True)
    return float(-np.mean(np.sum(np.asarray(y_true) * np.log(p), axis=1)))


def softmax_ce_axis0(y_true, logits):
    """The softmax inside normalises the columns (axis=0)."""
    log_p = _log_softmax(_floats(logits), axis=0)
    return float(-np.sum(np.asarray(y_true) * log_p) / len(log_p))


def sparse_ce_sum(labels, logits):
    """Sum over the batch instead of the mean."""
    log_p = _log_softmax(_floats(logits))
    return float(-np.sum(log_p[np.arange(len(log_p)), labels]))


def contrastive_no_half(y_true, distances, margin=1.0):
    """Forgets the factor 1/2."""
    y, d = np.asarray(y_true), np.asarray(distances)
    return float(np.mean(y * d**2 + (1 - y) * np.maximum(0.0, margin - d) ** 2))


def focal_ignores_gamma(y_true, probs, alpha=0.25, gamma=2.0, eps=1e-7):
    """gamma = 2 hard-coded."""
    y, p = np.asarray(y_true), np.clip(np.asarray(probs), eps, 1 - eps)
    pos = alpha * (1 - p) ** 2 * np.log(p)
    neg = (1 - alpha) * p**2 * np.log1p(-p)
    return float(-np.mean(y * pos + (1 - y) * neg))


def focal_logits_through_sigmoid(y_true, logits, alpha=0.25, gamma=2.0):
    """p = sigmoid(z) first, then the probability formula: 1 - sigmoid(40) = 0, log(0) = -inf."""
    y, p = np.asarray(y_true), _sigmoid(logits)
    p_t = np.where(y == 1, p, 1 - p)
    alpha_t = np.where(y == 1, alpha, 1 - alpha)
    return float(np.mean(-alpha_t * (1 - p_t) ** gamma * np.log(p_t)))


def focal_logits_alpha_swapped(y_true, logits, alpha=0.25, gamma=2.0):
    """Stable, but alpha_t is 1 - alpha for the positives and alpha for the negatives."""
    y, z = np.asarray(y_true), _floats(logits)
    u = (2 * y - 1) * z
    alpha_t = np.where(y == 1, 1 - alpha, alpha)
    return float(np.mean(alpha_t * _sigmoid(-u) ** gamma * np.logaddexp(0.0, -u)))


def next_token_unshifted(tokens, logits):
    """Scores the logits at t against the token at t, not t + 1."""
    log_p = _log_softmax(_floats(logits))
    return float(-np.mean(np.take_along_axis(log_p, np.asarray(tokens)[..., None], -1)))


def masked_lm_mean_over_all(labels, logits):
    """Divides by every position B*T, not by the number of scored positions."""
    labels = np.asarray(labels)
    log_p = _log_softmax(_floats(logits))
    scored = labels != -100
    picked = np.take_along_axis(log_p, np.where(scored, labels, 0)[..., None], -1)[..., 0]
    return float(-np.sum(np.where(scored, picked, 0.0)) / labels.size)


# --------------------------------------------------------------- loss gradients


def mse_grad_no_mean(y_true, y_pred):
    """2 (y_hat - y): the 1/N is missing."""
    return 2.0 * (np.asarray(y_pred) - np.asarray(y_true))


def mse_grad_flipped(y_true, y_pred):
    """2 (y - y_hat)/N: the sign is flipped."""
    y_pred = np.asarray(y_pred)
    return 2.0 * (np.asarray(y_true) - y_pred) / y_pred.size


def mse_grad_no_two(y_true, y_pred):
    """(y_hat - y)/N: forgets the 2 of the square."""
    y_pred = np.asarray(y_pred)
    return (y_pred - np.asarray(y_true)) / y_pred.size


def mse_grad_list(y_true, y_pred):
    """Right numbers, returned as a list."""
    n = np.size(y_pred)
    return [2.0 * (p - t) / n for p, t in zip(np.ravel(y_pred), np.ravel(y_true), strict=True)]


def mae_grad_ge(y_true, y_pred):
    """np.where(r >= 0, 1, -1): 1/N at the kink y_hat = y, where the convention is 0."""
    y_pred = np.asarray(y_pred)
    return np.where(y_pred - np.asarray(y_true) >= 0, 1.0, -1.0) / y_pred.size


def huber_grad_ignores_delta(y_true, y_pred, delta=1.0):
    """delta = 1 hard-coded in the clip."""
    y_pred = np.asarray(y_pred)
    return np.clip(y_pred - np.asarray(y_true), -1.0, 1.0) / y_pred.size


def bce_grad_clipped_formula(y_true, probs, eps=1e-7):
    """Clips p, but then differentiates as if it had not: -1e7/N where the loss is flat."""
    y, p = np.asarray(y_true), np.clip(np.asarray(probs), eps, 1 - eps)
    return (-y / p + (1 - y) / (1 - p)) / p.size


def bce_grad_column(y_true, probs, eps=1e-7):
    """Right values, but reshaped to a column (N, 1)."""
    y, p = np.asarray(y_true), np.asarray(probs)
    clipped = (p < eps) | (p > 1 - eps)
    pc = np.clip(p, eps, 1 - eps)
    grad = np.where(clipped, 0.0, -y / pc + (1 - y) / (1 - pc)) / p.size
    return grad.reshape(-1, 1)


def bce_logits_grad_flipped(y_true, logits):
    """(y - sigmoid(z))/N: the sign is flipped."""
    z = np.asarray(logits)
    return (np.asarray(y_true) - _sigmoid(z)) / z.size


def bce_logits_grad_no_mean(y_true, logits):
    """sigmoid(z) - y: the 1/N is missing."""
    return _sigmoid(logits) - np.asarray(y_true)


def softmax_ce_grad_no_mean(y_true, logits):
    """softmax(z) - y: the 1/N is missing."""
    return _softmax(_floats(logits)) - np.asarray(y_true)


def softmax_ce_grad_in_place(y_true, logits):
    """Subtracts the row maximum from the caller's logits in place."""
    logits -= np.max(logits, axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / np.sum(e, axis=1, keepdims=True) - y_true) / len(logits)


def sparse_ce_grad_flipped(labels, logits):
    """(onehot - softmax)/N: the sign is flipped."""
    z = _floats(logits)
    onehot = np.eye(z.shape[1])[labels]
    return (onehot - _softmax(z)) / len(z)


def hinge_grad_ge(y_true, scores):
    """1 - y s >= 0 counts the kink y s = 1 as active; the convention is 0 there."""
    y, s = np.asarray(y_true), np.asarray(scores)
    return np.where(1 - y * s >= 0, -y, 0.0) / s.size


def contrastive_grad_default_margin(y_true, distances, margin=2.0):
    """Default margin 2.0 instead of 1.0."""
    y, d = np.asarray(y_true), np.asarray(distances)
    return np.where(y == 1, d, -np.maximum(0.0, margin - d)) / d.size


def triplet_grad_no_mean(anchor, positive, negative, margin=1.0):
    """The three gradients without the 1/N."""
    a, p, n = (_floats(v) for v in (anchor, positive, negative))
    d_ap = np.linalg.norm(a - p, axis=1, keepdims=True)
    d_an = np.linalg.norm(a - n, axis=1, keepdims=True)
    active = (d_ap - d_an + margin) > 0
    u = (a - p) / np.where(d_ap > 0, d_ap, 1.0)
    w = (a - n) / np.where(d_an > 0, d_an, 1.0)
    return np.where(active, u - w, 0.0), np.where(active, -u, 0.0), np.where(active, w, 0.0)


def focal_logits_grad_chain_rule(y_true, logits, alpha=0.25, gamma=2.0):
    """dl/dp_t times dp_t/du, the textbook chain rule: it divides by p_t, which is 0 for a
    confidently wrong sample (u = -1e300), and (1 - p_t)**(gamma - 1) is 0**-0.5 = inf for
    gamma < 1 at an easy one; either way inf * 0 = nan."""
    y, z = np.asarray(y_true), _floats(logits)
    s = 2 * y - 1
    u = s * z
    p_t, q = _sigmoid(u), _sigmoid(-u)  # q = 1 - p_t
    alpha_t = np.where(y == 1, alpha, 1 - alpha)
    log_p_t = -np.logaddexp(0.0, -u)
    dl_dp = alpha_t * (gamma * q ** (gamma - 1) * log_p_t - q**gamma / p_t)
    return s * dl_dp * p_t * q / z.size


def focal_grad_returns_none(y_true, probs, alpha=0.25, gamma=2.0, eps=1e-7):
    """Computes the gradient but forgets to return it."""
    p = np.clip(np.asarray(probs), eps, 1 - eps)
    _ = -np.asarray(y_true) / p


WRONG: list[Entry] = [
    # activations
    Entry("sigmoid", sigmoid_naive, "overflow"),
    Entry("sigmoid", sigmoid_flipped, "sign"),
    Entry("sigmoid", sigmoid_float64_constant, "upcast"),
    Entry("tanh", tanh_exp, "overflow"),
    Entry("softplus", softplus_naive, "cancellation"),
    Entry("softplus", softplus_log1p_overflow, "overflow"),
    Entry("relu", relu_list, "not_array"),
    Entry("relu", relu_in_place, "in_place"),
    Entry("relu", relu_column, "shape_n1"),
    Entry("relu", relu_bool_times, "wrong_function"),
    Entry("leaky_relu", leaky_relu_default, "constant"),
    Entry("leaky_relu", leaky_relu_hardcoded, "constant"),
    Entry("elu", elu_no_minus_one, "constant"),
    Entry("selu", selu_rounded_scale, "constant"),
    Entry("gelu", gelu_erf, "cancellation"),
    Entry("gelu_tanh", gelu_tanh_textbook, "cancellation"),
    Entry("swish", swish_ignores_beta, "constant"),
    Entry("mish", mish_naive, "overflow"),
    Entry("lisht", lisht_negated, "sign"),
    Entry("binary_step", binary_step_bool, "dtype"),
    Entry("identity", identity_same_object, "alias"),
    Entry("softmax", softmax_no_max, "overflow"),
    Entry("softmax", softmax_axis0, "softmax_axis"),
    Entry("softmax", softmax_ignores_axis, "softmax_axis"),
    Entry("log_softmax", log_softmax_of_softmax, "overflow"),
    # activation gradients
    Entry("sigmoid_grad", sigmoid_grad_s_one_minus_s, "cancellation"),
    Entry("sigmoid_grad", sigmoid_grad_naive, "overflow"),
    Entry("sigmoid_grad", sigmoid_grad_is_sigmoid, "wrong_function"),
    Entry("tanh_grad", tanh_grad_one_minus_t2, "cancellation"),
    Entry("tanh_grad", tanh_grad_negated, "sign"),
    Entry("relu_grad", relu_grad_ge, "kink"),
    Entry("leaky_relu_grad", leaky_relu_grad_ge, "kink"),
    Entry("leaky_relu_grad", leaky_relu_grad_no_alpha, "constant"),
    Entry("elu_grad", elu_grad_ge, "kink"),
    Entry("softplus_grad", softplus_grad_flipped, "sign"),
    Entry("gelu_grad", gelu_grad_erf, "cancellation"),
    Entry("silu_grad", silu_grad_naive, "overflow"),
    Entry("swish_grad", swish_grad_ignores_beta, "constant"),
    Entry("log_softmax_jacobian", log_softmax_jacobian_transposed, "transpose"),
    Entry("softmax_jacobian", softmax_jacobian_no_max, "overflow"),
    Entry("softmax_jacobian", softmax_jacobian_eye64, "upcast"),
    Entry("softmax_jacobian", softmax_jacobian_textbook, "cancellation"),
    # losses
    Entry("mse", mse_per_sample, "missing_mean"),
    Entry("mse", mse_sum, "missing_mean"),
    Entry("huber", huber_default_delta, "constant"),
    Entry("binary_cross_entropy", bce_no_clip, "clip"),
    Entry("binary_cross_entropy_with_logits", bce_logits_through_sigmoid, "overflow"),
    Entry("categorical_cross_entropy", cce_mean_over_entries, "missing_mean"),
    Entry("softmax_cross_entropy", softmax_ce_naive, "overflow"),
    Entry("softmax_cross_entropy", softmax_ce_axis0, "softmax_axis"),
    Entry("sparse_categorical_cross_entropy", sparse_ce_sum, "missing_mean"),
    Entry("contrastive_loss", contrastive_no_half, "constant"),
    Entry("focal_loss", focal_ignores_gamma, "constant"),
    Entry("focal_loss_with_logits", focal_logits_through_sigmoid, "overflow"),
    Entry("focal_loss_with_logits", focal_logits_alpha_swapped, "constant"),
    Entry("next_token_loss", next_token_unshifted, "shift"),
    Entry("masked_lm_loss", masked_lm_mean_over_all, "missing_mean"),
    # loss gradients
    Entry("mse_grad", mse_grad_no_mean, "missing_mean"),
    Entry("mse_grad", mse_grad_flipped, "sign"),
    Entry("mse_grad", mse_grad_no_two, "constant"),
    Entry("mse_grad", mse_grad_list, "not_array"),
    Entry("mae_grad", mae_grad_ge, "kink"),
    Entry("huber_grad", huber_grad_ignores_delta, "constant"),
    Entry("binary_cross_entropy_grad", bce_grad_clipped_formula, "clip"),
    Entry("binary_cross_entropy_grad", bce_grad_column, "shape_n1"),
    Entry("binary_cross_entropy_with_logits_grad", bce_logits_grad_flipped, "sign"),
    Entry("binary_cross_entropy_with_logits_grad", bce_logits_grad_no_mean, "missing_mean"),
    Entry("softmax_cross_entropy_grad", softmax_ce_grad_no_mean, "missing_mean"),
    Entry("softmax_cross_entropy_grad", softmax_ce_grad_in_place, "in_place"),
    Entry("sparse_categorical_cross_entropy_grad", sparse_ce_grad_flipped, "sign"),
    Entry("hinge_grad", hinge_grad_ge, "kink"),
    Entry("contrastive_loss_grad", contrastive_grad_default_margin, "constant"),
    Entry("triplet_loss_grad", triplet_grad_no_mean, "missing_mean"),
    Entry("focal_loss_grad", focal_grad_returns_none, "bad_return"),
    Entry("focal_loss_with_logits_grad", focal_logits_grad_chain_rule, "overflow"),
]


# ======================================================================= VALID


def tanh_via_sigmoid(x):
    """tanh x = 2 sigmoid(2x) - 1, with a stable sigmoid."""
    return 2.0 * _sigmoid(2.0 * _floats(x)) - 1.0


def sigmoid_expit(x):
    """scipy.special.expit."""
    return special.expit(_floats(x))


def sigmoid_float32_native(x):
    """Stable sigmoid computed in the input's own dtype (float32 stays float32 throughout)."""
    x = _floats(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def softplus_logaddexp(x):
    """softplus(x) = log(e^0 + e^x) = np.logaddexp(0, x)."""
    return np.logaddexp(0.0, _floats(x))


def relu_times_mask(x):
    """x * (x > 0): a mask instead of np.maximum."""
    x = _floats(x)
    return x * (x > 0)


def leaky_relu_maximum(x, alpha=0.01):
    """max(x, alpha x), equal to the reference for 0 <= alpha <= 1."""
    x = _floats(x)
    return np.maximum(x, alpha * x)


def elu_expm1(x, alpha=1.0):
    """alpha*expm1(x) on the negative side."""
    x = _floats(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def gelu_ndtr(x):
    """x Phi(x) with scipy.special.ndtr, which keeps the left tail."""
    x = _floats(x)
    return x * special.ndtr(x)


def silu_expit(x):
    """x * expit(x)."""
    x = _floats(x)
    return x * special.expit(x)


def mish_logaddexp(x):
    """x tanh(softplus(x)) with softplus = np.logaddexp(0, x)."""
    x = _floats(x)
    return x * np.tanh(np.logaddexp(0.0, x))


def softmax_logsumexp(x, axis=-1):
    """exp(x - logsumexp(x)), the log-sum-exp route."""
    x = _floats(x)
    return np.exp(x - special.logsumexp(x, axis=axis, keepdims=True))


def log_softmax_logsumexp(x, axis=-1):
    """x - logsumexp(x)."""
    x = _floats(x)
    return x - special.logsumexp(x, axis=axis, keepdims=True)


def sigmoid_grad_stable(x):
    """sigma(x) sigma(-x), both stable: never 1 - s."""
    x = _floats(x)
    return _sigmoid(x) * _sigmoid(-x)


def tanh_grad_sech(x):
    """sech^2 x = (2 e^-|x| / (1 + e^-2|x|))^2, without cosh overflowing."""
    e = np.exp(-np.abs(_floats(x)))
    return (2.0 * e / (1.0 + e * e)) ** 2


def relu_grad_heaviside(x):
    """np.heaviside(x, 0.0): 0 at the kink, as the convention says."""
    return np.heaviside(_floats(x), 0.0)


def softmax_jacobian_complement(x):
    """s_i (delta_ij - s_j), with 1 - s_i on the diagonal summed from the other s_j (no cancel)."""
    s = _softmax(_floats(x))
    eye = np.eye(s.shape[-1], dtype=bool)
    others = np.sum(np.where(eye, 0.0, s[..., None, :]), axis=-1).astype(s.dtype)
    jac = -s[..., :, None] * s[..., None, :]
    jac[..., eye] = s * others
    return jac


def mse_mean(y_true, y_pred):
    """np.mean of the squared residual."""
    return float(np.mean((np.asarray(y_pred) - np.asarray(y_true)) ** 2))


def bce_logits_softplus(y_true, logits):
    """mean(softplus(z) - y z), softplus through np.logaddexp."""
    y, z = np.asarray(y_true), _floats(logits)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def bce_logits_grad_textbook(y_true, logits):
    """(sigmoid(z) - y)/N with a stable sigmoid; its rounding at confident logits is fair."""
    z = np.asarray(logits)
    return (special.expit(z) - np.asarray(y_true)) / z.size


def focal_logits_logaddexp(y_true, logits, alpha=0.25, gamma=2.0):
    """alpha_t exp(-gamma softplus(u)) softplus(-u), u = (2y - 1) z, softplus = np.logaddexp:
    sigma(-u)**gamma written as an exp of a log, a few ULP less accurate in the tails."""
    y, z = np.asarray(y_true), _floats(logits)
    u = (2 * y - 1) * z
    alpha_t = np.where(y == 1, alpha, 1 - alpha)
    return float(np.mean(alpha_t * np.exp(-gamma * np.logaddexp(0.0, u)) * np.logaddexp(0.0, -u)))


def focal_logits_grad_expit(y_true, logits, alpha=0.25, gamma=2.0):
    """-s alpha_t q**gamma (q + gamma expit(u) softplus(-u)) / N with q = expit(-u)."""
    z = _floats(logits)
    y = np.asarray(y_true)
    s = (2 * y - 1).astype(z.dtype)
    u = s * z
    alpha_t = np.where(y == 1, alpha, 1 - alpha).astype(z.dtype)
    q = special.expit(-u)
    return -s * alpha_t * q**gamma * (q + gamma * special.expit(u) * np.logaddexp(0, -u)) / z.size


def bce_log1p(y_true, probs, eps=1e-7):
    """Clip, then log(p) and log1p(-p)."""
    y, p = np.asarray(y_true), np.clip(np.asarray(probs), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def softmax_ce_logsumexp(y_true, logits):
    """mean over rows of logsumexp(z) - sum(y z)."""
    y, z = np.asarray(y_true), _floats(logits)
    return float(np.mean(special.logsumexp(z, axis=1) - np.sum(y * z, axis=1)))


def softmax_ce_grad_textbook(y_true, logits):
    """(softmax(z) - y)/N."""
    z = _floats(logits)
    return (_softmax(z) - np.asarray(y_true)) / len(z)


def sparse_ce_take(labels, logits):
    """Pick -log_softmax at the labels with np.take_along_axis."""
    log_p = _log_softmax(_floats(logits))
    return float(-np.mean(np.take_along_axis(log_p, np.asarray(labels)[:, None], 1)))


def hinge_mean(y_true, scores):
    """np.mean(np.maximum(0, 1 - y s))."""
    return float(np.mean(np.maximum(0.0, 1.0 - np.asarray(y_true) * np.asarray(scores))))


def next_token_shifted(tokens, logits):
    """Log-softmax of logits[:, :-1] against tokens[:, 1:]."""
    log_p = _log_softmax(_floats(logits)[:, :-1])
    picked = np.take_along_axis(log_p, np.asarray(tokens)[:, 1:, None], -1)
    return float(-np.mean(picked))


VALID: list[Entry] = [
    Entry("tanh", tanh_via_sigmoid),
    Entry("tanh", np.tanh),
    Entry("sigmoid", sigmoid_expit),
    Entry("sigmoid", sigmoid_float32_native),
    Entry("softplus", softplus_logaddexp),
    Entry("relu", relu_times_mask),
    Entry("leaky_relu", leaky_relu_maximum),
    Entry("leaky_relu", leaky_relu_maximum, params=(("alpha", 0.2),)),
    Entry("prelu", leaky_relu_maximum, params=(("alpha", 0.1),)),
    Entry("elu", elu_expm1),
    Entry("gelu", gelu_ndtr),
    Entry("silu", silu_expit),
    Entry("mish", mish_logaddexp),
    Entry("softmax", softmax_logsumexp),
    Entry("log_softmax", log_softmax_logsumexp),
    Entry("sigmoid_grad", sigmoid_grad_stable),
    Entry("tanh_grad", tanh_grad_sech),
    Entry("relu_grad", relu_grad_heaviside),
    Entry("softmax_jacobian", softmax_jacobian_complement),
    Entry("mse", mse_mean),
    Entry("binary_cross_entropy", bce_log1p),
    Entry("binary_cross_entropy_with_logits", bce_logits_softplus),
    Entry("binary_cross_entropy_with_logits_grad", bce_logits_grad_textbook),
    Entry("focal_loss_with_logits", focal_logits_logaddexp),
    Entry(
        "focal_loss_with_logits", focal_logits_logaddexp, params=(("alpha", 0.75), ("gamma", 0.5))
    ),
    Entry("focal_loss_with_logits_grad", focal_logits_grad_expit),
    Entry("softmax_cross_entropy", softmax_ce_logsumexp),
    Entry("softmax_cross_entropy_grad", softmax_ce_grad_textbook),
    Entry("sparse_categorical_cross_entropy", sparse_ce_take),
    Entry("hinge", hinge_mean),
    Entry("next_token_loss", next_token_shifted),
]
