"""Build the static HTML edition of the course (for reading without Jupyter) into ``site/``.

    python scripts/build_site.py                          # every lesson and exercise
    python scripts/build_site.py --out /tmp/site          # somewhere else
    python scripts/build_site.py 02_sigmoid 05_relu       # only some lessons (+ their exercises)
    python scripts/build_site.py --jobs 1                 # execute one lesson at a time

- Lessons are executed at build time (nbclient, the venv's ``python3`` kernel, working
  directory ``lessons/``), so every page carries its outputs and plots; a cell that raises
  fails the build, as it fails ``make test``.
- Exercises are exported as released by nbgrader from ``exercises/``: never executed, and
  never read from ``solutions/``, so no solution reaches the site.
- ``index.html`` lists the lessons in the order of the deck (``lessons/NN_*.ipynb`` sorted),
  with the titles and the lesson -> exercise map of the README's course table.
- Every lesson page links to its exercise, the previous and next lesson and the index; every
  exercise page links back to the lessons it practises.

Images are embedded in the pages (base64 ``data:`` URIs), so ``site/`` is self-contained apart
from MathJax, which nbconvert's template loads from a CDN.
"""

from __future__ import annotations

import argparse
import html
import multiprocessing
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# One row of the README's course map: | NN | [title](lessons/x.ipynb) | [label](exercises/y.ipynb) |
_MAP_ROW = re.compile(
    r"^\|\s*(\d+)\s*\|\s*\[([^\]]+)\]\((lessons/[^)]+\.ipynb)\)\s*\|"
    r"\s*\[([^\]]+)\]\((exercises/[^)]+\.ipynb)\)\s*\|\s*$"
)

# Each kernel cell may take this long: the slowest lesson cell takes a few seconds alone, and
# two lessons run at once on a 2-core machine shared with other work.
CELL_TIMEOUT_S = 300

_NAV_CSS = """
.course-nav { font: 14px/1.5 system-ui, sans-serif; display: flex; flex-wrap: wrap;
  gap: 0.4em 1.2em; padding: 0.6em 1em; margin: 0 0 1em; background: #f3f5f8;
  border-bottom: 1px solid #d0d7de; }
.course-nav a { color: #0b57d0; text-decoration: none; }
.course-nav a:hover { text-decoration: underline; }
.course-nav .exercise { font-weight: 600; }
"""


@dataclass(frozen=True)
class Lesson:
    """A lesson notebook, its title and the exercise that practises it."""

    stem: str  # "02_sigmoid"
    title: str
    exercise: str  # "exercises/02-sigmoid-softmax-tanh/sigmoid_softmax_tanh.ipynb"
    exercise_label: str

    @property
    def source(self) -> str:
        return f"lessons/{self.stem}.ipynb"

    @property
    def page(self) -> str:
        return f"lessons/{self.stem}.html"

    @property
    def exercise_page(self) -> str:
        return str(Path(self.exercise).with_suffix(".html"))


@dataclass
class SiteReport:
    """What a build wrote, and how long it took."""

    out: Path
    lessons: list[str] = field(default_factory=list)
    exercises: list[str] = field(default_factory=list)
    pages: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def course_map(root: Path = ROOT) -> list[Lesson]:
    """The lessons in deck order (``lessons/NN_*.ipynb`` sorted), with title and exercise from
    the README's course table. Raise ``ValueError`` if the table and ``lessons/`` disagree."""
    rows: dict[str, Lesson] = {}
    for line in (root / "README.md").read_text(encoding="utf-8").splitlines():
        match = _MAP_ROW.match(line.strip())
        if match:
            _, title, lesson, label, exercise = match.groups()
            stem = Path(lesson).stem
            rows[stem] = Lesson(stem, title, exercise, label)
    stems = sorted(p.stem for p in (root / "lessons").glob("[0-9][0-9]_*.ipynb"))
    missing = [s for s in stems if s not in rows]
    extra = [s for s in rows if s not in stems]
    if missing or extra:
        raise ValueError(
            f"README course map and lessons/ disagree: not in the map {missing}, "
            f"no such lesson {extra}"
        )
    return [rows[s] for s in stems]


def _exporter():  # nbconvert imports take a second: only pay for them when building
    from nbconvert import HTMLExporter

    # embed_images: markdown images become data: URIs too, so pages need no side files.
    return HTMLExporter(template_name="lab", embed_images=True)


def _render(source: Path, execute: bool, root: Path) -> str:
    """The HTML of one notebook; executed first (in its own folder) when ``execute``."""
    import nbformat

    nb = nbformat.read(source, as_version=4)
    if execute:
        from nbclient import NotebookClient

        NotebookClient(
            nb,
            timeout=CELL_TIMEOUT_S,
            kernel_name="python3",
            resources={"metadata": {"path": str(source.parent)}},
        ).execute()
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": source.stem}})
    return body


def _rel(from_page: str, to_page: str) -> str:
    return os.path.relpath(to_page, start=str(Path(from_page).parent)).replace(os.sep, "/")


def _link(from_page: str, to_page: str, text: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f'<a{cls} href="{html.escape(_rel(from_page, to_page))}">{html.escape(text)}</a>'


def _insert_nav(body: str, nav: str) -> str:
    """Put the course navigation bar at the top of the page body, and its CSS in the head."""
    body = body.replace("</head>", f"<style>{_NAV_CSS}</style>\n</head>", 1)
    match = re.search(r"<body[^>]*>", body)
    if match is None:
        raise ValueError("nbconvert page without <body>")
    bar = f'<nav class="course-nav">{nav}</nav>\n'
    return body[: match.end()] + "\n" + bar + body[match.end() :]


def _rewrite_notebook_links(body: str) -> str:
    """Relative links to ``*.ipynb`` in the notebooks point to their ``*.html`` pages."""
    return re.sub(r'href="(?![a-z]+:|#)([^"#]+)\.ipynb(#[^"]*)?"', r'href="\1.html\2"', body)


def _lesson_nav(lessons: Sequence[Lesson], i: int) -> str:
    lesson = lessons[i]
    parts = [_link(lesson.page, "index.html", "Course index")]
    if i > 0:
        prev = lessons[i - 1]
        parts.append(_link(lesson.page, prev.page, f"← {prev.stem[:2]} {prev.title}"))
    if i + 1 < len(lessons):
        nxt = lessons[i + 1]
        parts.append(_link(lesson.page, nxt.page, f"{nxt.stem[:2]} {nxt.title} →"))
    parts.append(
        _link(lesson.page, lesson.exercise_page, f"Practise: {lesson.exercise_label}", "exercise")
    )
    return " ".join(parts)


def _exercise_nav(exercise_page: str, label: str, lessons: Sequence[Lesson]) -> str:
    parts = [_link(exercise_page, "index.html", "Course index")]
    parts.append(f"<span>Exercise {html.escape(label)}, practising:</span>")
    for lesson in lessons:
        parts.append(_link(exercise_page, lesson.page, f"{lesson.stem[:2]} {lesson.title}"))
    return " ".join(parts)


def _index(lessons: Sequence[Lesson], exercises: dict[str, list[Lesson]]) -> str:
    rows = "\n".join(
        f"<tr><td>{lesson.stem[:2]}</td><td>{_link('index.html', lesson.page, lesson.title)}</td>"
        f"<td>{_link('index.html', lesson.exercise_page, lesson.exercise_label)}</td></tr>"
        for lesson in lessons
    )
    labels = {lesson.exercise: lesson.exercise_label for lesson in lessons}
    items = "\n".join(
        f"<li>{_link('index.html', str(Path(ex).with_suffix('.html')), labels[ex])}</li>"
        for ex in sorted(exercises)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Activation and Loss Functions, from the sigmoid to the transformer</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 56em; margin: 2em auto; padding: 0 1em;
  color: #1f2328; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ padding: 0.3em 0.6em; border-bottom: 1px solid #d0d7de; text-align: left; }}
a {{ color: #0b57d0; }}
</style></head>
<body>
<h1>Activation and Loss Functions, from the sigmoid to the transformer</h1>
<p>The lessons, run with their outputs and plots, in the order of the slide deck; each links
to the exercise that practises it. The exercises are shown as students receive them, without
solutions: to answer one, open the notebook in JupyterLab (<code>make lab</code>).</p>
<h2>Lessons</h2>
<table><thead><tr><th>#</th><th>lesson</th><th>practise in</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<h2>Exercises</h2>
<ul>
{items}
</ul>
</body></html>
"""


def build_site(
    out: Path | str = ROOT / "site",
    lessons: Sequence[str] = (),
    jobs: int = 2,
    root: Path = ROOT,
) -> SiteReport:
    """Build the site into ``out`` (emptied first) and return what was written.

    ``lessons`` selects lesson stems (``"02_sigmoid"``) or numbers (``"02"``); empty means all.
    Only the exercises of the chosen lessons are exported, and the navigation links only
    pages that exist. ``jobs`` lessons are executed at once.
    """
    start = time.perf_counter()
    out = Path(out).resolve()
    everything = course_map(root)
    if lessons:
        wanted = set(lessons)
        chosen = [s for s in everything if s.stem in wanted or s.stem[:2] in wanted]
        unknown = wanted - {s.stem for s in chosen} - {s.stem[:2] for s in chosen}
        if unknown:
            raise ValueError(f"no such lesson: {sorted(unknown)}")
    else:
        chosen = everything
    exercises: dict[str, list[Lesson]] = {}
    for lesson in chosen:
        exercises.setdefault(lesson.exercise, []).append(lesson)

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    report = SiteReport(out=out)

    sources = [root / lesson.source for lesson in chosen]
    # Kernels are found by name on PATH: the venv's bin/ must come first (as `make` sets it).
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    # A page has no kernel to move a slider: draw the initial figure and name the sliders
    # (course_lib.plotting.STATIC_ENV; it also keeps nbclient from waiting on widgets).
    os.environ["COURSE_STATIC_SLIDERS"] = "1"
    if jobs > 1 and len(sources) > 1:
        # spawn, not fork: a fork copies the parent's threads' locks (pytest-xdist and
        # zmq keep threads), and a child that inherits a held one waits for ever.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            bodies = list(pool.map(_render, sources, [True] * len(sources), [root] * len(sources)))
    else:
        bodies = [_render(src, True, root) for src in sources]

    for i, (lesson, body) in enumerate(zip(chosen, bodies, strict=True)):
        page = out / lesson.page
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(
            _insert_nav(_rewrite_notebook_links(body), _lesson_nav(chosen, i)), encoding="utf-8"
        )
        report.lessons.append(lesson.stem)
        report.pages.append(page)

    for exercise, practised in exercises.items():
        # As released: not executed, so the answer cells still say NotImplementedError.
        body = _render(root / exercise, False, root)
        rel_page = str(Path(exercise).with_suffix(".html"))
        page = out / rel_page
        page.parent.mkdir(parents=True, exist_ok=True)
        nav = _exercise_nav(rel_page, practised[0].exercise_label, practised)
        page.write_text(_insert_nav(_rewrite_notebook_links(body), nav), encoding="utf-8")
        report.exercises.append(exercise)
        report.pages.append(page)

    index = out / "index.html"
    index.write_text(_index(chosen, exercises), encoding="utf-8")
    report.pages.insert(0, index)
    report.seconds = time.perf_counter() - start
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson stems or numbers (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "site", help="default: site/")
    parser.add_argument("--jobs", type=int, default=2, help="lessons executed at once")
    args = parser.parse_args(argv)
    report = build_site(args.out, args.lessons, jobs=args.jobs)
    print(
        f"site: {len(report.lessons)} lessons, {len(report.exercises)} exercises, "
        f"{len(report.pages)} pages in {report.seconds:.1f} s -> {report.out / 'index.html'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
