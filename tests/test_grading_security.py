"""The grader under attack: adversarial and broken submissions through the real nbgrader.

One temporary copy of the course is made for the whole module, with the pilot
(01-backprop) generated into it and the feedback hardening of docs/grading-security.md
switched on (the config lines appended to its nbgrader_config.py are the ones the
document gives). Every submission of ``tests/adversarial/attacks.py`` plus an honest one is
graded in ONE run of 4 parallel processes against one SQLite gradebook (autograde and
feedback), then exported, and the export gets its ``needs_review`` column
(``scripts/grading_hardening.py``). The tests then assert, per attack, the points per
cell, the review flag, the time, the truncation, the feedback's secrecy, that no grade is
lost or duplicated, and that ``grading/submitted`` is byte for byte unchanged.

The cell timeout is lowered from 15 s to 5 s in the copy only, so that the endless loop
costs seconds instead of half a minute; the bound it checks scales with the timeout.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests" / "adversarial")]

import attacks  # noqa: E402
import grading_hardening as gh  # noqa: E402
import nbgrader_course as nc  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

PILOT = nc.Assignment("01-backprop", "backprop")
TIMEOUT = 5  # seconds per cell in the temporary course (15 in the real one)
WORKERS = 4

FEEDBACK_HARDENING = """
# Feedback without hidden tests (docs/grading-security.md). Guarded, so that a bare copy of
# the course (config without scripts/) still loads, and says loudly what it lacks.
if (ROOT / "scripts" / "grading_hardening.py").is_file():
    import sys as _sys

    _sys.path.insert(0, str(ROOT / "scripts"))
    from grading_hardening import HideHiddenTests
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
else:
    print("nbgrader_config.py: no scripts/grading_hardening.py, feedback shows hidden tests")
"""

# Points per cell. Every pattern follows from tests/test_grading.py's PILOT_EXPECTED: the
# "correct" row is full marks; a sigmoid that is wrong (sigma(-x)) but keeps its dtype and
# raises no warning loses sigmoid-values (2), and with it forward-values (1),
# gradients-values (2) and step-values (1), which call it: 14 - 6 = 8.
FULL = {
    "sigmoid-values": 2, "sigmoid-dtypes": 1, "sigmoid-warnings": 1, "bce-values": 2,
    "bce-warnings": 1, "forward-values": 1, "gradients-values": 2, "gradients-mean": 1,
    "step-values": 1, "dloss-dz-derivation": 2,
}  # fmt: skip
WRONG_SIGMOID = FULL | {
    "sigmoid-values": 0,
    "forward-values": 0,
    "gradients-values": 0,
    "step-values": 0,
}
EXPECTED: dict[str, dict[str, int]] = {
    "honest": FULL,
    # check, np.allclose, np.testing patched: the hidden tests (frozen values, np.abs and
    # <=) still fail, so the wrong answer earns what an honest wrong answer earns.
    "monkeypatch": WRONG_SIGMOID,
    # np.all patched as well: the `np.all(|got - expected| <= tol)` comparisons pass, so
    # sigmoid-values and forward-values are won in the kernel (+3). Flagged for review.
    "patch-np-all": WRONG_SIGMOID | {"sigmoid-values": 2, "forward-values": 1},
    # `type(got) is np.ndarray` comes first: the dtypes cell fails too; the mean test
    # compares two results of the same lie and fails on float(...) of the object.
    "always-equal": WRONG_SIGMOID | {"sigmoid-dtypes": 0, "gradients-mean": 0},
    "lying-subclass": WRONG_SIGMOID | {"sigmoid-dtypes": 0},
    # the visible forward input gives the visible answer; the hidden inputs get zeros,
    # and every later function calls logistic_forward on other inputs.
    "hardcoded": FULL
    | {"forward-values": 0, "gradients-values": 0, "gradients-mean": 0, "step-values": 0},
    # the test cell is restored from the gradebook, and fails on the wrong sigmoid.
    "edited-test": WRONG_SIGMOID,
    "cell-type": WRONG_SIGMOID,
    # points restored from the gradebook: 2, not 100.
    "points": FULL,
    # gradient_step never returns: only step-values is lost.
    "infinite-loop": FULL | {"step-values": 0},
    "huge-output": FULL,
    # nbgrader overwrites the kernelspec with the source's.
    "wrong-kernel": FULL,
}
NOT_GRADED = {"duplicated", "os-exit", "segfault", "malformed-json", "old-nbformat"}
FLAGGED = NOT_GRADED | {"monkeypatch", "patch-np-all", "always-equal", "lying-subclass"}
assert set(EXPECTED) | NOT_GRADED == {"honest", *attacks.ATTACKS}


def tree_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class Graded:
    """The temporary course after one parallel grading run of every submission."""

    def __init__(self, root: Path) -> None:
        self.root = root
        config = root / "nbgrader_config.py"
        # The course's own config (hardening included, copied by copy_course), with a
        # shorter cell timeout so that the infinite-loop attack costs less.
        assert FEEDBACK_HARDENING.strip() in config.read_text(encoding="utf-8")
        config.write_text(
            config.read_text(encoding="utf-8") + f"\nc.ExecutePreprocessor.timeout = {TIMEOUT}\n",
            encoding="utf-8",
        )
        self.api = nc.load_api(root)
        nc.generate(self.api, [PILOT.name])
        self.release = nc.read_notebook(PILOT.release(root))
        self.solution = nc.read_notebook(PILOT.source(root))
        self.students = ["honest", *attacks.ATTACKS]
        nc.add_students(self.api, self.students)
        for student in self.students:
            build = attacks.honest if student == "honest" else attacks.ATTACKS[student]
            notebook = build(self.release, self.solution)
            folder = root / "grading" / "submitted" / student / PILOT.name
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{PILOT.notebook}.ipynb"
            if isinstance(notebook, str):
                path.write_text(notebook, encoding="utf-8")
            else:
                nc.write_notebook(path, notebook)
        self.submitted_before = tree_hashes(root / "grading" / "submitted")
        jobs = [(PILOT.name, s) for s in self.students]
        self.results = {r.student: r for r in nc.grade_all(root, jobs, workers=WORKERS)}
        self.submitted_after = tree_hashes(root / "grading" / "submitted")
        export = nc.export_csv(self.api, root / "grading" / "grades.csv")
        flags = gh.review_flags(root, PILOT.name, PILOT.notebook)
        reviewed = gh.add_review_column(export, flags, PILOT.name, root / "grading" / "review.csv")
        with reviewed.open(newline="", encoding="utf-8") as fh:
            self.rows = {r["student_id"]: r for r in csv.DictReader(fh)}

    def feedback(self, student: str) -> Path:
        return self.root / "grading" / "feedback" / student / PILOT.name / "backprop.html"

    def autograded(self, student: str) -> Path:
        return self.root / "grading" / "autograded" / student / PILOT.name / "backprop.ipynb"


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    return Graded(nc.copy_course(tmp_path_factory.mktemp("security")))


@pytest.mark.parametrize("student", list(EXPECTED))
def test_points_per_cell(graded: Graded, student: str) -> None:
    """Each attack earns exactly what its honest equivalent earns (or the listed gain)."""
    assert graded.results[student].ok, graded.results[student].error
    scores = nc.cell_scores(graded.api, PILOT, student)
    assert scores.pop("pairing-answer") == 0  # the written answer waits for a human
    assert scores == EXPECTED[student]
    assert float(graded.rows[student]["raw_score"]) == sum(EXPECTED[student].values())
    assert float(graded.rows[student]["max_score"]) == 16.0  # 14 autograded + 2 by hand


@pytest.mark.parametrize("student", sorted(NOT_GRADED))
def test_failed_notebooks_are_flagged_not_silent(graded: Graded, student: str) -> None:
    """A notebook nbgrader drops (kernel killed, unreadable, duplicated cells) is reported
    as a failure for that student and flagged in the export, never a silent 0."""
    assert not graded.results[student].ok
    assert not graded.autograded(student).exists()
    row = graded.rows[student]
    assert row["needs_review"] == "yes"
    assert "not autograded" in row["review_reason"]


def test_review_column(graded: Graded) -> None:
    """Exactly the failed and the kernel-tampering submissions need review, with reasons."""
    flagged = {s for s, r in graded.rows.items() if r["needs_review"] == "yes"}
    assert flagged == FLAGGED
    reasons = {s: graded.rows[s]["review_reason"] for s in FLAGGED}
    assert "unreadable notebook" in reasons["malformed-json"]
    assert "nbformat 3" in reasons["old-nbformat"]
    assert "os._exit" in reasons["os-exit"]
    assert "imports ctypes" in reasons["segfault"]
    assert "'sigmoid-values' appears 2 times" in reasons["duplicated"]
    assert "assigns to np.all" in reasons["patch-np-all"]
    assert "assigns to course_lib.check" in reasons["monkeypatch"]
    assert "__eq__" in reasons["always-equal"] and "__eq__" in reasons["lying-subclass"]


def test_rest_of_class_graded_despite_broken_files(graded: Graded) -> None:
    """Broken files fail alone, with a message; every other notebook of the run is graded."""
    for student in ("malformed-json", "old-nbformat"):
        assert graded.results[student].error, student
    assert all(graded.results[s].ok for s in EXPECTED)
    assert all(graded.feedback(s).is_file() for s in EXPECTED)


def test_infinite_loop_is_bounded_and_explained(graded: Graded) -> None:
    """An endless loop costs one timeout per cell that calls it (the try-it cell and the
    step test), and the feedback says the cell timed out."""
    cells_calling_it = 2
    # + 30 s for the rest of the notebook on a busy 2-core machine (about 5 s when idle)
    assert graded.results["infinite-loop"].autograde_seconds < cells_calling_it * TIMEOUT + 30
    text = graded.feedback("infinite-loop").read_text(encoding="utf-8")
    assert "TimeoutError" in text or "KeyboardInterrupt" in text


def test_huge_output_is_truncated(graded: Graded) -> None:
    """200 000 printed lines and a 2 MB line do not reach the graded notebook or feedback."""
    assert graded.autograded("huge-output").stat().st_size < 500_000
    assert graded.feedback("huge-output").stat().st_size < 1_000_000


def _hidden_secrets(solution: dict[str, Any]) -> tuple[list[str], set[str]]:
    """(hidden-test lines, frozen numbers of 4+ digits shown nowhere outside hidden tests)."""
    visible_text, lines = [], []
    for cell in solution["cells"]:
        visible, hidden = gh.split_hidden(nc.cell_text(cell))
        visible_text.append(visible)
        lines += [line.strip() for line in hidden]
    everywhere_visible = "\n".join(visible_text)
    lines = [x for x in lines if len(x) >= 12 and not x.startswith("#")]
    lines = [x for x in lines if x not in everywhere_visible]
    numbers = gh.secret_tokens(lines, everywhere_visible) - set(lines)
    return lines, numbers


def test_feedback_has_no_hidden_tests(graded: Graded) -> None:
    """Every generated feedback file is free of hidden-test markers, source lines and
    frozen expected values (before hardening they were all there)."""
    lines, numbers = _hidden_secrets(graded.solution)
    assert len(lines) > 20 and len(numbers) > 10  # the pilot has hidden tests to leak
    files = sorted((graded.root / "grading" / "feedback").rglob("*.html"))
    assert len(files) == len(EXPECTED)
    for path in files:
        text = html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))
        assert "HIDDEN TESTS" not in text.replace(gh.HIDDEN_NOTICE, ""), path
        assert not [x for x in lines if x in text], path
        assert not [n for n in numbers if n in text], path


def test_hide_hidden_tests_on_a_failing_notebook(graded: Graded) -> None:
    """Before: the autograded notebook that feedback is made from holds the hidden source
    and assertion messages quoting frozen values. After the preprocessor: neither."""
    import nbformat

    notebook = nbformat.read(str(graded.autograded("hardcoded")), as_version=4)
    lines, numbers = _hidden_secrets(graded.solution)
    raw = json.dumps(notebook)
    assert "BEGIN HIDDEN TESTS" in raw and any(n in raw for n in numbers)
    cleaned, _ = gh.HideHiddenTests().preprocess(notebook, {})
    text = json.dumps(cleaned)
    assert "BEGIN HIDDEN TESTS" not in text
    assert not [n for n in numbers if n in text] and not [x for x in lines if x in text]
    assert "A hidden test failed" in text  # the student still learns that it failed


def test_parallel_grading_loses_and_duplicates_nothing(graded: Graded) -> None:
    """4 processes, one SQLite gradebook: one submission and 11 grades per graded student."""
    with graded.api.gradebook as gradebook:
        assignment = gradebook.find_assignment(PILOT.name)
        owners = [s.student.id for s in assignment.submissions]
        grades = {
            s.student.id: [g.name for n in s.notebooks for g in n.grades]
            for s in assignment.submissions
        }
    assert sorted(owners) == sorted(set(owners))
    assert set(EXPECTED) <= set(owners)
    for student in EXPECTED:
        assert sorted(grades[student]) == sorted([*FULL, "pairing-answer"]), student


def test_submitted_files_are_untouched(graded: Graded) -> None:
    """Autograde and feedback never write to grading/submitted (hashes before and after)."""
    assert len(graded.submitted_before) == len(graded.students)
    assert graded.submitted_after == graded.submitted_before


def test_config_lines_match_the_document() -> None:
    """The config lines tested here are the ones docs/grading-security.md tells to add."""
    doc = (ROOT / "docs" / "grading-security.md").read_text(encoding="utf-8")
    assert FEEDBACK_HARDENING.strip() in doc


# ------------------------------------------------------------ no nbgrader needed below

SOLUTION_REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
MARK_SCHEME = re.compile(r"=== BEGIN MARK SCHEME ===(.*?)=== END MARK SCHEME ===", re.S)


@pytest.mark.parametrize("assignment", nc.assignments(ROOT), ids=lambda a: a.name)
def test_released_exercises_hold_no_secrets(assignment: nc.Assignment) -> None:
    """exercises/ contains no solution code, mark scheme or hidden-test text or value
    (so a deployment without solutions/ leaves nothing to read at grade time)."""
    solution = nc.read_notebook(assignment.source())
    release_plain = "\n".join(
        nc.cell_text(c) for c in nc.read_notebook(assignment.release())["cells"]
    )
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "BEGIN MARK SCHEME"):
        assert marker not in release_plain, marker
    outside = "\n".join(
        MARK_SCHEME.sub("", SOLUTION_REGION.sub("", gh.split_hidden(nc.cell_text(c))[0]))
        for c in solution["cells"]
    )
    secret_lines = []
    for cell in solution["cells"]:
        source = nc.cell_text(cell)
        for region in SOLUTION_REGION.findall(source) + MARK_SCHEME.findall(source):
            secret_lines += [x.strip() for x in region.split("\n")]
    hidden_lines, numbers = _hidden_secrets(solution)
    secret_lines = [x for x in secret_lines if len(x) >= 20 and not x.startswith("#")]
    secret_lines = [x for x in secret_lines + hidden_lines if x not in outside]
    assert not [x for x in secret_lines if x in release_plain]
    assert not [n for n in numbers if n in release_plain]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("import numpy as np\nnp.all = lambda *a: True", "assigns to np.all"),
        ("import numpy\nnumpy.testing.assert_allclose = print", "assigns to numpy.testing"),
        ("setattr(np, 'all', any)", "setattr"),
        ("import builtins", "imports builtins"),
        ("import os\nos._exit(0)", "os._exit"),
        ("open('/srv/course/solutions/01-backprop/backprop.ipynb')", "opens a file"),
        ("class A:\n    def __eq__(self, o):\n        return True", "defines __eq__"),
        ("!cat ../../solutions/*/*.ipynb", "shell escape"),
        ("import sqlite3\nsqlite3.connect('../../../gradebook.db')", "imports sqlite3"),
        ("import os\nurl = os.environ['COURSE_GRADEBOOK_URL']", "reads the environment"),
    ],
)
def test_scan_code_flags(code: str, reason: str) -> None:
    """The static scan names each in-kernel trick it is meant to catch."""
    assert any(reason in r for r in gh.scan_code(code)), gh.scan_code(code)


def test_scan_code_passes_honest_answers() -> None:
    """Every solution of every assignment, as a student would type it, raises no flag."""
    import simulated_students as sim

    for assignment in nc.assignments(ROOT):
        solution = nc.read_notebook(assignment.source())
        for cell in solution["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell["cell_type"] == "code" and not meta.get("locked"):
                code = sim.strip_markers(nc.cell_text(cell))
                assert gh.scan_code(code) == [], (assignment.name, nc.grade_id(cell), code)


def test_review_command_writes_the_flagged_export(graded: Graded, capsys) -> None:
    """`python scripts/grading_hardening.py 01-backprop` flags what the export would hide."""
    assert gh.main([PILOT.name], root=graded.root) == 0
    out = capsys.readouterr().out
    flagged = sorted(s for s, row in graded.rows.items() if row["needs_review"] == "yes")
    assert flagged, "the attacks must raise at least one flag"
    assert f"{len(flagged)} of {len(graded.students)} submissions need review" in out
    assert (graded.root / "grading" / "grades-review.csv").is_file()
    assert gh.main([], root=graded.root) == 2


def test_review_columns_for_several_assignments(tmp_path: Path) -> None:
    """make demo-class flags two assignments in one file: each row gets its own reasons."""
    export = tmp_path / "grades.csv"
    export.write_text(
        "assignment,student_id,score\n01-a,ann,3\n01-a,bob,0\n02-b,ann,0\n03-c,bob,5\n",
        encoding="utf-8",
    )
    flags = {"01-a": {"ann": [], "bob": ["not autograded"]}, "02-b": {"ann": ["os._exit"]}}
    dest = gh.add_review_columns(export, flags, tmp_path / "review.csv")
    with dest.open(newline="", encoding="utf-8") as fh:
        rows = [
            (r["assignment"], r["student_id"], r["needs_review"], r["review_reason"])
            for r in csv.DictReader(fh)
        ]
    assert rows == [
        ("01-a", "ann", "no", ""),
        ("01-a", "bob", "yes", "not autograded"),
        ("02-b", "ann", "yes", "os._exit"),
        ("03-c", "bob", "no", ""),  # an assignment without flags is not reviewed
    ]
    assert export.read_text(encoding="utf-8").splitlines()[0] == "assignment,student_id,score"
