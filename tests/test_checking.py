"""Tests of course_lib.checking: the catalogue of student code, robustness, the result object.

The catalogue (``checker_catalogue.py``) holds wrong implementations, each with the hint
category ``check`` must give, and valid alternative formulations that must pass. No test
here compares against a literal number: every expected value comes from the references
in ``course_lib.activations`` and ``course_lib.losses``.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from checker_catalogue import VALID, WRONG, Entry

from course_lib import activations as act
from course_lib import losses
from course_lib.checking import HINTS, CheckResult, check, check_names

EPS64 = float(np.finfo(np.float64).eps)  # a Python float, so float32 input stays float32

# The hint categories the issue asks for; the catalogue must exercise every one.
ISSUE_HINTS = {
    "overflow",
    "cancellation",
    "sign",
    "constant",
    "softmax_axis",
    "missing_mean",
    "not_array",
    "shape_n1",
    "in_place",
    "kink",
    "upcast",
}
ROBUSTNESS_HINTS = {"exception", "timeout", "bad_return"}


def _ids(entries: list[Entry]) -> list[str]:
    return [e.id for e in entries]


# ------------------------------------------------------------------ the catalogue


def test_catalogue_is_big_enough_and_spread_over_every_kind():
    """At least 40 wrong and 15 valid implementations, over activations, losses, gradients."""
    assert len(WRONG) >= 40
    assert len(VALID) >= 15
    kinds = {
        "activation": set(act.ACTIVATIONS),
        "activation gradient": set(act.GRADIENTS),
        "loss": set(losses.LOSSES),
        "loss gradient": set(losses.LOSS_GRADIENTS),
    }
    for kind, names in kinds.items():
        assert sum(e.name in names for e in WRONG) >= 8, kind
    assert {e.hint for e in WRONG} >= ISSUE_HINTS
    assert all(e.hint in HINTS for e in WRONG)
    assert ISSUE_HINTS | ROBUSTNESS_HINTS <= set(HINTS)


@pytest.mark.parametrize("entry", WRONG, ids=_ids(WRONG))
def test_wrong_implementation_fails_with_its_hint(entry: Entry):
    """Each wrong implementation fails, and the hints name its bug."""
    result = check(entry.name, entry.fn, **dict(entry.params))
    assert not result
    assert entry.hint in result.hints, str(result)
    text = str(result)
    assert f"[{entry.hint}]" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("entry", VALID, ids=_ids(VALID))
def test_valid_alternative_passes(entry: Entry):
    """Mathematically equal, numerically sound formulations pass."""
    result = check(entry.name, entry.fn, **dict(entry.params))
    assert result, str(result)


@pytest.mark.parametrize("name", check_names())
def test_every_reference_passes_its_own_check(name: str):
    """check works for every name, softmax_jacobian included, and accepts the reference."""
    reference = {**act.ACTIVATIONS, **act.GRADIENTS, **losses.LOSSES, **losses.LOSS_GRADIENTS}
    result = check(name, reference[name])
    assert result, str(result)


def test_check_names_cover_every_registry():
    """Every activation, activation gradient, loss and loss gradient can be checked."""
    registries = (act.ACTIVATIONS, act.GRADIENTS, losses.LOSSES, losses.LOSS_GRADIENTS)
    assert set(check_names()) == set().union(*registries)
    assert "softmax_jacobian" in check_names()


# ------------------------------------------------------------------ feedback


def test_failure_spells_out_input_expected_got_errors_and_hint():
    """The first failure shows the input, expected and actual values, both errors, a hint."""

    def sigmoid_grad(x):
        s = act.sigmoid(x)
        return s * (1.0 - s)  # cancels for x > 37

    result = check("sigmoid_grad", sigmoid_grad)
    assert result.hints == ["cancellation"]
    (failure,) = result.failures
    for label in ("input", "expected", "got", "max abs error", "max rel error", "hint"):
        assert label in failure
    assert "x = [20., 30., 40.]" in failure  # the right tail, where 1 - s cancels
    assert "e/(1+e)**2" in failure  # the stable form is suggested


def test_exception_reports_type_message_input_and_line_not_a_traceback():
    """An exception in fn becomes a message: its type, message, input and the failing line."""

    def broken_relu(x):
        functions = {"relu": np.maximum}
        return functions["missing key"](x, 0.0)

    result = check("relu", broken_relu)
    assert not result
    assert result.hints[0] == "exception"
    text = str(result)
    assert "KeyError: 'missing key'" in text
    assert "in broken_relu, line" in text
    assert "x = [" in text
    assert "Traceback" not in text
    assert "checking.py" not in text


def test_exception_advice_for_a_python_float_input():
    """x.dtype on a Python float gets the advice to call np.asarray first."""

    def relu(x):
        return np.where(x > 0, x, 0.0).astype(x.dtype)

    result = check("relu", relu)
    assert "exception" in result.hints
    assert "np.asarray" in str(result)


def test_hints_of_a_naive_softplus_name_both_of_its_problems():
    """log(1 + e^x) loses the left tail and overflows on the right: two hints."""
    result = check("softplus", lambda x: np.log(1.0 + np.exp(x)))
    assert result.hints == ["cancellation", "overflow"]


# ------------------------------------------------------------------ robustness


class _Liar:
    """An object that claims to equal everything."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = object.__hash__


class _LiarArray(np.ndarray):
    """An ndarray whose == is always True elementwise."""

    def __eq__(self, other):
        return np.ones(np.shape(other), dtype=bool)

    __hash__ = None


@pytest.mark.parametrize(
    "returned",
    [None, "0.5", [[1.0, 2.0], [3.0]], _Liar(), object(), np.array(["a", "b"]), 1j * np.ones(3)],
    ids=["None", "str", "ragged", "liar", "object", "str-array", "complex"],
)
def test_unusable_results_are_bad_returns(returned):
    """None, strings, ragged lists and arbitrary objects: a clear bad_return, no crash."""
    result = check("relu", lambda x: returned)
    assert not result
    assert set(result.hints) == {"bad_return"}
    assert "Traceback" not in str(result)


def test_ndarray_subclass_with_lying_eq_is_compared_by_value():
    """A subclass whose == says True everywhere cannot pass with wrong values."""

    def zeros(x):
        return np.zeros_like(np.asarray(x, dtype=float)).view(_LiarArray)

    result = check("relu", zeros)
    assert not result
    assert not result["values"].passed


def test_ndarray_subclass_with_right_values_fails_the_type_check_only():
    """Right values in an ndarray subclass: values pass, dtypes asks for a plain ndarray."""
    result = check("relu", lambda x: act.relu(x).view(_LiarArray))
    assert result["values"].passed
    assert result.hints == ["bad_return"]
    assert "subclass" in result["dtypes"].summary


def test_infinite_loop_ends_with_a_timeout_message():
    """A loop that never ends is stopped by the time limit, with a message saying so."""

    def relu(x):
        while True:
            pass

    start = time.perf_counter()
    result = check("relu", relu, timeout=0.5)
    assert time.perf_counter() - start < 2.5
    assert result.hints == ["timeout"]
    assert "0.5 s" in str(result)
    assert any(p.passed is None for p in result.properties)  # the rest was not run
    assert "not run" in str(result)
    assert result["input"].passed is None  # hygiene cannot vouch for calls never made


def test_loop_that_catches_the_interrupt_is_stopped_too():
    """``except BaseException`` inside the loop does not defeat the time limit."""

    def stubborn(x):
        while True:
            try:
                while True:
                    pass
            except BaseException:
                pass

    start = time.perf_counter()
    result = check("relu", stubborn, timeout=0.3)
    assert time.perf_counter() - start < 2.5
    assert "timeout" in result.hints


def test_time_limit_outside_the_main_thread():
    """Off the main thread there is no SIGALRM: the check gives up waiting instead."""
    stop = threading.Event()

    def relu(x):
        while not stop.is_set():
            pass

    results: list[CheckResult] = []
    worker = threading.Thread(target=lambda: results.append(check("relu", relu, timeout=0.3)))
    start = time.perf_counter()
    worker.start()
    worker.join(5.0)
    stop.set()  # let the abandoned check thread finish
    assert time.perf_counter() - start < 3.0
    assert results and results[0].hints == ["timeout"]
    assert sys.stdout is sys.__stdout__ or not isinstance(sys.stdout, type(None))


def test_time_limit_restores_an_existing_alarm():
    """A SIGALRM handler and timer set by someone else survive a check."""
    calls = []

    def handler(signum, frame):
        calls.append(signum)

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 30.0)
    try:
        check("relu", act.relu)
        assert signal.getsignal(signal.SIGALRM) is handler
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0.0 < remaining <= 30.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, old)
    assert calls == []


def test_huge_output_is_captured_and_bounded(capsys):
    """A function that prints megabytes passes; the output is captured and cut short."""

    def relu(x):
        print("x" * 1_000_000)
        return act.relu(x)

    stdout = sys.stdout
    result = check("relu", relu)
    assert sys.stdout is stdout
    assert result, str(result)
    assert capsys.readouterr().out == ""
    text = str(result)
    assert "printed" in text and "captured" in text
    assert len(text) < 3000


def test_check_leaves_warning_filters_and_errstate_alone():
    """The checker's own settings do not leak into the caller's session."""
    filters = list(warnings.filters)
    errstate = np.geterr()
    check("sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x)))
    assert warnings.filters == filters
    assert np.geterr() == errstate


def test_usage_errors_are_short_and_clear():
    """A misspelt name, a non-function and an unknown parameter raise at once."""
    with pytest.raises(ValueError, match="Did you mean 'sigmoid'"):
        check("sigmod", act.sigmoid)
    with pytest.raises(TypeError, match="must be your function"):
        check("sigmoid", act.sigmoid(0.0))
    with pytest.raises(TypeError, match="unknown parameter"):
        check("sigmoid", act.sigmoid, alpha=0.1)


# ------------------------------------------------------------------ the result object


def test_result_is_truthy_iff_passed():
    """bool(result) == result.passed; failures and hints are empty exactly when it passed."""
    good = check("relu", act.relu)
    bad = check("relu", lambda x: -act.relu(x))
    assert good and good.passed and good.failures == [] and good.hints == []
    assert not bad and not bad.passed
    assert all(isinstance(f, str) and f for f in bad.failures)
    assert len(bad.failures) == len(bad.hints)
    assert set(bad.hints) <= set(HINTS)


def test_assert_passed_raises_with_the_readable_message():
    """assert_passed is silent on success and raises AssertionError(str(result)) otherwise."""
    assert check("relu", act.relu).assert_passed() is None
    result = check("relu", lambda x: -act.relu(x))
    with pytest.raises(AssertionError) as info:
        result.assert_passed()
    assert str(info.value) == str(result)


def test_assert_passed_for_chosen_properties():
    """assert_passed("values") asks only for the values: partial credit per test cell."""
    result = check("sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x)))  # right values, warns
    result.assert_passed("values", "shapes")
    with pytest.raises(AssertionError, match="RuntimeWarning"):
        result.assert_passed("warnings")
    with pytest.raises(KeyError, match="no property"):
        result.assert_passed("gradient")


def test_a_loss_may_return_any_float_but_not_an_array():
    """A Python float or a NumPy float (float32 for float32 input) is a loss; an array is not."""
    assert check("mse", lambda y, p: np.mean((np.asarray(y) - np.asarray(p)) ** 2))
    rounded = check("mse", lambda y, p: np.float32(losses.mse(y, p)))  # float32 for float64 in
    assert rounded.hints == ["constant"] and "lower precision" in str(rounded)
    boxed = check("mse", lambda y, p: np.array([losses.mse(y, p)]))
    assert boxed.hints == ["shape"]
    assert "instead of a float" in str(boxed)


def test_plain_text_has_one_line_per_property():
    """str(result) opens with a header and one ✓/✗ line per property."""
    result = check("leaky_relu_grad", lambda x, alpha=0.01: np.where(x >= 0, 1.0, alpha))
    lines = str(result).splitlines()
    assert lines[0].startswith("check('leaky_relu_grad', <lambda>): FAILED")
    marks = [line.strip()[0] for line in lines[1 : 1 + len(result.properties)]]
    assert marks == ["✓" if p.passed else "✗" for p in result.properties]
    assert repr(result) == str(result)
    assert "<li>" not in str(result) and "<pre" not in str(result)


def test_html_is_a_short_escaped_list_with_the_first_failure():
    """Jupyter shows one ✓/✗ item per property and the first failure in full, escaped."""
    result = check("relu_grad", lambda x: (np.asarray(x) >= 0).astype(float))
    page = result._repr_html_()
    assert page.count("<li>") == len(result.properties)
    assert page.count("✗") >= 1 and page.count("✓") >= 1
    assert "&lt;lambda&gt;" in page and "<lambda>" not in page
    assert "[kink]" in page
    assert "Traceback" not in page


def test_properties_match_the_function():
    """Parameters only where the reference has some; gradient only for derivatives."""
    assert [p.key for p in check("sigmoid", act.sigmoid).properties] == [
        "values",
        "shapes",
        "dtypes",
        "input",
        "warnings",
    ]
    keys = [p.key for p in check("swish_grad", act.swish_grad).properties]
    assert "parameters" in keys and "gradient" in keys
    assert "gradient" in [p.key for p in check("mse_grad", losses.mse_grad).properties]


# ------------------------------------------------------------------ fair tolerances


def test_a_few_ulp_less_accurate_passes():
    """A result 16 ULP off the reference is still right (tolerance 64 eps relative)."""
    assert check("sigmoid", lambda x: act.sigmoid(x) * (1.0 + 16 * EPS64))


def test_an_error_beyond_the_tolerance_fails():
    """A relative error of 1e-10, far above 64 eps, fails and is seen as a constant factor."""
    result = check("sigmoid", lambda x: act.sigmoid(x) * (1.0 + 1e-10))
    assert "constant" in result.hints


def test_params_are_passed_to_student_and_reference():
    """check(name, fn, alpha=...) fixes the parameter for both; prelu gets a default alpha."""

    def prelu(x, alpha):
        x = np.asarray(x)
        return np.where(x >= 0, x, alpha * x).astype(act.prelu(x, alpha).dtype)

    assert check("prelu", prelu)
    assert check("prelu", prelu, alpha=0.3)
    wrong_alpha = check("prelu", lambda x, alpha: prelu(x, 0.25))
    assert "constant" in wrong_alpha.hints


@pytest.mark.parametrize("name", ["sigmoid", "sigmoid_grad", "mse", "softmax_cross_entropy_grad"])
def test_an_unanswered_function_passes_no_property(name):
    """A released exercise raises NotImplementedError: not even hygiene may pass then."""

    def unanswered(*args, **kwargs):
        raise NotImplementedError()

    result = check(name, unanswered)
    assert not result
    assert all(p.passed is False for p in result.properties), [p.line() for p in result.properties]
    assert set(result.hints) == {"exception"}
