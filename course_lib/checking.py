r"""``check(name, fn)``: tell a student exactly what is wrong with an implementation.

``check(name, fn, **params)`` runs ``fn`` on a battery of inputs and compares it with the
reference of the same name in ``course_lib.activations`` (``ACTIVATIONS``, ``GRADIENTS``)
or ``course_lib.losses`` (``LOSSES``, ``LOSS_GRADIENTS``). ``fn`` has the reference's
signature; ``params`` fixes parameters for every call (``check("prelu", f, alpha=0.1)``).

    >>> import numpy as np
    >>> from course_lib.checking import check
    >>> bool(check("relu", lambda x: np.maximum(x, 0.0)))
    True
    >>> check("relu_grad", lambda x: np.where(np.asarray(x) >= 0, 1.0, 0.0)).hints
    ['kink', 'upcast']

Properties, one ✓/✗ line each
-----------------------------
- **values**: typical values, a dense grid on [-10, 10], zero (the kink), the tails
  (±20 to ±40) and the extremes ±1e3 and ±1e300 for elementwise functions; rows with big
  spreads for softmax; valid ``(y_true, y_pred)`` pairs of several layouts for losses,
  with ties (kinks), confident, clipped and extreme predictions.
- **shapes**: scalar, 1-D, 2-D batch and empty input (a loss: its valid layouts).
- **dtypes**: float64 and float32 input give a plain ``np.ndarray`` of the reference's
  dtype (a float for a loss), with values within the tolerance of that dtype.
- **input not modified**: no argument changes in place, and an array result is not the
  input array itself.
- **no RuntimeWarning**: no overflow, divide-by-zero or invalid-value warning on any input.
- **parameters**: non-default values of ``alpha``, ``beta``, ``delta``, ``gamma``, ``eps``,
  ``margin``, ``axis`` (only for functions that have parameters).
- **gradient** (``*_grad``, ``*_jacobian``): agreement with central finite differences
  (``course_lib.gradcheck.numerical_grad``) of the reference forward function.

For the first failing case of each property the result shows the input, the expected and
the actual value, the largest absolute and relative errors, and a hint (``HINTS``).

Tolerances
----------
With :math:`\varepsilon` = ``np.finfo(dtype).eps`` of the input dtype (2.2e-16 for float64,
1.2e-7 for float32), an entry passes when

.. math:: |got - expected| \le r\,|expected| + 64\,\varepsilon \cdot scale,
   \qquad r = 64\,\varepsilon \ (\text{tails and extremes: } \max(64\varepsilon, \sqrt{\varepsilon})),

where *scale* is the largest finite :math:`|expected|` of the case. So a formula that is
mathematically equal to the reference and a few dozen ULP less accurate passes (the
relative part), as does one that loses digits only where the value is negligible next to
the rest of the case (the absolute part). The tails and extremes are cases of their own,
so their scale is their own, and there half of the digits must survive
(:math:`\sqrt{\varepsilon} \approx 1.5\cdot 10^{-8}`): ``scipy.special.ndtr`` (13 digits at
-20) or a log-sum-exp at 1e3 pass, while ``s*(1-s)``, which returns 0 for
:math:`\sigma'(40) = 4.2\cdot 10^{-18}`, fails. For a loss or a loss gradient the scale is
at least the natural one, 1 nat for a loss and :math:`1/N` (one entry of the mean) for a
gradient: a confident, correct prediction whose cost of :math:`10^{-17}` rounds to 0 does
not fail, because it changes nothing in training. inf and nan must match exactly. Finite
differences (h = 1e-6) are compared with ``FD_RTOL`` (1e-6) relative to each entry plus
``FD_RTOL`` times the largest entry.

Hints
-----
``HINTS`` maps each category to its explanation; ``CheckResult.hints`` lists the category of
each failing property. The categories of the issue: ``overflow``, ``cancellation``,
``sign``, ``constant`` (a wrong constant or default parameter), ``softmax_axis``,
``missing_mean``, ``not_array``, ``shape_n1``, ``in_place``, ``kink``, ``upcast``; for broken
code: ``exception``, ``timeout``, ``bad_return``; and, more specific: ``clip`` (log of a
probability 0 or 1), ``shape``, ``dtype``, ``transpose`` (a Jacobian), ``shift``
(next-token loss), ``wrong_function`` (f instead of f' or the reverse), ``alias`` (the
input returned) and ``mismatch`` (none of these). The diagnosis is a set of simple
heuristics, tried in order: inf/nan where the answer is finite (``overflow``, or ``clip``
for the losses of probabilities); the result equals a known wrong variant (f(-x), another
axis, the transpose, f' for f, an unshifted target, a default instead of the given
parameter); the function is right with its default parameters written out (``constant``);
the failures sit only on kinks or clipped probabilities; right on ordinary inputs but wrong
in the tails (``cancellation``, or ``overflow`` with a warning); a constant factor or
offset (``sign``, ``missing_mean`` when the factor is a batch size, else ``constant``).

Time limit and output
---------------------
Each ``check`` call has a time limit (``timeout``, 3 s by default). In the main thread on
POSIX a repeating ``SIGALRM`` timer interrupts ``fn`` (a loop that catches the interrupt
gets one every 10 microseconds until one lands outside its ``try``); elsewhere the check
runs in a daemon thread and is abandoned when the time is up (that thread may keep running
in the background). Whatever ``fn`` prints is captured: the first ``MAX_OUTPUT`` characters
are kept, and the result says how much was printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import html
import inspect
import io
import math
import signal
import sys
import textwrap
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from course_lib.gradcheck import numerical_grad

__all__ = ["check", "CheckResult", "PropertyResult", "HINTS", "check_names"]

RTOL_ULPS = 64
"""Relative tolerance in units of ``np.finfo(dtype).eps``."""
ATOL_ULPS = 64
"""Absolute tolerance in units of ``np.finfo(dtype).eps`` times the scale of the case."""
FD_RTOL = 1e-6
"""Tolerance of the comparison with central finite differences (h = 1e-6)."""
DEFAULT_TIMEOUT = 3.0
"""Seconds one ``check`` call may take before ``fn`` is given up on."""
MAX_OUTPUT = 2000
"""Characters of ``fn``'s printed output that are kept."""
SHOWN_OUTPUT_LINES = 8
"""Lines of that output shown in the result."""

HINTS: dict[str, str] = {
    "overflow": (
        "Overflow in exp (or a log of 0): on a large input an exp overflowed to inf, and "
        "inf/inf or 0*inf gave nan. Use a stable form."
    ),
    "cancellation": (
        "Lost digits in the tails: right for moderate inputs, wrong where the true value is "
        "tiny. Something like 1 - s with s close to 1, or log(1 + tiny), cancels. Use a form "
        "that never subtracts nearly equal numbers."
    ),
    "sign": "Sign error: the result is the negative of the expected one, or f(-x) instead of f(x).",
    "constant": (
        "Wrong constant or default parameter: the result is off by a constant factor or "
        "offset, or a parameter is ignored or has the wrong default value."
    ),
    "softmax_axis": (
        "Wrong axis in softmax: the probabilities are normalised along the wrong axis. "
        "Reduce along `axis` (default -1, the last axis) with keepdims=True."
    ),
    "missing_mean": (
        "Missing (or extra) 1/N: the loss is the mean over the batch, so the loss and its "
        "gradient carry the factor 1/N."
    ),
    "not_array": (
        "A list or a Python scalar was returned instead of a NumPy array: write the function "
        "with NumPy operations on whole arrays (np.exp, np.where, np.maximum)."
    ),
    "shape_n1": (
        "Shape (n, 1) instead of (n,): an extra axis crept in (reshape(-1, 1), [:, None], "
        "keepdims=True, or a column broadcast against a row)."
    ),
    "in_place": (
        "The input was modified in place (x[...] = ..., x *= ..., out=x): the caller's array "
        "changed. Compute into a new array (np.where(...)) or work on x.copy()."
    ),
    "kink": (
        "Wrong convention at the kink: where the function is not differentiable, course_lib "
        "uses the left derivative, so ReLU'(0) = 0 and leaky_relu'(0) = alpha. Compare with "
        "x > 0, not x >= 0."
    ),
    "upcast": (
        "float32 upcast to float64: a float64 NumPy constant (np.float64(...), "
        "np.sqrt(2/np.pi), np.array(..., dtype=float)) turned float32 input into float64. "
        "Use Python floats as constants, or return result.astype(x.dtype)."
    ),
    "exception": "The function raised an exception.",
    "timeout": (
        "The function did not return within the time limit: look for a loop whose condition "
        "never becomes false."
    ),
    "bad_return": (
        "The function returned something that is not an array of numbers: None (a missing "
        "`return`?), a string, a ragged list, or another object."
    ),
    # Further categories, beyond the list.
    "clip": (
        "Probabilities of exactly 0 or 1: clip p away from 0 (and 1) with np.clip before "
        "the log, as the reference does. Where p was clipped the loss is constant, so its "
        "gradient is 0 there."
    ),
    "shape": "Wrong shape: the result must have the shape of the reference's result.",
    "dtype": (
        "Wrong dtype: return floating-point numbers (a comparison such as x > 0 gives "
        "booleans; convert with .astype(x.dtype))."
    ),
    "transpose": "Rows and columns swapped: entry [i, j] of the Jacobian is d s_i / d z_j.",
    "shift": (
        "Next-token prediction: the logits at position t predict the token at t + 1, so use "
        "logits[:, :-1] against tokens[:, 1:]."
    ),
    "wrong_function": (
        "A different function: the forward function where its derivative was asked for, "
        "or the reverse."
    ),
    "alias": (
        "The result is the input array itself (or a view of it): return a new array, so "
        "that changing one later cannot change the other (x.copy())."
    ),
    "mismatch": "The values differ from the reference: compare your formula, term by term, "
    "with the definition.",
}
"""Hint categories: stable identifier -> explanation. ``CheckResult.hints`` holds the keys."""

# One line of advice on the stable form, by name (a gradient falls back to its forward).
_STABLE_FORMS: dict[str, str] = {
    "sigmoid": "with e = np.exp(-np.abs(x)), use 1/(1+e) where x >= 0 and e/(1+e) elsewhere",
    "sigmoid_grad": "use e/(1+e)**2 with e = np.exp(-np.abs(x)); s*(1-s) cancels for large x",
    "tanh_grad": "use 4*e/(1+e)**2 with e = np.exp(-2*np.abs(x)); 1 - np.tanh(x)**2 cancels",
    "softplus": "use np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))), or np.logaddexp(0, x)",
    "softplus_grad": "it is the sigmoid: use a stable sigmoid",
    "swish": "multiply x by a stable sigmoid of beta*x",
    "silu": "multiply x by a stable sigmoid",
    "gelu_sigmoid": "multiply x by a stable sigmoid of 1.702*x",
    "gelu": "for x < 0 write Phi(x) as 0.5*scipy.special.erfc(-x/sqrt(2)); 1 + erf(...) cancels",
    "gelu_tanh": "1 + tanh(u) = 2*sigmoid(2u): use a stable sigmoid instead of 1 + tanh",
    "mish": "compute softplus stably (np.logaddexp(0, x)) before the tanh",
    "elu": "use np.expm1(np.minimum(x, 0)) so exp never sees a large x",
    "selu": "use np.expm1(np.minimum(x, 0)) so exp never sees a large x",
    "lisht": "x * np.tanh(x) is stable; avoid writing tanh through exp",
    "softmax": "subtract the maximum first: e = np.exp(x - np.max(x, axis, keepdims=True))",
    "log_softmax": "use (x - m) - np.log(np.sum(np.exp(x - m), axis, keepdims=True)) with m the "
    "maximum, never np.log(softmax(x))",
    "binary_cross_entropy_with_logits": "use y*softplus(-z) + (1-y)*softplus(z) with a stable "
    "softplus (np.logaddexp(0, z)), and a stable sigmoid for the gradient",
    "softmax_cross_entropy": "use log_softmax through the log-sum-exp trick (subtract the row "
    "maximum), never np.log(softmax(z))",
    "sparse_categorical_cross_entropy": "use log_softmax through the log-sum-exp trick",
    "softmax_jacobian": "on the diagonal, compute 1 - s_i as the sum of the other s_j; "
    "s_i - s_i**2 cancels for a confident class",
    "log_softmax_jacobian": "on the diagonal, compute 1 - s_i as the sum of the other s_j",
    "binary_cross_entropy": "p = np.clip(probs, eps, 1 - eps) before both logs",
    "focal_loss": "p = np.clip(probs, eps, 1 - eps) before the logs",
    "focal_loss_with_logits": "with u = (2y - 1)*z, use alpha_t * sigmoid(-u)**gamma * "
    "softplus(-u) with a stable sigmoid and softplus (np.logaddexp(0, -u)), never "
    "np.log(sigmoid(z)) or 1 - sigmoid(z); alpha_t is alpha for y = 1, 1 - alpha for y = 0",
    "categorical_cross_entropy": "p = np.clip(probs, eps, 1.0) before the log",
    "next_token_loss": "use log_softmax through the log-sum-exp trick",
    "masked_lm_loss": "use log_softmax through the log-sum-exp trick",
}

# Advice for common exceptions: (exception type name, text in the message, advice).
_EXCEPTION_ADVICE: tuple[tuple[str, str, str], ...] = (
    (
        "NotImplementedError",
        "",
        "The function is not written yet: replace the `raise NotImplementedError` with your code.",
    ),
    (
        "AttributeError",
        "'float' object",
        "The input can be a Python float: start with x = np.asarray(x, dtype=float).",
    ),
    (
        "TypeError",
        "object is not iterable",
        "The input can be a single number: use NumPy "
        "operations on the whole array instead of a Python loop over its elements.",
    ),
    (
        "AttributeError",
        "'list' object",
        "The input can be a list: start with x = np.asarray(x, dtype=float).",
    ),
    (
        "ValueError",
        "broadcast",
        "Shapes do not line up: a sum or max along an axis needs "
        "keepdims=True to broadcast back against its input.",
    ),
    (
        "AxisError",
        "",
        "That axis does not exist for this input: reduce along axis=-1 (the "
        "last axis) so that 1-D and 2-D inputs both work.",
    ),
    (
        "ValueError",
        "truth value of an array",
        "`if x > 0:` does not work on arrays: use np.where(x > 0, a, b) or np.maximum.",
    ),
    (
        "TypeError",
        "arrays can be converted to Python scalars",
        "math.exp and friends take one number: use np.exp (and other NumPy functions) on arrays.",
    ),
    (
        "TypeError",
        "unexpected keyword argument",
        "The function must accept the same keyword arguments as the reference.",
    ),
    (
        "TypeError",
        "required positional argument",
        "The function must have the reference's signature, with the same default values.",
    ),
    (
        "IndexError",
        "",
        "An index is out of range: check which axis holds the samples and which the classes.",
    ),
    ("RecursionError", "", "The function calls itself without end."),
)

# Parameters passed when the reference has no default (prelu's alpha).
_REQUIRED_VALUES: dict[str, Any] = {"alpha": 0.25, "beta": 1.0}
# Non-default values tried by the parameters property.
_ALTERNATES: dict[str, tuple[Any, ...]] = {
    "alpha": (0.4,),
    "beta": (1.7,),
    "delta": (0.5,),
    "gamma": (0.5,),
    "eps": (1e-3,),
    "margin": (2.0,),
    "axis": (0, 1),
}
# Elementwise functions with a kink at 0 (a gradient name maps to its forward).
_KINKED = {"relu", "leaky_relu", "prelu", "elu", "binary_step"}
# Losses of probabilities: their stability problem is the missing clip, not an overflow.
_CLIPPED_LOSSES = {"binary_cross_entropy", "categorical_cross_entropy", "focal_loss"}

_PY_FLOAT = "a Python float"  # the "dtype" of a Python float result (compared by identity)
_THIS_FILE = str(Path(__file__).resolve())
_NUMPY_DIR = str(Path(np.__file__).resolve().parent)


class _Timeout(BaseException):
    """Raised inside ``fn`` when the time is up: a BaseException, so ``except Exception``
    in a student's loop cannot swallow it."""


# ============================================================================ results


@dataclass
class PropertyResult:
    """One line of a check: a property, whether it held, and its first failure."""

    key: str
    title: str
    passed: bool | None  # None: not run (the time limit was reached before)
    hint: str | None = None
    summary: str = ""
    detail: str = ""

    def line(self) -> str:
        mark = {True: "✓", False: "✗", None: "·"}[self.passed]
        text = f"{mark} {self.title}"
        if self.passed is None:
            text += " (not run)"
        elif not self.passed:
            text += f": {self.summary} [{self.hint}]"
        return text


class CheckResult:
    """The outcome of ``check(name, fn)``: truthy if and only if every property held.

    ``.passed``, ``.failures`` (one readable block per failing property), ``.hints``
    (their hint categories, keys of ``HINTS``), ``.properties`` (every line), and
    ``.assert_passed()`` for autograder test cells. Prints as plain text; renders as a
    short ✓/✗ list in Jupyter.
    """

    def __init__(
        self,
        name: str,
        fn_name: str,
        properties: list[PropertyResult],
        notes: Sequence[str] = (),
        elapsed: float = 0.0,
    ) -> None:
        self.name = name
        self.fn_name = fn_name
        self.properties = list(properties)
        self.notes = list(notes)
        self.elapsed = elapsed

    @property
    def passed(self) -> bool:
        return bool(self.properties) and all(p.passed is True for p in self.properties)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> list[str]:
        return [p.detail for p in self.properties if p.passed is False]

    @property
    def hints(self) -> list[str]:
        return [p.hint for p in self.properties if p.passed is False and p.hint]

    def __getitem__(self, key: str) -> PropertyResult:
        for prop in self.properties:
            if prop.key == key:
                return prop
        raise KeyError(key)

    def _header(self) -> str:
        n_failed = sum(p.passed is False for p in self.properties)
        n_skipped = sum(p.passed is None for p in self.properties)
        verdict = "passed" if self.passed else f"FAILED ({n_failed} of {len(self.properties)}"
        if n_skipped:
            verdict += f"; {n_skipped} not run"
        verdict += "" if self.passed else ")"
        return f"check({self.name!r}, {self.fn_name}): {verdict}"

    def __str__(self) -> str:
        lines = [self._header()]
        lines += ["  " + p.line() for p in self.properties]
        for failure in self.failures:
            lines += ["", failure]
        lines += ["", *self.notes] if self.notes else []
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        color = "#1a7f37" if self.passed else "#cf222e"
        items = "".join(f"<li>{html.escape(p.line())}</li>" for p in self.properties)
        parts = [
            f'<div><b style="color:{color}">{html.escape(self._header())}</b>',
            f'<ul style="list-style:none;padding-left:1em;margin:0.3em 0">{items}</ul>',
        ]
        if self.failures:
            parts.append(
                "<details open><summary>first failure</summary>"
                f'<pre style="white-space:pre-wrap">{html.escape(self.failures[0])}</pre>'
                "</details>"
            )
            if len(self.failures) > 1:
                rest = "\n\n".join(self.failures[1:])
                parts.append(
                    "<details><summary>the other failures</summary>"
                    f'<pre style="white-space:pre-wrap">{html.escape(rest)}</pre></details>'
                )
        for note in self.notes:
            parts.append(f'<pre style="white-space:pre-wrap">{html.escape(note)}</pre>')
        parts.append("</div>")
        return "".join(parts)

    def assert_passed(self, *keys: str) -> None:
        """Raise ``AssertionError`` with the readable report unless the check passed.

        With ``keys`` (``"values"``, ``"shapes"``, ``"dtypes"``, ``"input"``,
        ``"warnings"``, ``"parameters"``, ``"gradient"``), only those properties must
        hold: an autograder test cell per property gives partial credit per property.
        """
        __tracebackhide__ = True  # pytest: show the message, not this frame
        if not keys:
            if not self.passed:
                raise AssertionError(str(self))
            return
        known = {p.key for p in self.properties}
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise KeyError(f"no property {unknown} in check({self.name!r}); known: {sorted(known)}")
        chosen = [p for p in self.properties if p.key in keys]
        if any(p.passed is not True for p in chosen):
            lines = [self._header()] + ["  " + p.line() for p in chosen]
            lines += ["", *(p.detail for p in chosen if p.passed is False)]
            raise AssertionError("\n".join(lines))


# =============================================================================== specs


@dataclass
class _Case:
    """One input of the battery: positional arguments and what is known about them."""

    label: str
    args: tuple[Any, ...]
    tail: bool = False  # tails and extremes: only stable formulas pass here
    kink: np.ndarray | None = None  # where the output sits on a kink
    scale: float = 0.0  # lower bound of the tolerance scale (losses: 1 nat, 1/N)
    ratios: tuple[float, ...] = ()  # constant factors that mean "missing 1/N"
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra parameters of this case


@dataclass
class _Spec:
    name: str
    kind: str  # "elementwise", "rowwise", "jacobian", "loss", "loss_grad"
    reference: Callable[..., Any]
    forward: Callable[..., Any] | None  # for gradients: the function differentiated
    arg_names: tuple[str, ...]
    defaults: dict[str, Any]
    required: dict[str, Any]
    values: list[_Case]
    shapes: list[_Case]
    dtypes: list[_Case]
    params: list[_Case]
    smooth: list[_Case]
    wrt: tuple[int, ...] = (0,)  # arguments a gradient is taken with respect to
    wrt_param: str | None = None  # prelu_grad_alpha: the parameter differentiated
    n_outputs: int = 1
    stability: str = "overflow"
    kinked: bool = False  # elementwise with a kink at x = 0
    # The function a student may have confused this one with, and how to say so.
    partner: tuple[Callable[..., Any] | None, str] = (None, "")
    advice: str = ""
    alternatives: list[tuple[str, str, Callable[[_Case, dict], Any]]] = field(default_factory=list)


def _registries() -> dict[str, tuple[str, Callable[..., Any]]]:
    from course_lib import activations, losses

    table: dict[str, tuple[str, Callable[..., Any]]] = {}
    for name, f in activations.ACTIVATIONS.items():
        table[name] = ("rowwise" if name in ("softmax", "log_softmax") else "elementwise", f)
    for name, f in activations.GRADIENTS.items():
        table[name] = ("jacobian" if name.endswith("_jacobian") else "elementwise", f)
    for name, f in losses.LOSSES.items():
        table[name] = ("loss", f)
    for name, f in losses.LOSS_GRADIENTS.items():
        table[name] = ("loss_grad", f)
    return table


def check_names() -> list[str]:
    """Every name ``check`` accepts: activations, their gradients, losses, loss gradients."""
    return list(_registries())


def _base_name(name: str) -> tuple[str, str | None]:
    """``sigmoid_grad`` -> (``sigmoid``, None); ``prelu_grad_alpha`` -> (``prelu``, ``alpha``)."""
    for suffix in ("_jacobian", "_grad"):
        if name.endswith(suffix):
            return name[: -len(suffix)], None
    if "_grad_" in name:
        base, param = name.rsplit("_grad_", 1)
        return base, param
    return name, None


@functools.cache
def _spec(name: str) -> _Spec:
    table = _registries()
    if name not in table:
        close = difflib.get_close_matches(name, list(table), n=3)
        extra = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"check: no reference is called {name!r}.{extra}")
    kind, reference = table[name]
    signature = inspect.signature(reference)
    arg_names: list[str] = []
    defaults: dict[str, Any] = {}
    required: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.default is not inspect.Parameter.empty:
            defaults[param.name] = param.default
        elif param.name in _REQUIRED_VALUES and arg_names:
            required[param.name] = _REQUIRED_VALUES[param.name]
        else:
            arg_names.append(param.name)
    base, wrt_param = _base_name(name)
    forward = table[base][1] if base != name and base in table else None
    builder = _CASE_BUILDERS.get(kind if kind != "loss_grad" else "loss")
    spec = _Spec(
        name=name,
        kind=kind,
        reference=reference,
        forward=forward,
        arg_names=tuple(arg_names),
        defaults=defaults,
        required=required,
        values=[],
        shapes=[],
        dtypes=[],
        params=[],
        smooth=[],
        wrt_param=wrt_param,
        advice=_STABLE_FORMS.get(name) or _STABLE_FORMS.get(base, ""),
    )
    assert builder is not None
    builder(spec, base)
    if kind == "elementwise" and wrt_param is None:
        if forward is not None:
            spec.partner = (forward, f"{base}(x), not its derivative")
        elif f"{name}_grad" in table:
            spec.partner = (
                table[f"{name}_grad"][1],
                f"the derivative {name}_grad(x), not {name}(x)",
            )
    return spec


# ----------------------------------------------------------------- activation cases


def _elementwise_cases(spec: _Spec, base: str) -> None:
    rng = np.random.default_rng(0)
    kinked = base in _KINKED
    cases = [
        _Case("typical values", (rng.normal(0.0, 3.0, 12),)),
        _Case("dense grid on [-10, 10]", (np.arange(-100, 101) / 10.0,)),
        _Case("zero (the kink)" if kinked else "zero", (np.array([0.0, -0.0]),)),
        _Case("left tail", (np.array([-40.0, -30.0, -20.0]),), tail=True),
        _Case("right tail", (np.array([20.0, 30.0, 40.0]),), tail=True),
        _Case("extremes ±1e3", (np.array([-1e3, 1e3]),), tail=True),
        _Case("extremes ±1e300", (np.array([-1e300, 1e300]),), tail=True),
    ]
    spec.kinked = kinked
    spec.values = cases
    spec.shapes = [
        _Case("1-D input", (rng.normal(0.0, 2.0, 5),)),
        _Case("2-D batch", (rng.normal(0.0, 2.0, (3, 4)),)),
        _Case("scalar input (a Python float)", (0.7,)),
        _Case("empty input", (np.zeros(0),)),
    ]
    spec.dtypes = [_Case("grid on [-5, 5]", (np.arange(-20, 21) / 4.0,))]
    spec.params = cases[:2]
    # Away from the kink by far more than the step h, and where differences are accurate.
    spec.smooth = [_Case("points on [-4, 4]", ((np.arange(-16, 17) + 0.37) / 4.0,))]


def _rowwise_cases(spec: _Spec, base: str) -> None:
    rng = np.random.default_rng(1)
    cases = [
        _Case("typical rows, shape (4, 6)", (rng.normal(0.0, 3.0, (4, 6)),)),
        _Case("one vector, shape (5,)", (rng.normal(0.0, 3.0, 5),)),
        _Case("rows of equal entries", (np.array([[0.0] * 4, [5.0] * 4]),)),
        _Case(
            "large entries near ±1e3",
            (np.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]]),),
            tail=True,
        ),
        _Case("big spread ±1e3", (np.array([[1e3, 0.0, -1e3], [50.0, -50.0, 0.0]]),), tail=True),
        _Case("extremes ±1e300", (np.array([[1e300, 0.0, -1e300]]),), tail=True),
    ]
    spec.values = cases
    spec.shapes = [
        _Case("1-D input (5,)", (rng.normal(0.0, 2.0, 5),)),
        _Case("2-D batch (3, 5)", (rng.normal(0.0, 2.0, (3, 5)),)),
        _Case("3-D input (2, 3, 4)", (rng.normal(0.0, 2.0, (2, 3, 4)),)),
        _Case("empty batch (0, 5)", (np.zeros((0, 5)),)),
    ]
    spec.dtypes = [_Case("rows (4, 6)", (rng.normal(0.0, 3.0, (4, 6)),))]
    spec.params = [
        _Case("2-D batch (3, 5)", (rng.normal(0.0, 2.0, (3, 5)),)),
        _Case("3-D input (2, 3, 4)", (rng.normal(0.0, 2.0, (2, 3, 4)),)),
    ]
    spec.smooth = [_Case("rows (3, 4)", (rng.normal(0.0, 1.5, (3, 4)),))]


def _jacobian_cases(spec: _Spec, base: str) -> None:
    _rowwise_cases(spec, base)
    rng = np.random.default_rng(11)
    spec.shapes = [
        _Case("1-D input (4,)", (rng.normal(0.0, 2.0, 4),)),
        _Case("2-D batch (3, 4)", (rng.normal(0.0, 2.0, (3, 4)),)),
        _Case("3-D input (2, 2, 3)", (rng.normal(0.0, 2.0, (2, 2, 3)),)),
        _Case("empty batch (0, 4)", (np.zeros((0, 4)),)),
    ]
    spec.params = []


# ----------------------------------------------------------------------- loss cases


def _onehot(labels: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[labels]


def _np_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _regression_cases(rng: np.random.Generator) -> dict[str, list[_Case]]:
    y = rng.normal(0.0, 2.0, 10)
    y_hat = y + rng.normal(0.0, 1.5, 10)
    y2 = rng.normal(0.0, 2.0, (4, 3))
    y2_hat = y2 + rng.normal(0.0, 1.5, (4, 3))
    ties = y_hat.copy()
    ties[::3] = y[::3]
    values = [
        _Case("typical, shape (N,)", (y, y_hat)),
        _Case("batch, shape (N, D)", (y2, y2_hat)),
        _Case("y_pred equal to y_true at some entries (a kink)", (y, ties), kink=ties == y),
        _Case("large values (scale 1e3)", (1e3 * y, 1e3 * y_hat)),
    ]
    shapes = [
        _Case("shape (N,)", (y[:6], y_hat[:6])),
        _Case("shape (N, 1)", (y[:, None], y_hat[:, None])),
        _Case("shape (N, D)", (y2[:3], y2_hat[:3])),
        _Case("one sample, shape (1,)", (y[:1], y_hat[:1])),
    ]
    return {"values": values, "shapes": shapes, "smooth": values[:2]}


def _binary_prob_cases(rng: np.random.Generator) -> dict[str, list[_Case]]:
    y = rng.integers(0, 2, 12).astype(float)
    p = rng.uniform(0.05, 0.95, 12)
    y2 = rng.integers(0, 2, (4, 3)).astype(float)
    p2 = rng.uniform(0.05, 0.95, (4, 3))
    labels = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    confident = np.array([1 - 1e-6, 1e-6, 0.999, 0.001, 0.99999, 1e-5])
    edges = np.array([0.0, 1.0, 1.0, 0.0, 0.5, 0.5])
    values = [
        _Case("typical, shape (N,)", (y, p)),
        _Case("multi-label, shape (N, K)", (y2, p2)),
        _Case("confident predictions", (labels, confident)),
        _Case("probabilities exactly 0 and 1", (labels, edges), tail=True),
    ]
    shapes = [
        _Case("shape (N,)", (y[:5], p[:5])),
        _Case("shape (N, 1)", (y[:, None], p[:, None])),
        _Case("shape (N, K)", (y2[:2], p2[:2])),
    ]
    return {"values": values, "shapes": shapes, "smooth": values[:2]}


def _binary_logit_cases(rng: np.random.Generator) -> dict[str, list[_Case]]:
    y = rng.integers(0, 2, 12).astype(float)
    z = rng.normal(0.0, 3.0, 12)
    y2 = rng.integers(0, 2, (4, 3)).astype(float)
    z2 = rng.normal(0.0, 3.0, (4, 3))
    labels = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    values = [
        _Case("typical, shape (N,)", (y, z)),
        _Case("multi-label, shape (N, K)", (y2, z2)),
        _Case(
            "confident logits ±20 to ±40",
            (labels, np.array([40.0, -40.0, 30.0, -30.0, 20.0, -20.0])),
            tail=True,
        ),
        _Case("extremes ±1e3", (labels, np.array([1e3, -1e3, -1e3, 1e3, 1e3, -1e3])), tail=True),
        _Case(
            "extremes ±1e300",
            (labels, np.array([1e300, -1e300, -1e300, 1e300, 1e300, -1e300])),
            tail=True,
        ),
    ]
    shapes = [
        _Case("shape (N,)", (y[:5], z[:5])),
        _Case("shape (N, 1)", (y[:, None], z[:, None])),
        _Case("shape (N, K)", (y2[:2], z2[:2])),
    ]
    return {"values": values, "shapes": shapes, "smooth": values[:2]}


def _categorical_prob_cases(rng: np.random.Generator) -> dict[str, list[_Case]]:
    n, k = 5, 4
    y = _onehot(rng.integers(0, k, n), k)
    p = _np_softmax(rng.normal(0.0, 1.5, (n, k)))
    soft = rng.dirichlet(np.ones(k), n)
    edges_p = np.array(
        [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [0.25] * 4]
    )
    edges_y = _onehot(np.array([0, 0, 2, 3]), k)
    values = [
        _Case("typical one-hot rows (N, K)", (y, p)),
        _Case("soft labels", (soft, p)),
        _Case("probabilities exactly 0 and 1", (edges_y, edges_p), tail=True),
    ]
    shapes = [
        _Case("shape (5, 4)", (y, p)),
        _Case("one sample, shape (1, 3)", (_onehot(np.array([1]), 3), _np_softmax(p[:1, :3]))),
        _Case(
            "shape (8, 2)",
            (_onehot(rng.integers(0, 2, 8), 2), _np_softmax(rng.normal(size=(8, 2)))),
        ),
    ]
    return {"values": values, "shapes": shapes, "smooth": values[:2]}


def _confident_logits(onehot: np.ndarray, margins: np.ndarray) -> np.ndarray:
    return onehot * margins.reshape(margins.shape + (1,) * (onehot.ndim - margins.ndim))


def _softmax_ce_cases(rng: np.random.Generator, sparse: bool) -> dict[str, list[_Case]]:
    n, k = 5, 4
    labels = rng.integers(0, k, n)
    y = _onehot(labels, k)
    z = rng.normal(0.0, 3.0, (n, k))
    target = labels if sparse else y
    margins = np.array([40.0, 30.0, 25.0, 36.0, 20.0])
    values = [
        _Case("typical rows (N, K)", (target, z)),
        _Case("confident, correct rows", (target, _confident_logits(y, margins)), tail=True),
        _Case("extremes ±1e3", (target, np.where(y == 1, -1e3, 1e3)), tail=True),
    ]
    if not sparse:
        values.insert(1, _Case("soft labels", (rng.dirichlet(np.ones(k), n), z)))
    labels8 = rng.integers(0, 2, 8)
    shapes = [
        _Case("shape (5, 4)", (target, z)),
        _Case(
            "one sample, shape (1, 3)",
            (np.array([2]) if sparse else _onehot(np.array([2]), 3), z[:1, :3]),
        ),
        _Case(
            "shape (8, 2)", (labels8 if sparse else _onehot(labels8, 2), rng.normal(0, 2, (8, 2)))
        ),
    ]
    return {"values": values, "shapes": shapes, "smooth": values[:1]}


def _hinge_cases(rng: np.random.Generator) -> dict[str, list[_Case]]:
    y = rng.choice([-1.0, 1.0], 12)
    s = rng.normal(0.0, 1.5, 12)
    y2 = rng.choice([-1.0, 1.0], (4, 3))
    s2 = rng.normal(0.0, 1.5, (4, 3))
    at_margin = s.copy()
    at_margin[::3] = y[::3]  # y*s = 1: the kink
    values = [
        _Case("typical, shape (N,)", (y, s)),
        _Case("shape (N, K)", (y2, s2)),
        _Case(
            "scores exactly at the margin, y*s = 1 (the kink)",
            (y, at_margin),
            kink=y * at_margin == 1,
        ),
        _Case("large scores (scale 1e3)", (y, 1e3 * s)),
    ]
    shapes = [
        _Case("shape (N,)", (y[:5], s[:5])),
        _Case("shape (N, 1)", (y[:, None], s[:, None])),
        _Case("shape (N, K)", (y2[:2], s2[:2])),
    ]
    return {"values": values, "shapes": shapes, "smooth": values[:2]}


def _contrastive_cases(rng: np.random.Generator) -> dict[str, list[_Case]]:
    y = rng.integers(0, 2, 12).astype(float)
    d = np.abs(rng.normal(0.0, 1.2, 12))
    zeros = d.copy()
    zeros[::4] = 0.0
    values = [
        _Case("typical, shape (N,)", (y, d)),
        _Case("some distances exactly 0", (y, zeros)),
        _Case("large distances (scale 1e3)", (y, 1e3 * d)),
    ]
    shapes = [
        _Case("shape (N,)", (y[:5], d[:5])),
        _Case("shape (N, 1)", (y[:, None], d[:, None])),
    ]
    return {"values": values, "shapes": shapes, "smooth": values[:1]}


def _triplet_cases(rng: np.random.Generator) -> dict[str, list[_Case]]:
    a = rng.normal(0.0, 1.0, (6, 3))
    p = a + rng.normal(0.0, 0.7, (6, 3))
    n = a + rng.normal(0.0, 1.0, (6, 3))
    values = [
        _Case("typical embeddings (N, D)", (a, p, n)),
        _Case("easy triplets (zero loss)", (a, p, a + 10.0)),
        _Case("large embeddings (scale 1e3)", (1e3 * a, 1e3 * p, 1e3 * n)),
    ]
    shapes = [
        _Case("shape (6, 3)", (a, p, n)),
        _Case("one triplet, shape (1, 3)", (a[:1], p[:1], n[:1])),
        _Case("shape (4, 2)", tuple(rng.normal(0.0, 1.0, (3, 4, 2)))),
    ]
    return {"values": values, "shapes": shapes, "smooth": values[:1]}


def _next_targets(tokens: np.ndarray) -> np.ndarray:
    return np.concatenate([tokens[:, 1:], tokens[:, :1]], axis=1)


def _sequence_ratios(first: np.ndarray, masked: bool) -> tuple[float, ...]:
    """Wrong denominators of a sequence mean: all B*T positions instead of the scored ones."""
    b, t = first.shape
    scored = int(np.sum(first != -100)) if masked else b * (t - 1)
    return (scored / (b * t), b * t / scored)


def _sequence_cases(rng: np.random.Generator, masked: bool) -> dict[str, list[_Case]]:
    b, t, v = 2, 5, 4
    tokens = rng.integers(0, v, (b, t))
    z = rng.normal(0.0, 2.0, (b, t, v))
    if masked:
        labels = tokens.copy()
        labels[rng.random((b, t)) < 0.5] = -100
        labels[0, 0] = tokens[0, 0]  # at least one scored position
        targets = np.where(labels == -100, 0, labels)
        first = labels
    else:
        targets = _next_targets(tokens)
        first = tokens
    ratios = _sequence_ratios(first, masked)
    hot = _onehot(targets, v)
    margins = np.full((b, t), 30.0)
    values = [
        _Case("typical (B, T, V)", (first, z), ratios=ratios),
        _Case(
            "confident, correct logits",
            (first, _confident_logits(hot, margins)),
            tail=True,
            ratios=ratios,
        ),
        _Case("extremes ±1e3", (first, np.where(hot == 1, -1e3, 1e3)), tail=True, ratios=ratios),
    ]
    tok1 = rng.integers(0, 6, (1, 3))
    tok3 = rng.integers(0, 3, (3, 2))
    shapes = [
        _Case("B, T, V = 1, 3, 6", (tok1, rng.normal(0.0, 2.0, (1, 3, 6)))),
        _Case("B, T, V = 3, 2, 3", (tok3, rng.normal(0.0, 2.0, (3, 2, 3)))),
    ]
    # Finite differences cost two loss calls per logit: a smaller batch for them.
    small_first = np.where(first[:, :3] == -100, -100, first[:, :3] % 3)
    small = _Case(
        "B, T, V = 2, 3, 3",
        (small_first, rng.normal(0.0, 2.0, (2, 3, 3))),
        ratios=_sequence_ratios(small_first, masked),
    )
    return {"values": values, "shapes": shapes, "smooth": [small]}


_LOSS_FAMILIES: dict[str, Callable[[np.random.Generator], dict[str, list[_Case]]]] = {
    "mse": _regression_cases,
    "mae": _regression_cases,
    "huber": _regression_cases,
    "binary_cross_entropy": _binary_prob_cases,
    "focal_loss": _binary_prob_cases,
    "binary_cross_entropy_with_logits": _binary_logit_cases,
    "focal_loss_with_logits": _binary_logit_cases,
    "categorical_cross_entropy": _categorical_prob_cases,
    "softmax_cross_entropy": functools.partial(_softmax_ce_cases, sparse=False),
    "sparse_categorical_cross_entropy": functools.partial(_softmax_ce_cases, sparse=True),
    "hinge": _hinge_cases,
    "contrastive_loss": _contrastive_cases,
    "triplet_loss": _triplet_cases,
    "next_token_loss": functools.partial(_sequence_cases, masked=False),
    "masked_lm_loss": functools.partial(_sequence_cases, masked=True),
}


def _loss_cases(spec: _Spec, base: str) -> None:
    family = _LOSS_FAMILIES.get(base)
    if family is None:
        raise ValueError(f"check: no input generator for the loss {base!r} yet")
    cases = family(np.random.default_rng(2))
    spec.wrt = (0, 1, 2) if base == "triplet_loss" else (1,)
    spec.n_outputs = 3 if spec.kind == "loss_grad" and base == "triplet_loss" else 1
    spec.stability = "clip" if base in _CLIPPED_LOSSES else "overflow"
    unique = {id(case): case for group in cases.values() for case in group}
    for case in unique.values():
        pred = np.asarray(case.args[spec.wrt[0]])
        n = pred.shape[0] if pred.ndim else 1
        # The natural scale: 1 nat for a loss, an entry of size 1/N for its gradient.
        case.scale = 1.0 if spec.kind == "loss" else 1.0 / max(pred.size, 1)
        sizes = {n, pred.size}
        if pred.ndim > 1:  # per-row (N) versus per-entry (N*K) means, and the class count K
            sizes |= {int(np.prod(pred.shape[:-1])), pred.shape[-1]}
        case.ratios = (*case.ratios, *sorted(sizes), *(1.0 / s for s in sorted(sizes) if s))
    spec.values = cases["values"]
    spec.shapes = cases["shapes"]
    spec.dtypes = cases["values"][:1]
    spec.params = cases["values"]
    spec.smooth = cases["smooth"]
    if base in ("softmax_cross_entropy", "sparse_categorical_cross_entropy"):
        spec.alternatives.append(
            (
                "softmax_axis",
                "the softmax inside is taken along axis 0 instead of the class axis -1",
                _wrong_axis_ce,
            )
        )
    if base == "focal_loss_with_logits":
        spec.alternatives.append(
            (
                "constant",
                "alpha_t is swapped: alpha weights the positives (y = 1) and 1 - alpha the "
                "negatives (y = 0), not the other way round",
                _swapped_alpha_focal,
            )
        )
    if base == "next_token_loss":
        spec.alternatives.append(
            (
                "shift",
                "your loss compares the logits at position t with the token at t, not at t + 1",
                _unshifted_next_token,
            )
        )


_CASE_BUILDERS: dict[str, Callable[[_Spec, str], None]] = {
    "elementwise": _elementwise_cases,
    "rowwise": _rowwise_cases,
    "jacobian": _jacobian_cases,
    "loss": _loss_cases,
}


def _wrong_axis_ce(case: _Case, spec: _Spec) -> Any:
    target, z = case.args[0], np.asarray(case.args[1], dtype=np.float64)
    y = _onehot(target, z.shape[1]) if np.ndim(target) == 1 else np.asarray(target, np.float64)
    if spec.kind == "loss":
        with np.errstate(all="ignore"):
            m = np.max(z, axis=0, keepdims=True)
            log_p = (z - m) - np.log(np.sum(np.exp(z - m), axis=0, keepdims=True))
            return float(-np.sum(y * log_p) / len(z))
    return (_np_softmax(z, axis=0) - y) / len(z)


def _swapped_alpha_focal(case: _Case, spec: _Spec) -> Any:
    """The reference with alpha and 1 - alpha exchanged (alpha_t of the other class)."""
    kwargs = {**spec.defaults, **case.kwargs}
    kwargs["alpha"] = 1.0 - kwargs.get("alpha", 0.25)
    return spec.reference(*case.args, **kwargs)


def _unshifted_next_token(case: _Case, spec: _Spec) -> Any:
    tokens, z = case.args[0], np.asarray(case.args[1], dtype=np.float64)
    hot = _onehot(tokens, z.shape[-1])
    if spec.kind == "loss":
        with np.errstate(all="ignore"):
            m = np.max(z, axis=-1, keepdims=True)
            log_p = (z - m) - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))
        return float(-np.sum(hot * log_p) / tokens.size)
    return (_np_softmax(z) - hot) / tokens.size


# ====================================================================== reading results


@dataclass
class _Read:
    """A result of ``fn`` turned into plain float64 arrays, or the reason it could not be."""

    arrays: list[np.ndarray] | None
    hint: str | None = None  # why arrays is None
    text: str = ""
    got: str = ""  # what was returned, for the report
    type_hint: str | None = None  # readable, but not of the right type (dtypes property)
    type_text: str = ""
    dtypes: list[Any] = field(default_factory=list)


def _short_repr(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not break the report
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_one(value: Any, is_loss: bool) -> _Read:
    """Type checks first; values are read only from types we understand."""
    kind = type(value).__name__
    if value is None:
        return _Read(
            None, "bad_return", "returned None", "None: is the `return` statement missing?"
        )
    if isinstance(value, str | bytes):
        return _Read(None, "bad_return", "returned a string", _short_repr(value))
    type_hint, type_text = None, ""
    if isinstance(value, np.ndarray):
        # ndarray.view through the base class: no subclass method (__eq__, __array__) runs.
        array = np.ndarray.view(value, np.ndarray)
        if type(value) is not np.ndarray:
            type_hint = "bad_return"
            type_text = f"returned a {kind} (a subclass of np.ndarray); return a plain np.ndarray"
    elif isinstance(value, np.generic):
        array = np.array(value)
    elif isinstance(value, bool | int | float):
        array = np.array(float(value))
        if not is_loss:
            type_hint, type_text = "not_array", f"returned a Python {kind} instead of an array"
    elif isinstance(value, list | tuple):
        try:
            array = np.array(value, dtype=np.float64)
        except (ValueError, TypeError) as exc:
            why = "a ragged list" if "inhomogeneous" in str(exc) else "a list of non-numbers"
            return _Read(None, "bad_return", f"returned {why}", f"{why}: {_short_repr(value)}")
        type_hint, type_text = "not_array", f"returned a Python {kind} instead of an array"
    else:
        return _Read(
            None,
            "bad_return",
            f"returned an object of type {kind}, not an array",
            _short_repr(value),
        )
    if array.dtype.kind not in "fiub":
        what = {"c": "complex numbers", "O": "Python objects"}.get(array.dtype.kind, "non-numbers")
        text = f"returned an array of {what}"
        return _Read(None, "bad_return", text, f"an array of dtype {array.dtype}")
    dtype: Any = _PY_FLOAT if not isinstance(value, np.ndarray | np.generic) else array.dtype
    with np.errstate(all="ignore"):
        plain = array.astype(np.float64)
    if is_loss and type_hint is None and array.ndim == 0 and isinstance(value, np.ndarray):
        dtype = array.dtype
    return _Read([plain], None, "", "", type_hint, type_text, [dtype])


def _read(value: Any, n_outputs: int, is_loss: bool) -> _Read:
    if n_outputs == 1:
        return _read_one(value, is_loss)
    if not isinstance(value, tuple | list) or len(value) != n_outputs:
        return _Read(
            None,
            "bad_return",
            f"returned a {type(value).__name__}, not a tuple of {n_outputs} arrays",
            _short_repr(value),
        )
    arrays, dtypes = [], []
    first_type: tuple[str | None, str] = (None, "")
    for item in value:
        part = _read_one(item, is_loss=False)
        if part.arrays is None:
            return part
        arrays += part.arrays
        dtypes += part.dtypes
        if part.type_hint and first_type[0] is None:
            first_type = (part.type_hint, part.type_text)
    return _Read(arrays, None, "", "", first_type[0], first_type[1], dtypes)


def _reference_outputs(value: Any) -> tuple[list[np.ndarray], list[Any]]:
    items = value if isinstance(value, tuple) else (value,)
    arrays, dtypes = [], []
    for item in items:
        if isinstance(item, float) and not isinstance(item, np.generic):
            arrays.append(np.array(item))
            dtypes.append(_PY_FLOAT)
        else:
            array = np.asarray(item)
            arrays.append(array.astype(np.float64))
            dtypes.append(array.dtype)
    return arrays, dtypes


# ========================================================================= comparison


@dataclass
class _Diff:
    ok: bool
    bad: np.ndarray  # flat mask over the concatenated outputs
    worst: int | None
    max_abs: float
    max_rel: float
    n_nonfinite: int  # entries that are inf/nan in got but not in expected


def _flat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    if not arrays:
        return np.zeros(0)
    return np.concatenate([np.ravel(a) for a in arrays])


def _compare(expected: np.ndarray, got: np.ndarray, rtol: float, atol: float) -> _Diff:
    """Elementwise |got - expected| <= rtol |expected| + atol; inf and nan must match."""
    with np.errstate(all="ignore"):
        err = np.abs(got - expected)
        tol = rtol * np.abs(expected) + atol
        same = (got == expected) | (np.isnan(got) & np.isnan(expected))
        bad = ~same & ~(err <= tol)
        finite_err = np.where(np.isfinite(err) & ~same, err, 0.0)
        rel = np.where(
            expected != 0, finite_err / np.abs(expected), np.where(finite_err > 0, np.inf, 0.0)
        )
        n_nonfinite = int(np.sum(bad & ~np.isfinite(got) & np.isfinite(expected)))
        if np.any(bad):
            severity = np.where(np.isfinite(err), err / np.maximum(tol, 1e-300), np.inf)
            worst = int(np.argmax(np.where(bad, severity, -1.0)))
        else:
            worst = None
    return _Diff(
        ok=not np.any(bad),
        bad=bad,
        worst=worst,
        max_abs=float(np.max(finite_err, initial=0.0)),
        max_rel=float(np.max(rel, initial=0.0)),
        n_nonfinite=n_nonfinite,
    )


def _tolerance(
    expected: np.ndarray, dtype: Any, scale_floor: float, tail: bool = False
) -> tuple[float, float]:
    """``(rtol, atol)`` for one case; see the module docstring."""
    info = np.finfo(dtype)
    eps = float(info.eps)
    finite = expected[np.isfinite(expected)]
    scale = max(float(np.max(np.abs(finite), initial=0.0)), scale_floor)
    # In the tails and extremes half of the digits must survive; all of them is too much
    # to ask of a sound formula whose conditioning there is poor (log-sum-exp at 1e3).
    rtol = max(RTOL_ULPS * eps, math.sqrt(eps)) if tail else RTOL_ULPS * eps
    return rtol, max(ATOL_ULPS * eps * scale, float(info.smallest_normal))


# ========================================================================= formatting


def _fmt_array(value: Any) -> str:
    if isinstance(value, np.ndarray):
        with np.printoptions(precision=8, threshold=12, edgeitems=3, linewidth=76):
            return np.array2string(value, separator=", ")
    if isinstance(value, float):
        return repr(value)
    return _short_repr(value)


def _fmt_number(value: float) -> str:
    return repr(float(value))


def _fmt_error(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.3g}"


def _indent(text: str, prefix: str) -> str:
    return text.replace("\n", "\n" + prefix)


def _student_frame(exc: BaseException) -> str:
    """``in my_fn, line 3: return 1/(1+np.exp(-x))``: where in the student's code it broke."""
    frames = (
        [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if str(Path(f.filename).resolve()) != _THIS_FILE
            and not str(Path(f.filename).resolve()).startswith(_NUMPY_DIR)
        ]
        if exc.__traceback__ is not None
        else []
    )
    if not frames:
        return ""
    frame = frames[-1]
    line = f": {frame.line.strip()}" if frame.line else ""
    return f"in {frame.name}, line {frame.lineno}{line}"


def _exception_text(exc: BaseException) -> str:
    """``KeyError: 'x'``, cut to a few lines however long the message is."""
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not break the report
        message = "(the message could not be shown)"
    if len(message) > 300:
        message = message[:297] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _exception_advice(exc: BaseException) -> str:
    names = {cls.__name__ for cls in type(exc).__mro__}
    message = _exception_text(exc)
    for type_name, needle, advice in _EXCEPTION_ADVICE:
        if type_name in names and needle in message:
            return advice
    return "The message above names the operation that failed."


# ================================================================================ run


@dataclass
class _Outcome:
    value: Any = None
    error: BaseException | None = None
    warnings: list[str] = field(default_factory=list)


class _BoundedText(io.TextIOBase):
    """A stdout/stderr stand-in that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept: list[str] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        room = self.limit - min(self.size, self.limit)
        if room > 0:
            self.kept.append(text[:room])
        self.size += len(text)
        return len(text)

    def text(self) -> str:
        return "".join(self.kept)


@dataclass
class _Failure:
    hint: str
    summary: str
    lines: list[tuple[str, str]]
    hint_detail: str = ""


class _Run:
    """One ``check`` call: calls ``fn``, compares, and collects one result per property."""

    def __init__(self, spec: _Spec, fn: Callable[..., Any], params: dict[str, Any]) -> None:
        self.spec = spec
        self.fn = fn
        self.params = params
        self.kwargs = {**spec.required, **params}  # passed explicitly on every base call
        self.properties: list[PropertyResult] = []
        self.current: tuple[_Case, tuple[Any, ...], dict[str, Any]] | None = None
        self.in_fn = False
        self.deadline = math.inf
        self.output = _BoundedText(MAX_OUTPUT)
        self.input_failure: _Failure | None = None
        self.alias_failure: _Failure | None = None
        self.warning_failure: _Failure | None = None
        # The first exception fn raised: hygiene cannot be vouched for on an input fn did
        # not handle, so an unanswered exercise (NotImplementedError) passes no property.
        self.error_failure: _Failure | None = None
        self.benign_failed = False
        self.current_property = ""
        self.last_outcome: _Outcome | None = None
        self.abandoned = False

    # ------------------------------------------------------------------ calling fn

    def _describe(self, case: _Case, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        parts = []
        for name, arg in zip(self.spec.arg_names, args, strict=False):
            parts.append(f"{name} = {_indent(_fmt_array(arg), ' ' * (len(name) + 3))}")
        for name, value in kwargs.items():
            parts.append(f"{name} = {_fmt_array(value)}")
        return "\n".join(parts)

    def call(self, case: _Case, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Outcome:
        if self.abandoned or time.monotonic() > self.deadline:
            raise _Timeout
        passed = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
        before = [a.copy() if isinstance(a, np.ndarray) else None for a in passed]
        self.current = (case, args, kwargs)  # formatted only if the time runs out
        outcome = _Outcome()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # Underflow to 0 is usually the right answer, so it is the one not reported.
            with np.errstate(over="warn", divide="warn", invalid="warn", under="ignore"):
                self.in_fn = True
                try:
                    outcome.value = self.fn(*passed, **kwargs)
                except (Exception, SystemExit) as exc:  # SystemExit: exit() inside fn
                    outcome.error = exc
                finally:
                    self.in_fn = False
        outcome.warnings = [
            str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)
        ]
        self._hygiene(case, args, kwargs, passed, before, outcome)
        return outcome

    def read(self, value: Any) -> _Read:
        """``_read`` with the time limit armed: a list's items or a repr are student code."""
        self.in_fn = True
        try:
            return _read(value, self.spec.n_outputs, self.spec.kind == "loss")
        finally:
            self.in_fn = False

    def _hygiene(self, case, args, kwargs, passed, before, outcome) -> None:
        def describe() -> str:
            return self._describe(case, args, kwargs)

        for name, now, then in zip(self.spec.arg_names, passed, before, strict=False):
            if then is None or self.input_failure is not None:
                continue
            changed = now.shape != then.shape or now.tobytes() != then.tobytes()
            if changed:
                self.input_failure = _Failure(
                    "in_place",
                    f"{name} was modified in place",
                    [
                        ("case", case.label),
                        ("input", describe()),
                        (f"{name} after", _fmt_array(now)),
                    ],
                )
        value = outcome.value
        if self.alias_failure is None and isinstance(value, np.ndarray):
            for name, arg in zip(self.spec.arg_names, passed, strict=False):
                if isinstance(arg, np.ndarray) and np.may_share_memory(value, arg):
                    self.alias_failure = _Failure(
                        "alias",
                        f"the result shares memory with {name}",
                        [("case", case.label), ("input", describe())],
                    )
                    break
        if outcome.error is not None and self.error_failure is None:
            exc = outcome.error
            self.error_failure = _Failure(
                "exception",
                f"not checked: the function raised {type(exc).__name__}",
                [("case", case.label), ("input", describe()), ("raised", _exception_text(exc))],
                _exception_advice(exc),
            )
        if outcome.warnings and self.warning_failure is None:
            message = outcome.warnings[0]
            self.warning_failure = _Failure(
                self._stability_hint(message),
                f'{message} (case "{case.label}")',
                [("case", case.label), ("input", describe()), ("warning", message)],
                self._advice(),
            )

    def _stability_hint(self, message: str = "") -> str:
        if self.spec.stability == "clip" and "overflow" not in message:
            return "clip"
        return "overflow"

    def _advice(self) -> str:
        return f"For {self.spec.name}: {self.spec.advice}." if self.spec.advice else ""

    # ------------------------------------------------------------------ one case

    def _cast(self, case: _Case, dtype: Any) -> tuple[Any, ...]:
        def cast(arg: Any) -> Any:
            if isinstance(arg, np.ndarray) and arg.dtype.kind == "f":
                return arg.astype(dtype)
            return arg

        return tuple(cast(a) for a in case.args)

    def _expected(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list, list]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                return _reference_outputs(self.spec.reference(*args, **kwargs))

    def run_case(
        self,
        case: _Case,
        *,
        dtype: Any = np.float64,
        kwargs: dict[str, Any] | None = None,
        check_shape: bool = False,
        check_type: bool = False,
        check_values: bool = True,
        extra_alternatives: Sequence[tuple[str, str, Any]] = (),
    ) -> _Failure | None:
        kwargs = {**self.kwargs, **case.kwargs, **(kwargs or {})}
        args = self._cast(case, dtype)
        expected, expected_dtypes = self._expected(args, kwargs)
        outcome = self.last_outcome = self.call(case, args, kwargs)
        if outcome.error is None and check_values and not check_type and not check_shape:
            # The common, passing path first: no formatting unless something fails.
            read = self.read(outcome.value)
            if read.arrays is not None and all(
                g.shape == e.shape for g, e in zip(read.arrays, expected, strict=True)
            ):
                exp_flat = _flat(expected)
                rtol, atol = _tolerance(exp_flat, dtype, case.scale, case.tail)
                if _compare(exp_flat, _flat(read.arrays), rtol, atol).ok:
                    return None
        base_lines = [("case", case.label), ("input", self._describe(case, args, kwargs))]
        if outcome.error is not None:
            exc = outcome.error
            where = _student_frame(exc)
            lines = [*base_lines, ("raised", _exception_text(exc))]
            if where:
                lines.append(("where", where))
            return _Failure(
                "exception", f"raised {type(exc).__name__}", lines, _exception_advice(exc)
            )
        read = self.read(outcome.value)
        if read.arrays is None:
            return _Failure(read.hint or "bad_return", read.text, [*base_lines, ("got", read.got)])
        if check_type:
            failure = self._type_failure(read, expected_dtypes, args, base_lines)
            if failure is not None:
                return failure
        got = read.arrays
        shape_failure = self._shape_failure(expected, got, check_shape, base_lines)
        if shape_failure is not None:
            return shape_failure
        if not check_values:
            return None
        got = [g.reshape(e.shape) for g, e in zip(got, expected, strict=True)]
        exp_flat, got_flat = _flat(expected), _flat(got)
        rtol, atol = _tolerance(exp_flat, dtype, case.scale, case.tail)
        diff = _compare(exp_flat, got_flat, rtol, atol)
        if diff.ok:
            return None
        hint, detail = self._diagnose(
            case, args, kwargs, exp_flat, got_flat, diff, outcome, expected, extra_alternatives
        )
        lines = [*base_lines, *self._value_lines(args, expected, got, diff)]
        lines.append(
            ("tolerance", f"|error| <= {rtol:.2g} |expected| + {atol:.2g} ({np.dtype(dtype).name})")
        )
        summary = f'wrong values for case "{case.label}"'
        return _Failure(hint, summary, lines, detail)

    def _type_failure(self, read: _Read, expected_dtypes, args, base_lines) -> _Failure | None:
        if read.type_hint is not None:
            return _Failure(read.type_hint, read.type_text, [*base_lines, ("got", read.type_text)])
        for want, have in zip(expected_dtypes, read.dtypes, strict=False):
            if want is _PY_FLOAT:
                if have is _PY_FLOAT or np.dtype(have).kind == "f":
                    continue
                text = f"returned {have} values; a loss returns a float"
                return _Failure("dtype", text, [*base_lines, ("got", text)])
            if have is not _PY_FLOAT and have == want:
                continue
            have_text = "a Python float" if have is _PY_FLOAT else f"dtype {have}"
            text = f"expected dtype {want}, got {have_text}"
            lines = [*base_lines, ("dtype", text)]
            if want == np.float32 and have is not _PY_FLOAT and have == np.float64:
                return _Failure("upcast", "float32 input gave float64", lines)
            return _Failure("dtype", text, lines)
        return None

    def _shape_failure(self, expected, got, check_shape, base_lines) -> _Failure | None:
        for e, g in zip(expected, got, strict=True):
            if e.shape == g.shape:
                continue
            if not check_shape and e.size == g.size:
                continue  # values are compared anyway; the shapes property reports it
            lines = [*base_lines, ("shape", f"expected {e.shape}, got {g.shape}")]
            if self.spec.kind == "loss" and g.size > 1:
                with np.errstate(all="ignore"):
                    mean = float(np.mean(g))
                if np.isclose(mean, float(e), rtol=1e-9, atol=1e-12):
                    lines.append(("note", "your values average to the expected loss"))
                    return _Failure(
                        "missing_mean", "one loss per sample instead of their mean", lines
                    )
            if self.spec.kind == "loss":
                text = f"returned an array of shape {g.shape} instead of a float"
                return _Failure("shape", text, lines)
            if e.ndim >= 1 and g.shape in ((*e.shape, 1), (1, *e.shape)):
                return _Failure("shape_n1", f"shape {g.shape} instead of {e.shape}", lines)
            return _Failure("shape", f"shape {g.shape} instead of {e.shape}", lines)
        return None

    def _value_lines(self, args, expected, got, diff: _Diff) -> list[tuple[str, str]]:
        names = self._output_names()
        lines = []
        for name, e, g in zip(names, expected, got, strict=True):
            label = f" {name}" if len(names) > 1 else ""
            lines.append((f"expected{label}", _fmt_array(e) if e.ndim else _fmt_number(e)))
            lines.append((f"got{label}", _fmt_array(g) if g.ndim else _fmt_number(g)))
        if diff.worst is not None and sum(e.size for e in expected) > 1:
            lines.append(("worst entry", self._where(args, expected, got, diff.worst)))
        errors = (
            f"max abs error {_fmt_error(diff.max_abs)}, max rel error {_fmt_error(diff.max_rel)}"
        )
        if diff.n_nonfinite:
            size = sum(e.size for e in expected)
            what = f"{diff.n_nonfinite} of {size} entries are inf or nan where the answer is finite"
            errors = f"{what}; elsewhere {errors}" if diff.n_nonfinite < size else what
        lines.append(("errors", errors))
        return lines

    def _output_names(self) -> list[str]:
        if self.spec.n_outputs == 3:
            return ["d_anchor", "d_positive", "d_negative"]
        return ["result"]

    def _where(self, args, expected, got, flat_index: int) -> str:
        k, offset = 0, 0
        while flat_index >= offset + expected[k].size:  # find the output that holds it
            offset += expected[k].size
            k += 1
        e = expected[k]
        index = np.unravel_index(flat_index - offset, e.shape)
        idx = "[" + ", ".join(str(int(i)) for i in index) + "]"
        e_val, g_val = expected[k][index], got[k][index]
        prefix = f"{self._output_names()[k]}{idx}" if self.spec.n_outputs > 1 else f"result{idx}"
        context = ""
        if self.spec.kind == "elementwise":
            x = np.asarray(args[0])
            if x.shape == e.shape:
                context = f" at x{idx} = {_fmt_number(x[index])}"
        elif self.spec.kind == "loss_grad":
            pred = np.asarray(args[self.spec.wrt[k]])
            name = self.spec.arg_names[self.spec.wrt[k]]
            if pred.shape == e.shape:
                context = f" at {name}{idx} = {_fmt_number(pred[index])}"
        return f"{prefix}{context}: expected {_fmt_number(e_val)}, got {_fmt_number(g_val)}"

    # ------------------------------------------------------------------ diagnosis

    def _alternatives(self, case: _Case, args, kwargs) -> list[tuple[str, str, Callable[[], Any]]]:
        spec = self.spec
        alts: list[tuple[str, str, Callable[[], Any]]] = []
        ref = spec.reference
        if spec.kind == "elementwise":
            alts.append(
                (
                    "sign",
                    "your result equals f(-x): check the sign of x inside exp",
                    lambda: ref(-np.asarray(args[0]), *args[1:], **kwargs),
                )
            )
            partner, what = spec.partner
            if partner is not None:
                alts.append(
                    (
                        "wrong_function",
                        f"your result equals {what}",
                        lambda: partner(*args, **kwargs),
                    )
                )
        if spec.kind in ("rowwise", "jacobian"):
            x = np.asarray(args[0])
            axis = kwargs.get("axis", -1) % max(x.ndim, 1)
            if spec.kind == "rowwise":
                for other in range(x.ndim):
                    if other != axis:
                        alts.append(
                            (
                                "softmax_axis",
                                f"your result is normalised along axis "
                                f"{other} instead of axis {kwargs.get('axis', -1)}",
                                functools.partial(ref, x, axis=other),
                            )
                        )
                if x.ndim > 1:
                    alts.append(
                        (
                            "softmax_axis",
                            "your result is normalised over the whole "
                            "array instead of along one axis",
                            lambda: ref(x.ravel()).reshape(x.shape),
                        )
                    )
            else:
                alts.append(
                    (
                        "transpose",
                        "your Jacobian is transposed",
                        lambda: np.swapaxes(ref(x), -1, -2),
                    )
                )
        for hint, text, alt in spec.alternatives:
            # The case's parameters travel with it (alpha of the swapped-alpha focal loss).
            alt_case = _Case(case.label, args, kwargs=dict(kwargs))
            alts.append((hint, text, functools.partial(alt, alt_case, spec)))
        return alts

    def _diagnose(
        self,
        case,
        args,
        kwargs,
        expected,
        got,
        diff: _Diff,
        outcome,
        expected_list,
        extra,
        match_tol: tuple[float, float] | None = None,
    ) -> tuple[str, str]:
        """The likely cause of a failed comparison: (hint category, specific advice)."""
        spec = self.spec
        bad = diff.bad
        nonfinite = bool(np.any(bad & ~np.isfinite(got) & np.isfinite(expected)))
        stability = self._stability_hint(" ".join(outcome.warnings))
        if nonfinite:
            return stability, self._advice()
        # Something specific that the result matches exactly.
        for hint, text, make in [*extra, *self._alternatives(case, args, kwargs)]:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with np.errstate(all="ignore"):
                        alt_arrays, _ = _reference_outputs(make())
            except Exception:  # an alternative that does not apply to this input
                continue
            alt = _flat(alt_arrays)
            if alt.shape == got.shape and not np.allclose(alt, expected, rtol=1e-9, atol=0.0):
                rtol, atol = _tolerance(alt, np.float64, case.scale)
                if _compare(alt, got, max(rtol, 1e-9), atol).ok:
                    return hint, text[:1].upper() + text[1:] + "."
        # Right with the defaults written out: the default value is wrong.
        missing = {k: v for k, v in spec.defaults.items() if k not in kwargs}
        if missing and self.current_property in ("values", "shapes", "dtypes", "gradient"):
            explicit = self.call(case, args, {**kwargs, **missing})
            read = self.read(explicit.value)
            if explicit.error is None and read.arrays is not None:
                again = _flat(read.arrays)
                if again.shape == expected.shape:
                    rtol, atol = match_tol or _tolerance(
                        expected, np.float64, case.scale, case.tail
                    )
                    if _compare(expected, again, rtol, atol).ok:
                        shown = ", ".join(f"{k}={v!r}" for k, v in missing.items())
                        return "constant", (
                            f"With {shown} passed explicitly your function is right, so its "
                            f"default value is wrong: the reference uses {shown}."
                        )
        for mask, hint in self._masks(case, args, kwargs):
            if mask.size == bad.size and np.any(bad) and np.all(np.ravel(mask)[bad]):
                return hint, self._advice() if hint == "clip" else ""
        if case.tail and not self.benign_failed:
            if spec.stability == "clip":
                return "clip", ""
            if outcome.warnings:
                return stability, self._advice()
            return "cancellation", self._advice()
        ratio_hint = self._ratio_hint(case, expected, got, bad, 1e-4 if match_tol else 1e-6)
        if ratio_hint is not None:
            return ratio_hint
        if outcome.warnings:
            return stability, self._advice()
        scale = float(np.max(np.abs(expected[np.isfinite(expected)]), initial=0.0))
        if scale > 0 and diff.max_abs <= 1e-9 * scale:
            return "cancellation", self._advice()
        return "mismatch", ""

    def _masks(self, case: _Case, args, kwargs) -> list[tuple[np.ndarray, str]]:
        """Where the output sits on a kink, or (probability losses) where p was clipped."""
        spec = self.spec
        masks = []
        if case.kink is not None:
            masks.append((np.asarray(case.kink), "kink"))
        if spec.kinked:
            masks.append((np.asarray(args[0]) == 0, "kink"))
        if spec.stability == "clip" and spec.kind == "loss_grad":
            p = np.asarray(args[1], dtype=np.float64)
            eps = kwargs.get("eps", spec.defaults.get("eps", 1e-7))
            upper = 1.0 if spec.name.startswith("categorical") else 1.0 - eps
            masks.append(((p < eps) | (p > upper), "clip"))
        return masks

    def _ratio_hint(self, case, expected, got, bad, rel: float = 1e-6) -> tuple[str, str] | None:
        """A constant factor or offset between ``got`` and ``expected`` on the failing entries.

        ``rel`` is how constant it must be (looser against finite differences). Entries far
        below the largest one are left out: their own rounding would hide the pattern.
        """
        sel = bad & np.isfinite(expected) & np.isfinite(got)
        if not np.any(sel):
            return None
        e, g = expected[sel], got[sel]
        big = np.abs(e) >= 1e-3 * float(np.max(np.abs(e)))
        big &= np.abs(e) > 1e-300
        enough = np.sum(big) >= 2 or (np.sum(big) == 1 and expected.size == 1)
        if enough:
            ratio = g[big] / e[big]
            c = float(np.median(ratio))
            if c != 0 and np.all(np.abs(ratio - c) <= rel * abs(c)):
                if abs(c + 1.0) <= rel:
                    return "sign", "The result is the negative of the expected one."
                if self.spec.kind in ("loss", "loss_grad"):
                    for r in case.ratios:
                        if r and abs(c / r - 1.0) <= rel:
                            return "missing_mean", (
                                f"Your result is {_fmt_ratio(c)} times the expected one: check "
                                "where you divide by the number of samples."
                            )
                if abs(c - 1.0) < 1e-2:
                    return "constant", (
                        f"Your result is {c:.10g} times the expected one, a relative error of "
                        f"{c - 1.0:.2g}: a rounded constant, or a computation in lower precision?"
                    )
                return "constant", f"Your result is {c:.6g} times the expected one."
        if np.sum(sel) >= 2:
            offset = g - e
            d = float(np.median(offset))
            if d != 0 and np.all(np.abs(offset - d) <= rel * abs(d)):
                return "constant", f"Your result is off by the constant {d:.6g}."
            if np.all(g == 0):
                return (
                    "constant",
                    "Your result is 0 where it should not be: a missing term or factor?",
                )
        return None

    # ------------------------------------------------------------------ properties

    def _property(self, prop: PropertyResult, body: Callable[[], _Failure | None]) -> None:
        self.current_property = prop.key
        failure = body()
        self._finish(prop, failure)

    def _finish(self, prop: PropertyResult, failure: _Failure | None) -> None:
        prop.passed = failure is None
        if failure is not None:
            prop.hint = failure.hint
            prop.summary = failure.summary
            prop.detail = self._render(prop.title, failure)

    def _render(self, title: str, failure: _Failure) -> str:
        lines = [f"✗ {title}: {failure.summary}"]
        width = max((len(k) for k, _ in failure.lines), default=0)
        width = max(width, len("hint"))
        for key, text in failure.lines:
            lines.append(f"    {key.ljust(width)}  {_indent(text, ' ' * (width + 6))}")
        hint_text = HINTS.get(failure.hint, "")
        if failure.hint_detail:
            hint_text = f"{hint_text} {failure.hint_detail}"
        hint_line = f"[{failure.hint}] {hint_text.strip()}"
        wrapped = textwrap.fill(hint_line, width=max(96 - width - 6, 40), break_long_words=False)
        lines.append(f"    {'hint'.ljust(width)}  {_indent(wrapped, ' ' * (width + 6))}")
        return "\n".join(lines)

    def _cases(self, cases: Sequence[_Case], **options: Any) -> _Failure | None:
        first: _Failure | None = None
        for case in cases:
            if first is not None:
                # Still call fn on the rest, so hygiene sees the extremes (their warnings).
                self.call(case, case.args, {**self.kwargs, **case.kwargs})
                continue
            first = self.run_case(case, **options)
            if first is not None and not case.tail:
                self.benign_failed = True
        return first

    def prop_values(self) -> _Failure | None:
        return self._cases(self.spec.values)

    def _values_passed(self) -> bool:
        """Once the values property failed, shapes and dtypes report only their own concern."""
        return all(p.passed is not False for p in self.properties if p.key == "values")

    def prop_shapes(self) -> _Failure | None:
        for case in self.spec.shapes:
            failure = self.run_case(case, check_shape=True, check_values=self._values_passed())
            if failure is not None:
                return failure
            if isinstance(case.args[0], float) and self.spec.kind != "loss":
                # A Python float in: an ndarray (0-d) or a NumPy scalar out.
                outcome = self.last_outcome
                if (
                    outcome is not None
                    and isinstance(outcome.value, bool | int | float)
                    and not isinstance(outcome.value, np.generic)
                ):
                    text = f"returned a Python {type(outcome.value).__name__} for a scalar input"
                    return _Failure("not_array", text, [("case", case.label), ("got", text)])
        return None

    def prop_dtypes(self) -> _Failure | None:
        for case in self.spec.dtypes:
            for dtype in (np.float64, np.float32):
                label = f"{case.label}, {np.dtype(dtype).name}"
                failure = self.run_case(
                    _Case(label, case.args, case.tail, case.kink, case.scale, case.ratios),
                    dtype=dtype,
                    check_type=True,
                    check_values=self._values_passed(),
                )
                if failure is not None:
                    return failure
        return None

    def prop_parameters(self) -> _Failure | None:
        for name in self._tunable():
            current = self.kwargs.get(name, self.spec.defaults.get(name))
            for value in _ALTERNATES[name]:
                if current == value:
                    continue
                kwargs = {**self.kwargs, name: value}
                ignored = (
                    "softmax_axis" if name == "axis" else "constant",
                    f"your function ignores {name}={value!r}: it returns the result for "
                    f"{name}={current!r}",
                )
                for case in self.spec.params:
                    if name == "axis" and np.ndim(case.args[0]) <= value:
                        continue
                    same = functools.partial(self.spec.reference, *case.args, **self.kwargs)
                    failure = self.run_case(
                        case, kwargs=kwargs, extra_alternatives=[(*ignored, same)]
                    )
                    if failure is not None:
                        failure.summary = f"wrong values with {name}={value!r}"
                        return failure
        return None

    def _tunable(self) -> list[str]:
        """Parameters the parameters property varies: not those the caller fixed."""
        names = [*self.spec.required, *self.spec.defaults]
        if self.spec.kind != "rowwise":
            names = [n for n in names if n != "axis"]
        return [n for n in names if n in _ALTERNATES and n not in self.params]

    def prop_gradient(self) -> _Failure | None:
        spec = self.spec
        for case in spec.smooth:
            kwargs = {**self.kwargs}
            args = case.args
            numeric = self._finite_differences(args, kwargs)
            outcome = self.call(case, args, kwargs)
            base_lines = [("case", case.label), ("input", self._describe(case, args, kwargs))]
            if outcome.error is not None:
                exc = outcome.error
                lines = [*base_lines, ("raised", _exception_text(exc))]
                return _Failure(
                    "exception", f"raised {type(exc).__name__}", lines, _exception_advice(exc)
                )
            read = self.read(outcome.value)
            if read.arrays is None:
                return _Failure(
                    read.hint or "bad_return", read.text, [*base_lines, ("got", read.got)]
                )
            got = read.arrays
            if any(g.size != n.size for g, n in zip(got, numeric, strict=True)):
                text = f"shape {got[0].shape} instead of {numeric[0].shape}"
                return _Failure("shape", text, [*base_lines, ("shape", text)])
            got = [g.reshape(n.shape) for g, n in zip(got, numeric, strict=True)]
            exp_flat, got_flat = _flat(numeric), _flat(got)
            scale = float(np.max(np.abs(exp_flat), initial=0.0))
            diff = _compare(exp_flat, got_flat, FD_RTOL, max(FD_RTOL * scale, 1e-12))
            if diff.ok:
                continue
            fd_tol = (FD_RTOL, max(FD_RTOL * scale, 1e-12))
            hint, detail = self._diagnose(
                case, args, kwargs, exp_flat, got_flat, diff, outcome, numeric, (), fd_tol
            )
            lines = [*base_lines, *self._value_lines(args, numeric, got, diff)]
            lines.insert(2, ("compared with", "central differences of the reference, h = 1e-6"))
            return _Failure(hint, "disagrees with finite differences", lines, detail)
        return None

    def _finite_differences(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> list[np.ndarray]:
        spec = self.spec
        forward = spec.forward
        assert forward is not None

        def quiet(f: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(*a: Any, **k: Any) -> Any:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with np.errstate(all="ignore"):
                        return f(*a, **k)

            return wrapped

        forward = quiet(forward)
        if spec.kind == "elementwise":
            x = np.asarray(args[0], dtype=np.float64)
            if spec.wrt_param:
                p = spec.wrt_param
                value = kwargs[p] if p in kwargs else spec.defaults[p]
                rest = {k: v for k, v in kwargs.items() if k != p}
                return [
                    numerical_grad(
                        lambda a: forward(x, **rest, **{p: a}), np.float64(value), elementwise=False
                    )
                ]
            return [numerical_grad(lambda v: forward(v, **kwargs), x, elementwise=True)]
        if spec.kind == "jacobian":
            x = np.asarray(args[0], dtype=np.float64)
            rows = x.reshape(-1, x.shape[-1])
            jac = np.stack([numerical_grad(forward, row, elementwise=False) for row in rows])
            return [jac.reshape(x.shape + x.shape[-1:])]
        grads = []
        for i in spec.wrt:

            def partial_loss(v: np.ndarray, i: int = i) -> float:
                new = list(args)
                new[i] = v
                return forward(*new, **kwargs)

            grads.append(
                numerical_grad(
                    partial_loss, np.asarray(args[i], dtype=np.float64), elementwise=False
                )
            )
        return grads

    # ------------------------------------------------------------------ all of it

    def plan(self) -> list[tuple[str, str, Callable[[], _Failure | None]]]:
        spec = self.spec
        shapes_title = {
            "loss": "shapes (several input layouts)",
            "loss_grad": "shapes (the shape of y_pred, several layouts)",
            "rowwise": "shapes (1-D, 2-D batch, 3-D, empty)",
            "jacobian": "shapes (1-D, 2-D batch, 3-D, empty)",
        }.get(spec.kind, "shapes (scalar, 1-D, 2-D batch, empty)")
        dtypes_title = (
            "dtypes (float32 and float64 input; a float out)"
            if spec.kind == "loss"
            else "dtypes (float32 in -> float32 out, float64 -> float64)"
        )
        steps = [
            ("values", "values", self.prop_values),
            ("shapes", shapes_title, self.prop_shapes),
            ("dtypes", dtypes_title, self.prop_dtypes),
        ]
        tunable = self._tunable()
        if tunable:
            shown = ", ".join(f"{n}={'/'.join(map(repr, _ALTERNATES[n]))}" for n in tunable)
            steps.append(("parameters", f"parameters ({shown})", self.prop_parameters))
        if spec.forward is not None:
            steps.append(
                ("gradient", "gradient agrees with finite differences", self.prop_gradient)
            )
        return steps

    def execute(self) -> None:
        steps = self.plan()
        # Every line exists from the start, so a timeout still lists what was not run.
        self.properties = [PropertyResult(key, title, None) for key, title, _ in steps]
        for prop, (_, _, body) in zip(self.properties, steps, strict=True):
            self._property(prop, body)

    def hygiene_results(self) -> list[PropertyResult]:
        results = []
        for key, title, failure in (
            (
                "input",
                "hygiene: input not modified",
                self.input_failure or self.alias_failure or self.error_failure,
            ),
            ("warnings", "hygiene: no RuntimeWarning", self.warning_failure or self.error_failure),
        ):
            prop = PropertyResult(key, title, None)
            self._finish(prop, failure)
            results.append(prop)
        return results


def _fmt_ratio(c: float) -> str:
    if abs(c) >= 1:
        return f"{c:.6g}"
    return f"1/{1 / c:.6g}"


# ========================================================================= time limit


def _run_limited(func: Callable[[], None], run: _Run, timeout: float) -> bool:
    """Run ``func``; return False if it was stopped by the time limit."""
    run.deadline = time.monotonic() + timeout
    use_signal = (
        hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    )
    if use_signal:
        raised = [0]

        def on_alarm(signum: int, frame: Any) -> None:
            # Only interrupt fn itself, never the checker's own bookkeeping. The timer
            # repeats: a loop that caught the first interrupt (`except BaseException`) gets
            # them every 10 microseconds, until one lands outside its `try`.
            if run.in_fn:
                if raised[0] == 1:
                    signal.setitimer(signal.ITIMER_REAL, 1e-5, 1e-5)
                raised[0] += 1
                raise _Timeout

        start = time.monotonic()
        old_handler = signal.signal(signal.SIGALRM, on_alarm)
        old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, timeout, 0.05)
        try:
            func()
            return True
        except _Timeout:
            return False
        finally:
            run.in_fn = False
            signal.setitimer(signal.ITIMER_REAL, 0.0)
            # An alarm that arrived just before the timer stopped is still pending in
            # Python: let on_alarm take it (a loop's backward jump runs pending handlers),
            # or it would reach the old handler, often SIG_DFL ("Signal 14 ignored").
            for _ in range(2):
                pass
            signal.signal(signal.SIGALRM, old_handler)
            if old_delay > 0:  # restore a timer someone else had set
                left = max(old_delay - (time.monotonic() - start), 1e-3)
                signal.setitimer(signal.ITIMER_REAL, left, old_interval)
    outcome: dict[str, Any] = {}
    saved = (sys.stdout, sys.stderr)

    def target() -> None:
        try:
            func()
            outcome["done"] = True
        except _Timeout:
            outcome["done"] = False
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="course_lib.check", daemon=True)
    worker.start()
    worker.join(timeout + 0.05)
    if worker.is_alive():
        sys.stdout, sys.stderr = saved  # the abandoned thread may still hold the redirection
        return False
    if "error" in outcome:
        raise outcome["error"]
    return bool(outcome.get("done", False))


# ============================================================================== check


def check(
    name: str, fn: Callable[..., Any], *, timeout: float = DEFAULT_TIMEOUT, **params: Any
) -> CheckResult:
    """Compare ``fn`` with the ``course_lib`` reference ``name``; return a ``CheckResult``.

    ``name`` is any key of ``activations.ACTIVATIONS``, ``activations.GRADIENTS``,
    ``losses.LOSSES`` or ``losses.LOSS_GRADIENTS`` (``check_names()`` lists them).
    ``params`` are passed to both functions on every call (``alpha=0.1``); the
    parameters property then tries other values as well. ``timeout`` is the time limit
    of the whole check in seconds.

    >>> import numpy as np
    >>> result = check("sigmoid", lambda x: 1 / (1 + np.exp(-x)))
    >>> result.passed, result.hints
    (False, ['overflow'])
    """
    spec = _spec(name)
    if not callable(fn):
        raise TypeError(
            f"check({name!r}, fn): fn must be your function itself (for example my_{name}), "
            f"not a {type(fn).__name__}"
        )
    known = set(spec.defaults) | set(spec.required)
    unknown = sorted(set(params) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise TypeError(f"check({name!r}): unknown parameter(s) {unknown}; {name} takes: {allowed}")
    fn_name = getattr(fn, "__name__", type(fn).__name__)
    run = _Run(spec, fn, params)
    start = time.perf_counter()

    def body() -> None:
        with contextlib.redirect_stdout(run.output), contextlib.redirect_stderr(run.output):
            run.execute()

    finished = _run_limited(body, run, timeout)
    run.abandoned = True  # an abandoned worker thread must not touch the result any more
    properties = [dataclasses.replace(p) for p in run.properties]
    if not finished:
        if all(prop.passed is not None for prop in properties):
            properties.append(PropertyResult("time", "time limit", None))
        for prop in properties:
            if prop.passed is None:
                prop.passed, prop.hint = False, "timeout"
                prop.summary = f"no answer within {timeout:g} s"
                lines = [("while running", "(unknown)")]
                if run.current is not None:
                    case, args, kwargs = run.current
                    lines = [("case", case.label), ("input", run._describe(case, args, kwargs))]
                failure = _Failure("timeout", prop.summary, lines)
                prop.detail = run._render(prop.title, failure)
                break
    notes = []
    if run.output.size:
        lines = run.output.text().splitlines()
        shown = "\n".join(line[:100] for line in lines[:SHOWN_OUTPUT_LINES])
        cut = run.output.size > len(shown)
        note = f"Your function printed {run.output.size:,} characters (captured"
        note += "; the start is shown):\n" if cut else "):\n"
        notes.append(note + "    " + _indent(shown, "    ") + ("\n    ..." if cut else ""))
    hygiene = run.hygiene_results()
    if not finished:  # what was not observed cannot be vouched for
        for prop in hygiene:
            prop.passed = None if prop.passed else prop.passed
    ordered = properties[:3] + hygiene + properties[3:]
    return CheckResult(name, fn_name, ordered, notes, time.perf_counter() - start)
