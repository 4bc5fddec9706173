"""How long a call takes on this machine, for the lessons' cost tables.

Lessons print what they time and never assert on it: a busy machine slows every number,
and a lesson that fails because the machine was busy teaches nothing. Speed claims that
the course stands behind are measured by the scripts in ``benchmarks/``.

The clock is the CPU time of this process (``time.process_time``), not wall time, so that
other programs on a shared machine weigh less. NumPy's elementwise functions run on one
thread, so for them it is also the time a student waits. The best of several runs is
reported: the slower runs measured the machine, not the function.

Usage::

    timing.seconds(lambda: act.sigmoid(x))                 # best of 5, seconds per call
    timing.ns_per_element(lambda: act.sigmoid(x), x.size)  # the same, per element
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["ns_per_element", "seconds"]


def seconds(fn: Callable[[], object], *, repeat: int = 5, number: int = 1) -> float:
    """CPU seconds per call of ``fn()``: the best of ``repeat`` runs of ``number`` calls each.

    Raise ``number`` for calls much shorter than a millisecond, so that each run is long
    enough for the clock's resolution.
    """
    if repeat < 1 or number < 1:
        raise ValueError(f"repeat and number must be >= 1; got {repeat=}, {number=}")
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(number):
            fn()
        best = min(best, time.process_time() - start)
    return best / number


def ns_per_element(
    fn: Callable[[], object], size: int, *, repeat: int = 5, number: int = 1
) -> float:
    """Nanoseconds per element of ``fn()``, which processes ``size`` elements per call."""
    if size < 1:
        raise ValueError(f"size must be >= 1; got {size}")
    return seconds(fn, repeat=repeat, number=number) / size * 1e9
