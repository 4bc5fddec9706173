"""How long does one ``course_lib.check`` call take? The median for every name.

For each name ``check`` accepts, the reference itself is checked (every property runs to
the end, so this is the slowest passing path), once to warm up (imports, first calls) and
then ``REPEATS`` times; the table shows the median and the worst of those. A second table
times a few failing implementations, whose diagnosis costs extra calls. The target of the
course is a median below 100 ms on a 2-core machine.

Run: ``python benchmarks/check_speed.py`` (about 30 s). The exit code is 0 whatever the
figures, as for the other benchmarks.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib import activations, losses
from course_lib.checking import check, check_names

REPEATS = 7
TARGET_MS = 100.0


def _time(name: str, fn: Callable[..., Any]) -> tuple[float, float, bool]:
    check(name, fn)  # warm-up: lazy imports (scipy.special) and first-call costs
    times = []
    passed = True
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = check(name, fn)
        times.append((time.perf_counter() - start) * 1e3)
        passed &= result.passed
    return statistics.median(times), max(times), passed


def _naive_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _sigmoid_grad_cancels(x):
    s = activations.sigmoid(x)
    return s * (1.0 - s)


def _softmax_wrong_axis(x, axis=-1):
    e = np.exp(x - np.max(x, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


def _mse_grad_no_mean(y_true, y_pred):
    return 2.0 * (np.asarray(y_pred) - np.asarray(y_true))


FAILING: list[tuple[str, Callable[..., Any]]] = [
    ("sigmoid", _naive_sigmoid),
    ("sigmoid_grad", _sigmoid_grad_cancels),
    ("softmax", _softmax_wrong_axis),
    ("mse_grad", _mse_grad_no_mean),
]


def main() -> int:
    references = {
        **activations.ACTIVATIONS,
        **activations.GRADIENTS,
        **losses.LOSSES,
        **losses.LOSS_GRADIENTS,
    }
    print(f"check(name, reference): median and worst of {REPEATS} calls, in ms")
    print(f"{'name':40s} {'median':>8s} {'worst':>8s}")
    medians = []
    for name in check_names():
        median, worst, passed = _time(name, references[name])
        medians.append(median)
        flag = "" if median < TARGET_MS else "  SLOW"
        flag += "" if passed else "  (the reference did not pass!)"
        print(f"{name:40s} {median:8.1f} {worst:8.1f}{flag}")
    print(
        f"\n{len(medians)} names: median of medians {statistics.median(medians):.1f} ms, "
        f"slowest median {max(medians):.1f} ms (target < {TARGET_MS:.0f} ms)"
    )
    print("\nfailing implementations (diagnosis included):")
    for name, fn in FAILING:
        median, worst, _ = _time(name, fn)
        print(f"{name + ' / ' + fn.__name__:40s} {median:8.1f} {worst:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
