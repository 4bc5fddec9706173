"""Checks on the repository itself: configuration in step, notebooks clean."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    p for folder in ("lessons", "solutions", "exercises") for p in (ROOT / folder).rglob("*.ipynb")
    if ".ipynb_checkpoints" not in p.parts
)  # fmt: skip


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        _name(r): r.replace(" ", "")
        for r in project["dependencies"] + project["optional-dependencies"]["dev"]
    }
    listed = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        match = re.match(r"^\s+-\s+([A-Za-z0-9_.\-]+[^#]*)$", line)
        if match and not match.group(1).startswith(("python", "pip", "-e")):
            spec = match.group(1).strip()
            listed[_name(spec)] = spec.replace(" ", "")
    assert listed == wanted, "environment.yml drifted from pyproject.toml"
    assert '-e ".[dev]"' in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_committed_clean(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: outputs committed (run nbstripout)"
            assert cell.get("execution_count") is None, f"{path.name}: execution count committed"


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_links_point_to_files():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert links, "README links nothing"
    missing = [link for link in links if "://" not in link and not (ROOT / link).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_every_lesson_is_in_the_readme_course_map():
    text = (ROOT / "README.md").read_text()
    lessons = sorted(p.name for p in (ROOT / "lessons").glob("*.ipynb"))
    assert len(lessons) == 20
    assert [name for name in lessons if f"lessons/{name}" not in text] == []
