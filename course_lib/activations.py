r"""Reference activation functions and their derivatives, in NumPy.

Every lesson, the checker and the autograder compare against these. Each function ``f``
stands next to its derivative ``f_grad``, so that forward and backward read together.

Conventions (see ``docs/notation.md``):

- Elementwise over arrays of any shape; the result is a new ``np.ndarray`` of the same
  shape (0-d for a scalar). The input is never modified.
- float32 in gives float32 out, computed in float64 and rounded once. Everything else
  (float64, ints, bools, lists, Python scalars) gives float64.
- Numerically stable for every finite input: no overflow warning, no inf or nan unless
  the exact result itself overflows. ``nan`` propagates; ``±inf`` gives the limit.
- At a kink the gradient is the **left derivative**, as in PyTorch: ``relu_grad(0) == 0``.

Three techniques recur, each explained where it is first used:

1. Branch on the sign so that ``exp`` only ever sees a non-positive argument
   (``sigmoid``).
2. Never form ``1 - s`` when ``s`` is close to 1 (``sigmoid_grad``, ``tanh_grad``).
3. Keep the digits of a product that sits inside ``exp``: :math:`e^{-x^2/2}` and
   :math:`e^{-\beta x}` are evaluated with the rounding error of :math:`x^2` or
   :math:`\beta x` carried along (``_two_prod``), because ``exp`` multiplies an absolute
   error in its argument into a relative error of the same size.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.floating]

SELU_ALPHA = 1.6732632423543772848170429916717
"""SELU's :math:`\\alpha` (Klambauer et al., 2017), derived in lesson 07."""
SELU_SCALE = 1.0507009873554804934193349852946
"""SELU's :math:`\\lambda`, the scale."""
GELU_SIGMOID_C = 1.702
"""The constant of the sigmoid approximation :math:`x\\,\\sigma(1.702x)` of GELU."""
GELU_TANH_C = 0.044715
"""The cubic coefficient of the tanh approximation of GELU."""

_SELU_SCALE_ALPHA = SELU_SCALE * SELU_ALPHA
# Decimal constants carried as two doubles (hi + lo), so that the tails of the GELU
# approximations are as exact as their definitions: e.g. 1.702 - float(1.702) = 4.3e-17,
# which exp would turn into 30 ULP at x = -400. Values: mpmath, 50 digits.
_GELU_SIGMOID_C_LO = 4.263256414560601e-17  # float(mpf('1.702') - mpf(1.702))
_GELU_TANH_C_LO = 2.1960211427085595e-18  # float(mpf('0.044715') - mpf(0.044715))
_GELU_TANH_K = 1.5957691216057308  # 2*sqrt(2/pi)
_GELU_TANH_K_LO = -9.96930880911092e-17  # float(2*sqrt(2/pi) - mpf(1.5957691216057308))
_SQRT1_2 = 0.7071067811865476  # 1/sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327  # 1/sqrt(2*pi)
_SQRT_2_OVER_PI = 0.7978845608028654  # sqrt(2/pi)
# Beyond |x| = 40 the Gaussian tail exp(-x^2/2) is 0 in double precision (it underflows
# at 38.6), so clipping there changes no result and keeps x*x far from overflow.
_GAUSS_CLIP = 40.0
_TINY = np.finfo(np.float64).tiny  # the smallest normal double, 2.2e-308


def _elementwise(fn: Callable[..., Array]) -> Callable[..., Array]:
    """Wrap an elementwise formula written for float64 arrays.

    The wrapper turns the input into a float64 *copy* (so the caller's array is never
    touched), lets ``nan`` propagate, and rounds once to float32 for float32 input.
    """

    @functools.wraps(fn)
    def wrapper(x: ArrayLike, *args, **kwargs) -> Array:
        x = np.asarray(x)
        out_dtype = np.float32 if x.dtype == np.float32 else np.float64
        x64 = x.astype(np.float64)
        out = fn(x64, *args, **kwargs)
        out = np.where(np.isnan(x64), np.nan, out)
        return _round_to(out, out_dtype)

    return wrapper


def _round_to(out: ArrayLike, dtype: type) -> Array:
    """Round a float64 result once to ``dtype``.

    Rounding to float32 overflows where the exact value lies beyond float32's range;
    inf is then the correctly rounded answer, so the warning is noise.
    """
    with np.errstate(over="ignore"):
        # Every caller passes an array of its own: no copy when it is float64 already.
        return np.asarray(out, dtype=np.float64).astype(dtype, copy=False)


def _two_prod(a: ArrayLike, b: ArrayLike) -> tuple[Array, Array]:
    """Return ``hi, lo`` with ``hi = fl(a*b)`` and ``hi + lo == a*b`` exactly.

    Dekker's product (1971) with Veltkamp's split; valid for ``|a|, |b| < 1e300``.
    """

    def split(v):
        c = 134217729.0 * v  # 2**27 + 1
        big = c - (c - v)
        return big, v - big

    a_big, a_small = split(np.asarray(a, dtype=np.float64))
    b_big, b_small = split(np.asarray(b, dtype=np.float64))
    hi = a * b
    lo = ((a_big * b_big - hi) + a_big * b_small + a_small * b_big) + a_small * b_small
    return hi, lo


def _exp_neg_abs(hi: Array, lo: Array) -> tuple[Array, Array]:
    r"""Return $e = e^{-|t|}$ and $h = e^{-|t|/2}$ for $t = hi + lo$, the tiny ``lo`` as $1 \mp lo$."""
    sign = np.sign(hi)
    e = np.exp(-np.abs(hi)) * (1.0 - sign * lo)
    h = np.exp(-0.5 * np.abs(hi)) * (1.0 - 0.5 * sign * lo)
    return e, h


def _exp_neg_2abs(x: Array) -> Array:
    """$e^{-2|x|}$; clipping at $|x| = 400$ changes nothing (it is 0 there) and stops ``2|x|`` overflowing."""
    return np.exp(-2.0 * np.minimum(np.abs(x), 400.0))


def _times_exp(u: Array, e: Array, h: Array) -> Array:
    """``u * e`` for ``0 <= e = h**2 <= 1``, without a subnormal intermediate.

    Where ``e`` is subnormal it has lost digits, so the product is formed as
    ``(u*h)*h``, which rounds only once into the subnormal range; and where ``h``
    underflowed to 0 the result is 0, even for ``u = ±inf``.
    """
    u = np.where(h == 0.0, 0.0, u)
    return np.where(e >= _TINY, u * e, (u * h) * h)


# ----------------------------------------------------------------------------- linear


@_elementwise
def identity(x: ArrayLike) -> Array:
    r"""$f(x) = x$."""
    return x


@_elementwise
def identity_grad(x: ArrayLike) -> Array:
    r"""$f'(x) = 1$."""
    return np.ones_like(x)


@_elementwise
def binary_step(x: ArrayLike) -> Array:
    r"""$f(x) = 1$ if $x \ge 0$ else $0$."""
    return np.heaviside(x, 1.0)


@_elementwise
def binary_step_grad(x: ArrayLike) -> Array:
    r"""$f'(x) = 0$ wherever it exists; we return 0 at the jump too (nothing to learn from)."""
    return np.zeros_like(x)


# ------------------------------------------------------------------- sigmoid and tanh


@_elementwise
def sigmoid(x: ArrayLike) -> Array:
    r"""$\sigma(x) = \dfrac{1}{1 + e^{-x}}$.

    Computed as $1/(1+e)$ for $x \ge 0$ and $e/(1+e)$ for $x < 0$, with $e = e^{-|x|}$,
    so that ``exp`` never overflows. The textbook form fails at ``x = -1000``:
    ``1/(1+np.exp(1000))`` warns "overflow encountered in exp".
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


@_elementwise
def sigmoid_grad(x: ArrayLike) -> Array:
    r"""$\sigma'(x) = \sigma(x)\,(1 - \sigma(x))$.

    Computed as $e/(1+e)^2$ with $e = e^{-|x|}$ ($\sigma'$ is even): the textbook
    ``s*(1-s)`` returns exactly 0 from ``x = 37`` on, where $\sigma'(x) \approx e^{-x}$.
    """
    e = np.exp(-np.abs(x))
    return e / (1.0 + e) ** 2


@_elementwise
def tanh(x: ArrayLike) -> Array:
    r"""$\tanh x = \dfrac{e^{x} - e^{-x}}{e^{x} + e^{-x}} = 2\sigma(2x) - 1$ (``np.tanh``)."""
    return np.tanh(x)


@_elementwise
def tanh_grad(x: ArrayLike) -> Array:
    r"""$\tanh'(x) = 1 - \tanh^2 x$.

    Computed as $4e/(1+e)^2$ with $e = e^{-2|x|}$: ``1 - t**2`` cancels to 0 from
    $|x| \approx 19$ on, where the derivative is still about $4e^{-2|x|}$.
    """
    e = _exp_neg_2abs(x)
    return 4.0 * e / (1.0 + e) ** 2


# --------------------------------------------------------------------- ReLU family


@_elementwise
def relu(x: ArrayLike) -> Array:
    r"""$\mathrm{ReLU}(x) = \max(0, x)$."""
    return np.maximum(x, 0.0)


@_elementwise
def relu_grad(x: ArrayLike) -> Array:
    r"""$\mathrm{ReLU}'(x) = 1$ if $x > 0$ else $0$; at the kink, the left derivative 0."""
    return np.heaviside(x, 0.0)


@_elementwise
def leaky_relu(x: ArrayLike, alpha: float = 0.01) -> Array:
    r"""$f(x) = x$ if $x \ge 0$ else $\alpha x$ (PyTorch's default $\alpha = 0.01$)."""
    return np.where(x >= 0, x, alpha * x)


@_elementwise
def leaky_relu_grad(x: ArrayLike, alpha: float = 0.01) -> Array:
    r"""$f'(x) = 1$ if $x > 0$ else $\alpha$; at the kink, the left derivative $\alpha$."""
    return np.where(x > 0, 1.0, alpha)


@_elementwise
def prelu(x: ArrayLike, alpha: ArrayLike) -> Array:
    r"""$f(x) = x$ if $x \ge 0$ else $\alpha x$, with a learned $\alpha$ (He et al., 2015).

    ``alpha`` is a scalar or an array that broadcasts against ``x``, for example one
    slope per channel.
    """
    return np.where(x >= 0, x, np.asarray(alpha, dtype=np.float64) * x)


@_elementwise
def prelu_grad(x: ArrayLike, alpha: ArrayLike) -> Array:
    r"""$\partial f/\partial x = 1$ if $x > 0$ else $\alpha$ (left derivative at 0)."""
    return np.where(x > 0, 1.0, np.asarray(alpha, dtype=np.float64))


@_elementwise
def prelu_grad_alpha(x: ArrayLike, alpha: ArrayLike) -> Array:
    r"""$\partial f/\partial \alpha = 0$ if $x > 0$ else $x$, elementwise.

    The result has the broadcast shape of ``x`` and ``alpha``; to get the gradient of a
    shared ``alpha``, sum it over the broadcast axes.
    """
    zeros = np.zeros(np.broadcast_shapes(x.shape, np.shape(alpha)))
    return np.where(x > 0, zeros, x)


@_elementwise
def elu(x: ArrayLike, alpha: float = 1.0) -> Array:
    r"""$f(x) = x$ if $x > 0$ else $\alpha(e^{x} - 1)$ (Clevert et al., 2016).

    ``expm1`` keeps the digits of $e^x - 1$ for small $|x|$; ``exp`` only sees $x \le 0$.
    """
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


@_elementwise
def elu_grad(x: ArrayLike, alpha: float = 1.0) -> Array:
    r"""$f'(x) = 1$ if $x > 0$ else $\alpha e^{x}$; at 0, the left derivative $\alpha$."""
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))


@_elementwise
def selu(x: ArrayLike) -> Array:
    r"""$\mathrm{SELU}(x) = \lambda x$ if $x > 0$ else $\lambda\alpha(e^{x} - 1)$.

    $\alpha \approx 1.6733$ and $\lambda \approx 1.0507$ (``SELU_ALPHA``, ``SELU_SCALE``)
    make mean 0 and variance 1 a fixed point (Klambauer et al., 2017). For
    $x > 1.7 \cdot 10^{308}$ the exact result exceeds the largest double and is inf.
    """
    with np.errstate(over="ignore"):
        positive = SELU_SCALE * x
    return np.where(x > 0, positive, _SELU_SCALE_ALPHA * np.expm1(np.minimum(x, 0.0)))


@_elementwise
def selu_grad(x: ArrayLike) -> Array:
    r"""$\mathrm{SELU}'(x) = \lambda$ if $x > 0$ else $\lambda\alpha e^{x}$ (left derivative at 0)."""
    return np.where(x > 0, SELU_SCALE, _SELU_SCALE_ALPHA * np.exp(np.minimum(x, 0.0)))


# ---------------------------------------------------------------------- soft ReLUs


@_elementwise
def softplus(x: ArrayLike) -> Array:
    r"""$\mathrm{softplus}(x) = \ln(1 + e^{x})$.

    Computed as $\max(x, 0) + \ln(1 + e^{-|x|})$ with ``log1p``: the textbook form
    overflows from $x \approx 710$ and returns 0 instead of $e^x$ below $x \approx -37$.
    """
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


@_elementwise
def softplus_grad(x: ArrayLike) -> Array:
    r"""$\mathrm{softplus}'(x) = \sigma(x)$."""
    return sigmoid(x)


def _gauss_tail(x: Array) -> tuple[Array, Array, Array]:
    r"""Return ``tail, g, h`` with $\Phi(-|x|) = \text{tail}\cdot g$, $g = e^{-x^2/2}$, $h = \sqrt g$.

    $\Phi(-|x|) = \tfrac12\operatorname{erfc}(|x|/\sqrt2)$ is written through the scaled
    $\operatorname{erfcx}(u) = e^{u^2}\operatorname{erfc}(u)$, which varies slowly, times
    $e^{-x^2/2}$ computed from the exact square (``_two_prod``). The direct ``erfc`` form
    loses about $x^2/2$ ULP: 50 ULP at $x = -10$.
    """
    from scipy.special import erfcx

    t = np.clip(x, -_GAUSS_CLIP, _GAUSS_CLIP)
    hi, lo = _two_prod(t, t)
    g, h = _exp_neg_abs(0.5 * hi, 0.5 * lo)
    tail = 0.5 * erfcx(np.abs(t) * _SQRT1_2)
    return tail, g, h


@_elementwise
def gelu(x: ArrayLike) -> Array:
    r"""$\mathrm{GELU}(x) = x\,\Phi(x) = \tfrac{x}{2}\left(1 + \operatorname{erf}(x/\sqrt2)\right)$.

    $\Phi$ is the standard normal CDF (Hendrycks and Gimpel, 2016). For $x < 0$ the
    product is formed as $(x\cdot\text{tail})\cdot e^{-x^2/2}$ (see ``_gauss_tail``), so
    the result keeps its digits down to where it underflows, near $x = -38$.
    """
    from scipy.special import erf

    tail, g, h = _gauss_tail(x)
    t = np.clip(x, -_GAUSS_CLIP, _GAUSS_CLIP)  # below -40, Phi(x) is 0 and so is the result
    # Near 0, erf itself is the most accurate route (erfcx loses a few ULP there).
    near_zero = 0.5 * t * (1.0 + erf(t * _SQRT1_2))
    far = np.where(x < 0, _times_exp(t * tail, g, h), x * (1.0 - tail * g))
    return np.where(np.abs(x) < 1.0, near_zero, far)


@_elementwise
def gelu_grad(x: ArrayLike) -> Array:
    r"""$\mathrm{GELU}'(x) = \Phi(x) + x\,\varphi(x)$, $\varphi(x) = e^{-x^2/2}/\sqrt{2\pi}$.

    Both terms share the factor $e^{-x^2/2}$, which is computed once and accurately.
    """
    from scipy.special import erf

    tail, g, h = _gauss_tail(x)
    t = np.clip(x, -_GAUSS_CLIP, _GAUSS_CLIP)  # beyond, x*phi(x) is 0 in double precision
    near_zero = 0.5 * (1.0 + erf(t * _SQRT1_2)) + t * _INV_SQRT_2PI * g
    far = np.where(
        x < 0, _times_exp(tail + t * _INV_SQRT_2PI, g, h), 1.0 + (t * _INV_SQRT_2PI - tail) * g
    )
    return np.where(np.abs(x) < 1.0, near_zero, far)


def _x_sigmoid(x: Array, t: Array, e: Array, h: Array) -> Array:
    r"""$x\,\sigma(t)$ given $e = e^{-|t|} = h^2$: $x/(1+e)$ for $t \ge 0$, $x e/(1+e)$ for $t < 0$.

    ``_times_exp`` keeps $x e$ from passing through a subnormal $e$: SiLU at
    $x = -740$ would otherwise lose 300 ULP.
    """
    return np.where(t >= 0, x, _times_exp(x, e, h)) / (1.0 + e)


def _two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """Return ``hi, lo`` with ``hi = fl(a + b)`` and ``hi + lo == a + b`` exactly (Knuth)."""
    hi = a + b
    back = hi - a
    return hi, (a - (hi - back)) + (b - back)


def _scaled(x: Array, beta: float, beta_lo: float = 0.0) -> tuple[Array, Array, Array]:
    r"""Return $t = \mathrm{fl}(\beta x)$, $e = e^{-|\beta x|}$ and $h = \sqrt e$, to full precision.

    $\beta$ is ``beta + beta_lo`` (a decimal constant carried in two doubles). $|x|$ is
    clipped where $\sigma(\beta x)$ is already 0 or 1 in double precision, so the product
    can neither overflow nor lose its rounding error inside ``exp``.
    """
    limit = min(1600.0 / max(abs(beta), 1e-300), 1e300)
    c = np.clip(x, -limit, limit)
    hi, lo = _two_prod(beta, c)
    return hi, *_exp_neg_abs(hi, lo + beta_lo * c)


def _gelu_tanh_arg(x: Array) -> tuple[Array, Array, Array]:
    r"""$t = 2\sqrt{2/\pi}\,(x + 0.044715x^3)$, $e = e^{-|t|}$ and $h = \sqrt e$, to full precision.

    ``exp(-|t|)`` magnifies the rounding error of $t$ by $|t|$ (1000 ULP at $x = -20$),
    so $t$ is accumulated in two doubles (``_two_prod``, ``_two_sum``). Beyond
    $|x| = 40$, $|t| > 4000$ and $\sigma(t)$ is exactly 0 or 1, so $x$ is clipped there.
    """
    c = np.clip(x, -_GAUSS_CLIP, _GAUSS_CLIP)
    sq, sq_lo = _two_prod(c, c)
    cube, cube_lo = _two_prod(sq, c)
    cube_lo = cube_lo + sq_lo * c
    k, k_lo = _two_prod(GELU_TANH_C, cube)
    k_lo = k_lo + GELU_TANH_C * cube_lo + _GELU_TANH_C_LO * cube
    u, u_lo = _two_sum(c, k)
    u_lo = u_lo + k_lo
    t, t_lo = _two_prod(_GELU_TANH_K, u)
    t_lo = t_lo + _GELU_TANH_K * u_lo + _GELU_TANH_K_LO * u
    return t, *_exp_neg_abs(t, t_lo)


@_elementwise
def gelu_tanh(x: ArrayLike) -> Array:
    r"""$\tfrac{x}{2}\left(1 + \tanh\!\left(\sqrt{2/\pi}\,(x + 0.044715x^3)\right)\right)$.

    The tanh approximation of GELU (Hendrycks and Gimpel, 2016). Computed as
    $x\,\sigma(t)$ with $t = 2\sqrt{2/\pi}(x + 0.044715x^3)$, since
    $1 + \tanh(t/2) = 2\sigma(t)$ and $1 + \tanh$ cancels for large negative arguments.
    """
    t, e, h = _gelu_tanh_arg(x)
    return _x_sigmoid(x, t, e, h)


@_elementwise
def gelu_tanh_grad(x: ArrayLike) -> Array:
    r"""$\sigma(t) + x\,\sigma(t)\sigma(-t)\,t'$ with $t' = 2\sqrt{2/\pi}(1 + 3\cdot0.044715x^2)$.

    $\sigma(t) = 1/(1+h^2)$ or $h^2/(1+h^2)$ and $\sigma(t)\sigma(-t) = h^2/(1+h^2)^2$,
    $h = e^{-|t|/2}$: never formed as $s(1-s)$.
    """
    t, e, h = _gelu_tanh_arg(x)
    c = np.clip(x, -_GAUSS_CLIP, _GAUSS_CLIP)
    dt = _GELU_TANH_K * (1.0 + 3.0 * GELU_TANH_C * c * c)
    sigma_t = np.where(t >= 0, 1.0, e) / (1.0 + e)
    return sigma_t + _times_exp(c * dt, e, h) / (1.0 + e) ** 2


@_elementwise
def gelu_sigmoid(x: ArrayLike) -> Array:
    r"""$x\,\sigma(1.702x)$, the sigmoid approximation of GELU."""
    return _swish(x, GELU_SIGMOID_C, _GELU_SIGMOID_C_LO)


@_elementwise
def gelu_sigmoid_grad(x: ArrayLike) -> Array:
    r"""$\sigma(1.702x)\left(1 + 1.702x\,\sigma(-1.702x)\right)$."""
    return _swish_grad(x, GELU_SIGMOID_C, _GELU_SIGMOID_C_LO)


def _swish(x: Array, beta: float, beta_lo: float = 0.0) -> Array:
    t, e, h = _scaled(x, beta, beta_lo)
    return _x_sigmoid(x, t, e, h)


def _swish_grad(x: Array, beta: float, beta_lo: float = 0.0) -> Array:
    # With e = exp(-|t|): (1 + e + t e)/(1+e)^2 for t >= 0 and e (1 + e + t)/(1+e)^2 for
    # t < 0; the two agree at t = 0 (both 1/2) and neither forms 1 - sigma.
    t, e, h = _scaled(x, beta, beta_lo)
    numerator = np.where(t >= 0, 1.0 + e + _times_exp(t, e, h), _times_exp(1.0 + e + t, e, h))
    return numerator / (1.0 + e) ** 2


@_elementwise
def swish(x: ArrayLike, beta: float = 1.0) -> Array:
    r"""$\mathrm{swish}_\beta(x) = x\,\sigma(\beta x)$ (Ramachandran et al., 2017).

    $\beta = 0$ gives $x/2$, $\beta = 1$ the SiLU, and $\beta \to \infty$ the ReLU.
    """
    return _swish(x, beta)


@_elementwise
def swish_grad(x: ArrayLike, beta: float = 1.0) -> Array:
    r"""$\partial_x = \sigma(\beta x) + \beta x\,\sigma(\beta x)\,(1 - \sigma(\beta x)) = \sigma(\beta x)(1 + \beta x\,\sigma(-\beta x))$."""
    return _swish_grad(x, beta)


@_elementwise
def swish_grad_beta(x: ArrayLike, beta: float = 1.0) -> Array:
    r"""$\partial_\beta = x^2\,\sigma(\beta x)\,(1 - \sigma(\beta x))$.

    With $e = e^{-|\beta x|}$ it is $x^2 e/(1+e)^2$. Where $x^2$ would overflow or $e$
    is subnormal, it is formed as $(x e^{-|\beta x|/2})^2/(1+e)^2$ instead.
    """
    t, e, h = _scaled(x, beta)
    x_h = np.where(h == 0.0, 0.0, x) * h  # x * e**(1/2), never x**2
    x_small = np.clip(x, -1e150, 1e150)
    with np.errstate(over="ignore"):  # only when the exact result exceeds 1.8e308
        direct = (x_small * x_small) * e
        halves = x_h * x_h
    safe = (np.abs(x) < 1e150) & (e >= _TINY)
    return np.where(safe, direct, halves) / (1.0 + e) ** 2


@_elementwise
def silu(x: ArrayLike) -> Array:
    r"""$\mathrm{SiLU}(x) = x\,\sigma(x)$, the swish with $\beta = 1$."""
    return _swish(x, 1.0)


@_elementwise
def silu_grad(x: ArrayLike) -> Array:
    r"""$\mathrm{SiLU}'(x) = \sigma(x)\,(1 + x\,\sigma(-x))$."""
    return _swish_grad(x, 1.0)


@_elementwise
def lisht(x: ArrayLike) -> Array:
    r"""$\mathrm{LiSHT}(x) = x \tanh x$ (Roy et al., 2019): even, non-negative, unbounded."""
    return np.abs(x) * np.tanh(np.abs(x))


@_elementwise
def lisht_grad(x: ArrayLike) -> Array:
    r"""$\mathrm{LiSHT}'(x) = \tanh x + x\,(1 - \tanh^2 x)$, the second term as $4xe/(1+e)^2$, $e = e^{-2|x|}$."""
    e = _exp_neg_2abs(x)
    h = np.exp(-np.abs(x))  # sqrt(e), computed directly so that it keeps its digits
    return np.tanh(x) + 4.0 * _times_exp(x, e, h) / (1.0 + e) ** 2


@_elementwise
def mish(x: ArrayLike) -> Array:
    r"""$\mathrm{mish}(x) = x \tanh(\mathrm{softplus}(x))$ (Misra, 2019).

    With $e = e^{-|x|}$, $\tanh(\ln(1+e^x))$ is the rational function
    $(1 + 2e)/(1 + 2e + 2e^2)$ for $x \ge 0$ and $e(e+2)/(e(e+2) + 2)$ for $x < 0$,
    which never overflows and never cancels.
    """
    e = np.exp(-np.abs(x))
    h = np.exp(-0.5 * np.abs(x))  # sqrt(e), computed directly so that it keeps its digits
    positive = x * (1.0 + 2.0 * e) / (1.0 + 2.0 * e + 2.0 * e * e)
    negative = _times_exp(x, e, h) * (e + 2.0) / (e * (e + 2.0) + 2.0)
    return np.where(x >= 0, positive, negative)


@_elementwise
def mish_grad(x: ArrayLike) -> Array:
    r"""$\mathrm{mish}'(x) = \tanh(\mathrm{sp}(x)) + x\,\sigma(x)\,\mathrm{sech}^2(\mathrm{sp}(x))$.

    In the rational form of ``mish`` with $e = e^{-|x|}$: for $x \ge 0$, with
    $q = 1 + 2e + 2e^2$, it is $((1+2e)q + 4xe^2(1+e))/q^2$; for $x < 0$, with
    $n = e(e+2)$, it is $e\,((e+2)(n+2) + 4x(1+e))/(n+2)^2$, whose bracket is expanded
    to $4(1+x) + e(6 + 4x + e(4 + e))$: fewer roundings before its terms partly cancel.
    """
    e = np.exp(-np.abs(x))
    h = np.exp(-0.5 * np.abs(x))
    q = 1.0 + 2.0 * e + 2.0 * e * e
    x_e2 = _times_exp(x, _exp_neg_2abs(x), e)  # x * e**2
    positive = ((1.0 + 2.0 * e) * q + 4.0 * (1.0 + e) * x_e2) / q**2
    n2 = 2.0 + e * (2.0 + e)
    x_neg = np.clip(x, -1e3, 0.0)  # only x < 0 is used, and below -1000 the factor e is 0
    bracket = 4.0 * (1.0 + x_neg) + e * (6.0 + 4.0 * x_neg + e * (4.0 + e))
    negative = _times_exp(bracket, e, h) / n2**2
    return np.where(x >= 0, positive, negative)


# ----------------------------------------------------------------------------- softmax


def _float_array(x: ArrayLike) -> tuple[Array, type]:
    """``x`` as float64, *not* copied when it is float64 already: read it, never write it."""
    x = np.asarray(x)
    return x.astype(np.float64, copy=False), (np.float32 if x.dtype == np.float32 else np.float64)


def _shifted_exp(x64: Array, axis: int) -> tuple[Array, Array, Array, Array]:
    r"""Return ``hi, lo, e, rest`` for the stable softmax family along ``axis``.

    - ``hi + lo == z - max(z)`` exactly (Knuth's two-sum). The rounding error ``lo`` is
      kept because ``exp`` turns an absolute error in $z - m$ into the same relative
      error in a probability: about 700 ULP for a probability near $e^{-700}$.
    - ``e`` $= e^{z - m}$, so the top term is exactly 1 and nothing overflows.
    - ``rest`` $= \sum e - 1$, the sum of every term but the top one, summed on its own
      so that a confident class keeps its digits: $\log(1 + 10^{-18})$ rounds to 0, while
      ``log1p(rest)`` does not.

    Infinite entries are replaced by their limit first: a row that holds $+\infty$ puts
    all of its mass, shared equally, on those entries.
    """
    # Memory: besides x64 (read only), at most four arrays of its size are alive at once
    # (hi, lo, e and one scratch array), which matters for a (128, 50000) batch of logits.
    pos_inf = np.isposinf(x64)
    if pos_inf.any():
        x64 = np.where(
            np.any(pos_inf, axis=axis, keepdims=True), np.where(pos_inf, 0.0, -np.inf), x64
        )
    del pos_inf
    m = np.max(x64, axis=axis, keepdims=True)
    m = np.where(np.isinf(m), 0.0, m)  # a row of -inf only: 0/0 later, so nan; nan stays nan
    with np.errstate(over="ignore", invalid="ignore"):
        # z - m may round to -inf (for z = -1e308, m = 1e308), whose exp is the exact 0;
        # at -inf entries lo is nan, and it is dropped below.
        hi = x64 - m
        scratch = hi - x64  # back
        lo = hi - scratch
        np.subtract(x64, lo, out=lo)  # x - (hi - back)
        np.subtract(-m, scratch, out=scratch)  # -m - back
        lo += scratch
    lo[~np.isfinite(hi)] = 0.0
    e = np.exp(hi)
    np.add(lo, 1.0, out=scratch)
    e *= scratch
    del scratch
    # rest: the sum with the top term set to 0 for the sum, then put back.
    top = np.argmax(x64, axis=axis, keepdims=True)
    top_e = np.take_along_axis(e, top, axis=axis)
    np.put_along_axis(e, top, 0.0, axis=axis)
    rest = np.sum(e, axis=axis, keepdims=True)
    np.put_along_axis(e, top, top_e, axis=axis)
    return hi, lo, e, rest


def softmax(x: ArrayLike, axis: int = -1) -> Array:
    r"""$\mathrm{softmax}(z)_i = \dfrac{e^{z_i}}{\sum_j e^{z_j}}$ along ``axis``.

    Computed as $e^{z_i - m}/\sum_j e^{z_j - m}$ with $m = \max_j z_j$: the same value,
    but every exponent is $\le 0$, so nothing overflows and the largest term is exactly 1.
    The textbook form returns nan for ``z = [1000, 0]`` ("overflow encountered in exp").
    """
    x64, out_dtype = _float_array(x)
    if x64.size == 0:
        return x64.astype(out_dtype)
    _, _, e, rest = _shifted_exp(x64, axis)
    rest += 1.0
    with np.errstate(invalid="ignore"):  # a row of -inf only is 0/0: nan, no limit exists
        e /= rest
    return _round_to(e, out_dtype)


def log_softmax(x: ArrayLike, axis: int = -1) -> Array:
    r"""$\log \mathrm{softmax}(z)_i = z_i - \log\sum_j e^{z_j}$ along ``axis``.

    Computed as $(z_i - m) - \operatorname{log1p}\big(\sum_{j \ne \text{top}} e^{z_j - m}\big)$
    (the log-sum-exp trick): nothing overflows, and a confident class gives its tiny
    negative value ($-4.2\cdot10^{-18}$ for ``[40, 0]``) instead of ``log(1.0) == 0``.
    """
    x64, out_dtype = _float_array(x)
    if x64.size == 0:
        return x64.astype(out_dtype)
    hi, lo, e, rest = _shifted_exp(x64, axis)
    del e
    with np.errstate(invalid="ignore"):  # a row of -inf only: nan
        hi -= np.log1p(rest)
        hi += lo
    return _round_to(hi, out_dtype)


def _softmax_and_complement(x64: Array) -> tuple[Array, Array]:
    """``s`` and ``1 - s`` along the last axis, the complement of the top class as ``rest/(1+rest)``."""
    _, _, e, rest = _shifted_exp(x64, -1)
    s = e / (1.0 + rest)
    # For a top term (e == 1), 1 - s = (sum - 1)/sum = rest/(1 + rest) exactly.
    return s, np.where(e == 1.0, rest / (1.0 + rest), 1.0 - s)


def softmax_jacobian(x: ArrayLike) -> Array:
    r"""$J_{ij} = \partial s_i/\partial z_j = s_i(\delta_{ij} - s_j)$ along the last axis.

    Shape ``(..., n, n)`` for ``x`` of shape ``(..., n)``. The diagonal $s_i(1 - s_i)$
    takes $1 - s_i$ of a confident class from the other terms, never as ``1 - s``.
    """
    x64, out_dtype = _float_array(x)
    if x64.size == 0:
        return np.zeros((*x64.shape, x64.shape[-1]), dtype=out_dtype)
    s, complement = _softmax_and_complement(x64)
    jac = -s[..., :, None] * s[..., None, :]
    diag = np.arange(s.shape[-1])
    jac[..., diag, diag] = s * complement
    return _round_to(jac, out_dtype)


def log_softmax_jacobian(x: ArrayLike) -> Array:
    r"""$J_{ij} = \partial \log s_i/\partial z_j = \delta_{ij} - s_j$ along the last axis."""
    x64, out_dtype = _float_array(x)
    if x64.size == 0:
        return np.zeros((*x64.shape, x64.shape[-1]), dtype=out_dtype)
    s, complement = _softmax_and_complement(x64)
    jac = np.broadcast_to(-s[..., None, :], (*s.shape, s.shape[-1])).copy()
    diag = np.arange(s.shape[-1])
    jac[..., diag, diag] = complement
    return _round_to(jac, out_dtype)


# --------------------------------------------------------------------------- registries

ACTIVATIONS: dict[str, Callable[..., Array]] = {
    f.__name__: f
    for f in (
        identity,
        binary_step,
        sigmoid,
        tanh,
        relu,
        leaky_relu,
        prelu,
        elu,
        selu,
        gelu,
        gelu_tanh,
        gelu_sigmoid,
        swish,
        silu,
        lisht,
        mish,
        softplus,
        softmax,
        log_softmax,
    )
}
"""Every forward function, by name."""

GRADIENTS: dict[str, Callable[..., Array]] = {
    f.__name__: f
    for f in (
        identity_grad,
        binary_step_grad,
        sigmoid_grad,
        tanh_grad,
        relu_grad,
        leaky_relu_grad,
        prelu_grad,
        prelu_grad_alpha,
        elu_grad,
        selu_grad,
        gelu_grad,
        gelu_tanh_grad,
        gelu_sigmoid_grad,
        swish_grad,
        swish_grad_beta,
        silu_grad,
        lisht_grad,
        mish_grad,
        softplus_grad,
        softmax_jacobian,
        log_softmax_jacobian,
    )
}
"""Every derivative (elementwise) and Jacobian (softmax, log-softmax), by name."""

__all__ = [*ACTIVATIONS, *GRADIENTS, "SELU_ALPHA", "SELU_SCALE", "GELU_SIGMOID_C", "GELU_TANH_C"]
