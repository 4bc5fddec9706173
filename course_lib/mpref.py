"""High-precision references for ``course_lib``, through mpmath.

``exact(name, x, **params)`` evaluates the mathematical function ``name`` at every element of
``x`` with mpmath and rounds the result **once**, to nearest-even, to float64 (or directly to
float32 with ``dtype=np.float32``). ``ulp_error(got, exact)`` measures a result in units in the
last place of the result's dtype, and ``standard_grid(dtype)`` is the grid of inputs described
in ``/work/shared/notes/accuracy.md`` (``standard_rows(k)`` is its counterpart for softmax
rows). ``ULP_TARGETS`` holds the accuracy targets of the course, ``derivative_zeros(name)`` the
interior zeros of a derivative, near which every fixed-precision formula cancels, and
``accuracy(name, fn, x, dtype)`` measures a function against all of that (used by
``tests/test_accuracy.py`` and ``benchmarks/accuracy.py``).

How the references are computed, so that they can be trusted:

- Each value is evaluated at ``WORKING_DPS`` (40) significant digits and again at 60; when the
  two round to different floats (a value very close to a rounding boundary, or a formula that
  lost digits) the precision doubles until two consecutive evaluations agree.
- The formulas are the textbook ones, written so that nothing cancels at 40 digits:
  ``sigmoid'(x) = sigmoid(x) sigmoid(-x)`` rather than ``s (1 - s)``, ``log1p``/``expm1``
  where an argument is tiny, ``1 + tanh(u) = 2 sigmoid(2u)`` for ``gelu_tanh``, and
  ``tanh(softplus(x)) = n / (n + 2)`` with ``n = e^x (e^x + 2)`` for ``mish``.
- Constants inside a definition are exact decimals (``0.044715``, ``1.702``, ``sqrt(2/pi)``,
  SELU's alpha and scale from their closed form), so a library that stores them as float64
  is measured against the mathematical function, not against its own constants. Parameters
  passed by the caller (``alpha=0.01``) are taken at their exact float value.
- ``x = ±inf`` gives the mathematical limit; ``nan`` gives ``nan``. mpmath has no signed zero:
  a zero input is treated as 0, and ``f(-0.0)`` is returned as ``-0.0`` for the functions that
  behave like ``c x`` (``c > 0``) through the origin, ``+0.0`` otherwise (the sign never changes
  a ULP error).
- Kinks use the left derivative: ``relu_grad(0) = 0``, ``leaky_relu_grad(0) = alpha``,
  ``elu_grad(0) = alpha``, ``binary_step(0) = 1`` (``x >= 0``) with ``binary_step_grad = 0``.

Rounding to float32 is done directly from the mpmath value (24-bit significand, float32
subnormals and overflow), not through float64: rounding first to float64 and then to float32
("double rounding") can be off by one float32 ULP when the value lies within half a float64 ULP
of a float32 midpoint. The direct rounding avoids that.

This module is not imported by ``import course_lib`` (it imports mpmath at the top).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from mpmath import mp

WORKING_DPS = 40
_CHECK_DPS = 60
_MAX_DPS = 1280

#: Forward accuracy targets in ULP of float64 (the course issue). Gradients: ``GRADIENT_TARGET``.
ULP_TARGETS: dict[str, float] = {
    **dict.fromkeys(
        [
            "identity",
            "binary_step",
            "sigmoid",
            "tanh",
            "softplus",
            "relu",
            "leaky_relu",
            "prelu",
            "elu",
            "selu",
            "lisht",
            "log_softmax",
            "binary_cross_entropy_with_logits",
            "softmax_cross_entropy",
        ],
        2.0,
    ),
    **dict.fromkeys(["gelu", "gelu_tanh", "gelu_sigmoid", "swish", "silu", "mish", "softmax"], 4.0),
    "softmax_jacobian": 8.0,
    # A product of three rounded factors, sigma(-u)**gamma * softplus(-u), the first raised to
    # gamma: measured (benchmarks/accuracy.py, labels 0 and 1, gamma in {0, 0.5, 1, 2}) at most
    # 6 ULP for the loss and 7 for its derivative, both at the default gamma = 2 (1 and 2 at
    # gamma = 0). The error of sigma(-u) grows with gamma, so these hold for gamma <= 2.
    "focal_loss_with_logits": 8.0,
    "focal_loss_with_logits_grad": 8.0,
}
#: Every derivative (and the log-softmax Jacobian): at most 4 ULP, away from interior zeros.
GRADIENT_TARGET = 4.0
#: float32 results, computed in float64 and rounded once: 0.5 ULP of float32 (the limit).
FLOAT32_TARGET = 0.5
#: A float64 intermediate off by a few float64 ULP moves a float32 result by at most
#: 8 * 2**-29 float32 ULP beyond 0.5; the float32 check allows 2**-24.
FLOAT32_SLACK = 2.0**-24
#: Near an interior zero x0 of a derivative, the two terms of the derivative cancel in any
#: fixed-precision formula (/work/shared/notes/accuracy.md measured 8 to 25 ULP at 0.1 away).
#: Points with |x - x0| < ZERO_WINDOW are left out of the GRADIENT_TARGET; the band
#: NEAR_ZERO_INNER <= |x - x0| < ZERO_WINDOW is measured on its own (``near_zero=True``)
#: against NEAR_ZERO_TARGET, and points nearer than NEAR_ZERO_INNER are not measured.
ZERO_WINDOW = 1.25
NEAR_ZERO_INNER = 0.1
NEAR_ZERO_TARGET = 32.0


#: The elementwise functions measured by the tests and the benchmark, with their parameters:
#: prelu has no default slope (0.25 is He et al.'s initial value), and swish with
#: beta = 1.5 checks a parameter that is not the SiLU's.
ELEMENTWISE_CASES: list[tuple[str, dict[str, float]]] = [
    ("identity", {}),
    ("binary_step", {}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("relu", {}),
    ("leaky_relu", {}),
    ("prelu", {"alpha": 0.25}),
    ("elu", {}),
    ("selu", {}),
    ("gelu", {}),
    ("gelu_tanh", {}),
    ("gelu_sigmoid", {}),
    ("swish", {}),
    ("swish", {"beta": 1.5}),
    ("silu", {}),
    ("lisht", {}),
    ("mish", {}),
    ("softplus", {}),
]


def ulp_target(name: str) -> float:
    """The float64 ULP target of ``name`` (a forward function, a derivative or a Jacobian)."""
    if name in ULP_TARGETS:
        return ULP_TARGETS[name]
    if name in ELEMENTWISE or name in VECTOR or name in LOSSES:
        return GRADIENT_TARGET
    raise KeyError(f"mpref: no reference named {name!r}")


# --------------------------------------------------------------------------------------------
# Constants (recomputed at the working precision, so that they are never the weak link)


_SELU_CACHE: dict[int, tuple[Any, Any]] = {}


def _selu_constants() -> tuple[Any, Any]:
    r"""SELU's $\alpha$ and $\lambda$ from their closed form (Klambauer et al., 2017).

    $\alpha = -\sqrt{2/\pi} / (\mathrm{erfc}(1/\sqrt2)\sqrt e - 1)$ = 1.67326324235437728481...,
    $\lambda$ = 1.05070098735548049341... (tests/test_mpref.py checks both against 32 digits).
    """
    if mp.prec in _SELU_CACHE:
        return _SELU_CACHE[mp.prec]
    ec = mp.erfc(1 / mp.sqrt(2))
    e = mp.e
    alpha = -mp.sqrt(2 / mp.pi) / (ec * mp.sqrt(e) - 1)
    denominator = (
        2 * mp.erfc(mp.sqrt(2)) * e**2
        + mp.pi * ec**2 * e
        - 2 * (2 + mp.pi) * ec * mp.sqrt(e)
        + mp.pi
        + 2
    )
    scale = (1 - ec * mp.sqrt(e)) * mp.sqrt(2 * mp.pi) / mp.sqrt(denominator)
    _SELU_CACHE[mp.prec] = (alpha, scale)
    return alpha, scale


def selu_constants() -> tuple[float, float]:
    """SELU's (alpha, scale) rounded to float64, for comparison with a library's constants."""
    with mp.workdps(WORKING_DPS):
        alpha, scale = _selu_constants()
        return round_to_dtype(alpha, np.float64), round_to_dtype(scale, np.float64)


# --------------------------------------------------------------------------------------------
# Scalar building blocks on mpf values (finite arguments only)


def _sigma(v):
    # Split on the sign so that exp never gets a huge positive argument (slow in mpmath).
    if v < 0:
        e = mp.exp(v)
        return e / (1 + e)
    return 1 / (1 + mp.exp(-v))


def _sigma_grad(v):
    # sigma(v) sigma(-v) = e / (1 + e)^2 with e = exp(-|v|): no 1 - s, nothing cancels.
    e = mp.exp(-abs(v))
    return e / (1 + e) ** 2


def _softplus(v):
    # Split on the sign so that exp never gets a huge positive argument (slow in mpmath).
    if v > 0:
        return v + mp.log1p(mp.exp(-v))
    return mp.log1p(mp.exp(v))


# mpmath's erfc raises OverflowError for arguments beyond about 1e15. Below this point
# Phi(x) < exp(-5e19) rounds to zero in every float format, and the Mills-ratio asymptote
# Phi(x) = phi(x)/|x| (1 + O(1/x^2)) is accurate to 1e-20 relative.
_PHI_ASYMPTOTE = mpmath.mpf(-1e10)


def _phi(x):
    return mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)


def _normal_cdf(x):
    if x < _PHI_ASYMPTOTE:
        return _phi(x) / -x
    return mp.erfc(-x / mp.sqrt(2)) / 2


def _gelu_tanh_u(x):
    return mp.sqrt(2 / mp.pi) * (x + mpmath.mpf("0.044715") * x**3)


def _gelu_tanh(x):
    # 0.5 x (1 + tanh(u)) = x sigmoid(2u): no 1 + tanh cancellation for x << 0.
    return x * _sigma(2 * _gelu_tanh_u(x))


def _gelu_tanh_grad(x):
    u = _gelu_tanh_u(x)
    du = mp.sqrt(2 / mp.pi) * (1 + 3 * mpmath.mpf("0.044715") * x**2)
    return _sigma(2 * u) + 2 * x * du * _sigma_grad(2 * u)


_GELU_SIGMOID_K = "1.702"  # a string: mpf(...) at import would hold only 53 bits


def _mish_n(x):
    # tanh(softplus(x)) = ((1 + e^x)^2 - 1) / ((1 + e^x)^2 + 1) = n / (n + 2).
    ex = mp.exp(x)
    return ex * (ex + 2), ex


def _mish(x):
    n, _ = _mish_n(x)
    return x * n / (n + 2)


def _mish_grad(x):
    # tanh(sp) + x sech^2(sp) sigma(x), with sech^2(sp) sigma(x) = 4 e^x (1 + e^x) / (n + 2)^2.
    n, ex = _mish_n(x)
    return n / (n + 2) + 4 * x * ex * (1 + ex) / (n + 2) ** 2


def _swish_grad(x, beta):
    return _sigma(beta * x) + beta * x * _sigma_grad(beta * x)


def _sign(v) -> int:
    return (v > 0) - (v < 0)


def _times_inf(c, s: int):
    """c * (s * inf) as a limit: 0 when c == 0 (a zero slope stays zero)."""
    return mp.inf * s * _sign(c) if c != 0 else mpmath.mpf(0)


# name -> (f(x, **params) for finite x, limits(**params) -> (f(-inf), f(+inf)), defaults)
_Entry = tuple[Callable[..., Any], Callable[..., tuple[Any, Any]], dict[str, float]]
_ONE = mpmath.mpf(1)
_ZERO = mpmath.mpf(0)
_INF = mpmath.mpf("inf")

ELEMENTWISE: dict[str, _Entry] = {
    "identity": (lambda x: x, lambda: (-_INF, _INF), {}),
    "identity_grad": (lambda x: _ONE, lambda: (_ONE, _ONE), {}),
    "binary_step": (lambda x: _ONE if x >= 0 else _ZERO, lambda: (_ZERO, _ONE), {}),
    "binary_step_grad": (lambda x: _ZERO, lambda: (_ZERO, _ZERO), {}),
    "sigmoid": (_sigma, lambda: (_ZERO, _ONE), {}),
    "sigmoid_grad": (_sigma_grad, lambda: (_ZERO, _ZERO), {}),
    "tanh": (mp.tanh, lambda: (-_ONE, _ONE), {}),
    "tanh_grad": (lambda x: mp.sech(x) ** 2, lambda: (_ZERO, _ZERO), {}),
    "relu": (lambda x: x if x > 0 else _ZERO, lambda: (_ZERO, _INF), {}),
    "relu_grad": (lambda x: _ONE if x > 0 else _ZERO, lambda: (_ZERO, _ONE), {}),
    "leaky_relu": (
        lambda x, alpha: x if x > 0 else alpha * x,
        lambda alpha: (_times_inf(alpha, -1), _INF),
        {"alpha": 0.01},
    ),
    "leaky_relu_grad": (
        lambda x, alpha: _ONE if x > 0 else alpha,
        lambda alpha: (alpha, _ONE),
        {"alpha": 0.01},
    ),
    "prelu": (
        lambda x, alpha: x if x > 0 else alpha * x,
        lambda alpha: (_times_inf(alpha, -1), _INF),
        {},
    ),
    "prelu_grad": (
        lambda x, alpha: _ONE if x > 0 else alpha,
        lambda alpha: (alpha, _ONE),
        {},
    ),
    "prelu_grad_alpha": (
        lambda x, alpha: _ZERO if x > 0 else x,
        lambda alpha: (-_INF, _ZERO),
        {},
    ),
    "elu": (
        lambda x, alpha: x if x > 0 else alpha * mp.expm1(x),
        lambda alpha: (-alpha, _INF),
        {"alpha": 1.0},
    ),
    "elu_grad": (
        lambda x, alpha: _ONE if x > 0 else alpha * mp.exp(x),
        lambda alpha: (_ZERO, _ONE),
        {"alpha": 1.0},
    ),
    "selu": (
        lambda x: _selu_constants()[1] * (x if x > 0 else _selu_constants()[0] * mp.expm1(x)),
        lambda: (-_selu_constants()[0] * _selu_constants()[1], _INF),
        {},
    ),
    "selu_grad": (
        lambda x: _selu_constants()[1] * (_ONE if x > 0 else _selu_constants()[0] * mp.exp(x)),
        lambda: (_ZERO, _selu_constants()[1]),
        {},
    ),
    "gelu": (lambda x: x * _normal_cdf(x), lambda: (_ZERO, _INF), {}),
    "gelu_grad": (lambda x: _normal_cdf(x) + x * _phi(x), lambda: (_ZERO, _ONE), {}),
    "gelu_tanh": (_gelu_tanh, lambda: (_ZERO, _INF), {}),
    "gelu_tanh_grad": (_gelu_tanh_grad, lambda: (_ZERO, _ONE), {}),
    "gelu_sigmoid": (
        lambda x: x * _sigma(mpmath.mpf(_GELU_SIGMOID_K) * x),
        lambda: (_ZERO, _INF),
        {},
    ),
    "gelu_sigmoid_grad": (
        lambda x: _swish_grad(x, mpmath.mpf(_GELU_SIGMOID_K)),
        lambda: (_ZERO, _ONE),
        {},
    ),
    "swish": (
        lambda x, beta: x * _sigma(beta * x),
        # beta > 0: (0, inf); beta == 0: x/2; beta < 0: (-inf, 0).
        lambda beta: (-_INF if beta <= 0 else _ZERO, _INF if beta >= 0 else _ZERO),
        {"beta": 1.0},
    ),
    "swish_grad": (
        _swish_grad,
        # sigma(beta x) + beta x sigma'(beta x) -> sigma(beta x) at +-inf: 0 or 1 by the sign.
        lambda beta: (
            (_ZERO, _ONE) if beta > 0 else (_ONE, _ZERO) if beta < 0 else (_ONE / 2, _ONE / 2)
        ),
        {"beta": 1.0},
    ),
    "swish_grad_beta": (
        lambda x, beta: x * x * _sigma_grad(beta * x),
        lambda beta: (_ZERO, _ZERO) if beta != 0 else (_INF, _INF),
        {"beta": 1.0},
    ),
    "silu": (lambda x: x * _sigma(x), lambda: (_ZERO, _INF), {}),
    "silu_grad": (lambda x: _swish_grad(x, _ONE), lambda: (_ZERO, _ONE), {}),
    "lisht": (lambda x: x * mp.tanh(x), lambda: (_INF, _INF), {}),
    "lisht_grad": (lambda x: mp.tanh(x) + x * mp.sech(x) ** 2, lambda: (-_ONE, _ONE), {}),
    "mish": (_mish, lambda: (_ZERO, _INF), {}),
    "mish_grad": (_mish_grad, lambda: (_ZERO, _ONE), {}),
    "softplus": (_softplus, lambda: (_ZERO, _INF), {}),
    "softplus_grad": (_sigma, lambda: (_ZERO, _ONE), {}),
}

# Functions equal to c x (c > 0) near 0: f(-0.0) is -0.0 in IEEE arithmetic.
_ODD_AT_ZERO = {
    "identity",
    "tanh",
    "leaky_relu",
    "prelu",
    "elu",
    "selu",
    "gelu",
    "gelu_tanh",
    "gelu_sigmoid",
    "swish",
    "silu",
    "mish",
    "prelu_grad_alpha",
}


def _bce_logits(x, y_true):
    # softplus(x) - y x = y softplus(-x) + (1 - y) softplus(x): every term >= 0 for y in [0, 1].
    out = _ZERO
    if y_true != 0:
        out += y_true * _softplus(-x)
    if y_true != 1:
        out += (1 - y_true) * _softplus(x)
    return out


def _bce_logits_limits(y_true):
    at_minus = _INF if y_true > 0 else _ZERO
    at_plus = _INF if y_true < 1 else _ZERO
    return at_minus, at_plus


def _focal_parts(x, y_true, alpha):
    """(u = s x, s, alpha_t) of the focal loss from logits, for a label y_true in {0, 1}."""
    if y_true == 1:
        return x, 1, alpha
    return -x, -1, 1 - alpha


def _focal_logits(x, y_true, alpha, gamma):
    # alpha_t (1 - p_t)^gamma (-ln p_t) with p_t = sigma(u): 1 - p_t = sigma(-u) and
    # -ln p_t = softplus(-u), so nothing is formed as 1 - (something close to 1).
    u, _, alpha_t = _focal_parts(x, y_true, alpha)
    return alpha_t * _sigma(-u) ** gamma * _softplus(-u)


def _focal_logits_grad(x, y_true, alpha, gamma):
    # d/dx = -s alpha_t sigma(-u)^gamma [sigma(-u) + gamma sigma(u) softplus(-u)]: derived in
    # tests/test_mpref.py and tests/test_symbolic.py from the textbook form with SymPy.
    u, s, alpha_t = _focal_parts(x, y_true, alpha)
    q = _sigma(-u)
    return -s * alpha_t * q**gamma * (q + gamma * _sigma(u) * _softplus(-u))


def _focal_logits_limits(y_true, alpha, gamma):
    # u = +inf (an easy sample): 0. u = -inf (confidently wrong): inf, or 0 when alpha_t = 0.
    alpha_t = alpha if y_true == 1 else 1 - alpha
    wrong = _INF if alpha_t > 0 else _ZERO
    return (wrong, _ZERO) if y_true == 1 else (_ZERO, wrong)


def _focal_logits_grad_limits(y_true, alpha, gamma):
    # u -> -inf: sigma(-u) -> 1 and sigma(u) softplus(-u) ~ |u| e^u -> 0, so -s alpha_t.
    if y_true == 1:
        return -alpha, _ZERO
    return _ZERO, 1 - alpha


#: Per-element losses from logits: binary cross-entropy of one sample (mean over N = 1) and its
#: derivative d(loss)/d(logit) = sigmoid(x) - y; the focal loss from logits (labels 0 and 1,
#: alpha = 0.25 and gamma = 2 by default, as course_lib.losses) and its derivative.
LOSSES: dict[str, _Entry] = {
    "binary_cross_entropy_with_logits": (_bce_logits, _bce_logits_limits, {}),
    "binary_cross_entropy_with_logits_grad": (
        # sigma(x) - y = (1 - y) sigma(x) - y sigma(-x): for y = 1 the second form keeps the
        # e^-x that 1 - sigma(x) loses at any fixed precision (x = 200: e^-200 ~ 1e-87).
        lambda x, y_true: (1 - y_true) * _sigma(x) - y_true * _sigma(-x),
        lambda y_true: (-y_true, 1 - y_true),
        {},
    ),
    "focal_loss_with_logits": (
        _focal_logits,
        _focal_logits_limits,
        {"alpha": 0.25, "gamma": 2.0},
    ),
    "focal_loss_with_logits_grad": (
        _focal_logits_grad,
        _focal_logits_grad_limits,
        {"alpha": 0.25, "gamma": 2.0},
    ),
}

#: Functions of a vector (the last axis of ``x``).
VECTOR = (
    "softmax",
    "log_softmax",
    "softmax_jacobian",
    "log_softmax_jacobian",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
)


def names() -> list[str]:
    """Every name ``exact`` knows."""
    return [*ELEMENTWISE, *LOSSES, *VECTOR]


# --------------------------------------------------------------------------------------------
# Rounding


def _format(dtype) -> tuple[int, int, int]:
    """(significand bits, exponent of the smallest subnormal, exponent just beyond the max)."""
    info = np.finfo(dtype)
    return int(info.nmant) + 1, int(info.minexp) - int(info.nmant), int(info.maxexp)


_FORMATS = {np.dtype(t): _format(t) for t in (np.float64, np.float32)}


def round_to_dtype(value: Any, dtype: Any = np.float64) -> float:
    """Round an mpf to the nearest ``dtype`` value, ties to even, with subnormals and overflow.

    Works on the exact binary form ``(-1)^sign man 2^exp`` of the mpf with integer
    arithmetic. Returned as a Python float (exact: every float32 is a float64).
    """
    if not mp.isfinite(value):
        if mp.isnan(value):
            return math.nan
        return math.inf if value > 0 else -math.inf
    sign, man, exp, bits = value._mpf_
    if man == 0:
        return 0.0
    prec, min_exp, max_exp = _FORMATS[np.dtype(dtype)]
    # Far outside the range (e^-1e300, e^1e300) the shifts below would be astronomically long.
    if exp + bits - 1 >= max_exp:  # value >= 2^max_exp
        return -math.inf if sign else math.inf
    if exp + bits < min_exp - 1:  # value < 2^(min_exp - 1): below half the smallest subnormal
        return -0.0 if sign else 0.0
    # value = man 2^exp lies in [2^(exp+bits-1), 2^(exp+bits)): its ulp there is
    # 2^(exp+bits-prec), or the subnormal spacing 2^min_exp, whichever is larger.
    quantum = max(exp + bits - prec, min_exp)
    if exp >= quantum:
        n = man << (exp - quantum)
    else:
        shift = quantum - exp
        n = man >> shift
        rest = man - (n << shift)
        half = 1 << (shift - 1)
        if rest > half or (rest == half and n & 1):
            n += 1
    if n == 0:
        return -0.0 if sign else 0.0
    if quantum + n.bit_length() > max_exp:
        result = math.inf
    else:
        result = math.ldexp(n, quantum)
    return -result if sign else result


def _rounded(evaluate: Callable[[], Any], dtype) -> Any:
    """Evaluate at 40 and 60 digits; double the precision until two evaluations round alike.

    ``evaluate`` returns an mpf or a list of mpf; the result is a float or a list of floats.
    """

    def at(dps: int):
        with mp.workdps(dps):
            value = evaluate()
            if isinstance(value, list):
                return [round_to_dtype(v, dtype) for v in value]
            return round_to_dtype(value, dtype)

    previous = at(WORKING_DPS)
    dps = _CHECK_DPS
    while True:
        current = at(dps)
        if _same(previous, current) or dps >= _MAX_DPS:
            return current
        previous, dps = current, 2 * dps


def _same(a, b) -> bool:
    if isinstance(a, list):
        return all(_same(u, v) for u, v in zip(a, b, strict=True))
    return a == b or (math.isnan(a) and math.isnan(b))


# --------------------------------------------------------------------------------------------
# Scalar evaluation


def _entry(name: str) -> _Entry:
    if name in ELEMENTWISE:
        return ELEMENTWISE[name]
    if name in LOSSES:
        return LOSSES[name]
    raise KeyError(f"mpref: no elementwise reference named {name!r}; known: {names()}")


def _params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    defaults = _entry(name)[2]
    merged = {**defaults, **params}
    return {key: mpmath.mpf(float(value)) for key, value in merged.items()}


def mp_value(name: str, x: float, **params: float):
    """The mpmath value of an elementwise function (or per-element loss) at the float ``x``.

    Evaluated at the caller's current mpmath precision; ``±inf`` gives the limit.
    """
    function, limits, _ = _entry(name)
    mp_params = _params(name, params)
    x = float(x)
    if math.isnan(x) or any(mp.isnan(v) for v in mp_params.values()):
        return mp.nan
    if math.isinf(x):
        low, high = limits(**mp_params)
        return high if x > 0 else low
    return function(mpmath.mpf(x), **mp_params)


def _exact_scalar(name: str, x: float, params: dict[str, Any], dtype) -> float:
    result = _rounded(lambda: mp_value(name, x, **params), dtype)
    if result == 0 and x == 0 and math.copysign(1.0, x) < 0 and name in _ODD_AT_ZERO:
        return -0.0
    return result


def _softmax_parts(row: Sequence[float]):
    """(s, log s, 1 - s) of a row of floats, as lists of mpf at the current precision.

    ``1 - s_i`` is computed as the sum of the other probabilities, so it keeps every digit
    when s_i is close to 1. A row with nan, or with more than one +inf, gives nan.
    """
    values = [mpmath.mpf(float(v)) for v in row]
    n = len(values)
    nan_row = [mp.nan] * n
    if n == 0 or any(mp.isnan(v) for v in values):
        return nan_row, nan_row, nan_row
    plus_inf = [mp.isinf(v) and v > 0 for v in values]
    if sum(plus_inf) > 1 or all(mp.isinf(v) and v < 0 for v in values):
        return nan_row, nan_row, nan_row
    if sum(plus_inf) == 1:
        probs = [_ONE if hit else _ZERO for hit in plus_inf]
        logs = [_ZERO if hit else -_INF for hit in plus_inf]
        others = [_ZERO if hit else _ONE for hit in plus_inf]
        return probs, logs, others
    top_index = max(range(n), key=lambda i: values[i])
    top = values[top_index]
    terms = [mp.exp(v - top) for v in values]
    # total = 1 + rest: log1p(rest) keeps a rest of 1e-87 that log(1 + rest) rounds away.
    rest = mp.fsum(terms[:top_index] + terms[top_index + 1 :])
    total = 1 + rest
    log_total = mp.log1p(rest)
    probs = [t / total for t in terms]
    logs = [(v - top) - log_total for v in values]
    others = [mp.fsum(terms[:i] + terms[i + 1 :]) / total for i in range(n)]
    return probs, logs, others


def _vector_value(name: str, row: Sequence[float], y_row: Sequence[float] | None) -> list:
    probs, logs, others = _softmax_parts(row)
    n = len(probs)
    if name == "softmax":
        return probs
    if name == "log_softmax":
        return logs
    if name == "softmax_jacobian":
        # J[i, j] = s_i (delta_ij - s_j); the diagonal uses 1 - s_i = sum of the others.
        return [
            probs[i] * others[i] if i == j else -probs[i] * probs[j]
            for i in range(n)
            for j in range(n)
        ]
    if name == "log_softmax_jacobian":
        return [others[i] if i == j else -probs[j] for i in range(n) for j in range(n)]
    assert y_row is not None
    ys = [mpmath.mpf(float(v)) for v in y_row]
    if name == "softmax_cross_entropy":
        # -sum y_i log s_i, where a zero target contributes 0 even if log s_i = -inf.
        return [-mp.fsum(y * log for y, log in zip(ys, logs, strict=True) if y != 0)]
    if name == "softmax_cross_entropy_grad":
        # p - y = (1 - y) p - y (1 - p), with 1 - p as the sum of the other probabilities.
        return [(1 - y) * p - y * o for p, y, o in zip(probs, ys, others, strict=True)]
    raise KeyError(name)


# --------------------------------------------------------------------------------------------
# Public API


def exact(name: str, x: Any, *, dtype: Any = np.float64, **params: Any) -> Any:
    """The correctly rounded value of the function ``name`` at every element of ``x``.

    Elementwise functions and derivatives (``"sigmoid"``, ``"sigmoid_grad"``, ...): same shape
    as ``x``. Parameters by keyword (``alpha``, ``beta``) with the defaults of
    ``course_lib.activations``; ``prelu`` needs ``alpha``.

    ``"binary_cross_entropy_with_logits"`` (and ``_grad``): the loss of one sample, elementwise
    in the logits ``x``, with ``y_true=`` (0, 1 or a soft target) broadcast against ``x``.
    ``"focal_loss_with_logits"`` (and ``_grad``) likewise, with a label ``y_true=`` of 0 or 1
    and ``alpha=``, ``gamma=`` (defaults 0.25 and 2, as ``course_lib.losses``).

    Vector functions along the last axis: ``"softmax"``, ``"log_softmax"`` (shape of ``x``),
    ``"softmax_jacobian"``, ``"log_softmax_jacobian"`` (shape ``x.shape + (n,)``, entry
    ``[i, j] = d out_i / d x_j``), ``"softmax_cross_entropy"`` (one value per row, shape
    ``x.shape[:-1]``) and ``"softmax_cross_entropy_grad"`` (``s - y``), the last two with a
    ``y_true=`` array of the shape of ``x``.

    Returns a NumPy array of ``dtype`` (float64 or float32), or a NumPy scalar for a scalar
    elementwise input. A loop over elements: about 2,000 points a second.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise TypeError(f"mpref.exact: dtype must be float64 or float32, got {dtype}")
    x_arr = np.asarray(x, dtype=np.float64)
    if name in VECTOR:
        return _exact_vector(name, x_arr, dtype, params)
    if name in LOSSES:
        if "y_true" not in params:
            raise TypeError(f"mpref.exact({name!r}, ...) needs y_true=")
        y_arr = np.asarray(params.pop("y_true"), dtype=np.float64)
        x_b, y_b = np.broadcast_arrays(x_arr, y_arr)
        flat = [
            _exact_scalar(name, xv, {**params, "y_true": yv}, dtype)
            for xv, yv in zip(x_b.ravel().tolist(), y_b.ravel().tolist(), strict=True)
        ]
        out = np.array(flat, dtype=dtype).reshape(x_b.shape)
    else:
        _entry(name)  # unknown names fail here, before any loop
        flat = [_exact_scalar(name, xv, params, dtype) for xv in x_arr.ravel().tolist()]
        out = np.array(flat, dtype=dtype).reshape(x_arr.shape)
    if np.ndim(x) == 0 and out.ndim == 0:
        return out[()]
    return out


def _exact_vector(name: str, x_arr: np.ndarray, dtype: np.dtype, params: dict) -> np.ndarray:
    if x_arr.ndim == 0:
        raise ValueError(f"mpref.exact({name!r}, ...) needs at least one axis")
    n = x_arr.shape[-1]
    rows = x_arr.reshape(-1, n).tolist()
    y_rows: list | None = None
    if name.startswith("softmax_cross_entropy"):
        if "y_true" not in params:
            raise TypeError(f"mpref.exact({name!r}, ...) needs y_true=")
        y_arr = np.broadcast_to(np.asarray(params["y_true"], dtype=np.float64), x_arr.shape)
        y_rows = y_arr.reshape(-1, n).tolist()
    results = []
    for k, row in enumerate(rows):
        y_row = y_rows[k] if y_rows is not None else None
        results.append(_rounded(lambda r=row, y=y_row: _vector_value(name, r, y), dtype))
    out = np.array(results, dtype=dtype)
    batch = x_arr.shape[:-1]
    if name.endswith("jacobian"):
        return out.reshape(*batch, n, n)
    if name == "softmax_cross_entropy":
        return out.reshape(batch)
    return out.reshape(x_arr.shape)


def ulp_error(got: Any, exact: Any) -> np.ndarray:
    r"""$|got - exact| / \mathrm{spacing}(|exact|)$, in ULP of the dtype of ``got``.

    Conventions: equal values give 0 (both ``+inf``, both ``-inf`` or both ``nan`` included, and
    ``0.0`` against ``-0.0``); a non-finite ``got`` against a finite ``exact`` gives ``inf``, as
    does any other disagreement on inf or nan. ``exact`` should be the reference rounded to
    float64 (or to ``got``'s dtype); the difference is taken in float64. Returns float64 (0-d
    for scalars).
    """
    got_arr = np.asarray(got)
    if not np.issubdtype(got_arr.dtype, np.floating):
        got_arr = got_arr.astype(np.float64)
    dtype = got_arr.dtype
    g = got_arr.astype(np.float64)
    e = np.asarray(exact, dtype=np.float64)
    g, e = np.broadcast_arrays(g, e)
    with np.errstate(over="ignore", invalid="ignore"):
        spacing = np.spacing(np.abs(e).astype(dtype)).astype(np.float64)
        error = np.abs(g - e) / spacing
    equal = (g == e) | (np.isnan(g) & np.isnan(e))
    finite_both = np.isfinite(g) & np.isfinite(e)
    error = np.where(finite_both, error, np.inf)
    error = np.where(equal, 0.0, error)
    return error


def standard_grid(dtype: Any = np.float64) -> np.ndarray:
    """Inputs that find almost every accuracy failure (``/work/shared/notes/accuracy.md``).

    Both signs of: subnormals and the smallest normal, 1e-300 (1e-30 for float32), 1e300
    (1e30), the largest finite value, 709.8 and 710 (where exp overflows in float64), 745 and 746
    (where it underflows), 88.7 and 103.9 (the same for float32), 36.7 and 37 (where 1 + e^-x
    rounds to 1); 1601 dense points on [-20, 20] (step 1/40, so -0.75 and 1.275 are on it), a
    geometric sweep of 120 points per sign on [20, 1000] (the tails where exp under- and
    overflows), a log-spaced sweep of 200 points per sign over the whole exponent range; then
    -0.0, 0.0, +inf, -inf and nan. Sorted (nan last), duplicates removed, in ``dtype``.
    """
    dtype = np.dtype(dtype)
    info = np.finfo(dtype)
    tiny_sub = float(info.smallest_subnormal)
    tiny = float(info.smallest_normal)
    huge = float(info.max)
    is64 = dtype == np.dtype(np.float64)
    extremes = [
        tiny_sub,
        2 * tiny_sub,
        1e-310 if is64 else 1e-40,
        tiny * (1 - 2.0**-10),
        tiny,
        1e-300 if is64 else 1e-30,
        1e300 if is64 else 1e30,
        huge,
        float(np.nextafter(dtype.type(huge), dtype.type(0))),
        709.78,
        709.8,
        710.0,
        745.0,
        745.2,
        746.0,
        88.7,
        89.0,
        103.9,
        104.0,
        36.7,
        37.0,
        0.5,
        1.0,
        2.0**-26,
        2.0**-53,
    ]
    exponent_lo = math.log10(tiny_sub)
    exponent_hi = math.log10(huge)
    positive = np.concatenate(
        [
            np.array(extremes),
            np.geomspace(20.0, 1000.0, 120),
            np.logspace(exponent_lo, exponent_hi * (1 - 1e-12), 200),
        ]
    )
    dense = np.linspace(-20.0, 20.0, 1601)
    with np.errstate(over="ignore", under="ignore"):
        finite = np.concatenate([positive, -positive, dense]).astype(dtype)
    finite = finite[np.isfinite(finite) & (finite != 0)]
    finite = np.unique(finite)
    specials = np.array([-0.0, 0.0, np.inf, -np.inf, np.nan], dtype=dtype)
    grid = np.concatenate([finite, specials])
    order = np.argsort(grid, kind="stable")  # -0.0 and 0.0 stay in this order; nan last
    return grid[order]


# --------------------------------------------------------------------------------------------
# Interior zeros of derivatives


def derivative_zeros(name: str, lo: float = -10.0, hi: float = 10.0, **params: float) -> list:
    """Interior zeros x0 of the derivative ``name`` on [lo, hi], as floats, ascending.

    Found by a sign scan at step 0.01 and ``mpmath.findroot`` (bisection-safe Anderson), at 40
    digits. Kept only where the derivative is continuous there (|f(x0)| < 1e-30), and not at
    x0 = 0: a zero at the origin comes from a factor x (LiSHT'), where nothing cancels. These
    are the points where a fixed-precision formula cancels: GELU' near -0.7518, SiLU' near
    -1.2785, Mish' near -1.1924, and BCE' at logit(y) for a soft target y.
    """
    return list(_derivative_zeros(name, float(lo), float(hi), tuple(sorted(params.items()))))


@functools.lru_cache(maxsize=256)
def _derivative_zeros(name: str, lo: float, hi: float, param_items: tuple) -> tuple:
    params = dict(param_items)
    _entry(name)
    roots: list[float] = []
    with mp.workdps(WORKING_DPS):
        steps = int(round((hi - lo) / 0.01))
        xs = [lo + (hi - lo) * k / steps for k in range(steps + 1)]
        values = [mp_value(name, x, **params) for x in xs]
        for a, b, fa, fb in zip(xs, xs[1:], values, values[1:], strict=False):
            if fa * fb >= 0:
                continue
            root = mp.findroot(lambda t: _value_mp(name, t, params), (a, b), solver="anderson")
            if abs(_value_mp(name, root, params)) < mpmath.mpf(10) ** -30 and abs(root) > 1e-20:
                roots.append(float(root))
        for x, fx in zip(xs, values, strict=True):  # a zero that falls exactly on the scan
            if (
                fx == 0
                and 0 < abs(x)
                and mp_value(name, x - 0.01, **params) * mp_value(name, x + 0.01, **params) < 0
            ):
                roots.append(float(x))
    return tuple(sorted(roots))


def _value_mp(name: str, t, params: dict):
    function, _, _ = _entry(name)
    return function(mpmath.mpf(t), **_params(name, params))


def is_derivative(name: str) -> bool:
    """True for derivatives and Jacobians (``*_grad``, ``*_grad_alpha``, ``*_jacobian``)."""
    return name.endswith(("_grad", "_grad_alpha", "_grad_beta", "_jacobian"))


# --------------------------------------------------------------------------------------------
# Measuring a function against the reference


@dataclass(frozen=True)
class Accuracy:
    """The worst ULP error of one function in one dtype, against ``exact``."""

    name: str
    dtype: str
    max_ulp: float
    at: Any  # the input (a float, or a row for a vector function) where max_ulp occurs
    target: float
    points: int  # inputs measured
    skipped: int  # inputs left out: near an interior zero of a derivative, or (float32)
    # where the float64 result itself misses its target
    dtype_ok: bool = True  # the output had the input's dtype
    finite_max_ulp: float = 0.0  # the same maximum over finite inputs only (no inf, no nan)
    finite_at: Any = None

    @property
    def passed(self) -> bool:
        slack = FLOAT32_SLACK if self.dtype == "float32" else 0.0
        return self.dtype_ok and bool(self.max_ulp <= self.target + slack)


def accuracy(
    name: str,
    fn: Callable[..., Any],
    x: Any,
    dtype: Any = np.float64,
    *,
    near_zero: bool = False,
    **params: Any,
) -> Accuracy:
    """Measure ``fn(x, **params)`` against ``exact(name, x, **params)`` in ULP of ``dtype``.

    ``x`` is cast to ``dtype`` (use ``standard_grid(dtype)``; for a vector function, rows of
    shape (R, K)). float64: ``ulp_error`` against the reference rounded to float64, over every
    input except, for a derivative, those within ``ZERO_WINDOW`` of an interior zero. float32:
    the float32 result against the reference rounded to float64, so that a correctly rounded
    result shows at most 0.5; only where ``fn`` in float64 at the same input meets its float64
    target (the brief: "0.5 ULP where the float64 result is itself accurate").

    With ``near_zero=True`` (derivatives only), only the band around each interior zero
    ``NEAR_ZERO_INNER <= |x - x0| < ZERO_WINDOW`` is measured, against ``NEAR_ZERO_TARGET``.
    """
    dtype = np.dtype(dtype)
    xd = np.asarray(x).astype(dtype)
    x64 = xd.astype(np.float64)
    vector = name in VECTOR
    target64 = ulp_target(name)
    exact64 = exact(name, x64, **params)
    got = np.asarray(fn(xd, **params))
    dtype_ok = got.dtype == dtype

    # Which outputs are left out, as a mask of the output's shape.
    keep = np.ones(np.shape(exact64), dtype=bool)
    band = np.zeros(np.shape(exact64), dtype=bool)
    if not vector and is_derivative(name):
        for x0 in derivative_zeros(name, **_scalar_params(params)):
            distance = np.abs(np.broadcast_to(x64, keep.shape) - x0)
            keep &= ~(distance < ZERO_WINDOW)
            band |= (distance >= NEAR_ZERO_INNER) & (distance < ZERO_WINDOW)
    if near_zero:
        keep, target64 = band, NEAR_ZERO_TARGET
    if dtype == np.float64:
        errors = ulp_error(got.astype(np.float64), exact64)
        target = target64
    else:
        got64 = np.asarray(fn(x64, **params))
        keep &= ulp_error(got64, exact64) <= target64
        errors = ulp_error(got.astype(np.float32), exact64)
        with np.errstate(over="ignore"):
            exact32 = exact64.astype(np.float32)
        # Beyond float32's range the correctly rounded answer is inf: no error if got agrees.
        errors = np.where(np.isinf(exact32) & (got == exact32), 0.0, errors)
        target = FLOAT32_TARGET
    if vector:
        finite_rows = np.all(np.isfinite(x64), axis=-1)
        finite = finite_rows.reshape(finite_rows.shape + (1,) * (keep.ndim - 1))
        finite = np.broadcast_to(finite, keep.shape)
    else:
        finite = np.broadcast_to(np.isfinite(x64), keep.shape)
    max_ulp, at = _worst(errors, keep, x64, vector)
    finite_max_ulp, finite_at = _worst(errors, keep & finite, x64, vector)
    return Accuracy(
        name=name,
        dtype=str(dtype),
        max_ulp=max_ulp,
        at=at,
        target=target,
        points=int(keep.sum()),
        skipped=int(keep.size - keep.sum()),
        dtype_ok=bool(dtype_ok),
        finite_max_ulp=finite_max_ulp,
        finite_at=finite_at,
    )


def _worst(errors: np.ndarray, keep: np.ndarray, x64: np.ndarray, vector: bool) -> tuple:
    """(largest error where ``keep``, the input there): a float, or a row as a list."""
    if not np.any(keep):
        return 0.0, None
    kept = np.where(keep, errors, -1.0)
    index = np.unravel_index(int(np.argmax(kept)), kept.shape)
    at = x64[index[0]].tolist() if vector else float(np.broadcast_to(x64, kept.shape)[index])
    return float(kept[index]), at


def _scalar_params(params: dict) -> dict:
    """The parameters that are scalars (``y_true`` of a loss may be an array: no zeros then)."""
    return {k: float(v) for k, v in params.items() if np.ndim(v) == 0}


def standard_rows(k: int, dtype: Any = np.float64, count: int = 60, seed: int = 0) -> np.ndarray:
    """Rows of length ``k`` (>= 2) for softmax and friends: special rows, then random ones.

    Special rows: all zeros; entries 1e-300 apart; a confident class by 20, 37, 40 and 1000;
    classes at -709.8, -745 and -800 from the top (probabilities near the subnormal range);
    1e300 against -1e300 (the difference overflows); the largest float against its negative;
    all entries 1e300; one -inf; one +inf; one nan. Random rows: ``count`` rows of
    N(0, 1) * 10**U(-1, 3), so spreads run from 0.1 to a few thousand. Float32 rows use the
    float32 analogues (88.7, 103.9, 1e30). Seeded: ``np.random.default_rng(seed)``.
    """
    if k < 2:
        raise ValueError("standard_rows needs k >= 2")
    dtype = np.dtype(dtype)
    is64 = dtype == np.dtype(np.float64)
    big = 1e300 if is64 else 1e30
    huge = float(np.finfo(dtype).max)
    tails = (709.8, 745.0, 800.0) if is64 else (88.7, 103.9, 110.0)

    def row(*head: float) -> list[float]:
        return [*head, *([0.0] * (k - len(head)))][:k]

    specials = [
        row(),
        row(1e-300 if is64 else 1e-30, -(1e-300 if is64 else 1e-30)),
        row(20.0),
        row(37.0),
        row(40.0),
        row(1000.0),
        row(0.0, -tails[0], -tails[1]),
        row(0.0, -tails[2]),
        row(big, -big),
        row(huge, -huge),
        [big] * k,
        row(-np.inf, 1.0),
        row(np.inf, 1.0),
        row(np.nan, 1.0),
    ]
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-1.0, 3.0, size=(count, 1))
    random_rows = rng.standard_normal((count, k)) * scales
    return np.concatenate([np.array(specials), random_rows]).astype(dtype)
