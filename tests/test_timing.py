"""Tests for course_lib.timing, on a fake CPU clock: exact, whatever the machine is doing."""

from __future__ import annotations

import time

import pytest

from course_lib import timing


class FakeClock:
    """Stands in for time.process_time; a call of ``fn`` advances it by the next cost."""

    def __init__(self, costs: list[float]) -> None:
        self.now, self.costs, self.calls = 100.0, list(costs), 0

    def __call__(self) -> float:
        return self.now

    def fn(self) -> None:
        self.now += self.costs[self.calls % len(self.costs)]
        self.calls += 1


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock([0.5])
    monkeypatch.setattr(timing.time, "process_time", fake)
    return fake


def test_seconds_is_the_best_run(clock):
    clock.costs = [0.5, 0.25, 0.375, 0.5, 0.5]  # binary fractions: the sums are exact
    assert timing.seconds(clock.fn, repeat=5) == 0.25
    assert clock.calls == 5


def test_seconds_divides_a_run_by_number(clock):
    clock.costs = [0.5, 0.25, 0.25, 0.25]  # runs of two calls: 0.75, 0.5
    assert timing.seconds(clock.fn, repeat=2, number=2) == 0.25
    assert clock.calls == 4


def test_ns_per_element(clock):
    clock.costs = [0.5]
    assert timing.ns_per_element(clock.fn, 1000, repeat=3) == pytest.approx(0.5 / 1000 * 1e9)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: timing.seconds(lambda: None, repeat=0), "repeat and number must be >= 1"),
        (lambda: timing.seconds(lambda: None, number=0), "repeat and number must be >= 1"),
        (lambda: timing.ns_per_element(lambda: None, 0), "size must be >= 1; got 0"),
    ],
)
def test_bad_arguments_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_real_clock_counts_cpu_time():
    # A function that burns 2 ms of CPU time takes at least that long, however busy the
    # machine; the upper bound only says the result is in seconds, not nanoseconds.
    def burn() -> None:
        end = time.process_time() + 0.002
        while time.process_time() < end:
            pass

    assert 0.002 <= timing.seconds(burn, repeat=2) < 1.0
