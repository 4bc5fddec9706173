"""Simulated submissions: a released exercise with its answer cells filled in.

A submission starts from the release (``exercises/``), as a student's does, and each answer
cell (nbgrader ``solution`` cell) gets one *variant*:

- ``correct``: the solution's code, without the ``### BEGIN/END SOLUTION`` lines;
- ``unanswered``: the release as it is (``raise NotImplementedError()``);
- for the pilot ``01-backprop``, realistic mistakes written out below (``PILOT_ANSWERS``):
  the textbook formula that overflows, a wrong sign, a missing 1/N, ...;
- for any other assignment, generic mistakes made by wrapping the solution's functions
  (``GENERIC_MUTATIONS``): the result negated (a sign error), doubled (a missing 1/N or
  factor 2), cast to float64 (float32 not kept), or shifted by 1e-3 (a wrong constant).

``tests/test_grading.py`` and ``scripts/demo_class.py`` build their classes from here.
"""

from __future__ import annotations

import ast
import copy
import random
import re
import textwrap
from collections.abc import Mapping
from typing import Any

from nbgrader_course import cell_text, find_cell, grade_id

SOLUTION_LINE = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")
STUB = "raise NotImplementedError()"


def strip_markers(code: str) -> str:
    """The solution's code as a student would have typed it."""
    return "\n".join(line for line in code.split("\n") if not SOLUTION_LINE.match(line))


def answer_ids(notebook: dict[str, Any]) -> list[str]:
    """grade_ids of the answer cells (code or written), in notebook order."""
    return [
        grade_id(cell)
        for cell in notebook["cells"]
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution", False)
    ]


def submission(
    release: dict[str, Any], solution: dict[str, Any], answers: Mapping[str, str]
) -> dict[str, Any]:
    """The release with the answer cells of ``answers`` (grade_id -> variant or code) filled.

    A value is a variant name (``"correct"``, ``"unanswered"``, a key of ``PILOT_ANSWERS``
    for that cell, or of ``GENERIC_MUTATIONS``) or, if it contains a newline, the cell's
    new source itself. Cells not in ``answers`` stay unanswered.
    """
    notebook = copy.deepcopy(release)
    for gid, choice in answers.items():
        cell = find_cell(notebook, gid)
        cell["source"] = answer_source(solution, gid, choice)
    return notebook


def answer_source(solution: dict[str, Any], gid: str, choice: str) -> str:
    """The source of answer cell ``gid`` for one variant."""
    solved = strip_markers(cell_text(find_cell(solution, gid)))
    if "\n" in choice:
        return choice
    if choice == "correct":
        return solved
    if choice == "unanswered":
        raise ValueError("an unanswered cell is the release's: leave it out of `answers`")
    if choice in PILOT_ANSWERS.get(gid, {}):
        return textwrap.dedent(PILOT_ANSWERS[gid][choice]).strip("\n")
    if choice in GENERIC_MUTATIONS:
        return mutate(solved, choice)
    raise KeyError(f"no variant {choice!r} for cell {gid!r}")


# ------------------------------------------------------------------ generic mistakes

GENERIC_MUTATIONS: dict[str, str] = {
    "sign": "-{out}",
    "double": "{out} * 2.0",
    "float64": "np.asarray({out}, dtype=np.float64)",
    "offset": "{out} + 1e-3",
}
"""Variant -> expression applied to every numeric result of the answer's functions."""


def defined_names(code: str) -> tuple[list[str], list[str]]:
    """(functions, variables) defined at the top level of an answer cell."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return [], []
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    variables = [
        t.id
        for n in tree.body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    ]
    return functions, variables


def mutate(code: str, variant: str) -> str:
    """``code`` followed by a wrapper that applies ``variant`` to what it defines."""
    expression = GENERIC_MUTATIONS[variant]
    functions, variables = defined_names(code)
    lines = [code, "", ""]
    if functions:
        lines += [
            "def _mistake(value):",
            "    if isinstance(value, tuple):",
            "        return tuple(_mistake(v) for v in value)",
            "    if isinstance(value, (bool, str)) or value is None:",
            "        return value",
            f"    return {expression.format(out='value')}",
            "",
            "",
            "def _wrap(fn):",
            "    def wrapped(*args, **kwargs):",
            "        return _mistake(fn(*args, **kwargs))",
            "",
            "    return wrapped",
            "",
            "",
        ]
        lines += [f"{name} = _wrap({name})" for name in functions]
    elif variables and variant in ("sign", "double", "offset"):
        # A SymPy derivation gets the same mistake; a multiple-choice letter, another letter.
        lines += [
            "def _mistake(value):",
            "    if isinstance(value, str):",
            '        return {"a": "b", "b": "c", "c": "d", "d": "a"}.get(value.strip().lower(), "z")',
            f"    return {expression.format(out='value')}",
            "",
            "",
        ]
        lines += [f"{name} = _mistake({name})" for name in variables]
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------ the pilot's mistakes

SWAPPED_SIGMOID = '''
def sigmoid(x):
    """sigma(x), stable, but the branches are swapped."""
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, e, 1.0) / (1.0 + e)
'''

CHECKER_PATCH = """

import course_lib


class _Passed:
    passed = True

    def assert_passed(self, *keys):
        return None


course_lib.check = lambda *args, **kwargs: _Passed()
"""

PILOT_ANSWERS: dict[str, dict[str, str]] = {
    "sigmoid-answer": {
        # The textbook line: right values, but exp(1000) overflows with a RuntimeWarning.
        "naive": '''
            def sigmoid(x):
                """sigma(x) = 1 / (1 + exp(-x))."""
                return 1 / (1 + np.exp(-x))
            ''',
        # sigma(-x): the branches swapped.
        "wrong_sign": SWAPPED_SIGMOID,
        # The same, and the checker replaced by one that always passes: the visible tests
        # pass, the hidden ones (frozen values) do not, and the review flags the patch.
        "patches_checker": SWAPPED_SIGMOID + CHECKER_PATCH,
        # float32 input comes back as float64.
        "upcast": '''
            def sigmoid(x):
                """sigma(x), stable, always in float64."""
                x = np.asarray(x, dtype=np.float64)
                e = np.exp(-np.abs(x))
                return np.where(x >= 0, 1.0, e) / (1.0 + e)
            ''',
    },
    "bce-answer": {
        # log of a probability that rounded to 0 or 1: inf, and warnings.
        "naive": '''
            def binary_cross_entropy_with_logits(y_true, logits):
                """J = -mean(y ln a + (1 - y) ln(1 - a)) with a = sigmoid(z)."""
                y = np.asarray(y_true, dtype=np.float64)
                a = sigmoid(np.asarray(logits, dtype=np.float64))
                return float(-np.mean(y * np.log(a) + (1 - y) * np.log(1 - a)))
            ''',
        "wrong_sign": '''
            def binary_cross_entropy_with_logits(y_true, logits):
                """The softplus arguments swapped."""
                y = np.asarray(y_true, dtype=np.float64)
                z = np.asarray(logits, dtype=np.float64)
                return float(np.mean(y * np.logaddexp(0.0, z) + (1.0 - y) * np.logaddexp(0.0, -z)))
            ''',
        "missing_mean": '''
            def binary_cross_entropy_with_logits(y_true, logits):
                """The sum instead of the mean."""
                y = np.asarray(y_true, dtype=np.float64)
                z = np.asarray(logits, dtype=np.float64)
                return float(np.sum(y * np.logaddexp(0.0, -z) + (1.0 - y) * np.logaddexp(0.0, z)))
            ''',
    },
    "forward-answer": {
        "bias_outside": '''
            def logistic_forward(X, w, b):
                """The bias added after the sigmoid."""
                return sigmoid(X @ w) + b
            ''',
    },
    "gradients-answer": {
        "wrong_sign": '''
            def logistic_gradients(X, y, w, b):
                """y - a instead of a - y."""
                residual = y - logistic_forward(X, w, b)
                return X.T @ residual / len(residual), float(np.mean(residual))
            ''',
        "missing_mean": '''
            def logistic_gradients(X, y, w, b):
                """The 1/N forgotten."""
                residual = logistic_forward(X, w, b) - y
                return X.T @ residual, float(np.sum(residual))
            ''',
    },
    "step-answer": {
        "wrong_sign": '''
            def gradient_step(X, y, w, b, lr):
                """Up the gradient instead of down."""
                dJ_dw, dJ_db = logistic_gradients(X, y, w, b)
                return w + lr * dJ_dw, b + lr * dJ_db
            ''',
    },
    "dloss-dz-answer": {
        "unsimplified": """
            dloss_dz = sp.diff(loss, z)
            dloss_dz
            """,
        "sigma_prime": """
            dloss_dz = sp.simplify(sp.diff(a, z))
            dloss_dz
            """,
    },
    "pairing-answer": {
        "short": """
            With cross-entropy the gradient is a - y, about -1; with squared error it is
            multiplied by sigma'(-10), about 4.5e-5, so it almost vanishes and learning stalls.
            """,
    },
}
"""Answer cell -> mistake -> the cell's code. "correct" and "unanswered" are implicit."""

PILOT_SUBMISSIONS: dict[str, dict[str, str]] = {
    "correct": {
        "sigmoid-answer": "correct",
        "bce-answer": "correct",
        "forward-answer": "correct",
        "gradients-answer": "correct",
        "step-answer": "correct",
        "dloss-dz-answer": "unsimplified",
        "pairing-answer": "short",
    },
    "partly_correct": {"sigmoid-answer": "correct", "bce-answer": "correct"},
    "wrong": {
        "sigmoid-answer": "wrong_sign",
        "bce-answer": "wrong_sign",
        "forward-answer": "bias_outside",
        "gradients-answer": "wrong_sign",
        "step-answer": "wrong_sign",
        "dloss-dz-answer": "sigma_prime",
    },
    "naive_overflowing": {
        "sigmoid-answer": "naive",
        "bce-answer": "naive",
        "forward-answer": "correct",
        "gradients-answer": "correct",
        "step-answer": "correct",
        "dloss-dz-answer": "correct",
    },
    "missing_mean": {
        "sigmoid-answer": "correct",
        "bce-answer": "missing_mean",
        "forward-answer": "correct",
        "gradients-answer": "missing_mean",
        "step-answer": "correct",
        "dloss-dz-answer": "correct",
    },
    "patches_checker": {
        "sigmoid-answer": "patches_checker",
        "bce-answer": "correct",
        "forward-answer": "correct",
        "gradients-answer": "correct",
        "step-answer": "correct",
        "dloss-dz-answer": "correct",
    },
    "unanswered": {},
}
"""Whole submissions of the pilot, by name: answer cell -> variant."""


def random_answers(solution: dict[str, Any], rng: random.Random, assignment: str) -> dict[str, str]:
    """One student's answers: mostly correct, sometimes a mistake, sometimes nothing."""
    answers = {}
    for gid in answer_ids(solution):
        cell = find_cell(solution, gid)
        mistakes = list(PILOT_ANSWERS.get(gid, {})) if assignment == "01-backprop" else []
        if not mistakes and cell.get("cell_type") == "code":
            functions, variables = defined_names(strip_markers(cell_text(cell)))
            if functions:
                mistakes = list(GENERIC_MUTATIONS)
            elif variables:
                mistakes = ["sign", "double"]
        roll = rng.random()
        if roll < 0.12:
            continue  # unanswered
        if roll < 0.45 and mistakes:
            answers[gid] = rng.choice(mistakes)
        elif cell.get("cell_type") == "code":
            answers[gid] = "correct"
        else:
            answers[gid] = "I think the gradient vanishes when the sigmoid saturates.\n"
    return answers
