"""Grade an assignment notebook at your desk, hidden tests included, without nbgrader.

    python -m course_lib.grade exercises/01-backprop/backprop.ipynb
    python -m course_lib.grade ~/Downloads/backprop.ipynb --source solutions/01-backprop/backprop.ipynb

The notebook is graded the way ``nbgrader autograde`` grades it, with the full tests of the
instructor's source (``solutions/<NN-name>/<name>.ipynb``):

1. the source is found from the notebook's folder name or file name (or ``--source``);
2. the cells are matched by their nbgrader ``grade_id``. Locked cells (instructions,
   set-up, tests) are replaced by the source's version, hidden tests included; a test cell
   the learner deleted is put back after the cell that precedes it in the source; when a
   ``grade_id`` appears twice, the last copy counts. Answer cells are the learner's;
3. the notebook runs top to bottom in a fresh kernel, in a temporary folder: the original
   file is never written to;
4. each test cell earns its points unless it raised an error, ran out of time, or wrote to
   stderr (a warning, for example). A cell whose result is a number earns that many points
   (nbgrader's partial credit). Written answers are graded by hand and are not counted.

The printed table gives, per test cell, the points and a hint: the first line of the
failure message. The exit code is 0 on full marks, 1 otherwise, 2 when the notebook cannot
be graded (not found, not a notebook, not an assignment of this course).

What this does not protect against: the learner's code runs in the same kernel as the
tests, so code written to defeat the tests can do so. It is a study aid; the instructor's
grades come from nbgrader (docs/instructors.md, docs/grading-security.md).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CELL_TIMEOUT", "CellResult", "GradeReport", "GradingInputError", "grade", "main"]

CELL_TIMEOUT = 15
"""Seconds a cell may run; the same as ``ExecutePreprocessor.timeout`` in nbgrader_config.py."""

KERNEL_ARGUMENTS = (
    "--HistoryManager.hist_file=:memory:",
    "--InteractiveShell.xmode=Plain",
    "--IPKernelApp.log_level=ERROR",
)
"""Kernel options, the same as ``Execute.extra_arguments`` in nbgrader_config.py: no history
database shared between kernels, plain tracebacks (the verbose ones take longer to format
than most test cells take to run), and no start-up log lines."""

CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"  # nbgrader's ClearSolutions stubs
MISSING_NOTE = "This cell (id:{grade_id}) was missing from the submission. It was added back.\n\n"

_COURSE_LIB_ROOT = Path(__file__).resolve().parent.parent
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class GradingInputError(Exception):
    """The notebook cannot be graded: a message for the learner, and exit code 2."""


# ===================================================================== results


@dataclass
class CellResult:
    """One graded cell: its points and, when it failed, why."""

    grade_id: str
    max_points: float
    points: float | None  # None: graded by hand
    status: str  # passed, failed, timeout, not run, manual, unanswered
    hint: str = ""
    detail: str = ""  # the whole error message (traceback without colours)


@dataclass
class GradeReport:
    """The grade of one notebook against its source."""

    notebook: Path
    source: Path
    cells: list[CellResult]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        """Points earned on the autograded cells."""
        return sum(c.points or 0.0 for c in self.cells if c.status not in ("manual", "unanswered"))

    @property
    def max_score(self) -> float:
        """Points available on the autograded cells."""
        return sum(c.max_points for c in self.cells if c.status not in ("manual", "unanswered"))

    @property
    def manual_points(self) -> float:
        """Points of the written answers, graded by hand (not in ``score``)."""
        return sum(c.max_points for c in self.cells if c.status in ("manual", "unanswered"))

    @property
    def full_marks(self) -> bool:
        return self.score == self.max_score

    def points(self) -> dict[str, float | None]:
        """Points by grade_id, as nbgrader records them (written answers: None or 0)."""
        return {c.grade_id: c.points for c in self.cells}

    def table(self, width: int = 100) -> str:
        """The per-cell table, the notes and the total, as plain text."""
        name_w = max([len("test cell"), *(len(c.grade_id) for c in self.cells)])
        lines = [
            f"Grading {self.notebook}",
            f"  against {self.source} (hidden tests included)",
            "",
            f"   {'test cell':<{name_w}}  {'points':>9}  hint",
        ]
        for c in self.cells:
            mark = {"passed": "✓", "manual": "✎", "unanswered": "✎"}.get(c.status, "✗")
            if c.status in ("manual", "unanswered"):
                pts = f"- / {c.max_points:g}"
            else:
                pts = f"{c.points or 0:g} / {c.max_points:g}"
            hint = c.hint
            room = max(width - name_w - 17, 20)
            if len(hint) > room:
                hint = hint[: room - 1] + "…"
            lines.append(f" {mark} {c.grade_id:<{name_w}}  {pts:>9}  {hint}".rstrip())
        lines.append("")
        lines += [f"note: {n}" for n in self.notes]
        total = f"Total: {self.score:g} / {self.max_score:g} autograded points"
        if self.manual_points:
            total += f" (+ {self.manual_points:g} graded by hand)"
        lines.append(f"{total}, in {self.seconds:.1f} s.")
        return "\n".join(lines)


# ===================================================================== reading


def _nbgrader(cell: dict[str, Any]) -> dict[str, Any]:
    meta = cell.get("metadata")
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg if isinstance(nbg, dict) else {}


def _is_grade(cell: dict[str, Any]) -> bool:
    return bool(_nbgrader(cell).get("grade", False))


def _is_solution(cell: dict[str, Any]) -> bool:
    return bool(_nbgrader(cell).get("solution", False))


def _is_locked(cell: dict[str, Any]) -> bool:
    """nbgrader's rule: test cells and locked cells are restored; answer cells never."""
    nbg = _nbgrader(cell)
    if not nbg or nbg.get("solution", False):
        return False
    return bool(nbg.get("grade", False) or nbg.get("locked", False))


def _text(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _load(path: Path, role: str) -> dict[str, Any]:
    """Read and sanity-check a notebook file; raise GradingInputError with a clear message."""
    if not path.exists():
        raise GradingInputError(f"{role} {path} does not exist.")
    if not path.is_file():
        raise GradingInputError(f"{role} {path} is not a file.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise GradingInputError(f"{role} {path} is not a text file (not UTF-8).") from None
    if not text.strip():
        raise GradingInputError(f"{role} {path} is empty: was it saved?")
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GradingInputError(
            f"{role} {path} is not valid notebook JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg}). Was it saved completely? Open it in Jupyter and save "
            "it again, or start again from a fresh copy of the exercise."
        ) from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", None), list):
        if isinstance(nb, dict) and "worksheets" in nb:
            raise GradingInputError(
                f"{role} {path} is an old (nbformat 3) notebook: open it in Jupyter and save "
                "it again to convert it to nbformat 4."
            )
        raise GradingInputError(
            f"{role} {path} is not a Jupyter notebook: it has no list of cells."
        )
    version = nb.get("nbformat")
    if version != 4:
        raise GradingInputError(
            f"{role} {path} has nbformat {version!r}; only nbformat 4 notebooks can be graded. "
            "Open it in Jupyter and save it again."
        )
    for i, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise GradingInputError(f"{role} {path}: cell {i} is not a valid notebook cell.")
        source = cell.get("source", "")
        if not (
            isinstance(source, str)
            or (isinstance(source, list) and all(isinstance(s, str) for s in source))
        ):
            raise GradingInputError(f"{role} {path}: cell {i} has a malformed source.")
        if not isinstance(cell.get("metadata", {}), dict):
            raise GradingInputError(f"{role} {path}: cell {i} has malformed metadata.")
        cell["source"] = _text(cell)  # nbformat stores lines; nbclient wants one string
    return nb


def _grade_ids(nb: dict[str, Any]) -> set[str]:
    return {gid for cell in nb["cells"] if (gid := _nbgrader(cell).get("grade_id"))}


def _course_roots(notebook: Path) -> list[Path]:
    """Folders that may hold solutions/: the notebook's ancestors, the cwd, course_lib's repo."""
    roots: list[Path] = []
    for candidate in [*notebook.resolve().parents, Path.cwd(), _COURSE_LIB_ROOT]:
        if (candidate / "solutions").is_dir() and candidate not in roots:
            roots.append(candidate)
    return roots


def find_source(notebook: Path, nb: dict[str, Any]) -> Path:
    """The instructor's source of a learner's notebook.

    By folder and file name first (``exercises/NN-name/name.ipynb`` and
    ``grading/submitted/<student>/NN-name/name.ipynb`` -> ``solutions/NN-name/name.ipynb``),
    then by file name alone, then by the grade_ids the notebook shares with each source.
    """
    roots = _course_roots(notebook)
    if not roots:
        raise GradingInputError(
            f"No solutions/ folder found for {notebook} (looked in its parent folders, the "
            "current folder and the course). Run this from the course folder, or pass "
            "--source solutions/NN-name/name.ipynb."
        )
    for root in roots:
        by_folder = root / "solutions" / notebook.parent.name / notebook.name
        if by_folder.is_file() and by_folder.resolve() != notebook.resolve():
            return by_folder
        if by_folder.is_file():  # grading a source against itself
            return by_folder
    for root in roots:
        by_name = sorted((root / "solutions").glob(f"*/{notebook.name}"))
        if len(by_name) == 1:
            return by_name[0]
    ids = _grade_ids(nb)
    best: tuple[int, Path] | None = None
    for root in roots:
        for candidate in sorted((root / "solutions").glob("*/*.ipynb")):
            try:
                overlap = len(ids & _grade_ids(_load(candidate, "Source")))
            except GradingInputError:
                continue
            if overlap and (best is None or overlap > best[0]):
                best = (overlap, candidate)
    if best is None:
        raise GradingInputError(
            f"{notebook} does not look like an assignment of this course: its name and its "
            "cells match nothing in solutions/. Pass --source solutions/NN-name/name.ipynb."
        )
    return best[1]


# ===================================================================== merging


def _release_text(source_cell: dict[str, Any]) -> str:
    """What nbgrader's ClearSolutions makes of an answer cell (for a deleted answer)."""
    text = _text(source_cell)
    if source_cell.get("cell_type") != "code":
        return TEXT_STUB
    lines, out, inside, replaced = text.split("\n"), [], False, False
    for line in lines:
        if "BEGIN SOLUTION" in line:
            inside, replaced = True, True
            indent = re.match(r"\s*", line).group(0)
            out += [indent + stub for stub in CODE_STUB.split("\n")]
        elif "END SOLUTION" in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out) if replaced else CODE_STUB


def _without_hidden_tests(text: str) -> str:
    """A test cell as released: nbgrader's ClearHiddenTests drops the hidden region."""
    out, inside = [], False
    for line in text.split("\n"):
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END HIDDEN TESTS" in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _restored(source_cell: dict[str, Any], gid: str) -> dict[str, Any]:
    cell = copy.deepcopy(source_cell)
    note = MISSING_NOTE.format(grade_id=gid)
    if cell["cell_type"] == "code":
        cell["source"] = "".join("# " + line for line in note.splitlines(keepends=True)) + _text(
            source_cell
        )
        cell["outputs"], cell["execution_count"] = [], None
    else:
        cell["source"] = note + _text(source_cell)
    return cell


def merge(student: dict[str, Any], source: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The notebook to run: the learner's cells, with the source's locked cells and tests.

    Follows nbgrader's autograde (ClearOutput, DeduplicateIds, OverwriteKernelspec,
    OverwriteCells with add_missing_cells). Returns the notebook and notes for the learner.
    """
    notes: list[str] = []
    src_cells = [c for c in source["cells"] if _nbgrader(c).get("grade_id")]
    by_id = {_nbgrader(c)["grade_id"]: c for c in src_cells}
    order = [_nbgrader(c)["grade_id"] for c in src_cells]

    cells = [copy.deepcopy(c) for c in student["cells"]]
    for cell in cells:  # ClearOutput
        cell.setdefault("metadata", {})
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None

    # DeduplicateIds: the last copy of a grade_id counts; earlier copies become plain cells.
    seen: set[str] = set()
    for cell in reversed(cells):
        nbg = _nbgrader(cell)
        if not (_is_grade(cell) or _is_solution(cell) or _is_locked(cell)):
            continue
        gid = nbg.get("grade_id")
        if gid in seen:
            cell["metadata"]["nbgrader"] = {}
            notes.append(f"cell {gid!r} appears more than once: the last copy is graded.")
        elif gid:
            seen.add(gid)

    # OverwriteCells: cell type, lock, points and (for locked cells) the source come from
    # the instructor's version.
    for cell in cells:
        gid = _nbgrader(cell).get("grade_id")
        if not gid:
            continue
        if gid not in by_id:
            cell["metadata"]["nbgrader"] = {}
            notes.append(f"cell {gid!r} is not part of the assignment: it is not graded.")
            continue
        src = by_id[gid]
        if cell["cell_type"] != src["cell_type"]:
            notes.append(
                f"cell {gid!r} had its type changed: it is a {src['cell_type']} cell again."
            )
            cell["cell_type"] = src["cell_type"]
            if src["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
            else:
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
        cell["metadata"]["nbgrader"] = copy.deepcopy(_nbgrader(src))
        if _is_locked(src) and _text(cell) != _text(src):
            if _text(cell) != _without_hidden_tests(_text(src)):
                kind = "test" if _is_grade(src) else "locked"
                notes.append(f"{kind} cell {gid!r} was edited: the original is used.")
            cell["source"] = _text(src)

    # add_missing_cells: deleted test cells and written answers come back, after the cell
    # that precedes them in the source.
    present = {_nbgrader(c).get("grade_id") for c in cells if _nbgrader(c).get("grade_id")}
    for gid in order:
        src = by_id[gid]
        if gid in present:
            continue
        if not _is_grade(src):
            kind = "answer" if _is_solution(src) else "locked"
            notes.append(
                f"{kind} cell {gid!r} is missing and is not put back (nbgrader does not either): "
                "copy it from a fresh exercise."
            )
            continue
        restored = _restored(src, gid)
        if _is_solution(src):
            restored["source"] = restored["source"].replace(_text(src), _release_text(src))
        notes.append(
            f"{'test' if not _is_solution(src) else 'answer'} cell {gid!r} was missing: put back."
        )
        position = 0
        for prev in reversed(order[: order.index(gid)]):
            idx = next(
                (i for i, c in enumerate(cells) if _nbgrader(c).get("grade_id") == prev), None
            )
            if idx is not None:
                position = idx + 1
                break
        cells.insert(position, restored)
        present.add(gid)

    merged = copy.deepcopy(student)
    merged["cells"] = cells
    merged.setdefault("metadata", {})
    if "kernelspec" in source.get("metadata", {}):  # OverwriteKernelspec
        merged["metadata"]["kernelspec"] = copy.deepcopy(source["metadata"]["kernelspec"])
    return merged, notes


# ===================================================================== running


def _plain(text: str) -> str:
    return _ANSI.sub("", text)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in _plain(text).splitlines() if line.strip()]
    for line in lines:  # a course_lib check: the first failing property says the most
        if line.startswith("✗"):
            return line
    return lines[0] if lines else ""


def _judge(cell: Any, max_points: float) -> tuple[float, str, str, str]:
    """nbgrader's determine_grade: (points, status, hint, detail) of an executed test cell."""
    outputs = cell.get("outputs", [])
    if any(o.get("ename") == "CellTimeoutError" for o in outputs):
        # The interrupted kernel reports a KeyboardInterrupt first; the cause is the time.
        return 0.0, "timeout", "no result within the time limit: an endless loop?", ""
    for output in outputs:
        kind = output.get("output_type")
        if kind == "error":
            ename, evalue = output.get("ename", "Error"), output.get("evalue", "")
            detail = _plain("\n".join(output.get("traceback", []))) or f"{ename}: {evalue}"
            first = _first_line(evalue)
            if ename == "AssertionError":
                hint = first or "a check failed (assert without a message)"
            elif ename == "NotImplementedError" and not first:
                hint = "NotImplementedError: not answered yet"
            else:
                hint = f"{ename}: {first}" if first else ename
            return 0.0, "failed", hint, detail
        if kind == "stream" and output.get("name") == "stderr":
            text = output.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            return 0.0, "failed", f"wrote to stderr: {_first_line(text)}", _plain(text)
        if kind == "execute_result":
            value = output.get("data", {}).get("text/plain", "")
            value = "".join(value) if isinstance(value, list) else value
            try:
                partial = float(value)
            except ValueError:
                return max_points, "passed", "", ""
            if 0.0 <= partial < max_points:
                return partial, "failed", f"partial credit: {partial:g}", ""
            return max_points, "passed", "", ""
    return max_points, "passed", "", ""


def _execute(nb: dict[str, Any], workdir: Path, timeout: int) -> tuple[Any, dict[int, str]]:
    """Run every code cell in one fresh kernel. Returns the executed notebook and, for cells
    that did not run, why (index -> "kernel died" for the cell that killed it, "not run")."""
    import nbformat
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    node = nbformat.from_dict(nb)
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(
        node,
        timeout=timeout,
        kernel_name=kernel,
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": "CellTimeoutError",
            "evalue": f"no reply from the kernel within {timeout} s",
            "traceback": [f"CellTimeoutError: no reply from the kernel within {timeout} s"],
        },
        shutdown_kernel="immediate",
        extra_arguments=list(KERNEL_ARGUMENTS),
        resources={"metadata": {"path": str(workdir)}},
    )
    status: dict[int, str] = {}

    def on_executed(cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        # A timeout comes back as a synthetic reply; record it like nbgrader's Execute does.
        content = (execute_reply or {}).get("content", {})
        if content.get("ename") == "CellTimeoutError":
            known = any(o.get("ename") == "CellTimeoutError" for o in cell.outputs)
            if not known:
                cell.outputs.append(
                    nbformat.v4.new_output(
                        "error",
                        ename="CellTimeoutError",
                        evalue=content.get("evalue", ""),
                        traceback=content.get("traceback", []),
                    )
                )

    client.on_cell_executed = on_executed
    try:
        with client.setup_kernel():
            for index, cell in enumerate(node.cells):
                if cell.cell_type != "code":
                    continue
                try:
                    client.execute_cell(cell, index)
                except DeadKernelError:
                    status[index] = "kernel died"
                    for later in range(index + 1, len(node.cells)):
                        status[later] = "not run"
                    break
    except NoSuchKernel:
        raise GradingInputError(
            f"No Jupyter kernel named {kernel!r} is installed. Run this with the course's "
            "Python (.venv/bin/python), where ipykernel provides it."
        ) from None
    return node, status


# ===================================================================== grading


def grade(
    notebook: str | os.PathLike[str],
    source: str | os.PathLike[str] | None = None,
    timeout: int = CELL_TIMEOUT,
) -> GradeReport:
    """Grade ``notebook`` against the full tests of its source; see the module docstring."""
    start = time.perf_counter()
    path = Path(notebook).expanduser()
    student = _load(path, "Notebook")
    src_path = Path(source).expanduser() if source is not None else find_source(path, student)
    src = _load(src_path, "Source")
    graded = [c for c in src["cells"] if _is_grade(c)]
    if not graded:
        raise GradingInputError(f"Source {src_path} has no graded cells: is it an assignment?")
    if student["cells"] and not (_grade_ids(student) & _grade_ids(src)):
        raise GradingInputError(
            f"{path} shares no cell with {src_path}: is it the right notebook? "
            "Pass the matching source with --source."
        )

    merged, notes = merge(student, src)
    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        workdir = Path(tmp)
        for extra in src_path.parent.iterdir():  # data files the assignment ships with
            if extra.suffix != ".ipynb" and extra.is_file():
                shutil.copy2(extra, workdir / extra.name)
        executed, status = _execute(merged, workdir, timeout)

    positions = {
        _nbgrader(c).get("grade_id"): i
        for i, c in enumerate(executed.cells)
        if _nbgrader(c).get("grade_id")
    }
    results = []
    for src_cell in graded:
        gid = _nbgrader(src_cell)["grade_id"]
        max_points = float(_nbgrader(src_cell).get("points", 0))
        cell = executed.cells[positions[gid]]
        if _is_solution(src_cell):  # a written answer: graded by hand
            unchanged = _text(cell).strip() == _release_text(src_cell).strip()
            results.append(
                CellResult(gid, max_points, 0.0, "unanswered", "not answered yet")
                if unchanged
                else CellResult(gid, max_points, None, "manual", "graded by hand")
            )
            continue
        why = status.get(positions[gid])
        if why is not None:
            hint = (
                "not run: the kernel died before this cell (os._exit, a crash, or out of memory)"
                if why == "not run"
                else "the kernel died in this cell (os._exit, a crash, or out of memory)"
            )
            results.append(CellResult(gid, max_points, 0.0, "not run", hint))
            continue
        points, verdict, hint, detail = _judge(cell, max_points)
        results.append(CellResult(gid, max_points, points, verdict, hint, detail))
    return GradeReport(path, src_path, results, notes, time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the table; exit 0 on full marks, 1 otherwise, 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.grade",
        description="Grade an assignment notebook at your desk, hidden tests included.",
    )
    parser.add_argument("notebook", help="your notebook, e.g. exercises/01-backprop/backprop.ipynb")
    parser.add_argument("--source", help="the instructor's notebook (found automatically)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every failure in full")
    args = parser.parse_args(argv)
    # jsonschema (imported by nbformat) loads rfc3987_syntax, which builds a grammar for 2-3 s
    # at import. It only checks the "iri" string format, which notebooks never use: skip it.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    try:
        report = grade(args.notebook, args.source, args.timeout)
    except GradingInputError as exc:
        print(f"course_lib.grade: {exc}", file=sys.stderr)
        return 2
    print(report.table(width=shutil.get_terminal_size((100, 20)).columns))
    if args.verbose:
        for c in report.cells:
            if c.detail:
                print(f"\n--- {c.grade_id} ---\n{c.detail}")
    elif not report.full_marks:
        print("Run with -v to see every failure in full.")
    return 0 if report.full_marks else 1


if __name__ == "__main__":
    sys.exit(main())
