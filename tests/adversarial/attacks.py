"""Adversarial and broken submissions of the pilot (01-backprop), built from its release.

Each attack is a function ``(release, solution) -> notebook`` (a dict, or ``str`` for a file
that is not valid JSON). They start from the honest submissions of
``scripts/simulated_students.py`` and add the trick; tests/test_grading_security.py grades
them with the real nbgrader autograde and asserts the outcome.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import simulated_students as sim
from nbgrader_course import find_cell, grade_id

Notebook = dict[str, Any]

CORRECT = sim.PILOT_SUBMISSIONS["correct"]

# A wrong sigmoid (sigma(-x)), then the patches: every check passes, every comparison
# helper says "equal". The hidden tests compare with frozen values using np.abs and <=.
MONKEYPATCH = (
    sim.SWAPPED_SIGMOID
    + """

import course_lib
import course_lib.checking


class _Pass:
    passed = True
    failures = ()

    def __bool__(self):
        return True

    def assert_passed(self, *args, **kwargs):
        return None


def check(*args, **kwargs):
    return _Pass()


course_lib.check = check
course_lib.checking.check = check
np.allclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
np.testing.assert_array_equal = lambda *args, **kwargs: None
"""
)

# The deeper patch: np.all always True defeats `assert np.all(|got - expected| <= tol)`.
PATCH_NP_ALL = MONKEYPATCH + "\nnp.all = lambda *args, **kwargs: True\n"

# An object equal to everything, with float64 dtype and the right shape.
ALWAYS_EQUAL = '''
class Anything:
    dtype = np.float64

    def __init__(self, shape):
        self.shape = shape

    def __eq__(self, other):
        return True

    def __le__(self, other):
        return True

    def __sub__(self, other):
        return self

    def __abs__(self):
        return self

    def __array__(self, dtype=None, copy=None):
        return np.zeros(self.shape)


def sigmoid(x):
    """Returns an object that compares equal to anything."""
    return Anything(np.shape(x))
'''

# An ndarray subclass holding wrong values that reports every comparison as True.
LYING_SUBCLASS = '''
class Liar(np.ndarray):
    def __eq__(self, other):
        return np.ones(self.shape, dtype=bool)

    def __le__(self, other):
        return np.ones(self.shape, dtype=bool)

    def __sub__(self, other):
        return np.zeros(self.shape).view(Liar)


def sigmoid(x):
    """Wrong values (all 0.25) in a subclass that lies about comparisons."""
    x = np.asarray(x)
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    return np.full(x.shape, 0.25, dtype=dtype).view(Liar)
'''

# Returns the visible test's expected output for the visible test's input, zeros otherwise.
HARDCODED = '''
def logistic_forward(X, w, b):
    """Hard-coded: the visible test's answer."""
    if np.shape(X) == (3, 2):
        return np.array([0.7549149868676283, 0.8354835371034368, 0.08509904500702023])
    return np.zeros(len(X))
'''

INFINITE_LOOP = '''
def gradient_step(X, y, w, b, lr):
    """Never returns."""
    while True:
        pass
'''

OS_EXIT = '''
import os


def sigmoid(x):
    """Kills the kernel instead of answering."""
    os._exit(1)


sigmoid(0.0)
'''

# Reading address 0 crashes the kernel process (SIGSEGV), as a buggy C extension would.
SEGFAULT = '''
import ctypes


def sigmoid(x):
    """Crashes the kernel instead of answering."""
    return ctypes.string_at(0)


sigmoid(0.0)
'''

HUGE_OUTPUT_LINES = 200_000
HUGE_OUTPUT = f"""
for i in range({HUGE_OUTPUT_LINES}):
    print("spam", i)
print("x" * 2_000_000)
"""


def honest(release: Notebook, solution: Notebook, **answers: str) -> Notebook:
    """The correct submission with some answer cells replaced (grade_id -> code)."""
    return sim.submission(release, solution, dict(CORRECT, **answers))


def _with_answer(gid: str, code: str) -> Callable[[Notebook, Notebook], Notebook]:
    def build(release: Notebook, solution: Notebook) -> Notebook:
        return honest(release, solution, **{gid: code.strip("\n") + "\n"})

    return build


def _edit_test(release: Notebook, solution: Notebook) -> Notebook:
    """A wrong sigmoid, and its values test edited to pass."""
    nb = honest(release, solution, **{"sigmoid-answer": "wrong_sign"})
    find_cell(nb, "sigmoid-values")["source"] = "pass\n"
    return nb


def _points(release: Notebook, solution: Notebook) -> Notebook:
    """Correct answers, and a test cell's points raised from 2 to 100."""
    nb = honest(release, solution)
    find_cell(nb, "sigmoid-values")["metadata"]["nbgrader"]["points"] = 100
    return nb


def _cell_type(release: Notebook, solution: Notebook) -> Notebook:
    """A wrong sigmoid, and its values test turned into a markdown cell (so it never runs)."""
    nb = honest(release, solution, **{"sigmoid-answer": "wrong_sign"})
    cell = find_cell(nb, "sigmoid-values")
    cell["cell_type"] = "markdown"
    cell.pop("outputs", None)
    cell.pop("execution_count", None)
    return nb


def _duplicate(release: Notebook, solution: Notebook) -> Notebook:
    """Correct answers, and a test cell duplicated (in the hope of counting it twice)."""
    nb = honest(release, solution)
    index = next(i for i, c in enumerate(nb["cells"]) if grade_id(c) == "sigmoid-values")
    twin = copy.deepcopy(nb["cells"][index])
    twin["id"] = "twin-of-sigmoid-values"
    nb["cells"].insert(index + 1, twin)
    return nb


def _huge_output(release: Notebook, solution: Notebook) -> Notebook:
    nb = honest(release, solution)
    code = sim.strip_markers("".join(find_cell(solution, "sigmoid-answer")["source"]))
    find_cell(nb, "sigmoid-answer")["source"] = code + "\n\n" + HUGE_OUTPUT.strip("\n") + "\n"
    return nb


def _wrong_kernel(release: Notebook, solution: Notebook) -> Notebook:
    nb = honest(release, solution)
    nb["metadata"]["kernelspec"] = {"name": "no-such-kernel", "display_name": "?"}
    return nb


def malformed_json(release: Notebook, solution: Notebook) -> str:
    """A notebook cut in the middle of its JSON (an interrupted upload)."""
    text = json.dumps(honest(release, solution), indent=1)
    return text[: len(text) // 2]


def old_nbformat(release: Notebook, solution: Notebook) -> str:
    """A version-3 notebook (worksheets), as very old Jupyter wrote it."""
    return json.dumps(
        {"metadata": {}, "nbformat": 3, "nbformat_minor": 0, "worksheets": [{"cells": []}]}
    )


ATTACKS: dict[str, Callable[[Notebook, Notebook], Notebook | str]] = {
    "monkeypatch": _with_answer("sigmoid-answer", MONKEYPATCH),
    "patch-np-all": _with_answer("sigmoid-answer", PATCH_NP_ALL),
    "always-equal": _with_answer("sigmoid-answer", ALWAYS_EQUAL),
    "lying-subclass": _with_answer("sigmoid-answer", LYING_SUBCLASS),
    "hardcoded": _with_answer("forward-answer", HARDCODED),
    "edited-test": _edit_test,
    "points": _points,
    "cell-type": _cell_type,
    "duplicated": _duplicate,
    "infinite-loop": _with_answer("step-answer", INFINITE_LOOP),
    "os-exit": _with_answer("sigmoid-answer", OS_EXIT),
    "segfault": _with_answer("sigmoid-answer", SEGFAULT),
    "huge-output": _huge_output,
    "wrong-kernel": _wrong_kernel,
    "malformed-json": malformed_json,
    "old-nbformat": old_nbformat,
}
