"""How long does autograding take per notebook, serially and in parallel?

    python benchmarks/autograde.py                   # 12 submissions of the pilot
    python benchmarks/autograde.py --students 24 --workers 2 4

A temporary copy of the course gets N simulated submissions of one assignment (correct,
partly correct, wrong, naive, missing 1/N, unanswered, in turn). They are autograded with
nbgrader's API:

- serially, in one process that imported nbgrader once: the median seconds per notebook;
- with 2 and 4 worker processes sharing one SQLite gradebook (students added first): the
  wall time divided by the number of notebooks, and whether every grade is identical to
  the serial run.

It also times ``course_lib.grade`` (the self-grader, one kernel per notebook, no
gradebook), and the start-up cost of the ``rfc3987-syntax`` package, which every process
that imports jsonschema pays (nbgrader, nbformat, nbclient). Target: at most 1.5 s per
notebook (a plain nbgrader set-up measured about 1.9 s here).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import nbgrader_course as nc  # noqa: E402
import simulated_students as sim  # noqa: E402

TARGET = 1.5
VARIANTS = ("correct", "partly_correct", "wrong", "naive_overflowing", "missing_mean", "unanswered")


def import_seconds(block_rfc3987: bool) -> float:
    """Wall time of ``import jsonschema`` in a fresh interpreter (best of 3)."""
    prelude = "import sys; sys.modules['rfc3987_syntax'] = None; " if block_rfc3987 else ""
    code = f"{prelude}import time; t = time.perf_counter(); import jsonschema; print(time.perf_counter() - t)"
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return min(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="01-backprop")
    parser.add_argument("--students", type=int, default=12)
    parser.add_argument("--workers", type=int, nargs="*", default=[2, 4])
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="course-bench-") as tmp:
        course = nc.copy_course(Path(tmp) / "course")
        api = nc.load_api(course)
        (assignment,) = nc.assignments(course, [args.assignment])
        nc.generate(api, [assignment.name])
        release = nc.read_notebook(assignment.release(course))
        solution = nc.read_notebook(assignment.source(course))
        students = [f"b{i:03d}" for i in range(args.students)]
        paths = []
        for i, student in enumerate(students):
            variant = VARIANTS[i % len(VARIANTS)]
            answers = (
                sim.PILOT_SUBMISSIONS.get(variant, {}) if assignment.name == "01-backprop" else {}
            )
            if assignment.name != "01-backprop" and variant == "correct":
                answers = {gid: "correct" for gid in sim.answer_ids(solution)}
            paths.append(
                nc.submit(course, student, assignment, sim.submission(release, solution, answers))
            )
        nc.add_students(api, students)
        jobs = [(assignment.name, s) for s in students]
        print(f"{args.students} submissions of {assignment.name}; machine load: {load()}")

        rows = []
        n = len(jobs)
        start, cpu = time.perf_counter(), cpu_seconds()
        serial = nc.grade_all(course, jobs, workers=1, feedback=False)
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        reference = sorted(nc.iter_cell_scores(api))
        per_notebook = statistics.median(r.autograde_seconds for r in serial)
        rows.append(("serial, 1 process", per_notebook, wall / n, cpu / n, "reference"))
        for workers in args.workers:
            start, cpu = time.perf_counter(), cpu_seconds()
            results = nc.grade_all(course, jobs, workers=workers, feedback=False)
            wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
            same = all(r.ok for r in results) and sorted(nc.iter_cell_scores(api)) == reference
            median = statistics.median(r.autograde_seconds for r in results)
            verdict = "identical" if same else "DIFFERENT"
            rows.append((f"parallel, {workers} processes", median, wall / n, cpu / n, verdict))

        from course_lib import grade as self_grade

        self_times = []
        for path in paths[: min(6, len(paths))]:
            t = time.perf_counter()
            self_grade.grade(path)
            self_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "course_lib.grade", str(paths[0])],
            capture_output=True,
            check=False,
        )
        cli = time.perf_counter() - t

    print()
    header = f"{'autograde':<26} {'median s/notebook':>18} {'wall s/notebook':>16} {'CPU s/notebook':>15}"
    print(header + "  grades")
    for name, median, effective, cpu, same in rows:
        print(f"{name:<26} {median:>18.2f} {effective:>16.2f} {cpu:>15.2f}  {same}")
    print(
        f"{'course_lib.grade':<26} {statistics.median(self_times):>18.2f}   (in-process, one kernel each)"
    )
    print(
        f"{'python -m course_lib.grade':<26} {cli:>18.2f}   (the whole command, start-up included)"
    )
    best = min(row[2] for row in rows)
    verdict = "met" if best <= TARGET else "not met"
    print(f"\nTarget {TARGET} s per notebook: {verdict} (best {best:.2f} s per notebook, wall).")
    cores = os.cpu_count() or 1
    print(
        f"CPU time per notebook does not depend on the machine's load: with {cores} idle cores, "
        f"parallel grading approaches {rows[0][3]:.2f} / {cores} = {rows[0][3] / cores:.2f} s "
        "per notebook."
    )
    with_pkg, without_pkg = import_seconds(False), import_seconds(True)
    print(
        f"import jsonschema: {with_pkg:.2f} s with rfc3987-syntax, {without_pkg:.2f} s without: "
        f"{with_pkg - without_pkg:.2f} s per process that imports nbgrader, nbformat or nbclient."
    )
    identical = all(row[-1] in ("reference", "identical") for row in rows)
    return 0 if identical else 1


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children (kernels, workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def load() -> str:
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
