"""A simulated class, graded end to end: ``make demo-class``.

    python scripts/demo_class.py                      # 30 students, every assignment, 2 workers
    python scripts/demo_class.py --students 40 --workers 4 01-backprop

For every assignment in solutions/, the script

1. copies the course to ``grading/demo-class/`` (gitignored; replaced on every run) and
   generates the exercises there with nbgrader;
2. writes one submission per student, made from the release by filling the answer cells
   (``scripts/simulated_students.py``): the first student answers everything correctly,
   the second nothing, the pilot's named mistakes come next (the textbook overflow, the
   wrong sign, the missing 1/N, ...), and the rest draw at random, with a fixed seed,
   between correct answers, typical mistakes and blanks;
3. adds every student to the gradebook, then autogrades and generates feedback with
   several processes, each importing nbgrader once and grading many students;
4. exports the grades (``grades.csv``) and prints, per assignment, the distribution of
   scores and the pass rate of every test cell;
5. writes ``grades-review.csv`` (the export with ``needs_review`` and ``review_reason``,
   from ``scripts/grading_hardening.py``) and lists the submissions a person should look at.

It works on a fresh clone: the course's own ``grading/gradebook.db`` is never touched.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import grading_hardening as gh  # noqa: E402
import nbgrader_course as nc  # noqa: E402
import simulated_students as sim  # noqa: E402

DEFAULT_DIR = nc.ROOT / "grading" / "demo-class"
BANDS = ("0-19%", "20-39%", "40-59%", "60-79%", "80-100%")


def class_answers(
    assignment: nc.Assignment, solution: dict[str, Any], n_students: int, seed: int
) -> dict[str, dict[str, str]]:
    """Student id -> the answers of their submission (answer cell -> variant)."""
    students: dict[str, dict[str, str]] = {}
    named = []
    if assignment.name == "01-backprop":
        named = [v for v in sim.PILOT_SUBMISSIONS if v not in ("correct", "unanswered")]
    code_cells = [
        gid
        for gid in sim.answer_ids(solution)
        if nc.find_cell(solution, gid).get("cell_type") == "code"
    ]
    for i in range(1, n_students + 1):
        student = f"s{i:03d}"
        if i == 1:
            students[student] = {gid: "correct" for gid in code_cells}
        elif i == 2:
            students[student] = {}
        elif i - 3 < len(named):
            students[student] = dict(sim.PILOT_SUBMISSIONS[named[i - 3]])
        else:
            rng = random.Random(f"{seed}/{assignment.name}/{student}")
            students[student] = sim.random_answers(solution, rng, assignment.name)
    return students


def histogram(fractions: Sequence[float]) -> str:
    """Counts of students in five bands of the fraction of points earned."""
    counts = [0] * len(BANDS)
    for f in fractions:
        counts[min(int(f * len(BANDS)), len(BANDS) - 1)] += 1
    return "  ".join(f"{band}: {count:>3}" for band, count in zip(BANDS, counts, strict=True))


def summary(
    course: Path, api: Any, assignments: list[nc.Assignment], results: list[nc.JobResult]
) -> str:
    """The score distribution per assignment and the pass rate of every test cell."""
    rows = list(csv.DictReader((course / "grading" / "grades.csv").open(encoding="utf-8")))
    cells: dict[tuple[str, str], list[float | None]] = defaultdict(list)
    for assignment, _student, gid, score, _max_score in nc.iter_cell_scores(api):
        cells[(assignment, gid)].append(score)
    header = (
        f"{'assignment':<30} {'n':>3} {'max':>4} {'mean':>6} {'median':>6} {'min':>4} "
        f"{'full marks':>10}"
    )
    table = ["", "Scores: autograded points (written answers wait for a human)", "", header]
    table.append("-" * len(header))
    bands = ["", "Distribution: students per band of the autograded points", ""]
    rates = ["", "Pass rate of every test cell (full points)", ""]
    for a in assignments:
        points = nc.graded_cells(nc.read_notebook(a.source(course)))
        auto_max = sum(p for p, written in points.values() if not written)
        scores = [float(r["raw_score"]) for r in rows if r["assignment"] == a.name]
        if not scores:
            continue
        table.append(
            f"{a.name:<30} {len(scores):>3} {auto_max:>4g} {statistics.mean(scores):>6.2f} "
            f"{statistics.median(scores):>6.1f} {min(scores):>4g} "
            f"{sum(s == auto_max for s in scores):>10}"
        )
        bands.append(f"{a.name:<30} {histogram([s / auto_max for s in scores])}")
        rates.append(a.name)
        for gid, (max_points, written) in points.items():
            values = cells.get((a.name, gid), [])
            if written:
                rates.append(f"    {gid:<30} {max_points:>3g} pt  graded by hand")
                continue
            passed = sum(score == max_points for score in values)
            rate = passed / len(values) if values else 0.0
            rates.append(
                f"    {gid:<30} {max_points:>3g} pt  {rate:>5.0%} "
                f"{'#' * round(20 * rate):<20} ({passed}/{len(values)})"
            )
    failed = [r for r in results if not r.ok]
    if failed:
        rates += ["", f"{len(failed)} submission(s) could not be graded:"]
        rates += [f"    {r.assignment} {r.student}: {r.error}" for r in failed]
    return "\n".join(table + bands + rates)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="assignments (default: all in solutions/)")
    parser.add_argument("--students", type=int, default=30, help="students per assignment")
    parser.add_argument("--workers", type=int, default=3, help="grading processes (2 to 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where the class lives")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    marker = args.dir / ".demo-class"
    if args.dir.exists() and any(args.dir.iterdir()):
        if not marker.exists():
            print(
                f"{args.dir} exists and is not a demo class: choose another --dir", file=sys.stderr
            )
            return 2
        shutil.rmtree(args.dir)  # the previous demo
    course = nc.copy_course(args.dir)
    marker.write_text("made by scripts/demo_class.py; deleted by its next run\n", encoding="utf-8")
    os.environ.pop("COURSE_GRADEBOOK_URL", None)  # the demo has its own SQLite gradebook
    assignments = nc.assignments(course, args.names)
    print(f"Demo class in {course}: {len(assignments)} assignment(s), {args.students} students")

    api = nc.load_api(course)
    usable = []
    for a in assignments:
        try:
            nc.generate(api, [a.name])
            usable.append(a)
        except nc.NbGraderError as exc:
            print(f"  skipped {a.name}: it does not generate ({str(exc).splitlines()[-1]})")
    assignments = usable

    jobs = []
    students: set[str] = set()
    for a in assignments:
        release = nc.read_notebook(a.release(course))
        solution = nc.read_notebook(a.source(course))
        for student, answers in class_answers(a, solution, args.students, args.seed).items():
            nc.submit(course, student, a, sim.submission(release, solution, answers))
            jobs.append((a.name, student))
            students.add(student)
    nc.add_students(api, sorted(students))
    prepared = time.perf_counter()

    bar = nc.ProgressBar(len(jobs), f"autograde + feedback ({args.workers} workers)")
    results = nc.grade_all(course, jobs, workers=args.workers, progress=bar)
    graded = time.perf_counter()
    export = nc.export_csv(api, course / "grading" / "grades.csv")
    # The instructor's last step (docs/instructors.md, Export): flag what needs a human.
    flags = {a.name: gh.review_flags(course, a.name, a.notebook) for a in assignments}
    review = gh.add_review_columns(export, flags, course / "grading" / "grades-review.csv")

    print(summary(course, api, assignments, results))
    flagged = sorted(
        (a, s, reasons) for a, by in flags.items() for s, reasons in by.items() if reasons
    )
    print(f"\nNeeds review: {len(flagged)} of {len(jobs)} submissions ({review.name})")
    for assignment, student, reasons in flagged:
        print(f"  {assignment} {student}: {'; '.join(reasons)}")
    n = len(jobs)
    print(
        f"\n{n} submissions graded in {graded - prepared:.1f} s "
        f"({(graded - prepared) / n:.2f} s per notebook, autograde and feedback, "
        f"{args.workers} workers); {time.perf_counter() - start:.1f} s in all."
    )
    print(
        f"Grades: {course / 'grading' / 'grades.csv'}; feedback: {course / 'grading' / 'feedback'}"
    )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
