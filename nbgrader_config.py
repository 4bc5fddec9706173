"""nbgrader configuration of the course (read by every ``nbgrader`` command run from here).

Folders, relative to this file (the course root), whatever the working directory:

- ``solutions/<NN-name>/<name>.ipynb``: the instructor's source, with solutions and hidden
  tests (nbgrader's ``source`` step);
- ``exercises/<NN-name>/<name>.ipynb``: the student version, generated from it and
  committed (nbgrader's ``release`` step);
- ``grading/``: everything that is per instructor and never committed (gitignored): the
  gradebook ``grading/gradebook.db`` and ``grading/{submitted,autograded,feedback}/
  <student>/<NN-name>/``.

The gradebook defaults to SQLite. For a large class, or several graders at once, use
PostgreSQL instead: set ``COURSE_GRADEBOOK_URL`` before running nbgrader, for example

    export COURSE_GRADEBOOK_URL=postgresql+psycopg2://grader:secret@db.example.org/course

(``pip install psycopg2-binary``; create the empty database first, nbgrader creates the
tables). See docs/instructors.md.
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821 (provided by traitlets when it runs this file)

ROOT = Path(__file__).resolve().parent
GRADING = ROOT / "grading"

c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = "grading/submitted"
c.CourseDirectory.autograded_directory = "grading/autograded"
c.CourseDirectory.feedback_directory = "grading/feedback"

GRADING.mkdir(exist_ok=True)  # SQLite does not create the folder of its file

# Set explicitly, so that no nbgrader command ever falls back to <cwd>/gradebook.db.
c.CourseDirectory.db_url = os.environ.get("COURSE_GRADEBOOK_URL") or (
    f"sqlite:///{GRADING / 'gradebook.db'}"
)

# `nbgrader export` writes grades.csv into the working directory unless told otherwise.
c.ExportPlugin.to = str(GRADING / "grades.csv")

# A solution runs every cell in well under a second. 15 s leaves room for SymPy's simplify
# and for a machine busy with several graders, and bounds an infinite loop: it costs 15 s
# per cell that calls the looping function. course_lib.grade uses the same limit.
c.ExecutePreprocessor.timeout = 15

# Kernel options: no IPython history database (parallel graders would share one SQLite
# file), plain tracebacks (the default verbose ones take longer to format than a test cell
# takes to run) and no start-up log lines. course_lib.grade uses the same.
c.Execute.extra_arguments = [
    "--HistoryManager.hist_file=:memory:",
    "--InteractiveShell.xmode=Plain",
    "--IPKernelApp.log_level=ERROR",
]
# Nothing in a graded kernel needs a graceful exit; killing it saves a few tenths of a second
# per notebook.
c.ExecutePreprocessor.shutdown_kernel = "immediate"

# A test cell deleted by a student is put back from the gradebook, so that it fails
# instead of silently disappearing from the total.
c.OverwriteCells.add_missing_cells = True

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
