r"""Reference loss functions and their gradients, in NumPy.

Lessons 12 to 19, the checker and the autograder compare against these. Each loss ``name``
stands next to its gradient ``name_grad``, so that forward and backward read together.

Conventions (see ``docs/notation.md``):

- Arguments are ``(y_true, y_pred, ...)``, as in Keras and scikit-learn. A loss returns a
  Python ``float``, the cost $J$: the mean over samples (over all elements for the
  regression and the elementwise binary losses).
- ``name_grad`` returns $\partial J/\partial \hat y$, the $1/N$ of the mean included, as a new
  array with the shape of ``y_pred``. float32 ``y_pred`` gives a float32 gradient (computed
  in float64, rounded once); anything else gives float64. Inputs are never modified.
- Numerically stable: no warning and no inf or nan for any finite input (logits of
  $\pm 10^{308}$, probabilities of exactly 0 or 1), except that a result whose exact value
  lies beyond the float64 range (a squared error of $(10^{200})^2$, say) is inf.
- ``nan`` in ``y_pred`` gives a nan loss and a nan gradient entry; so does ``nan`` in a
  real-valued ``y_true``. A ``y_true`` that must be a label (0/1, ±1, a class index) is
  checked, and ``nan`` is not a label.
- At a corner of $\max(0, t)$ (hinge, triplet) the gradient is the left derivative 0, as
  ``relu_grad(0) == 0``; ``mae_grad`` is 0 where $\hat y = y$ (``np.sign(0)``), as in
  ``docs/notation.md`` and PyTorch.
- Bad input raises a ``ValueError`` that names the argument and says what was expected.

The stable forms reuse ``course_lib.activations`` (``sigmoid``, ``softplus``,
``softmax``, ``log_softmax``), whose docstrings explain the techniques: ``exp`` only of
non-positive numbers, ``log1p`` near 1, and no ``1 - p`` where ``p`` may be close to 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from course_lib.activations import log_softmax, sigmoid, softmax, softplus

Array = NDArray[np.floating]

IGNORE_INDEX = -100
"""The label that ``masked_lm_loss`` skips, as PyTorch's ``ignore_index``."""


# ---------------------------------------------------------------------------- helpers


def _floats(x: ArrayLike) -> tuple[Array, type]:
    """``x`` as float64, and the dtype its gradient gets (float32 stays float32)."""
    x = np.asarray(x)
    return x.astype(np.float64, copy=False), (np.float32 if x.dtype == np.float32 else np.float64)


def _result(grad: ArrayLike, dtype: type) -> Array:
    """Round a float64 gradient once to ``dtype``."""
    # A value beyond float32's range rounds to inf, the correctly rounded answer.
    with np.errstate(over="ignore"):
        return np.asarray(grad, dtype=np.float64).astype(dtype)


def _mean(values: Array) -> float:
    r"""$\frac1N\sum_i v_i$ as a Python float; dividing before summing keeps the sum finite."""
    return float(np.sum(values / values.size))


def _check_shapes(
    a: Array, b: Array, names: tuple[str, str], ndim: int | None = None, layout: str = ""
) -> None:
    """Raise unless ``a`` and ``b`` have the same non-empty shape (and ``ndim`` axes)."""
    if ndim is not None and (a.ndim != ndim or b.ndim != ndim):
        raise ValueError(
            f"{names[0]} and {names[1]} must be {ndim}-d arrays {layout}; "
            f"got shapes {a.shape} and {b.shape}"
        )
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape; got {a.shape} and {b.shape}"
        )
    if a.size == 0:
        raise ValueError(f"{names[1]} is empty (shape {a.shape}); a mean needs one element")


def _check_values(x: Array, name: str, bad: Array, expected: str) -> None:
    """Raise if the boolean mask ``bad`` is True anywhere, showing the first offender."""
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must {expected}; got {x[index].item()!r} at index {index}")


def _check_labels(labels: ArrayLike, name: str, logits: Array) -> np.ndarray:
    """Integer class indices in ``[0, K)``, one per row of ``logits`` (``IGNORE_INDEX`` passes)."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must be integer class indices; got dtype {labels.dtype}")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"{name} must have shape {logits.shape[:-1]} to match logits of shape "
            f"{logits.shape}; got {labels.shape}"
        )
    k = logits.shape[-1]
    bad = ((labels < 0) | (labels >= k)) & (labels != IGNORE_INDEX)
    _check_values(labels, name, bad, f"be class indices in [0, {k})")
    return labels


def _check_probs(probs: Array, logits_loss: str) -> None:
    _check_values(
        probs,
        "probs",
        (probs < 0) | (probs > 1),
        f"lie in [0, 1] (for raw scores use {logits_loss})",
    )


def _weighted(weight: Array, value: Array) -> Array:
    r"""``weight * value``, with $0 \cdot v = 0$ even where $v = \pm\infty$ (a term that is absent)."""
    with np.errstate(invalid="ignore"):
        return np.where(weight == 0, 0.0, weight * value)


def _softmax_minus(p: Array, y: Array) -> Array:
    r"""$p - y$ along the last axis; where $y_k = 1$, $p_k - 1$ is $-\sum_{j \ne k} p_j$.

    For a confident, correct class ``p_k - 1`` cancels to a few digits; the sum of the
    other probabilities is the same number (the rows of ``y`` sum to 1) without cancellation.
    """
    is_one = y == 1
    others = np.sum(np.where(is_one, 0.0, p), axis=-1, keepdims=True)
    return np.where(is_one, 0.0 - others, p - y)  # 0.0 - x, not -x: a zero prints as 0., not -0.


def _class_nll(labels: np.ndarray, logits: Array) -> Array:
    r"""Per-position $-\log p_{label}$ along the last axis (no one-hot is built)."""
    return -np.take_along_axis(log_softmax(logits), labels[..., None], axis=-1)[..., 0]


def _class_ce_grad(labels: np.ndarray, logits: Array) -> Array:
    r"""Per-position $p - \mathrm{onehot}(label)$ along the last axis.

    The label's entry $p_c - 1$ is written as $-\sum_{j \ne c} p_j$ (no cancellation for a
    confident, correct class), without building an (N, K) one-hot array.
    """
    p = softmax(logits)
    index = labels[..., None]
    p_label = np.take_along_axis(p, index, axis=-1)
    others = np.sum(p, axis=-1, keepdims=True) - p_label
    # sum - p_label cancels when p_label is close to 1: sum the other entries instead there.
    confident = p_label[..., 0] > 0.5
    if np.any(confident):
        masked = p[confident].copy()
        np.put_along_axis(masked, index[confident], 0.0, axis=-1)
        others[confident] = masked.sum(axis=-1, keepdims=True)
    np.put_along_axis(p, index, 0.0 - others, axis=-1)
    return p


# ------------------------------------------------------------------ regression losses


def mse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    r"""$J = \dfrac1N \sum_i (y_i - \hat y_i)^2$, the mean over all $N$ elements.

    Gradient: $\partial J/\partial \hat y_i = \dfrac2N(\hat y_i - y_i)$ (``mse_grad``).
    """
    y, _ = _floats(y_true)
    y_hat, _ = _floats(y_pred)
    _check_shapes(y, y_hat, ("y_true", "y_pred"))
    with np.errstate(over="ignore"):  # inf only where the exact square exceeds float64
        return _mean((y - y_hat) ** 2)


def mse_grad(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    r"""$\partial J/\partial \hat y_i = \dfrac2N(\hat y_i - y_i)$ for ``mse``."""
    y, _ = _floats(y_true)
    y_hat, dtype = _floats(y_pred)
    _check_shapes(y, y_hat, ("y_true", "y_pred"))
    with np.errstate(over="ignore"):
        return _result(2.0 * ((y_hat - y) / y_hat.size), dtype)


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    r"""$J = \dfrac1N \sum_i |y_i - \hat y_i|$, the mean over all $N$ elements.

    Gradient: $\partial J/\partial \hat y_i = \operatorname{sign}(\hat y_i - y_i)/N$, and 0
    where $\hat y_i = y_i$ (``mae_grad``).
    """
    y, _ = _floats(y_true)
    y_hat, _ = _floats(y_pred)
    _check_shapes(y, y_hat, ("y_true", "y_pred"))
    with np.errstate(over="ignore"):
        return _mean(np.abs(y - y_hat))


def mae_grad(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    r"""$\partial J/\partial \hat y_i = \operatorname{sign}(\hat y_i - y_i)/N$; 0 at the kink.

    At $\hat y_i = y_i$ the left and right derivatives are $\mp 1/N$; like PyTorch we
    return ``np.sign(0) == 0``.
    """
    y, _ = _floats(y_true)
    y_hat, dtype = _floats(y_pred)
    _check_shapes(y, y_hat, ("y_true", "y_pred"))
    with np.errstate(over="ignore"):
        return _result(np.sign(y_hat - y) / y_hat.size, dtype)


def _huber_inputs(y_true: ArrayLike, y_pred: ArrayLike, delta: float) -> tuple[Array, Array, type]:
    if not delta > 0:
        raise ValueError(f"delta must be > 0; got {delta!r}")
    y, _ = _floats(y_true)
    y_hat, dtype = _floats(y_pred)
    _check_shapes(y, y_hat, ("y_true", "y_pred"))
    return y, y_hat, dtype


def huber(y_true: ArrayLike, y_pred: ArrayLike, delta: float = 1.0) -> float:
    r"""$J = \dfrac1N\sum_i \ell(r_i)$, $r = y - \hat y$, with
    $\ell(r) = \tfrac12 r^2$ if $|r| \le \delta$ else $\delta(|r| - \tfrac12\delta)$.

    Quadratic near 0, linear in the tails, so an outlier pulls with a force of at most
    $\delta$. Gradient: $\partial J/\partial \hat y_i = \operatorname{clip}(\hat y_i - y_i,
    -\delta, \delta)/N$ (``huber_grad``).
    """
    y, y_hat, _ = _huber_inputs(y_true, y_pred, delta)
    with np.errstate(over="ignore"):
        r = np.abs(y - y_hat)
        # The square is taken of min(|r|, delta) so the branch np.where drops cannot overflow.
        quadratic = 0.5 * np.minimum(r, delta) ** 2
        return _mean(np.where(r <= delta, quadratic, delta * (r - 0.5 * delta)))


def huber_grad(y_true: ArrayLike, y_pred: ArrayLike, delta: float = 1.0) -> Array:
    r"""$\partial J/\partial \hat y_i = \operatorname{clip}(\hat y_i - y_i, -\delta, \delta)/N$."""
    y, y_hat, dtype = _huber_inputs(y_true, y_pred, delta)
    with np.errstate(over="ignore"):
        return _result(np.clip(y_hat - y, -delta, delta) / y_hat.size, dtype)


# -------------------------------------------------------------- binary cross-entropy


def _binary_inputs(y_true: ArrayLike, y_pred: ArrayLike, name: str) -> tuple[Array, Array, type]:
    y, _ = _floats(y_true)
    y_hat, dtype = _floats(y_pred)
    _check_shapes(y, y_hat, ("y_true", name))
    _check_values(y, "y_true", (y < 0) | (y > 1), "lie in [0, 1]")
    return y, y_hat, dtype


def _check_eps(eps: float) -> None:
    if not 0 < eps < 0.5:
        raise ValueError(f"eps must lie in (0, 0.5); got {eps!r}")


def binary_cross_entropy(y_true: ArrayLike, probs: ArrayLike, eps: float = 1e-7) -> float:
    r"""$J = -\dfrac1N\sum_i \big[y_i \ln p_i + (1 - y_i)\ln(1 - p_i)\big]$, $y_i \in [0, 1]$.

    $p$ is first clipped to $[\varepsilon, 1 - \varepsilon]$ (Keras' default
    $\varepsilon = 10^{-7}$), so $p = 0$ or $1$ costs at most $-\ln\varepsilon \approx 16.1$
    nats instead of inf; PyTorch instead clamps each log at $-100$. $\ln(1 - p)$ is
    ``log1p(-p)``, accurate for small $p$.

    Gradient: $\partial J/\partial p_i = \dfrac1N\left(-\dfrac{y_i}{p_i} +
    \dfrac{1 - y_i}{1 - p_i}\right)$, and **0 where $p_i$ was clipped**: a prediction that
    is confidently wrong ($p = 0$ for $y = 1$) gets no gradient at all. That is the price
    of clipping; ``binary_cross_entropy_with_logits`` does not pay it.
    """
    _check_eps(eps)
    y, p, _ = _binary_inputs(y_true, probs, "probs")
    _check_probs(p, "binary_cross_entropy_with_logits")
    p = np.clip(p, eps, 1.0 - eps)
    return _mean(-(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def binary_cross_entropy_grad(y_true: ArrayLike, probs: ArrayLike, eps: float = 1e-7) -> Array:
    r"""$\partial J/\partial p_i = \frac1N(-y_i/p_i + (1 - y_i)/(1 - p_i))$ for BCE.

    0 where $p_i < \varepsilon$ or $p_i > 1 - \varepsilon$ (clipped in the loss).
    """
    _check_eps(eps)
    y, p, dtype = _binary_inputs(y_true, probs, "probs")
    _check_probs(p, "binary_cross_entropy_with_logits")
    clipped = (p < eps) | (p > 1.0 - eps)
    p = np.clip(p, eps, 1.0 - eps)
    return _result(np.where(clipped, 0.0, -y / p + (1.0 - y) / (1.0 - p)) / p.size, dtype)


def binary_cross_entropy_with_logits(y_true: ArrayLike, logits: ArrayLike) -> float:
    r"""$J = -\dfrac1N\sum_i \big[y_i \ln\sigma(z_i) + (1 - y_i)\ln(1 - \sigma(z_i))\big]$.

    Computed as $y\,\mathrm{softplus}(-z) + (1 - y)\,\mathrm{softplus}(z)$, since
    $-\ln\sigma(z) = \mathrm{softplus}(-z)$ and $-\ln(1 - \sigma(z)) = \mathrm{softplus}(z)$:
    both terms are $\ge 0$, nothing cancels, nothing overflows, and no clipping is needed.

    Gradient: $\partial J/\partial z_i = (\sigma(z_i) - y_i)/N$
    (``binary_cross_entropy_with_logits_grad``).
    """
    y, z, _ = _binary_inputs(y_true, logits, "logits")
    return _mean(_weighted(y, softplus(-z)) + _weighted(1.0 - y, softplus(z)))


def binary_cross_entropy_with_logits_grad(y_true: ArrayLike, logits: ArrayLike) -> Array:
    r"""$\partial J/\partial z_i = (\sigma(z_i) - y_i)/N$.

    Computed as $\big((1 - y)\,\sigma(z) - y\,\sigma(-z)\big)/N$, the same number: for a
    hard label $y = 1$ it is $-\sigma(-z)/N$, which keeps its digits where $\sigma(z) - 1$
    would cancel to 0.
    """
    y, z, dtype = _binary_inputs(y_true, logits, "logits")
    return _result(((1.0 - y) * sigmoid(z) - y * sigmoid(-z)) / z.size, dtype)


# --------------------------------------------------------- categorical cross-entropy


def _categorical_inputs(
    y_true: ArrayLike, y_pred: ArrayLike, name: str
) -> tuple[Array, Array, type]:
    y, _ = _floats(y_true)
    y_hat, dtype = _floats(y_pred)
    _check_shapes(y, y_hat, ("y_true", name), ndim=2, layout="of shape (N, K)")
    _check_values(y, "y_true", (y < 0) | (y > 1), "lie in [0, 1] (one-hot or soft rows)")
    return y, y_hat, dtype


def categorical_cross_entropy(y_true: ArrayLike, probs: ArrayLike, eps: float = 1e-7) -> float:
    r"""$J = -\dfrac1N\sum_{i=1}^N \sum_{k=1}^K y_{ik} \ln p_{ik}$ for rows of probabilities.

    ``y_true`` is one-hot or soft, shape (N, K). $p$ is clipped to $[\varepsilon, 1]$ so
    that a class with $p = 0$ costs at most $-\ln\varepsilon$ instead of inf.

    Gradient: $\partial J/\partial p_{ik} = -\dfrac{y_{ik}}{N p_{ik}}$, and 0 where
    $p_{ik} < \varepsilon$ (clipped) (``categorical_cross_entropy_grad``).
    """
    _check_eps(eps)
    y, p, _ = _categorical_inputs(y_true, probs, "probs")
    _check_probs(p, "softmax_cross_entropy")
    per_sample = -np.sum(y * np.log(np.clip(p, eps, 1.0)), axis=1)
    return _mean(per_sample)


def categorical_cross_entropy_grad(y_true: ArrayLike, probs: ArrayLike, eps: float = 1e-7) -> Array:
    r"""$\partial J/\partial p_{ik} = -\dfrac{y_{ik}}{N p_{ik}}$, 0 where $p_{ik} < \varepsilon$."""
    _check_eps(eps)
    y, p, dtype = _categorical_inputs(y_true, probs, "probs")
    _check_probs(p, "softmax_cross_entropy")
    grad = np.where(p < eps, 0.0, -y / np.clip(p, eps, 1.0))
    return _result(grad / len(p), dtype)


def _softmax_inputs(y_true: ArrayLike, logits: ArrayLike) -> tuple[Array, Array, type]:
    y, z, dtype = _categorical_inputs(y_true, logits, "logits")
    row_sums = np.sum(y, axis=1)
    _check_values(row_sums, "each row of y_true", np.abs(row_sums - 1) > 1e-6, "sum to 1")
    return y, z, dtype


def softmax_cross_entropy(y_true: ArrayLike, logits: ArrayLike) -> float:
    r"""$J = -\dfrac1N\sum_{i}\sum_{k} y_{ik} \ln \mathrm{softmax}(z_i)_k$, from logits.

    ``y_true`` (N, K) holds one-hot or soft rows that sum to 1. $\ln\mathrm{softmax}$ is
    $(z - m) - \ln\sum_j e^{z_j - m}$ with $m$ the row maximum, so nothing overflows; a
    class with $y_{ik} = 0$ adds 0 even where its log-probability is $-\infty$.

    Gradient: $\partial J/\partial z_{ik} = (\mathrm{softmax}(z_i)_k - y_{ik})/N$
    (``softmax_cross_entropy_grad``).
    """
    y, z, _ = _softmax_inputs(y_true, logits)
    # A class with y = 0 adds nothing, even where its log-probability is -inf.
    return _mean(-np.sum(_weighted(y, log_softmax(z)), axis=1))


def softmax_cross_entropy_grad(y_true: ArrayLike, logits: ArrayLike) -> Array:
    r"""$\partial J/\partial z_{ik} = (\mathrm{softmax}(z_i)_k - y_{ik})/N$.

    Where $y_{ik} = 1$ (one-hot), $p_{ik} - 1$ is computed as $-\sum_{j \ne k} p_{ij}$, so
    a confident, correct prediction keeps its small gradient instead of rounding to 0.
    """
    y, z, dtype = _softmax_inputs(y_true, logits)
    return _result(_softmax_minus(softmax(z), y) / len(z), dtype)


def _sparse_inputs(labels: ArrayLike, logits: ArrayLike) -> tuple[np.ndarray, Array, type]:
    z, dtype = _floats(logits)
    if z.ndim != 2 or z.size == 0:
        raise ValueError(f"logits must be a non-empty 2-d array of shape (N, K); got {z.shape}")
    labels = _check_labels(labels, "labels", z)
    _check_values(
        labels, "labels", labels == IGNORE_INDEX, f"be class indices in [0, {z.shape[1]})"
    )
    return labels, z, dtype


def sparse_categorical_cross_entropy(labels: ArrayLike, logits: ArrayLike) -> float:
    r"""$J = -\dfrac1N\sum_i \ln \mathrm{softmax}(z_i)_{c_i}$ for class indices $c_i$.

    ``labels`` has shape (N,) and holds integers in $[0, K)$; ``logits`` has shape (N, K).
    The same number as ``softmax_cross_entropy`` with one-hot rows, without building them.

    Gradient: $\partial J/\partial z_{ik} = (\mathrm{softmax}(z_i)_k - [k = c_i])/N$
    (``sparse_categorical_cross_entropy_grad``).
    """
    labels, z, _ = _sparse_inputs(labels, logits)
    per_sample = _class_nll(labels, z)
    return _mean(per_sample)


def sparse_categorical_cross_entropy_grad(labels: ArrayLike, logits: ArrayLike) -> Array:
    r"""$\partial J/\partial z_{ik} = (\mathrm{softmax}(z_i)_k - [k = c_i])/N$.

    At $k = c_i$, $p_k - 1$ is computed as $-\sum_{j \ne k} p_j$ (no cancellation).
    """
    labels, z, dtype = _sparse_inputs(labels, logits)
    grad = _class_ce_grad(labels, z)
    return _result(grad / len(z), dtype)


# ---------------------------------------------------------------------- focal loss


def _check_focal_params(alpha: float, gamma: float) -> None:
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1]; got {alpha!r}")
    if not gamma >= 0:
        raise ValueError(f"gamma must be >= 0; got {gamma!r}")


def _focal_inputs(
    y_true: ArrayLike, probs: ArrayLike, alpha: float, gamma: float, eps: float
) -> tuple[Array, Array, type]:
    _check_focal_params(alpha, gamma)
    _check_eps(eps)
    y, _ = _floats(y_true)
    p, dtype = _floats(probs)
    _check_shapes(y, p, ("y_true", "probs"))
    _check_values(y, "y_true", (y != 0) & (y != 1), "be 0 or 1")
    _check_probs(p, "binary_cross_entropy_with_logits")
    return y, p, dtype


def focal_loss(
    y_true: ArrayLike, probs: ArrayLike, alpha: float = 0.25, gamma: float = 2.0, eps: float = 1e-7
) -> float:
    r"""$J = -\dfrac1N\sum_i \alpha_t (1 - p_t)^\gamma \ln p_t$ (Lin et al., 2017).

    Labels $y \in \{0, 1\}$: $p_t = p$ and $\alpha_t = \alpha$ where $y = 1$; $p_t = 1 - p$
    and $\alpha_t = 1 - \alpha$ where $y = 0$. The factor $(1 - p_t)^\gamma$ shrinks the
    loss of well-classified samples; $\gamma = 0$, $\alpha = \tfrac12$ gives half the binary cross-entropy. As there,
    $p$ is clipped to $[\varepsilon, 1 - \varepsilon]$ and $\ln(1 - p)$ is ``log1p(-p)``.

    Gradient (``focal_loss_grad``), 0 where $p$ was clipped:
    $\dfrac{\partial J}{\partial p} = \dfrac1N\Big[y\,\alpha\big(\gamma(1-p)^{\gamma-1}\ln p -
    \tfrac{(1-p)^\gamma}{p}\big) + (1-y)(1-\alpha)\big(\tfrac{p^\gamma}{1-p} -
    \gamma p^{\gamma-1}\ln(1-p)\big)\Big]$.
    """
    y, p, _ = _focal_inputs(y_true, probs, alpha, gamma, eps)
    p = np.clip(p, eps, 1.0 - eps)
    positive = alpha * (1.0 - p) ** gamma * np.log(p)
    negative = (1.0 - alpha) * p**gamma * np.log1p(-p)
    return _mean(-(y * positive + (1.0 - y) * negative))


def focal_loss_grad(
    y_true: ArrayLike, probs: ArrayLike, alpha: float = 0.25, gamma: float = 2.0, eps: float = 1e-7
) -> Array:
    r"""$\partial J/\partial p$ for ``focal_loss`` (formula there), 0 where $p$ was clipped."""
    y, p, dtype = _focal_inputs(y_true, probs, alpha, gamma, eps)
    clipped = (p < eps) | (p > 1.0 - eps)
    p = np.clip(p, eps, 1.0 - eps)
    positive = alpha * (gamma * (1.0 - p) ** (gamma - 1.0) * np.log(p) - (1.0 - p) ** gamma / p)
    negative = (1.0 - alpha) * (p**gamma / (1.0 - p) - gamma * p ** (gamma - 1.0) * np.log1p(-p))
    grad = np.where(clipped, 0.0, y * positive + (1.0 - y) * negative)
    return _result(grad / p.size, dtype)


def _focal_logit_inputs(
    y_true: ArrayLike, logits: ArrayLike, alpha: float, gamma: float
) -> tuple[Array, Array, Array, type]:
    r"""Check the arguments as ``focal_loss`` does; return $u = (2y - 1)z$, $\alpha_t$, $s$, dtype."""
    _check_focal_params(alpha, gamma)
    y, _ = _floats(y_true)
    z, dtype = _floats(logits)
    _check_shapes(y, z, ("y_true", "logits"))
    _check_values(y, "y_true", (y != 0) & (y != 1), "be 0 or 1")
    sign = 2.0 * y - 1.0  # +1 for a positive, -1 for a negative: u = s z is exact
    alpha_t = np.where(y == 1, alpha, 1.0 - alpha)
    return sign * z, alpha_t, sign, dtype


def focal_loss_with_logits(
    y_true: ArrayLike, logits: ArrayLike, alpha: float = 0.25, gamma: float = 2.0
) -> float:
    r"""$J = -\dfrac1N\sum_i \alpha_t (1 - p_t)^\gamma \ln p_t$ with $p = \sigma(z_i)$.

    ``focal_loss`` of the probabilities $\sigma(z)$ (Lin et al., 2017), taken from the logits
    as torchvision's ``sigmoid_focal_loss`` does: labels $y \in \{0, 1\}$, $\alpha_t = \alpha$
    where $y = 1$ and $1 - \alpha$ where $y = 0$.

    Computed, with $s = 2y - 1$ and $u = s z$, as
    $\ell = \alpha_t\,\sigma(-u)^\gamma\,\mathrm{softplus}(-u)$, since $p_t = \sigma(u)$,
    $1 - p_t = \sigma(-u)$ and $-\ln p_t = \mathrm{softplus}(-u)$: three factors $\ge 0$ from
    the stable ``sigmoid`` and ``softplus``, so nothing cancels, nothing overflows and no
    clipping is needed. The probability route loses everything in the tails: $1 - \sigma(z)$
    is 0 from $z \approx 37$ on, and $\ln\sigma(-1000)$ is $\ln 0$. $\gamma = 0$,
    $\alpha = \tfrac12$ gives half of ``binary_cross_entropy_with_logits``.

    Gradient (``focal_loss_with_logits_grad``):
    $\dfrac{\partial J}{\partial z_i} = -\dfrac{s\,\alpha_t}{N}\,\sigma(-u)^\gamma
    \big[\sigma(-u) + \gamma\,\sigma(u)\,\mathrm{softplus}(-u)\big]$.
    """
    u, alpha_t, _, _ = _focal_logit_inputs(y_true, logits, alpha, gamma)
    # sigma(-u)**gamma is 1 at u = -inf (1**gamma), where softplus(-u) = inf: inf, the limit.
    per_sample = _weighted(alpha_t, sigmoid(-u) ** gamma * softplus(-u))
    return _mean(np.where(np.isnan(u), np.nan, per_sample))  # nan even where alpha_t = 0


def focal_loss_with_logits_grad(
    y_true: ArrayLike, logits: ArrayLike, alpha: float = 0.25, gamma: float = 2.0
) -> Array:
    r"""$\partial J/\partial z_i = -s\,\alpha_t\,\sigma(-u)^\gamma\big[\sigma(-u) + \gamma\,\sigma(u)\,\mathrm{softplus}(-u)\big]/N$.

    $s = 2y - 1$, $u = s z$. The bracket is a sum of two terms $\ge 0$ (no cancellation, no
    interior zero), and it has no $\sigma(-u)^{\gamma - 1}$, which would be $0^{-1/2} = \infty$
    for $\gamma < 1$ at an easy sample. For a confidently wrong sample ($u \to -\infty$) it
    tends to $-s\,\alpha_t/N$; where $\sigma(u)$ is 0 its product with $\mathrm{softplus}(-u)$
    is taken as 0, so $u = -\infty$ gives that limit, not $0 \cdot \infty$.
    """
    u, alpha_t, sign, dtype = _focal_logit_inputs(y_true, logits, alpha, gamma)
    q = sigmoid(-u)  # 1 - p_t
    focusing = gamma * _weighted(sigmoid(u), softplus(-u))
    grad = -sign * _weighted(alpha_t, q**gamma * (q + focusing))
    grad = np.where(np.isnan(u), np.nan, grad)  # nan even where alpha_t = 0
    return _result(grad / u.size, dtype)


# ----------------------------------------------------------------------------- hinge


def _hinge_inputs(y_true: ArrayLike, scores: ArrayLike) -> tuple[Array, Array, type]:
    y, _ = _floats(y_true)
    s, dtype = _floats(scores)
    _check_shapes(y, s, ("y_true", "scores"))
    _check_values(y, "y_true", (y != -1) & (y != 1), "be -1 or +1 for the hinge loss")
    return y, s, dtype


def hinge(y_true: ArrayLike, scores: ArrayLike) -> float:
    r"""$J = \dfrac1N\sum_i \max(0, 1 - y_i s_i)$, labels $y_i \in \{-1, +1\}$, raw scores $s_i$.

    Zero once a sample is on the right side with margin 1 ($y s \ge 1$).
    Gradient: $\partial J/\partial s_i = -y_i/N$ where $1 - y_i s_i > 0$, else 0; at the
    corner $y_i s_i = 1$ it is 0, the left derivative of $\max(0, t)$ at $t = 0$
    (``hinge_grad``).
    """
    y, s, _ = _hinge_inputs(y_true, scores)
    return _mean(np.maximum(0.0, 1.0 - y * s))


def hinge_grad(y_true: ArrayLike, scores: ArrayLike) -> Array:
    r"""$\partial J/\partial s_i = -y_i/N$ where $1 - y_i s_i > 0$, else 0 (0 at the kink)."""
    y, s, dtype = _hinge_inputs(y_true, scores)
    grad = np.where(1.0 - y * s > 0, -y, 0.0)
    grad = np.where(np.isnan(s), np.nan, grad)  # a nan score gets a nan gradient, not a silent 0
    return _result(grad / s.size, dtype)


# ------------------------------------------------------------------ metric learning


def _contrastive_inputs(
    y_true: ArrayLike, distances: ArrayLike, margin: float
) -> tuple[Array, Array, type]:
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0; got {margin!r}")
    y, _ = _floats(y_true)
    d, dtype = _floats(distances)
    _check_shapes(y, d, ("y_true", "distances"))
    _check_values(y, "y_true", (y != 0) & (y != 1), "be 0 or 1 (1 = similar pair)")
    _check_values(d, "distances", d < 0, "be >= 0")
    return y, d, dtype


def contrastive_loss(y_true: ArrayLike, distances: ArrayLike, margin: float = 1.0) -> float:
    r"""$J = \dfrac1N\sum_i \tfrac12\big[y_i d_i^2 + (1 - y_i)\max(0, m - d_i)^2\big]$.

    $y_i = 1$ marks a similar pair (pulled together), $y_i = 0$ a dissimilar one (pushed
    apart until $d_i \ge m$); $d_i \ge 0$ is the distance between the two embeddings.
    Gradient: $\partial J/\partial d_i = \big[y_i d_i - (1 - y_i)\max(0, m - d_i)\big]/N$
    (``contrastive_loss_grad``).
    """
    y, d, _ = _contrastive_inputs(y_true, distances, margin)
    # Choosing the branch (not y * d**2) avoids 0 * inf where d**2 overflows and y = 0.
    with np.errstate(over="ignore"):
        return _mean(0.5 * np.where(y == 1, d**2, np.maximum(0.0, margin - d) ** 2))


def contrastive_loss_grad(y_true: ArrayLike, distances: ArrayLike, margin: float = 1.0) -> Array:
    r"""$\partial J/\partial d_i = \big[y_i d_i - (1 - y_i)\max(0, m - d_i)\big]/N$."""
    y, d, dtype = _contrastive_inputs(y_true, distances, margin)
    grad = np.where(y == 1, d, np.minimum(0.0, d - margin))  # -max(0, m - d), without -0.0
    return _result(grad / d.size, dtype)


def _row_norms(v: Array) -> Array:
    r"""$\lVert v_i \rVert_2$ per row, scaled by $\max_j |v_{ij}|$ so no square overflows."""
    scale = np.max(np.abs(v), axis=1, keepdims=True)
    scale = np.where(scale > 0, scale, 1.0)
    return scale[:, 0] * np.sqrt(np.sum((v / scale) ** 2, axis=1))


def _triplet_parts(
    anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike, margin: float
) -> tuple[Array, Array, Array, Array, Array, tuple[type, type, type]]:
    """Differences ``a - p`` and ``a - n``, their norms, the per-triplet loss, and the dtypes."""
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0; got {margin!r}")
    a, a_dtype = _floats(anchor)
    p, p_dtype = _floats(positive)
    n, n_dtype = _floats(negative)
    _check_shapes(a, p, ("anchor", "positive"), ndim=2, layout="of shape (N, D)")
    _check_shapes(a, n, ("anchor", "negative"), ndim=2, layout="of shape (N, D)")
    # Only a difference beyond 1.8e308 overflows (to inf, the true size); if both distances
    # do, inf - inf makes that triplet's loss nan. Nothing else can overflow here.
    with np.errstate(over="ignore", invalid="ignore"):
        to_positive, to_negative = a - p, a - n
        d_ap, d_an = _row_norms(to_positive), _row_norms(to_negative)
        per_triplet = np.maximum(0.0, d_ap - d_an + margin)
    return to_positive, to_negative, d_ap, d_an, per_triplet, (a_dtype, p_dtype, n_dtype)


def triplet_loss(
    anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike, margin: float = 1.0
) -> float:
    r"""$J = \dfrac1N\sum_i \max\big(0, \lVert a_i - p_i\rVert - \lVert a_i - n_i\rVert + m\big)$.

    Rows of ``anchor``, ``positive`` and ``negative`` (each (N, D)) are embeddings; the
    distances are Euclidean. The loss is 0 once every negative is farther from its anchor
    than the positive by at least the margin $m$.

    Gradient (``triplet_loss_grad``), for a triplet with a positive loss and
    $u = (a - p)/\lVert a - p\rVert$, $w = (a - n)/\lVert a - n\rVert$:
    $\partial J/\partial a = (u - w)/N$, $\partial J/\partial p = -u/N$,
    $\partial J/\partial n = w/N$; 0 for a triplet with zero loss (0 at the kink too).
    """
    *_, per_triplet, _ = _triplet_parts(anchor, positive, negative, margin)
    return _mean(per_triplet)


def triplet_loss_grad(
    anchor: ArrayLike, positive: ArrayLike, negative: ArrayLike, margin: float = 1.0
) -> tuple[Array, Array, Array]:
    r"""Return $(\partial J/\partial a, \partial J/\partial p, \partial J/\partial n)$.

    $\partial J/\partial a = (u - w)/N$, $\partial J/\partial p = -u/N$,
    $\partial J/\partial n = w/N$ with the unit vectors $u, w$ of ``triplet_loss``, on the
    triplets whose loss is positive. Where a distance is 0 its norm has no derivative; we
    use the subgradient 0 for that norm ($u = 0$ or $w = 0$). Each result has the shape
    and dtype rule of its own input.
    """
    to_positive, to_negative, d_ap, d_an, per_triplet, dtypes = _triplet_parts(
        anchor, positive, negative, margin
    )
    u = to_positive / np.where(d_ap > 0, d_ap, 1.0)[:, None]  # 0 where d_ap = 0
    w = to_negative / np.where(d_an > 0, d_an, 1.0)[:, None]
    # Active triplets, and nan rows so that a nan input reaches the gradient.
    active = ((per_triplet > 0) | np.isnan(per_triplet))[:, None]
    count = len(per_triplet)
    grads = (
        np.where(active, u - w, 0.0) / count,
        np.where(active, -u, 0.0) / count,
        np.where(active, w, 0.0) / count,
    )
    return tuple(_result(g, dtype) for g, dtype in zip(grads, dtypes, strict=True))


# ------------------------------------------------------------------ sequence losses


def _sequence_inputs(
    labels: ArrayLike, logits: ArrayLike, name: str
) -> tuple[np.ndarray, Array, type]:
    z, dtype = _floats(logits)
    if z.ndim != 3 or z.size == 0:
        raise ValueError(f"logits must be a non-empty 3-d array of shape (B, T, V); got {z.shape}")
    return _check_labels(labels, name, z), z, dtype


def _next_token_inputs(tokens: ArrayLike, logits: ArrayLike) -> tuple[np.ndarray, Array, type]:
    tokens, z, dtype = _sequence_inputs(tokens, logits, "tokens")
    vocab = z.shape[2]
    _check_values(tokens, "tokens", tokens == IGNORE_INDEX, f"be token ids in [0, {vocab})")
    if z.shape[1] < 2:
        raise ValueError(f"next_token_loss needs sequences of length T >= 2; got T = {z.shape[1]}")
    return tokens, z, dtype


def next_token_loss(tokens: ArrayLike, logits: ArrayLike) -> float:
    r"""$J = -\dfrac{1}{B(T-1)}\sum_{b}\sum_{t=0}^{T-2} \ln\mathrm{softmax}(z_{b,t})_{x_{b,t+1}}$.

    The causal language-model loss: the logits at position $t$ (shape (B, T, V)) predict the
    token at $t + 1$ of ``tokens`` (shape (B, T), integer ids). The last position has no
    next token and is not scored. Perplexity is $e^J$.

    Gradient (``next_token_loss_grad``), shape (B, T, V):
    $(\mathrm{softmax}(z_{b,t}) - \mathrm{onehot}(x_{b,t+1}))/(B(T-1))$ for $t \le T-2$, and 0
    at $t = T-1$.
    """
    tokens, z, _ = _next_token_inputs(tokens, logits)
    per_position = _class_nll(tokens[:, 1:], z[:, :-1])
    return _mean(per_position)


def next_token_loss_grad(tokens: ArrayLike, logits: ArrayLike) -> Array:
    r"""$(\mathrm{softmax}(z_{b,t}) - \mathrm{onehot}(x_{b,t+1}))/(B(T-1))$; 0 at $t = T-1$."""
    tokens, z, dtype = _next_token_inputs(tokens, logits)
    inner = _class_ce_grad(tokens[:, 1:], z[:, :-1])
    grad = np.zeros_like(z)
    grad[:, :-1] = inner / inner[..., 0].size
    return _result(grad, dtype)


def _masked_inputs(labels: ArrayLike, logits: ArrayLike) -> tuple[np.ndarray, Array, Array, type]:
    """``labels``, ``logits`` and the mask of scored positions; only those are computed on."""
    labels, z, dtype = _sequence_inputs(labels, logits, "labels")
    return labels, z, labels != IGNORE_INDEX, dtype


def masked_lm_loss(labels: ArrayLike, logits: ArrayLike) -> float:
    r"""$J = -\dfrac{1}{|S|}\sum_{(b,t) \in S} \ln\mathrm{softmax}(z_{b,t})_{y_{b,t}}$.

    The masked language-model (BERT) loss: ``labels`` (B, T) holds the original token id at
    the positions that were masked and $-100$ (``IGNORE_INDEX``) elsewhere; $S$ is the set
    of scored positions. With no scored position we return 0.0 (PyTorch's
    ``cross_entropy`` returns nan there, 0/0).

    Gradient (``masked_lm_loss_grad``), shape (B, T, V):
    $(\mathrm{softmax}(z_{b,t}) - \mathrm{onehot}(y_{b,t}))/|S|$ on $S$, 0 elsewhere.
    """
    labels, z, scored, _ = _masked_inputs(labels, logits)
    if not np.any(scored):
        return 0.0
    return _mean(_class_nll(labels[scored], z[scored]))


def masked_lm_loss_grad(labels: ArrayLike, logits: ArrayLike) -> Array:
    r"""$(\mathrm{softmax}(z_{b,t}) - \mathrm{onehot}(y_{b,t}))/|S|$ on scored positions, else 0."""
    labels, z, scored, dtype = _masked_inputs(labels, logits)
    grad = np.zeros_like(z)
    if np.any(scored):  # no scored position: the zero gradient
        grad[scored] = _class_ce_grad(labels[scored], z[scored]) / np.sum(scored)
    return _result(grad, dtype)


# --------------------------------------------------------------------------- registries

LOSSES: dict[str, Callable[..., float]] = {
    f.__name__: f
    for f in (
        mse,
        mae,
        huber,
        binary_cross_entropy,
        binary_cross_entropy_with_logits,
        categorical_cross_entropy,
        softmax_cross_entropy,
        sparse_categorical_cross_entropy,
        focal_loss,
        focal_loss_with_logits,
        hinge,
        contrastive_loss,
        triplet_loss,
        next_token_loss,
        masked_lm_loss,
    )
}
"""Every loss, by name."""

LOSS_GRADIENTS: dict[str, Callable[..., Array | tuple[Array, ...]]] = {
    f.__name__: f
    for f in (
        mse_grad,
        mae_grad,
        huber_grad,
        binary_cross_entropy_grad,
        binary_cross_entropy_with_logits_grad,
        categorical_cross_entropy_grad,
        softmax_cross_entropy_grad,
        sparse_categorical_cross_entropy_grad,
        focal_loss_grad,
        focal_loss_with_logits_grad,
        hinge_grad,
        contrastive_loss_grad,
        triplet_loss_grad,
        next_token_loss_grad,
        masked_lm_loss_grad,
    )
}
"""Every gradient, by its function name (``"mse_grad"``); ``LOSS_GRADIENTS[name + "_grad"]``."""

__all__ = [*LOSSES, *LOSS_GRADIENTS, "LOSSES", "LOSS_GRADIENTS", "IGNORE_INDEX"]
