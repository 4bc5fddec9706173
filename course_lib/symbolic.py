r"""The course's activations and losses as SymPy expressions, and a kink-aware ``lambdify``.

Lessons derive gradients from these expressions; tests check every NumPy ``_grad`` of
``course_lib.activations`` and ``course_lib.losses`` against them.

>>> from course_lib import symbolic as sym
>>> sym.expr("sigmoid")
1/(1 + exp(-z))
>>> sym.derivative("softplus")
exp(z)/(exp(z) + 1)
>>> f = sym.lambdify(sym.derivative("relu"))
>>> f([-1.0, 0.0, 2.0])  # the left derivative at the kink: 0
array([0., 0., 1.])

Activations, in the pre-activation $z$ (``expr(name)``):

=============== =====================================================================
identity        $z$
binary_step     $1$ if $z \ge 0$ else $0$
sigmoid         $\sigma(z) = 1/(1 + e^{-z})$
tanh            $\tanh z$
relu            $z$ if $z > 0$ else $0$
leaky_relu      $z$ if $z > 0$ else $\alpha z$ (``alpha=0.01`` with ``defaults=True``)
prelu           $z$ if $z > 0$ else $\alpha z$ ($\alpha$ is learned: no default)
elu             $z$ if $z > 0$ else $\alpha(e^z - 1)$ (``alpha=1``)
selu            $\lambda z$ if $z > 0$ else $\lambda\alpha(e^z - 1)$ (fixed constants)
gelu            $z\,\Phi(z) = \tfrac{z}{2}\bigl(1 + \operatorname{erf}(z/\sqrt2)\bigr)$
gelu_tanh       $\tfrac{z}{2}\bigl(1 + \tanh(\sqrt{2/\pi}\,(z + 0.044715 z^3))\bigr)$
gelu_sigmoid    $z\,\sigma(1.702 z)$
swish           $z\,\sigma(\beta z)$ (``beta=1``)
silu            $z\,\sigma(z)$
lisht           $z \tanh z$
mish            $z \tanh(\ln(1 + e^z))$
softplus        $\ln(1 + e^z)$
=============== =====================================================================

Losses of one sample (``loss_expr(name)``), with residual $r = y - \hat y$ (``docs/notation.md``;
these losses depend only on $|r|$, so the sign convention does not change them):

================================= ==========================================================
mse                               $r^2$
mae                               $|r|$
huber                             $r^2/2$ if $|r| \le \delta$ else $\delta(|r| - \delta/2)$
binary_cross_entropy              $-y\ln\hat y - (1 - y)\ln(1 - \hat y)$
binary_cross_entropy_with_logits  $\ln(1 + e^z) - y z$ (in $y$ and the logit $z$)
focal_loss                        $-\alpha y (1-\hat y)^\gamma \ln\hat y
                                  - (1-\alpha)(1-y)\hat y^\gamma \ln(1-\hat y)$
focal_loss_with_logits            $\alpha y\,\sigma(-z)^\gamma \ln(1 + e^{-z})
                                  + (1-\alpha)(1-y)\,\sigma(z)^\gamma \ln(1 + e^{z})$
                                  (focal_loss at $\hat y = \sigma(z)$, in $y$ and $z$)
hinge                             $1 - y\hat y$ if $y\hat y < 1$ else $0$, $y \in \{-1, 1\}$
contrastive_loss                  $\tfrac12 y d^2 + \tfrac12 (1-y)\max(0, m - d)^2$,
                                  $d = \hat y$ a distance, $y = 1$ for a similar pair
================================= ==========================================================

**Kinks.** Piecewise functions test ``z > 0`` first, so ``sympy.diff`` gives the *left*
derivative at the kink, the course convention (``docs/notation.md``): the derivative of
ReLU at 0 is 0, of leaky ReLU and ELU $\alpha$. ``mae`` is written with ``Abs``; its
derivative ``sign`` is 0 at $\hat y = y$, as ``losses.mae_grad``. ``lambdify`` turns
``Heaviside(0)`` (1/2 in SymPy) into 0 and ``DiracDelta`` into 0.

**Numbers.** Parameters you do not pass stay symbols (``alpha``, ``beta``...). A float you
pass becomes a ``sympy.Float`` holding exactly that double (``0.01`` stays ``0.01``); a
float with an integer value becomes a SymPy integer (``1.0`` -> ``1``), which is the same
number and simplifies better. The fixed constants (``0.044715``, ``1.702``) are exact
rationals, and SELU's are 30-digit ``sympy.Float`` (``SELU_ALPHA``, ``SELU_SCALE``).

Importing this module imports SymPy, not matplotlib; SciPy loads on the first ``lambdify``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ACTIVATION_NAMES",
    "LOSS_NAMES",
    "SELU_ALPHA",
    "SELU_SCALE",
    "alpha",
    "beta",
    "cross_entropy_exprs",
    "delta",
    "derivative",
    "equal",
    "expr",
    "gamma",
    "label_symbols",
    "lambdify",
    "log_softmax_exprs",
    "log_softmax_jacobian_expr",
    "logit_symbols",
    "loss_derivative",
    "loss_expr",
    "margin",
    "params_of",
    "selu_constants",
    "softmax_exprs",
    "softmax_jacobian_expr",
    "y",
    "y_hat",
    "z",
]

# ---------------------------------------------------------------------------- symbols

z = sp.Symbol("z", real=True)
"""The pre-activation (also the logit of ``binary_cross_entropy_with_logits``)."""
y = sp.Symbol("y", real=True)
"""The target: a number, a 0/1 label, or -1/+1 for the hinge loss."""
# The name "yhat" prints as \hat{y} in LaTeX (a lesson's display) and as yhat in text.
y_hat = sp.Symbol("yhat", real=True)
"""The prediction: a number, a probability, a score or (contrastive loss) a distance."""
alpha = sp.Symbol("alpha", positive=True)
"""Leaky/PReLU slope, ELU scale, focal class weight."""
beta = sp.Symbol("beta", positive=True)
"""Swish's $\\beta$."""
# gamma = 0 is a legitimate focal loss (it is then the weighted cross-entropy).
gamma = sp.Symbol("gamma", nonnegative=True)
"""The focal loss's focusing exponent $\\gamma$."""
delta = sp.Symbol("delta", positive=True)
"""Huber's threshold $\\delta$."""
margin = sp.Symbol("m", positive=True)
"""The margin $m$ of the contrastive loss (printed ``m`` as in ``docs/notation.md``)."""

_PARAM_SYMBOLS: dict[str, sp.Symbol] = {
    "alpha": alpha,
    "beta": beta,
    "gamma": gamma,
    "delta": delta,
    "margin": margin,
}

# SELU's constants, rounded to 30 significant digits. Provenance: selu_constants(40), which
# derives them from the fixed point; tests/test_symbolic.py checks the two agree.
SELU_ALPHA = sp.Float("1.67326324235437728481704299167", 30)
"""SELU's $\\alpha$ to 30 digits (Klambauer et al., 2017)."""
SELU_SCALE = sp.Float("1.05070098735548049341933498529", 30)
"""SELU's $\\lambda$ to 30 digits."""

# The fixed constants of the two GELU approximations, exact as written in their papers.
_GELU_TANH_C = sp.Rational(44715, 1_000_000)
_GELU_SIGMOID_C = sp.Rational(1702, 1000)


def _sigmoid(u: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-u))


def _softplus(u: sp.Expr) -> sp.Expr:
    return sp.log(1 + sp.exp(u))


# ------------------------------------------------------------------------ activations

# name -> (builder, {parameter: default of the NumPy reference, or None when it has none})
_ACTIVATIONS: dict[str, tuple[Callable[..., sp.Expr], dict[str, float | None]]] = {
    "identity": (lambda: z, {}),
    # The NumPy reference returns 1 at 0 (np.heaviside(x, 1.0)); only the value differs.
    "binary_step": (lambda: sp.Piecewise((1, z >= 0), (0, True)), {}),
    "sigmoid": (lambda: _sigmoid(z), {}),
    "tanh": (lambda: sp.tanh(z), {}),
    "relu": (lambda: sp.Piecewise((z, z > 0), (0, True)), {}),
    "leaky_relu": (lambda alpha: sp.Piecewise((z, z > 0), (alpha * z, True)), {"alpha": 0.01}),
    "prelu": (lambda alpha: sp.Piecewise((z, z > 0), (alpha * z, True)), {"alpha": None}),
    "elu": (
        lambda alpha: sp.Piecewise((z, z > 0), (alpha * (sp.exp(z) - 1), True)),
        {"alpha": 1.0},
    ),
    "selu": (
        lambda: SELU_SCALE * sp.Piecewise((z, z > 0), (SELU_ALPHA * (sp.exp(z) - 1), True)),
        {},
    ),
    "gelu": (lambda: z / 2 * (1 + sp.erf(z / sp.sqrt(2))), {}),
    "gelu_tanh": (
        lambda: z / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (z + _GELU_TANH_C * z**3))),
        {},
    ),
    "gelu_sigmoid": (lambda: z * _sigmoid(_GELU_SIGMOID_C * z), {}),
    "swish": (lambda beta: z * _sigmoid(beta * z), {"beta": 1.0}),
    "silu": (lambda: z * _sigmoid(z), {}),
    "lisht": (lambda: z * sp.tanh(z), {}),
    "mish": (lambda: z * sp.tanh(_softplus(z)), {}),
    "softplus": (lambda: _softplus(z), {}),
}

ACTIVATION_NAMES: tuple[str, ...] = tuple(_ACTIVATIONS)
"""Every elementwise activation ``expr`` knows (softmax has its own functions)."""

# --------------------------------------------------------------------------- losses

_LOSSES: dict[str, tuple[Callable[..., sp.Expr], dict[str, float | None]]] = {
    "mse": (lambda: (y_hat - y) ** 2, {}),
    "mae": (lambda: sp.Abs(y_hat - y), {}),
    "huber": (
        lambda delta: sp.Piecewise(
            ((y_hat - y) ** 2 / 2, sp.Abs(y_hat - y) <= delta),
            (delta * (sp.Abs(y_hat - y) - delta / 2), True),
        ),
        {"delta": 1.0},
    ),
    "binary_cross_entropy": (lambda: -y * sp.log(y_hat) - (1 - y) * sp.log(1 - y_hat), {}),
    # softplus(z) - y z is -y ln(sigma(z)) - (1-y) ln(1 - sigma(z)) without the cancellation.
    "binary_cross_entropy_with_logits": (lambda: _softplus(z) - y * z, {}),
    "focal_loss": (
        lambda alpha, gamma: (
            -alpha * y * (1 - y_hat) ** gamma * sp.log(y_hat)
            - (1 - alpha) * (1 - y) * y_hat**gamma * sp.log(1 - y_hat)
        ),
        {"alpha": 0.25, "gamma": 2.0},
    ),
    # focal_loss at yhat = sigma(z), written as torchvision computes it from logits:
    # -ln sigma(z) = softplus(-z), 1 - sigma(z) = sigma(-z), and likewise for y = 0.
    "focal_loss_with_logits": (
        lambda alpha, gamma: (
            alpha * y * _sigmoid(-z) ** gamma * _softplus(-z)
            + (1 - alpha) * (1 - y) * _sigmoid(z) ** gamma * _softplus(z)
        ),
        {"alpha": 0.25, "gamma": 2.0},
    ),
    # y*y_hat < 1 first: at the hinge (y*y_hat == 1) the gradient is 0, as ReLU's at 0.
    "hinge": (lambda: sp.Piecewise((1 - y * y_hat, y * y_hat < 1), (0, True)), {}),
    "contrastive_loss": (
        lambda margin: (
            y * y_hat**2 / 2
            + (1 - y) * sp.Piecewise(((margin - y_hat) ** 2, y_hat < margin), (0, True)) / 2
        ),
        {"margin": 1.0},
    ),
}

LOSS_NAMES: tuple[str, ...] = tuple(_LOSSES)
"""Every per-sample loss ``loss_expr`` knows (cross-entropy: ``cross_entropy_exprs``)."""

# The variable each loss is differentiated in: the prediction, or the logit.
_LOSS_WRT: dict[str, sp.Symbol] = {name: y_hat for name in _LOSSES}
_LOSS_WRT["binary_cross_entropy_with_logits"] = z
_LOSS_WRT["focal_loss_with_logits"] = z


# ---------------------------------------------------------------------- parameters


def _to_sympy(value: object) -> sp.Expr:
    """A parameter value as a SymPy number: exact double for floats, Integer for ints."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"a parameter must be a number or a SymPy expression, not {value!r}")
    if isinstance(value, Integral):
        return sp.Integer(int(value))
    if isinstance(value, Real):
        number = float(value)
        if number.is_integer():
            return sp.Integer(int(number))
        return sp.Float(number)  # 53-bit precision: exactly the double that was passed
    raise TypeError(f"a parameter must be a number or a SymPy expression, not {value!r}")


def _resolve(
    kind: str,
    table: Mapping[str, tuple[Callable[..., sp.Expr], dict[str, float | None]]],
    name: str,
    defaults: bool,
    params: Mapping[str, object],
) -> tuple[str, tuple[tuple[str, sp.Expr], ...]]:
    """Check ``name`` and ``params``; return a hashable key with every parameter filled."""
    if name not in table:
        known = ", ".join(table)
        raise ValueError(f"unknown {kind} {name!r}; known: {known}")
    allowed = table[name][1]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) or "no parameter"
        raise TypeError(f"{name!r} takes {takes}; got {', '.join(unknown)}")
    filled = []
    for param, default in allowed.items():
        if param in params:
            value = _to_sympy(params[param])
        elif defaults and default is not None:
            value = _to_sympy(default)
        else:
            value = _PARAM_SYMBOLS[param]
        filled.append((param, value))
    return name, tuple(filled)


def params_of(name: str) -> dict[str, float | None]:
    """The parameters of an activation or a loss, with the NumPy reference's defaults.

    >>> params_of("leaky_relu")
    {'alpha': 0.01}
    >>> params_of("prelu")  # learned: no default
    {'alpha': None}
    """
    for table in (_ACTIVATIONS, _LOSSES):
        if name in table:
            return dict(table[name][1])
    raise ValueError(f"unknown activation or loss {name!r}")


# ------------------------------------------------------------------- expressions


@functools.cache
def _activation(name: str, filled: tuple[tuple[str, sp.Expr], ...]) -> sp.Expr:
    builder = _ACTIVATIONS[name][0]
    return builder(**dict(filled))


@functools.cache
def _activation_derivative(name: str, filled: tuple[tuple[str, sp.Expr], ...]) -> sp.Expr:
    return sp.simplify(sp.diff(_activation(name, filled), z))


def expr(name: str, *, defaults: bool = False, **params: float | sp.Expr) -> sp.Expr:
    r"""The activation $f(z)$ called ``name``, a SymPy expression in ``z``.

    Parameters you do not pass stay symbols; with ``defaults=True`` they take the defaults
    of the NumPy reference (``prelu``'s $\alpha$ has none and stays a symbol).

    >>> expr("leaky_relu")
    Piecewise((z, z > 0), (alpha*z, True))
    >>> expr("leaky_relu", alpha=0.2)
    Piecewise((z, z > 0), (0.2*z, True))
    >>> expr("swish", defaults=True)
    z/(1 + exp(-z))
    """
    return _activation(*_resolve("activation", _ACTIVATIONS, name, defaults, params))


def equal(lhs: sp.Expr, rhs: sp.Expr) -> bool:
    """True when SymPy proves ``lhs == rhs``.

    Hyperbolic and logistic forms are rewritten in exponentials first: ``simplify`` alone
    does not see that ``1/(4 cosh(z/2)**2)`` is ``sigma(z) (1 - sigma(z))``.

    >>> equal(derivative("sigmoid"), expr("sigmoid") * (1 - expr("sigmoid")))
    True
    """
    difference = lhs - rhs
    return sp.simplify(difference) == 0 or sp.simplify(difference.rewrite(sp.exp)) == 0


def derivative(name: str, *, defaults: bool = False, **params: float | sp.Expr) -> sp.Expr:
    r"""$f'(z)$, ``sympy.simplify(sympy.diff(expr(name, ...), z))``, cached.

    At a kink this is the left derivative, because every ``Piecewise`` tests ``z > 0``
    first. The simplified form is whatever SymPy finds shortest (often with ``cosh``).

    >>> derivative("relu")
    Piecewise((1, z > 0), (0, True))
    >>> derivative("tanh")
    cosh(z)**(-2)
    """
    return _activation_derivative(*_resolve("activation", _ACTIVATIONS, name, defaults, params))


@functools.cache
def _loss(name: str, filled: tuple[tuple[str, sp.Expr], ...]) -> sp.Expr:
    return _LOSSES[name][0](**dict(filled))


@functools.cache
def _loss_derivative(name: str, filled: tuple[tuple[str, sp.Expr], ...]) -> sp.Expr:
    raw = sp.diff(_loss(name, filled), _LOSS_WRT[name])
    simplified = sp.simplify(raw)
    # simplify turns sign(r) into Piecewise((0, Eq(y, yhat)), (r/Abs(r), True)): longer, and
    # NumPy evaluates r/Abs(r) at r = 0 too (0/0 warning) before discarding it. Keep the
    # shorter of the two forms.
    return raw if sp.count_ops(raw) <= sp.count_ops(simplified) else simplified


def loss_expr(name: str, *, defaults: bool = False, **params: float | sp.Expr) -> sp.Expr:
    r"""The loss $\ell(y, \hat y)$ of one sample, in the symbols ``y`` and ``y_hat``.

    ``binary_cross_entropy_with_logits`` and ``focal_loss_with_logits`` are in ``y`` and the
    logit ``z`` instead. Parameters
    (``delta``, ``alpha``, ``gamma``, ``margin``) work as in :func:`expr`. No clipping: the
    ``eps`` of the NumPy losses is a numerical guard, not part of the function.

    >>> loss_expr("mse")
    (-y + yhat)**2
    >>> loss_expr("binary_cross_entropy_with_logits")
    -y*z + log(exp(z) + 1)
    """
    return _loss(*_resolve("loss", _LOSSES, name, defaults, params))


def loss_derivative(name: str, *, defaults: bool = False, **params: float | sp.Expr) -> sp.Expr:
    r"""$\partial\ell/\partial\hat y$ (or $\partial\ell/\partial z$ from logits), simplified.

    The shorter of ``sympy.diff`` and its ``sympy.simplify`` (which would turn mae's
    ``sign`` into a ``Piecewise`` with a division). This is per sample: ``losses.<name>_grad`` divides it by the number of samples $N$.

    >>> loss_derivative("mse")
    -2*y + 2*yhat
    """
    return _loss_derivative(*_resolve("loss", _LOSSES, name, defaults, params))


# ------------------------------------------------------------------------- softmax


@functools.cache
def logit_symbols(k: int) -> tuple[sp.Symbol, ...]:
    """The real symbols ``z_0, ..., z_{k-1}`` of the softmax and the cross-entropy."""
    return tuple(sp.Symbol(f"z_{i}", real=True) for i in range(_check_k(k)))


@functools.cache
def label_symbols(k: int) -> tuple[sp.Symbol, ...]:
    """The real symbols ``y_0, ..., y_{k-1}`` of a one-hot (or soft) target."""
    return tuple(sp.Symbol(f"y_{i}", real=True) for i in range(_check_k(k)))


def _check_k(k: int) -> int:
    if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer number of classes, got {k!r}")
    return int(k)


def softmax_exprs(k: int) -> list[sp.Expr]:
    r"""$s_i = e^{z_i} / \sum_{j} e^{z_j}$ for $i = 0..k-1$, in ``logit_symbols(k)``.

    >>> softmax_exprs(2)
    [exp(z_0)/(exp(z_0) + exp(z_1)), exp(z_1)/(exp(z_0) + exp(z_1))]
    """
    zs = logit_symbols(k)
    total = sp.Add(*(sp.exp(z_j) for z_j in zs))
    return [sp.exp(z_i) / total for z_i in zs]


def log_softmax_exprs(k: int) -> list[sp.Expr]:
    r"""$\log s_i = z_i - \log\sum_j e^{z_j}$, in ``logit_symbols(k)``."""
    zs = logit_symbols(k)
    log_total = sp.log(sp.Add(*(sp.exp(z_j) for z_j in zs)))
    return [z_i - log_total for z_i in zs]


def softmax_jacobian_expr(k: int) -> sp.Matrix:
    r"""$J_{ij} = \partial s_i / \partial z_j$, a $k \times k$ ``sympy.Matrix`` (not simplified).

    It equals $s_i(\delta_{ij} - s_j)$; the tests prove it.
    """
    return sp.Matrix([s_i for s_i in softmax_exprs(k)]).jacobian(logit_symbols(k))


def log_softmax_jacobian_expr(k: int) -> sp.Matrix:
    r"""$J_{ij} = \partial \log s_i / \partial z_j$ (equal to $\delta_{ij} - s_j$)."""
    return sp.Matrix(log_softmax_exprs(k)).jacobian(logit_symbols(k))


def cross_entropy_exprs(k: int) -> sp.Expr:
    r"""$\ell = -\sum_i y_i \log s_i = -\sum_i y_i \bigl(z_i - \log\sum_j e^{z_j}\bigr)$.

    The per-sample softmax cross-entropy in ``label_symbols(k)`` (one-hot or soft targets)
    and ``logit_symbols(k)``. Its gradient is $s_i \sum_j y_j - y_i$, which is $s_i - y_i$
    when the targets sum to 1.

    >>> cross_entropy_exprs(2)
    -y_0*(z_0 - log(exp(z_0) + exp(z_1))) - y_1*(z_1 - log(exp(z_0) + exp(z_1)))
    """
    return -sp.Add(
        *(y_i * ls_i for y_i, ls_i in zip(label_symbols(k), log_softmax_exprs(k), strict=True))
    )


# ---------------------------------------------------------------------------- SELU


@functools.lru_cache(maxsize=1)
def _selu_exact() -> tuple[sp.Expr, sp.Expr]:
    # With z ~ N(0, 1) and density phi, the mean of SELU is
    #   lambda * (E[z; z > 0] + alpha E[e^z - 1; z <= 0]),
    # so mean 0 fixes alpha whatever lambda is; the second moment
    #   lambda^2 (E[z^2; z > 0] + alpha^2 E[(e^z - 1)^2; z <= 0]) = 1 then fixes lambda.
    phi = sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi)
    mean_pos = sp.integrate(z * phi, (z, 0, sp.oo))
    mean_neg = sp.integrate((sp.exp(z) - 1) * phi, (z, -sp.oo, 0))
    square_pos = sp.integrate(z**2 * phi, (z, 0, sp.oo))
    square_neg = sp.integrate((sp.exp(z) - 1) ** 2 * phi, (z, -sp.oo, 0))
    alpha_01 = -mean_pos / mean_neg
    scale_01 = 1 / sp.sqrt(square_pos + alpha_01**2 * square_neg)
    return alpha_01, scale_01


def selu_constants(dps: int | None = 50) -> tuple[sp.Expr, sp.Expr]:
    r"""SELU's $(\alpha, \lambda)$ from the fixed point: mean 0, variance 1 for $z \sim N(0,1)$.

    $\alpha = -\dfrac{E[z;\,z>0]}{E[e^z - 1;\,z \le 0]}$ and
    $\lambda = \bigl(E[z^2;\,z>0] + \alpha^2 E[(e^z-1)^2;\,z\le 0]\bigr)^{-1/2}$, with the
    four integrals done exactly by SymPy (about 0.5 s, then cached). Returns ``sympy.Float``
    with ``dps`` significant digits, or the exact closed forms (``erf``, ``exp``) for
    ``dps=None``.

    >>> a, lam = selu_constants(20)
    >>> a, lam
    (1.6732632423543772848, 1.0507009873554804934)
    """
    alpha_01, scale_01 = _selu_exact()
    if dps is None:
        return alpha_01, scale_01
    return sp.Float(alpha_01.evalf(dps + 10), dps), sp.Float(scale_01.evalf(dps + 10), dps)


# ------------------------------------------------------------------------ lambdify


def _step_left(arg: sp.Expr, *_h0: sp.Expr) -> sp.Expr:
    # Heaviside(0) is 1/2 in SymPy; the course's left derivative needs 0 (relu'(0) = 0).
    return sp.Piecewise((1, arg > 0), (0, True))


def _course_convention(expression: sp.Expr) -> sp.Expr:
    """Rewrite Heaviside with value 0 at 0, and DiracDelta (zero off its kink) as 0."""
    if not isinstance(expression, sp.Basic):
        return sp.sympify(expression)
    expression = expression.replace(sp.Heaviside, _step_left)
    return expression.replace(sp.DiracDelta, lambda *_args: sp.Integer(0))


def lambdify(
    expression: sp.Expr | Sequence[sp.Expr] | sp.MatrixBase, *symbols: sp.Symbol
) -> Callable[..., NDArray[np.float64]]:
    r"""A NumPy function computing ``expression`` at float64 arrays, one per symbol.

    The symbols default to ``(z,)``. The result always has the broadcast shape of the
    inputs (a constant such as ``derivative("identity") == 1`` gives an array of ones), is
    float64, and is a new array. A list of $k$ expressions gives shape ``(..., k)`` and a
    matrix ``(..., k, m)``: the layout of ``activations.softmax_jacobian``. ``erf``/``erfc``
    go to ``scipy.special``, ``Heaviside(0)`` is 0 (the left-derivative convention) and
    ``DiracDelta`` is 0.

    This evaluates the formula as written, in float64: it is a reference for moderate
    inputs, not a stable implementation (``exp(z)/(exp(z)+1)`` is nan at ``z = 1000``).
    A ``Piecewise`` becomes ``numpy.select``, which computes every branch at every point,
    so a branch can warn (overflow, 0/0) where it is not the one selected.

    >>> f = lambdify(derivative("leaky_relu", alpha=0.1))
    >>> f([-2.0, 0.0, 3.0])
    array([0.1, 0.1, 1. ])
    >>> lambdify(derivative("identity"))(np.zeros((2, 3))).shape
    (2, 3)
    >>> lambdify(alpha * z, z, alpha)([1.0, 2.0], 0.5)
    array([0.5, 1. ])
    """
    import scipy.special

    symbols = symbols or (z,)
    if isinstance(expression, sp.MatrixBase):
        entries = [_course_convention(e) for e in expression]
        tail: tuple[int, ...] = expression.shape
    elif isinstance(expression, Sequence):
        entries = [_course_convention(e) for e in expression]
        tail = (len(entries),)
    else:
        entries = [_course_convention(expression)]
        tail = ()

    free = set().union(*(e.free_symbols for e in entries)) - set(symbols)
    if free:
        names = ", ".join(sorted(str(s) for s in free))
        raise ValueError(
            f"the expression has free symbols {names} that are not arguments: pass them as "
            "symbols (lambdify(e, z, alpha)) or substitute numbers (e.subs(alpha, 0.1))"
        )

    modules = [{"erf": scipy.special.erf, "erfc": scipy.special.erfc}, "scipy", "numpy"]
    raw = sp.lambdify(symbols, entries, modules=modules)

    def evaluate(*args: ArrayLike) -> NDArray[np.float64]:
        if len(args) != len(symbols):
            raise TypeError(f"expected {len(symbols)} argument(s) {symbols}, got {len(args)}")
        arrays = [np.asarray(a, dtype=np.float64) for a in args]
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        values = [np.broadcast_to(np.asarray(v, dtype=np.float64), shape) for v in raw(*arrays)]
        out = np.stack(values, axis=-1) if tail else np.array(values[0], dtype=np.float64)
        return out.reshape(shape + tail)

    evaluate.__doc__ = f"Evaluate {entries if tail else entries[0]} in float64."
    return evaluate
