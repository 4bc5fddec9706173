"""Drive nbgrader on a copy of the course, in-process: the plumbing that the exercise
generator, the class demo, the autograde benchmark and tests/test_grading.py share.

nbgrader takes about 5 s to import here, so everything goes through one ``NbGraderAPI``
per process rather than one ``nbgrader`` command per notebook. The API reads the course's
own ``nbgrader_config.py``, so a copy of the course grades exactly as the original would.
nbgrader is imported inside the functions that need it: importing this module is cheap.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
"""The course root: the folder that holds nbgrader_config.py, solutions/ and exercises/."""


def put_venv_on_path() -> None:
    """Put this interpreter's bin/ first on PATH.

    nbgrader runs ``alembic`` through subprocess when it creates a gradebook, and starts
    kernels by name: without the venv's bin/ it leaves a half-built gradebook behind.
    """
    bin_dir = str(Path(sys.executable).parent)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if parts[:1] != [bin_dir]:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *parts])


@dataclass(frozen=True)
class Assignment:
    """One assignment: ``solutions/<name>/<notebook>.ipynb``."""

    name: str  # "01-backprop"
    notebook: str  # "backprop"

    def source(self, root: Path = ROOT) -> Path:
        return root / "solutions" / self.name / f"{self.notebook}.ipynb"

    def release(self, root: Path = ROOT) -> Path:
        return root / "exercises" / self.name / f"{self.notebook}.ipynb"


def assignments(root: Path = ROOT, names: Iterable[str] = ()) -> list[Assignment]:
    """The assignments in ``root/solutions`` (one notebook each), sorted; or only ``names``."""
    wanted = set(names)
    found = []
    for folder in sorted((root / "solutions").iterdir()):
        notebooks = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
        if len(notebooks) == 1 and (not wanted or folder.name in wanted):
            found.append(Assignment(folder.name, notebooks[0].stem))
    missing = wanted - {a.name for a in found}
    if missing:
        raise SystemExit(f"no assignment {sorted(missing)} in {root / 'solutions'}")
    return found


def copy_course(dest: Path, root: Path = ROOT, with_exercises: bool = False) -> Path:
    """Copy what nbgrader needs (config and solutions/, optionally exercises/) to ``dest``.

    The grading state of the copy lives in ``dest/grading``, away from the real course.
    """
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / "nbgrader_config.py", dest / "nbgrader_config.py")
    # The config loads the feedback hardening from scripts/: copies are hardened too.
    (dest / "scripts").mkdir(exist_ok=True)
    shutil.copy2(root / "scripts" / "grading_hardening.py", dest / "scripts")
    folders = ["solutions", "exercises"] if with_exercises else ["solutions"]
    for folder in folders:
        if (root / folder).is_dir():
            shutil.copytree(
                root / folder,
                dest / folder,
                ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
                dirs_exist_ok=True,
            )
    return dest


def load_api(root: Path = ROOT, **overrides: Any) -> Any:
    """An ``NbGraderAPI`` configured by ``root/nbgrader_config.py``.

    ``overrides`` set ``CourseDirectory`` options on top of the file (for example
    ``db_url=...``, or ``release_directory=...`` with an absolute path).
    """
    put_venv_on_path()
    from nbgrader.apps import NbGraderAPI
    from sqlalchemy.exc import SAWarning
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    extra = Config()
    for key, value in overrides.items():
        setattr(extra.CourseDirectory, key, value)
    config.merge(extra)
    # nbgrader's own SQLAlchemy usage warns on every autograde; the grades are unaffected.
    warnings.filterwarnings("ignore", category=SAWarning)
    # Without a release exchange (not needed to grade) the API logs a CRITICAL
    # "Unwritable directory" while it starts: silence it, and nbgrader's per-notebook INFO
    # lines, which would drown a progress bar.
    logger = logging.getLogger("traitlets")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        api = NbGraderAPI(config=config)
    finally:
        logger.setLevel(level)
    api.log.setLevel(logging.ERROR)
    return api


class NbGraderError(RuntimeError):
    """An nbgrader step failed; the message carries nbgrader's log."""


def checked(result: dict[str, Any], what: str) -> dict[str, Any]:
    """Raise ``NbGraderError`` unless an ``NbGraderAPI`` call succeeded."""
    if not result.get("success"):
        detail = result.get("error") or result.get("log") or "(no log)"
        raise NbGraderError(f"{what} failed:\n{detail}")
    return result


def generate(api: Any, names: Iterable[str]) -> None:
    """``nbgrader generate_assignment NAME --force`` for each name (registers it in the db)."""
    for name in names:
        checked(api.generate_assignment(name, force=True, create=True), f"generate {name}")


def submit(root: Path, student: str, assignment: Assignment, notebook: dict[str, Any]) -> Path:
    """Place ``notebook`` where ``nbgrader collect`` would: grading/submitted/<student>/..."""
    folder = root / "grading" / "submitted" / student / assignment.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment.notebook}.ipynb"
    write_notebook(path, notebook)
    return path


def add_students(api: Any, students: Iterable[str]) -> None:
    """Create every student before a parallel autograde: two processes that create the same
    new student at once fail with "UNIQUE constraint failed: student.id"."""
    with api.gradebook as gradebook:
        for student in students:
            gradebook.update_or_create_student(student)


def export_csv(api: Any, dest: Path) -> Path:
    """``nbgrader export --to dest``: one row per (assignment, student)."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    plugin = CsvExportPlugin(parent=api)
    plugin.to = str(dest)
    with Gradebook(api.coursedir.db_url) as gradebook:
        plugin.export(gradebook)
    return dest


def cell_scores(api: Any, assignment: Assignment, student: str) -> dict[str, float | None]:
    """The score of every graded cell of one submission, by grade_id (None: needs a human)."""
    with api.gradebook as gradebook:
        submission = gradebook.find_submission_notebook(
            assignment.notebook, assignment.name, student
        )
        return {grade.name: grade.score for grade in submission.grades}


def iter_cell_scores(api: Any) -> Iterator[tuple[str, str, str, float | None, float]]:
    """(assignment, student, grade_id, score, max_score) for every grade in the gradebook."""
    with api.gradebook as gradebook:
        for assignment in gradebook.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        yield (
                            assignment.name,
                            submission.student.id,
                            grade.name,
                            grade.score,
                            float(grade.max_score),
                        )


# ------------------------------------------------------------------ parallel grading


@dataclass
class JobResult:
    """One (assignment, student) job of ``grade_all``."""

    assignment: str
    student: str
    ok: bool
    autograde_seconds: float
    feedback_seconds: float
    error: str = ""


_WORKER_API: Any = None


def _worker_init(root: str) -> None:
    global _WORKER_API
    _WORKER_API = load_api(Path(root))


def _worker_job(job: tuple[str, str, bool]) -> JobResult:
    return _grade_one(_WORKER_API, *job)


def _grade_one(api: Any, assignment: str, student: str, feedback: bool) -> JobResult:
    start = time.perf_counter()
    result = api.autograde(assignment, student, force=True, create=False)
    graded = time.perf_counter()
    if not result.get("success"):
        error = (result.get("error") or result.get("log") or "").strip().splitlines()
        return JobResult(assignment, student, False, graded - start, 0.0, (error or [""])[-1])
    if feedback:
        result = api.generate_feedback(assignment, student, force=True)
        if not result.get("success"):
            error = (result.get("error") or result.get("log") or "").strip().splitlines()
            end = time.perf_counter()
            return JobResult(
                assignment, student, False, graded - start, end - graded, (error or [""])[-1]
            )
    return JobResult(assignment, student, True, graded - start, time.perf_counter() - graded)


def grade_all(
    root: Path,
    jobs: Sequence[tuple[str, str]],
    workers: int = 2,
    feedback: bool = True,
    progress: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    """Autograde (and give feedback on) every (assignment, student) in ``jobs``.

    With ``workers`` > 1, a pool of processes shares the jobs; each process imports
    nbgrader once and creates one API (with fork, the parent's import is inherited), then
    drives many students. Add the students to the gradebook first (``add_students``).
    """
    tasks = [(assignment, student, feedback) for assignment, student in jobs]
    results: list[JobResult] = []
    if workers <= 1:
        api = load_api(root)
        for task in tasks:
            results.append(_grade_one(api, *task))
            if progress:
                progress(results[-1])
        return results
    # Not fork: a forked child copies the locks of the parent's threads (pytest-xdist, zmq
    # and Jupyter keep threads), and one inherited while held blocks the child for ever.
    # forkserver forks from a fresh single-threaded process; each worker then loads
    # nbgrader once, in _worker_init.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        # Imported once by the server, before any thread exists, and shared by every worker.
        context.set_forkserver_preload(["nbgrader.apps", "sqlalchemy", "nbconvert", "nbclient"])
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_worker_init, initargs=(str(root),)
    ) as pool:
        futures = [pool.submit(_worker_job, task) for task in tasks]
        for future in as_completed(futures):
            results.append(future.result())
            if progress:
                progress(results[-1])
    order = {(a, s): i for i, (a, s, _) in enumerate(tasks)}
    return sorted(results, key=lambda r: order[(r.assignment, r.student)])


class ProgressBar:
    """A one-line progress bar on stderr: ``[#####.....] 12/30 label 1.4 s each, 0:17 left``."""

    def __init__(self, total: int, label: str, width: int = 30) -> None:
        self.total, self.label, self.width = total, label, width
        self.done = 0
        self.start = time.perf_counter()
        self.failed = 0

    def __call__(self, result: JobResult | None = None) -> None:
        self.done += 1
        if result is not None and not result.ok:
            self.failed += 1
        elapsed = time.perf_counter() - self.start
        each = elapsed / self.done
        left = each * (self.total - self.done)
        filled = round(self.width * self.done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        failed = f", {self.failed} failed" if self.failed else ""
        line = (
            f"[{bar}] {self.done}/{self.total} {self.label}: {each:.2f} s each, "
            f"{int(left) // 60}:{int(left) % 60:02d} left{failed}"
        )
        if sys.stderr.isatty():
            sys.stderr.write("\r" + line + "  " + ("\n" if self.done == self.total else ""))
        elif self.done == self.total or self.done % max(self.total // 10, 1) == 0:
            sys.stderr.write(line + "\n")  # a log file gets a line every 10 %
        sys.stderr.flush()


# ------------------------------------------------------------------ notebooks as JSON


def read_notebook(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_notebook(path: Path, notebook: dict[str, Any]) -> None:
    # The layout nbformat itself writes (indent 1, sorted keys), so diffs stay readable.
    text = json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


def cell_text(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def grade_id(cell: dict[str, Any]) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def find_cell(notebook: dict[str, Any], gid: str) -> dict[str, Any]:
    for cell in notebook["cells"]:
        if grade_id(cell) == gid:
            return cell
    raise KeyError(f"no cell with grade_id {gid!r}")


def graded_cells(notebook: dict[str, Any]) -> dict[str, tuple[float, bool]]:
    """grade_id -> (points, written) for every graded cell; written answers are graded by hand."""
    cells = {}
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            cells[meta["grade_id"]] = (float(meta.get("points", 0)), bool(meta.get("solution")))
    return cells
