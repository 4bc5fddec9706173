"""Regenerate exercises/ from solutions/ with ``nbgrader generate_assignment --force``.

    python scripts/make_exercises.py                  # every assignment in solutions/
    python scripts/make_exercises.py 01-backprop      # only some
    python scripts/make_exercises.py --check          # exit 1 if exercises/ is out of date
    python scripts/make_exercises.py --out /tmp/ex    # write somewhere else

nbgrader records each assignment in a gradebook while it generates it. This script uses a
throwaway gradebook in a temporary folder, so it works on a fresh clone and never touches
the instructor's ``grading/gradebook.db`` (``docs/instructors.md`` registers the assignments
there with ``nbgrader generate_assignment``, which writes the same files).

The output is nbgrader's, byte for byte: no post-processing, so that running nbgrader by
hand gives no diff. It is deterministic (nbgrader clears outputs and keeps cell ids).
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nbgrader_course as nc  # noqa: E402


def generate_exercises(
    names: Sequence[str] = (), out: Path | None = None, root: Path = nc.ROOT
) -> list[str]:
    """Generate the released version of each assignment into ``out`` (default
    ``root/exercises``); return the assignment names."""
    chosen = nc.assignments(root, names)
    with tempfile.TemporaryDirectory(prefix="course-exercises-db-") as tmp:
        overrides = {"db_url": f"sqlite:///{Path(tmp) / 'gradebook.db'}"}
        if out is not None:
            overrides["release_directory"] = str(Path(out).resolve())
        api = nc.load_api(root, **overrides)
        nc.generate(api, [a.name for a in chosen])
    return [a.name for a in chosen]


def stale_files(fresh: Path, committed: Path, names: Sequence[str]) -> list[str]:
    """Relative paths that differ between two exercise trees, for the given assignments."""
    problems = []
    for name in names:
        a, b = fresh / name, committed / name
        if not b.is_dir():
            problems.append(f"{name}/ is missing")
            continue
        files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
        files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
        for rel in sorted(files_a | files_b):
            if rel not in files_b:
                problems.append(f"{name}/{rel} is missing")
            elif rel not in files_a:
                problems.append(f"{name}/{rel} should not be there")
            elif not filecmp.cmp(a / rel, b / rel, shallow=False):
                problems.append(f"{name}/{rel} is out of date")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="assignments (default: all in solutions/)")
    parser.add_argument("--out", type=Path, help="release folder (default: exercises/)")
    parser.add_argument("--check", action="store_true", help="only report stale exercises")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory(prefix="course-exercises-") as tmp:
            names = generate_exercises(args.names, Path(tmp))
            problems = stale_files(Path(tmp), nc.ROOT / "exercises", names)
        for problem in problems:
            print(f"exercises/{problem}", file=sys.stderr)
        if problems:
            print("exercises/ is out of date: run `make exercises`", file=sys.stderr)
        return 1 if problems else 0
    names = generate_exercises(args.names, args.out)
    print(f"generated {', '.join(names)} into {args.out or nc.ROOT / 'exercises'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
