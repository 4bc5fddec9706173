r"""Gradient checking: central finite differences and the relative error.

The lessons compare every analytic derivative with a numerical one, the way CS231n taught
it: compute ``numerical_grad(f, x)``, then ``rel_error(analytic, numerical)``. As a rule of
thumb in float64 with the default step, a relative error below about ``1e-7`` means the
two agree; ``1e-4`` and above means a bug (or a kink within ``h`` of ``x``).

Only NumPy is needed; nothing here imports the rest of ``course_lib``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["numerical_grad", "rel_error"]

# Fixed signs for the elementwise probe (see numerical_grad); seeded, so results repeat.
_PROBE_SEED = 12345


def numerical_grad(
    f: Callable[[np.ndarray], ArrayLike],
    x: ArrayLike,
    h: float = 1e-6,
    *,
    elementwise: bool | None = None,
) -> NDArray[np.float64]:
    r"""$\dfrac{\partial f}{\partial x_j} \approx \dfrac{f(x + h e_j) - f(x - h e_j)}{2h}$.

    The central difference has an error of order $h^2 f'''$ from truncation plus
    $\varepsilon |f| / h$ from rounding; ``h = 1e-6`` balances them in float64 for values
    of order 1, giving about 9 to 10 correct digits.

    Two forms, chosen by ``elementwise``:

    - **elementwise** (``True``): for ``f`` that acts on each element on its own (an
      activation), the whole array is shifted at once,
      $f'(x) \approx (f(x + h) - f(x - h)) / 2h$, and the result has ``x``'s shape.
      Two calls of ``f`` in all.
    - **full Jacobian** (``False``): entry ``[i..., j...]`` is $\partial f_i/\partial x_j$,
      one pair of calls per element of ``x``. The result has shape
      ``f(x).shape + x.shape``; for a scalar-valued ``f`` (a loss), that is the gradient,
      with ``x``'s shape.
    - ``None`` (default): elementwise when ``f(x)`` has ``x``'s shape *and* a probe with
      shifts of random signs $s$ gives $s \odot$ the elementwise result (which holds only
      when the Jacobian is diagonal); otherwise the full Jacobian. So
      ``numerical_grad(sigmoid, z)`` is $\sigma'(z)$ and ``numerical_grad(softmax, z)`` is
      the $K \times K$ Jacobian. Pass ``elementwise`` explicitly to skip the probe.

    ``x`` is converted to a float64 copy; ``f`` never sees the caller's array.

    >>> import numpy as np
    >>> g = numerical_grad(np.sin, np.array([0.0, 1.0]))
    >>> bool(np.allclose(g, np.cos([0.0, 1.0]), rtol=1e-8))
    True
    """
    if not h > 0:
        raise ValueError(f"h must be > 0; got {h!r}")
    x = np.array(x, dtype=np.float64)  # a copy: the caller's array is never touched

    def evaluate(point: np.ndarray) -> np.ndarray:
        return np.asarray(f(point), dtype=np.float64)

    if elementwise is None:
        elementwise = _acts_elementwise(evaluate, x, h)
    if elementwise:
        plus, minus = evaluate(x + h), evaluate(x - h)
        if plus.shape != x.shape:
            raise ValueError(
                f"elementwise=True needs f(x) with x's shape {x.shape}; got {plus.shape}"
            )
        return (plus - minus) / (2.0 * h)

    out_shape = evaluate(x).shape
    jacobian = np.empty(out_shape + x.shape)
    for index in np.ndindex(x.shape):
        shifted = x.copy()
        shifted[index] = x[index] + h
        plus = evaluate(shifted)
        shifted[index] = x[index] - h
        minus = evaluate(shifted)
        jacobian[(Ellipsis, *index)] = (plus - minus) / (2.0 * h)
    return jacobian


def _acts_elementwise(
    evaluate: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float
) -> bool:
    """True when ``f(x)`` has ``x``'s shape and a random-sign probe sees a diagonal Jacobian."""
    if evaluate(x).shape != x.shape:
        return False
    if x.size <= 1:
        return True
    diagonal = (evaluate(x + h) - evaluate(x - h)) / (2.0 * h)
    signs = np.random.default_rng(_PROBE_SEED).choice([-1.0, 1.0], size=x.shape)
    probe = (evaluate(x + h * signs) - evaluate(x - h * signs)) / (2.0 * h)
    # A diagonal Jacobian D gives D s = s * diag; any coupling between elements breaks it.
    scale = max(float(np.max(np.abs(diagonal), initial=0.0)), 1.0)
    return bool(np.allclose(probe, signs * diagonal, rtol=1e-5, atol=1e-6 * scale))


def rel_error(a: ArrayLike, b: ArrayLike) -> float:
    r"""$\max_i \dfrac{|a_i - b_i|}{\max(10^{-8},\ |a_i| + |b_i|)}$, as in CS231n.

    Symmetric in ``a`` and ``b``; the floor $10^{-8}$ keeps entries where both are
    (nearly) 0 from dividing by 0. Arrays broadcast; an empty pair gives 0.0 and any
    ``nan`` gives ``nan``.

    >>> rel_error([1.0, 2.0], [1.0, 2.000002])
    4.999997499589917e-07
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0 and b.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):  # inf - inf is nan, which is the honest answer
        ratio = np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))
    return float(np.max(ratio))
