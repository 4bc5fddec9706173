"""The nbgrader pipeline end to end, on a temporary copy of the course.

One copy of the course (config + solutions/) is made per test session of this module, and
every assignment is generated into it with nbgrader's Python API, as ``make exercises``
does. Then:

- the generated exercises equal the committed ``exercises/`` byte for byte;
- every solution, submitted as it is, earns every autograded point;
- every exercise, submitted unanswered, earns 0;
- simulated submissions of the pilot go through autograde -> generate_feedback -> export,
  with their exact scores asserted (per cell and in the exported CSV);
- ``python -m course_lib.grade`` gives the same points per cell as nbgrader, never touches
  the notebook it grades, and exits 0 / 1 / 2 as documented.

New assignments in solutions/ are picked up by the parametrised tests automatically.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))  # the course's grading scripts, shared with make

import nbgrader_course as nc  # noqa: E402
import simulated_students as sim  # noqa: E402
from make_exercises import stale_files  # noqa: E402

from course_lib import grade as self_grade  # noqa: E402

# nbgrader's own SQLAlchemy use warns on every autograde, and the cell it puts back in
# place of a deleted one has no id: neither affects a grade (shared/notes/nbgrader.md).
# (Under pytest-xdist, `--dist loadfile` keeps this module in one worker, so that its
# temporary course and the pilot's graded class are built once, not once per worker.)
pytestmark = [
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
]

ASSIGNMENTS = nc.assignments(ROOT)
PILOT = next(a for a in ASSIGNMENTS if a.name == "01-backprop")

# Exact scores of the pilot's simulated submissions, autograded points out of 14 (the
# written answer, 2 points, is graded by hand). Worked out from the mistakes in
# scripts/simulated_students.py, cell by cell:
PILOT_EXPECTED: dict[str, dict[str, float]] = {
    "correct": {
        "sigmoid-values": 2, "sigmoid-dtypes": 1, "sigmoid-warnings": 1,
        "bce-values": 2, "bce-warnings": 1, "forward-values": 1,
        "gradients-values": 2, "gradients-mean": 1, "step-values": 1,
        "dloss-dz-derivation": 2,
    },
    # sigmoid and cost only: 4 + 3.
    "partly_correct": {
        "sigmoid-values": 2, "sigmoid-dtypes": 1, "sigmoid-warnings": 1,
        "bce-values": 2, "bce-warnings": 1, "forward-values": 0,
        "gradients-values": 0, "gradients-mean": 0, "step-values": 0,
        "dloss-dz-derivation": 0,
    },
    # sigma(-x) keeps its dtype and raises no warning; y - a is still a mean.
    "wrong": {
        "sigmoid-values": 0, "sigmoid-dtypes": 1, "sigmoid-warnings": 1,
        "bce-values": 0, "bce-warnings": 1, "forward-values": 0,
        "gradients-values": 0, "gradients-mean": 1, "step-values": 0,
        "dloss-dz-derivation": 0,
    },
    # 1/(1+exp(-x)) has the right values but overflows; ln(sigmoid) gives inf.
    "naive_overflowing": {
        "sigmoid-values": 2, "sigmoid-dtypes": 1, "sigmoid-warnings": 0,
        "bce-values": 0, "bce-warnings": 0, "forward-values": 1,
        "gradients-values": 2, "gradients-mean": 1, "step-values": 1,
        "dloss-dz-derivation": 2,
    },
    # a sum instead of a mean, in the cost and in the gradients (and so in the step).
    "missing_mean": {
        "sigmoid-values": 2, "sigmoid-dtypes": 1, "sigmoid-warnings": 1,
        "bce-values": 0, "bce-warnings": 1, "forward-values": 1,
        "gradients-values": 0, "gradients-mean": 0, "step-values": 0,
        "dloss-dz-derivation": 2,
    },
    "unanswered": {
        "sigmoid-values": 0, "sigmoid-dtypes": 0, "sigmoid-warnings": 0,
        "bce-values": 0, "bce-warnings": 0, "forward-values": 0,
        "gradients-values": 0, "gradients-mean": 0, "step-values": 0,
        "dloss-dz-derivation": 0,
    },
    # correct answers, but gradients-mean deleted and step-values emptied by the student,
    # with a step that goes up the gradient: both cells come back from the source.
    "tampered": {
        "sigmoid-values": 2, "sigmoid-dtypes": 1, "sigmoid-warnings": 1,
        "bce-values": 2, "bce-warnings": 1, "forward-values": 1,
        "gradients-values": 2, "gradients-mean": 1, "step-values": 0,
        "dloss-dz-derivation": 2,
    },
}  # fmt: skip
PILOT_TOTALS = {"correct": 14, "partly_correct": 7, "wrong": 4, "naive_overflowing": 10,
                "missing_mean": 8, "unanswered": 0, "tampered": 13}  # fmt: skip
WRITTEN = "pairing-answer"


class Course:
    """The temporary course: its root and one NbGraderAPI reading its nbgrader_config.py."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.api = nc.load_api(root)
        self._generated: dict[str, Exception | None] = {}

    def generated(self, assignment: nc.Assignment) -> nc.Assignment:
        """Generate ``assignment`` once (a broken one fails only its own tests)."""
        if assignment.name not in self._generated:
            try:
                nc.generate(self.api, [assignment.name])
                self._generated[assignment.name] = None
            except nc.NbGraderError as exc:
                self._generated[assignment.name] = exc
        error = self._generated[assignment.name]
        if error is not None:
            raise error
        return assignment

    def autograde(self, assignment: nc.Assignment, student: str, notebook: dict[str, Any]) -> Path:
        path = nc.submit(self.root, student, assignment, notebook)
        nc.checked(self.api.autograde(assignment.name, student, force=True), f"autograde {student}")
        return path

    def scores(self, assignment: nc.Assignment, student: str) -> dict[str, float | None]:
        return nc.cell_scores(self.api, assignment, student)


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    return Course(nc.copy_course(tmp_path_factory.mktemp("course")))


def test_config_matches_the_self_grader() -> None:
    """nbgrader and course_lib.grade run cells with the same limit and kernel options."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert config.ExecutePreprocessor.timeout == self_grade.CELL_TIMEOUT
    assert list(config.Execute.extra_arguments) == list(self_grade.KERNEL_ARGUMENTS)
    assert config.OverwriteCells.add_missing_cells is True
    assert config.CourseDirectory.root == str(ROOT)
    assert config.CourseDirectory.source_directory == "solutions"
    assert config.CourseDirectory.release_directory == "exercises"
    assert config.CourseDirectory.db_url.endswith("/grading/gradebook.db")


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=lambda a: a.name)
def test_exercises_are_up_to_date(course: Course, assignment: nc.Assignment) -> None:
    """exercises/ is what nbgrader generates from solutions/ today (run `make exercises`)."""
    course.generated(assignment)
    problems = stale_files(course.root / "exercises", ROOT / "exercises", [assignment.name])
    assert not problems, f"exercises/ is out of date, run `make exercises`: {problems}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=lambda a: a.name)
def test_solution_earns_full_marks(course: Course, assignment: nc.Assignment) -> None:
    """The instructor's notebook, submitted as it is, passes every autograded test cell."""
    source = nc.read_notebook(course.generated(assignment).source(course.root))
    course.autograde(assignment, "solution", source)
    scores = course.scores(assignment, "solution")
    graded = {
        nc.grade_id(c): float(c["metadata"]["nbgrader"]["points"])
        for c in source["cells"]
        if c["metadata"].get("nbgrader", {}).get("grade")
        and not c["metadata"]["nbgrader"].get("solution")
    }
    assert graded, "no autograded test cell"
    lost = {gid: (scores[gid], points) for gid, points in graded.items() if scores[gid] != points}
    assert not lost, f"test cells that fail on the solution (score, points): {lost}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=lambda a: a.name)
def test_unanswered_exercise_scores_zero(course: Course, assignment: nc.Assignment) -> None:
    """The released notebook, submitted unanswered, earns nothing, written answers included."""
    release = nc.read_notebook(course.generated(assignment).release(course.root))
    course.autograde(assignment, "blank", release)
    scores = course.scores(assignment, "blank")
    assert scores and all(score == 0 for score in scores.values()), scores


def test_nbgrader_cli_from_the_root_uses_the_grading_folder(course: Course) -> None:
    """`nbgrader` run from the course root reads grading/gradebook.db and leaves no stray db."""
    course.generated(PILOT)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "nbgrader"), "db", "assignment", "list"],
        cwd=course.root,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"COURSE_GRADEBOOK_URL": ""},
    )
    assert result.returncode == 0, result.stderr
    assert PILOT.name in result.stdout + result.stderr
    assert (course.root / "grading" / "gradebook.db").is_file()
    assert not (course.root / "gradebook.db").exists()


# ------------------------------------------------------------------------ the pilot


def pilot_notebook(course: Course, variant: str) -> dict[str, Any]:
    release = nc.read_notebook(PILOT.release(course.root))
    solution = nc.read_notebook(PILOT.source(course.root))
    if variant == "tampered":
        answers = dict(sim.PILOT_SUBMISSIONS["correct"], **{"step-answer": "wrong_sign"})
        notebook = sim.submission(release, solution, answers)
        notebook["cells"] = [c for c in notebook["cells"] if nc.grade_id(c) != "gradients-mean"]
        nc.find_cell(notebook, "step-values")["source"] = '"""Nothing to see."""\n'
        return notebook
    return sim.submission(release, solution, sim.PILOT_SUBMISSIONS[variant])


@pytest.fixture(scope="module")
def pilot(course: Course) -> dict[str, Path]:
    """Every simulated submission of the pilot, autograded, with feedback and an export."""
    course.generated(PILOT)
    students = {variant: f"student-{variant.replace('_', '-')}" for variant in PILOT_EXPECTED}
    nc.add_students(course.api, students.values())
    paths = {}
    for variant, student in students.items():
        paths[variant] = course.autograde(PILOT, student, pilot_notebook(course, variant))
        nc.checked(course.api.generate_feedback(PILOT.name, student), f"feedback {student}")
    return paths


@pytest.mark.parametrize("variant", list(PILOT_EXPECTED))
def test_pilot_scores_per_cell(course: Course, pilot: dict[str, Path], variant: str) -> None:
    """nbgrader gives each simulated submission exactly the expected points, cell by cell."""
    student = f"student-{variant.replace('_', '-')}"
    scores = course.scores(PILOT, student)
    written = scores.pop(WRITTEN)
    assert scores == PILOT_EXPECTED[variant]
    assert sum(scores.values()) == PILOT_TOTALS[variant]
    assert written == 0  # unanswered, or waiting for a human (nbgrader shows 0 until then)


def test_pilot_feedback_and_export(course: Course, pilot: dict[str, Path], tmp_path: Path) -> None:
    """Feedback is written for every student; the export has every exact total, and a
    written answer graded by hand adds to it."""
    for variant in PILOT_EXPECTED:
        student = f"student-{variant.replace('_', '-')}"
        html = course.root / "grading" / "feedback" / student / PILOT.name / "backprop.html"
        assert html.is_file(), html
        assert f"{float(PILOT_TOTALS[variant])} / 16.0" in html.read_text(encoding="utf-8")

    with course.api.gradebook as gradebook:  # the instructor grades the written answer
        written = gradebook.find_grade(WRITTEN, PILOT.notebook, PILOT.name, "student-correct")
        assert written.needs_manual_grade
        written.manual_score = 2.0
        gradebook.db.commit()

    rows = list(csv.DictReader(nc.export_csv(course.api, tmp_path / "grades.csv").open()))
    exported = {
        r["student_id"]: float(r["raw_score"]) for r in rows if r["assignment"] == PILOT.name
    }
    expected = {f"student-{v.replace('_', '-')}": float(t) for v, t in PILOT_TOTALS.items()}
    expected["student-correct"] += 2.0
    assert {s: exported[s] for s in expected} == expected
    assert {float(r["max_score"]) for r in rows if r["assignment"] == PILOT.name} == {16.0}


@pytest.mark.parametrize("variant", list(PILOT_EXPECTED))
def test_self_grader_agrees_with_nbgrader(
    course: Course, pilot: dict[str, Path], variant: str
) -> None:
    """course_lib.grade gives the same points per test cell as nbgrader, from the submitted
    file, and leaves that file untouched."""
    path = pilot[variant]
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    report = self_grade.grade(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert report.source.resolve() == PILOT.source(course.root).resolve()
    points = {c.grade_id: c.points for c in report.cells if c.grade_id != WRITTEN}
    assert points == PILOT_EXPECTED[variant]
    assert report.score == PILOT_TOTALS[variant] and report.max_score == 14
    if variant == "tampered":
        assert any("'gradients-mean' was missing" in note for note in report.notes)
        assert any("'step-values' was edited" in note for note in report.notes)
    failed = [c for c in report.cells if c.points == 0 and c.grade_id != WRITTEN]
    assert all(c.hint for c in failed), [c.grade_id for c in failed if not c.hint]


def test_self_grader_hints(course: Course, pilot: dict[str, Path]) -> None:
    """The hint is the first line of the failure: the check's ✗ line, or the assertion."""
    report = self_grade.grade(pilot["naive_overflowing"])
    hints = {c.grade_id: c.hint for c in report.cells}
    assert hints["sigmoid-warnings"].startswith("✗ hygiene: no RuntimeWarning")
    assert "[overflow]" in hints["sigmoid-warnings"]
    assert hints["sigmoid-values"] == ""


def test_self_grader_command_line(pilot: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    """Exit code 0 on full marks and 1 otherwise, with the per-cell table printed."""
    assert self_grade.main([str(pilot["correct"])]) == 0
    out = capsys.readouterr().out
    assert "Total: 14 / 14 autograded points (+ 2 graded by hand)" in out
    assert self_grade.main([str(pilot["partly_correct"])]) == 1
    out = capsys.readouterr().out
    assert "Total: 7 / 14" in out and "forward-values" in out and "NotImplementedError" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"cells": [', "not valid notebook JSON"),
        ("", "is empty"),
        ('{"worksheets": [], "nbformat": 3}', "old (nbformat 3) notebook"),
        ('{"cells": [], "nbformat": 5}', "only nbformat 4"),
        ('{"cells": [{"cell_type": "code"}], "nbformat": 4}', None),
        ('{"cells": [{"cell_type": "picture", "source": ""}], "nbformat": 4}', "not a valid"),
        ('["not", "a", "notebook"]', "not a Jupyter notebook"),
    ],
)
def test_self_grader_rejects_malformed_notebooks(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: str, message: str | None
) -> None:
    """A notebook that cannot be graded gives a clear message and exit code 2, no traceback."""
    folder = tmp_path / PILOT.name
    folder.mkdir()
    path = folder / f"{PILOT.notebook}.ipynb"
    path.write_text(content, encoding="utf-8")
    assert self_grade.main([str(path), "--source", str(PILOT.source())]) == 2
    err = capsys.readouterr().err
    assert err.startswith("course_lib.grade: ")
    if message is None:  # a notebook of nothing but an untagged cell: not this assignment
        message = "shares no cell"
    assert message in err


def test_self_grader_missing_or_unrelated(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A missing file, or a notebook of no assignment, exits with code 2."""
    assert self_grade.main([str(tmp_path / "nowhere.ipynb")]) == 2
    assert "does not exist" in capsys.readouterr().err
    unrelated = tmp_path / "notes.ipynb"
    unrelated.write_text(
        json.dumps(
            {
                "cells": [{"cell_type": "markdown", "metadata": {}, "source": "hi"}],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        ),  # fmt: skip
        encoding="utf-8",
    )
    assert self_grade.main([str(unrelated)]) == 2
    assert "does not look like an assignment" in capsys.readouterr().err
