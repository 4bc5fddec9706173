"""Hardening around nbgrader that runs *outside* the student's kernel (docs/grading-security.md).

- ``HideHiddenTests``: an nbconvert preprocessor for ``generate_feedback`` that removes the
  hidden tests from the feedback HTML: their source, and any output (traceback, assertion
  message) that quotes a hidden line or one of its frozen expected values.
- ``scan_notebook``: a static scan of a submission's code for the tricks that defeat tests
  from inside the kernel (patching modules, builtins, ``os._exit``, reading files).
- ``review_flags`` and ``add_review_column``: after autograde and export, the submissions a
  human must look at (notebook not graded at all, unreadable, suspicious code, duplicated
  test cells), written as ``needs_review`` and ``review_reason`` columns of the export.

Nothing here can stop a determined attacker inside the kernel; it makes the ordinary
attacks visible instead of silent.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Integer, Unicode

BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"
END_HIDDEN = "END HIDDEN TESTS"
HIDDEN_NOTICE = "# (hidden tests, run at grading time, not shown)"
# A literal with 4 or more significant digits (100.0 has one): short ones are not secrets and
# appear everywhere.
NUMBER = re.compile(r"-?\d*\.?\d+(?:[eE][-+]?\d+)?")


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def split_hidden(source: str) -> tuple[str, list[str]]:
    """(the source without its hidden regions, the hidden lines)."""
    kept: list[str] = []
    hidden: list[str] = []
    inside = False
    for line in source.split("\n"):
        if BEGIN_HIDDEN in line:
            inside = True
            kept.append(line.replace(line.strip(), HIDDEN_NOTICE))
        elif END_HIDDEN in line:
            inside = False
        elif inside:
            hidden.append(line)
        else:
            kept.append(line)
    return "\n".join(kept), hidden


def secret_tokens(hidden_lines: list[str], visible: str = "") -> set[str]:
    """What must not appear in feedback: every non-trivial hidden line (stripped) and every
    numeric literal of 4+ significant digits in them that the visible part does not show."""
    tokens: set[str] = set()
    for line in hidden_lines:
        stripped = line.strip()
        if len(stripped) >= 12 and not stripped.startswith("#") and stripped not in visible:
            tokens.add(stripped)
        for number in NUMBER.findall(line):
            digits = re.sub(r"[eE].*$", "", number).replace("-", "").replace(".", "")
            if len(digits.strip("0")) >= 4 and number not in visible:
                tokens.add(number.lstrip("-"))
    return tokens


def _output_text(output: Any) -> str:
    parts = [output.get("text", ""), output.get("ename", ""), output.get("evalue", "")]
    parts += list(output.get("traceback", []))
    for value in output.get("data", {}).values():
        parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


class HideHiddenTests(Preprocessor):
    """Remove hidden tests, and outputs that quote them, from the notebook sent as feedback.

    Enable it for ``nbgrader generate_feedback`` in ``nbgrader_config.py``::

        c.GenerateFeedback.preprocessors = [
            "nbgrader.preprocessors.GetGrades",
            "grading_hardening.HideHiddenTests",
            "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
        ]

    (classes, not strings: nbgrader inspects their traits; ``scripts/`` on ``sys.path``).
    It also truncates long text outputs.
    """

    enabled = Bool(True, help="on as soon as it is listed").tag(config=True)

    replacement = Unicode(
        "A hidden test failed ({ename}). Hidden tests check edge cases (extreme inputs, "
        "dtypes, shapes); their details are not shown. Run the visible tests and think about "
        "the edge cases in the instructions."
    ).tag(config=True)
    max_chars = Integer(10_000, help="longest text output kept in feedback").tag(config=True)

    def preprocess_cell(self, cell: Any, resources: Any, index: int) -> tuple[Any, Any]:
        if cell.get("cell_type") != "code":
            return cell, resources
        visible, hidden = split_hidden(_source(cell))
        if hidden:
            cell.source = visible
            tokens = secret_tokens(hidden, visible)
            outputs = []
            for output in cell.get("outputs", []):
                text = _output_text(output)
                if any(token in text for token in tokens):
                    if output.get("output_type") == "error":
                        message = self.replacement.format(ename=output.get("ename", "Error"))
                        output.evalue = message
                        output.traceback = [f"{output.get('ename', 'Error')}: {message}"]
                    else:
                        continue  # a printed or displayed hidden value: drop it
                outputs.append(output)
            cell.outputs = outputs
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                text = _source({"source": output.get("text", "")})
                if len(text) > self.max_chars:
                    output.text = (
                        text[: self.max_chars]
                        + f"\n... [{len(text) - self.max_chars} characters truncated]\n"
                    )
        return cell, resources


# ---------------------------------------------------------------- static scan of submissions

# Names whose rebinding or patching in a student's cell defeats tests from inside the kernel.
_GUARDED_MODULES = {"np", "numpy", "sp", "sympy", "course_lib", "builtins", "math", "sys"}
_SUSPICIOUS_CALLS = {
    "setattr": "calls setattr (may patch a module)",
    "exec": "calls exec",
    "eval": "calls eval",
    "__import__": "calls __import__",
    "open": "opens a file",
    "compile": "calls compile",
}
_SUSPICIOUS_ATTRS = {
    "_exit": "calls os._exit (kills the kernel)",
    "kill": "kills a process",
    "modules": "touches sys.modules",
    "reload": "reloads a module",
    "__code__": "rewrites a function's code",
    "__builtins__": "touches __builtins__",
    "set_custom_exc": "installs a custom exception handler",
    "register_cell_magic": "registers a cell magic",
    "environ": "reads the environment (the gradebook URL may be there)",
    "system": "runs a shell command",
}
# Modules no exercise needs: patching (builtins, ctypes, importlib, inspect, gc), processes
# and signals, and the gradebook or the network (sqlite3, sqlalchemy, nbgrader, sockets).
_SUSPICIOUS_IMPORTS = {
    "builtins", "ctypes", "importlib", "inspect", "gc", "subprocess", "signal", "multiprocessing",
    "sqlite3", "sqlalchemy", "psycopg2", "nbgrader", "socket", "urllib", "http", "requests",
    "shutil", "resource",
}  # fmt: skip


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def scan_code(code: str) -> list[str]:
    """Reasons to review one code cell (empty: nothing suspicious).

    IPython magics and shell escapes (lines starting with % or !) are reported, not parsed.
    """
    reasons: list[str] = []
    lines = []
    for line in code.split("\n"):
        if line.lstrip().startswith(("%", "!")):
            reasons.append(f"IPython magic or shell escape: {line.strip()[:60]}")
            lines.append("")
        else:
            lines.append(line)
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return reasons  # a syntax error fails its own tests; nothing to defeat
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute | ast.Subscript):
                root = _root_name(target)
                if root in _GUARDED_MODULES or root == "check":
                    reasons.append(f"assigns to {ast.unparse(target)}")
            elif isinstance(target, ast.Name) and target.id in {"check", "np", "sp", "assert"}:
                reasons.append(f"rebinds {target.id}")
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else None
            if name in _SUSPICIOUS_CALLS:
                reasons.append(_SUSPICIOUS_CALLS[name])
        if isinstance(node, ast.Attribute) and node.attr in _SUSPICIOUS_ATTRS:
            reasons.append(_SUSPICIOUS_ATTRS[node.attr])
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules.append(node.module)
            for module in modules:
                if module.split(".")[0] in _SUSPICIOUS_IMPORTS:
                    reasons.append(f"imports {module}")
        if isinstance(node, ast.ClassDef):
            for item in ast.walk(node):
                if isinstance(item, ast.FunctionDef) and item.name in {"__eq__", "__array__"}:
                    reasons.append(f"defines {item.name} in class {node.name}")
                if isinstance(item, ast.FunctionDef) and item.name == "__array_ufunc__":
                    reasons.append(f"defines __array_ufunc__ in class {node.name}")
    return list(dict.fromkeys(reasons))


def scan_notebook(notebook: dict[str, Any]) -> list[str]:
    """Reasons to review a submission: suspicious code in any cell a student could edit, and
    test cells duplicated (two cells with one grade_id)."""
    reasons: list[str] = []
    ids = Counter()
    for cell in notebook.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id"):
            ids[meta["grade_id"]] += 1
        if cell.get("cell_type") != "code" or meta.get("locked"):
            continue  # locked cells are put back from the gradebook before they run
        for reason in scan_code(_source(cell)):
            reasons.append(f"{meta.get('grade_id') or 'unnamed cell'}: {reason}")
    reasons += [f"grade_id {gid!r} appears {n} times" for gid, n in ids.items() if n > 1]
    return reasons


# ---------------------------------------------------------------- flags on the export


def _read_error(path: Path) -> str | None:
    """Why nbformat cannot read ``path`` as a version-4 notebook, or None if it can."""
    import nbformat

    try:
        notebook = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    except Exception as exc:  # noqa: BLE001 (any failure to read is the reason itself)
        return f"unreadable notebook ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"
    if notebook.get("nbformat") != 4:
        return f"old notebook format (nbformat {notebook.get('nbformat')})"
    return None


def review_flags(root: Path, assignment: str, notebook: str) -> dict[str, list[str]]:
    """student -> reasons to review, for every student who submitted ``assignment``.

    A student is flagged when their notebook has no autograded copy (nbgrader dropped it:
    the kernel died, ran out of memory, or the file could not be read: nbgrader's export
    then shows a plain 0), when the file is malformed, and when ``scan_notebook`` finds
    suspicious code. Students with nothing to review map to an empty list.
    """
    flags: dict[str, list[str]] = {}
    submitted = root / "grading" / "submitted"
    autograded = root / "grading" / "autograded"
    for path in sorted(submitted.glob(f"*/{assignment}/{notebook}.ipynb")):
        student = path.parent.parent.name
        reasons: list[str] = []
        error = _read_error(path)
        if error:
            reasons.append(error)
        if not (autograded / student / assignment / f"{notebook}.ipynb").is_file():
            reasons.append("not autograded (kernel died, file unreadable or cells duplicated)")
        if error is None:
            reasons += scan_notebook(json.loads(path.read_text(encoding="utf-8")))
        flags[student] = reasons
    return flags


def add_review_column(
    export: Path, flags: dict[str, list[str]], assignment: str, dest: Path | None = None
) -> Path:
    """Copy nbgrader's CSV export with two more columns: ``needs_review`` (yes/no) and
    ``review_reason``. Rows of other assignments get "no" and an empty reason."""
    return add_review_columns(export, {assignment: flags}, dest)


def add_review_columns(
    export: Path, flags: dict[str, dict[str, list[str]]], dest: Path | None = None
) -> Path:
    """``add_review_column`` for several assignments at once: ``flags`` maps an assignment
    to its ``review_flags``. Rows of an assignment not in ``flags`` get "no"."""
    with export.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    fields = list(rows[0].keys()) if rows else ["assignment", "student_id"]
    for row in rows:
        reasons = flags.get(row["assignment"], {}).get(row.get("student_id", ""), [])
        row["needs_review"] = "yes" if reasons else "no"
        row["review_reason"] = "; ".join(reasons)
    dest = dest or export
    with dest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*fields, "needs_review", "review_reason"])
        writer.writeheader()
        writer.writerows(rows)
    return dest


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    """``python scripts/grading_hardening.py NN-name``: after ``nbgrader export``, write
    ``grading/grades-review.csv`` with the review columns and list the flagged students."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    root = root or Path(__file__).resolve().parents[1]
    if len(args) != 1:
        print("usage: python scripts/grading_hardening.py NN-name   (after nbgrader export)")
        return 2
    assignment = args[0]
    sources = sorted((root / "solutions" / assignment).glob("*.ipynb"))
    export = root / "grading" / "grades.csv"
    if not sources or not export.is_file():
        print(f"need solutions/{assignment}/*.ipynb and {export} (run nbgrader export first)")
        return 2
    flags = review_flags(root, assignment, sources[0].stem)
    dest = add_review_column(export, flags, assignment, root / "grading" / "grades-review.csv")
    flagged = {student: reasons for student, reasons in flags.items() if reasons}
    for student, reasons in sorted(flagged.items()):
        print(f"review {student}: {'; '.join(reasons)}")
    print(f"{len(flagged)} of {len(flags)} submissions need review; wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
