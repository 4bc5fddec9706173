"""The static HTML edition (scripts/build_site.py): pages exist, links and images resolve.

By default a subset is built into a temporary folder (lessons 02 and 05, with their two
exercises: about 20 s). To check a full build instead, build it first and point the tests at it:

    python scripts/build_site.py && COURSE_SITE_DIR=site python -m pytest tests/test_site.py
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import build_site  # noqa: E402

SUBSET = ("02", "05")  # sigmoid and ReLU: two lessons with plots, two different exercises

# File signatures of the image types nbconvert embeds.
_MAGIC = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "image/gif": b"GIF8",
}


class _Page(HTMLParser):
    """Collects a page's links, images and visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []
        self._skip = 0  # inside <script> or <style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"])
        if tag == "img" and values.get("src") is not None:
            self.images.append(values["src"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def parse(page: Path) -> _Page:
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and bool(parts.path)


def broken_links(site: Path) -> list[str]:
    """Every relative link of every page of ``site`` whose target file is missing."""
    problems = []
    for page in sorted(site.rglob("*.html")):
        for href in parse(page).hrefs:
            if is_local(href):
                target = (page.parent / unquote(urlsplit(href).path)).resolve()
                if not target.is_file():
                    problems.append(f"{page.relative_to(site)} -> {href}")
    return problems


def image_problems(site: Path) -> tuple[int, list[str]]:
    """(number of images checked, problems): every ``<img>`` is a decodable data: URI of its
    declared type, or a relative path to a file that exists."""
    problems, count = [], 0
    for page in sorted(site.rglob("*.html")):
        for src in parse(page).images:
            count += 1
            where = f"{page.relative_to(site)}: {src[:60]}"
            if src.startswith("data:"):
                header, _, payload = src.partition(",")
                mime = header[5:].split(";")[0]
                if ";base64" not in header:
                    problems.append(f"{where}: not base64")
                    continue
                try:
                    data = base64.b64decode(payload, validate=True)
                except (binascii.Error, ValueError) as exc:
                    problems.append(f"{where}: does not decode ({exc})")
                    continue
                magic = _MAGIC.get(mime)
                if mime == "image/svg+xml":
                    ok = b"<svg" in data[:2000]
                else:
                    ok = magic is not None and data.startswith(magic)
                if not ok or len(data) < 100:
                    problems.append(f"{where}: {len(data)} bytes, not a {mime}")
            elif is_local(src):
                if not (page.parent / unquote(urlsplit(src).path)).is_file():
                    problems.append(f"{where}: missing file")
            else:
                problems.append(f"{where}: not a local image")
    return count, problems


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[build_site.Lesson]]:
    """(site folder, the lessons it should hold)."""
    given = os.environ.get("COURSE_SITE_DIR")
    everything = build_site.course_map()
    if given:
        return (ROOT / given).resolve(), everything
    out = tmp_path_factory.mktemp("site") / "site"
    report = build_site.build_site(out, SUBSET, jobs=2)
    chosen = [lesson for lesson in everything if lesson.stem[:2] in SUBSET]
    assert report.lessons == [lesson.stem for lesson in chosen]
    return out, chosen


def test_course_map_follows_the_deck_and_the_readme():
    lessons = build_site.course_map()
    stems = [lesson.stem for lesson in lessons]
    assert stems == sorted(p.stem for p in (ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
    assert len(stems) >= 20
    for lesson in lessons:
        assert (ROOT / lesson.exercise).is_file(), lesson
    # Every exercise is practised by at least one lesson, so the index reaches every one.
    released = {str(p.relative_to(ROOT)) for p in (ROOT / "exercises").glob("*/*.ipynb")}
    assert {lesson.exercise for lesson in lessons} == released


def test_every_page_exists(site):
    out, lessons = site
    assert (out / "index.html").is_file()
    for lesson in lessons:
        assert (out / lesson.page).is_file(), lesson.page
        assert (out / lesson.exercise_page).is_file(), lesson.exercise_page


def test_index_lists_lessons_in_deck_order_and_every_exercise(site):
    out, lessons = site
    hrefs = parse(out / "index.html").hrefs
    lesson_links = [h for h in hrefs if h.startswith("lessons/")]
    assert lesson_links == [lesson.page for lesson in lessons]
    assert {h for h in hrefs if h.startswith("exercises/")} == {
        lesson.exercise_page for lesson in lessons
    }


def test_every_link_points_to_an_existing_page(site):
    out, _ = site
    assert broken_links(out) == []


def test_every_image_is_present_and_decodes(site):
    out, lessons = site
    count, problems = image_problems(out)
    assert problems == []
    assert count >= len(lessons)  # at least one plot per lesson, checked below per page


def test_lessons_are_executed_with_plots_and_no_errors(site):
    out, lessons = site
    for lesson in lessons:
        page = out / lesson.page
        text = page.read_text(encoding="utf-8")
        images = [s for s in parse(page).images if s.startswith("data:image/")]
        assert images, f"{lesson.page}: no plot"
        # nbconvert marks error outputs and stderr streams with these MIME types.
        assert "application/vnd.jupyter.error" not in text, f"{lesson.page}: error output"
        assert "Traceback (most recent call last)" not in text, f"{lesson.page}: traceback"


def test_lesson_and_exercise_link_each_other(site):
    out, lessons = site
    for lesson in lessons:
        lesson_page, exercise_page = out / lesson.page, out / lesson.exercise_page
        to_exercise = [
            (lesson_page.parent / h).resolve() for h in parse(lesson_page).hrefs if is_local(h)
        ]
        assert exercise_page.resolve() in to_exercise, f"{lesson.page} does not link its exercise"
        to_lessons = [
            (exercise_page.parent / h).resolve() for h in parse(exercise_page).hrefs if is_local(h)
        ]
        assert lesson_page.resolve() in to_lessons, f"{lesson.exercise_page} misses {lesson.stem}"


def _solution_lines(solution: Path) -> set[str]:
    lines, inside = set(), False
    for cell in json.loads(solution.read_text(encoding="utf-8"))["cells"]:
        for line in "".join(cell["source"]).splitlines():
            stripped = line.strip()
            if stripped.startswith("### BEGIN SOLUTION"):
                inside = True
            elif stripped.startswith("### END SOLUTION"):
                inside = False
            elif inside and len(stripped) >= 12 and not stripped.startswith("#"):
                lines.add(stripped)
    return lines


def test_exercises_carry_no_solution(site):
    out, lessons = site
    for exercise in sorted({lesson.exercise for lesson in lessons}):
        page = out / Path(exercise).with_suffix(".html")
        text = html.unescape("".join(parse(page).text))
        assert "NotImplementedError" in text or "YOUR ANSWER HERE" in text, exercise
        assert "BEGIN SOLUTION" not in text, exercise
        released = (ROOT / exercise).read_text(encoding="utf-8")
        solution = ROOT / exercise.replace("exercises/", "solutions/", 1)
        # A line of the solution that the released notebook does not contain itself.
        leaked = [
            line
            for line in _solution_lines(solution)
            if json.dumps(line)[1:-1] not in released and line in text
        ]
        assert not leaked, f"{exercise}: solution lines on the page: {leaked[:3]}"


def test_the_link_and_image_checks_can_fail(tmp_path):
    page = tmp_path / "lessons" / "a.html"
    page.parent.mkdir()
    good_png = base64.b64encode(_MAGIC["image/png"] + bytes(200)).decode()
    page.write_text(
        '<a href="../exercises/x.html">x</a> <a href="https://example.org/">ext</a>'
        '<a href="#top">top</a> <a href="a.html#s">self</a>'
        f'<img src="data:image/png;base64,{good_png}">'
        '<img src="data:image/png;base64,AAAA"><img src="data:image/png;base64,!!">'
        '<img src="plot.png">',
        encoding="utf-8",
    )
    assert broken_links(tmp_path) == ["lessons/a.html -> ../exercises/x.html"]
    count, problems = image_problems(tmp_path)
    assert count == 4
    assert len(problems) == 3, problems
    assert re.search(r"not a image/png", problems[0])
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "x.html").write_text("ok", encoding="utf-8")
    (tmp_path / "lessons" / "plot.png").write_bytes(b"png")
    assert broken_links(tmp_path) == []
    assert len(image_problems(tmp_path)[1]) == 2
