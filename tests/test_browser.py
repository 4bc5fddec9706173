"""The course in a real browser: JupyterLab, a lesson, an exercise, nbgrader's tools.

Drives Debian's Chromium (``/usr/bin/chromium``, package ``chromium``) with Playwright's
Python package, used only as the driver: Playwright's own browser download is never needed.
Skipped, with the reason, when either is missing.

JupyterLab runs on 127.0.0.1, on a free port, with a token, from a temporary copy of the
course (lessons, exercises, solutions and nbgrader_config.py), so that nothing it saves or
grades ever touches the repository. The server is stopped whatever happens.

Screenshots go to ``$COURSE_SCREENSHOTS`` if set, else to a temporary folder (pytest's
``tmp_path``); ``docs/screenshots/`` holds a committed set.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Debian's package; COURSE_CHROMIUM points elsewhere (another build, or a missing path to
# see the skip).
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))

if not CHROMIUM.is_file():
    pytest.skip(
        f"browser test: {CHROMIUM} not found (Debian: apt-get install -y chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="browser test: playwright not installed (pip install playwright)"
)

# Flags for a headless Chromium on a machine with no display and no network but loopback:
# without the background-networking ones it keeps trying to reach Google's hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

SERVER_START_S = 90  # JupyterLab's first start builds nothing, but imports a lot
LESSON_RUN_S = 240  # lesson 02 runs in a few seconds alone; a busy 2-core machine is slower
CELL_S = 60  # one exercise cell (the checker runs in well under a second)
UI_MS = 30_000
KERNEL_START_S = 120  # a first kernel start also builds matplotlib's font cache
RUN_START_MS = 20_000  # from the Run All click to the first [*]

EXERCISE = "exercises/02-sigmoid-softmax-tanh/sigmoid_softmax_tanh.ipynb"
ANSWER_CELL, CHECK_CELL, SETUP_CELL = 3, 4, 1  # indices in the released notebook

GOOD_SIGMOID = '''def sigmoid(x: ArrayLike) -> np.ndarray:
    """sigma(x), stable: exp only ever sees -|x|."""
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)
'''

NAIVE_SIGMOID = '''def sigmoid(x: ArrayLike) -> np.ndarray:
    """The textbook formula: overflows in exp for x < -709.78."""
    return 1 / (1 + np.exp(-np.asarray(x)))
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _copy_course(dest: Path) -> None:
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    for folder in ("lessons", "exercises", "solutions"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=ignore)
    shutil.copy2(ROOT / "nbgrader_config.py", dest / "nbgrader_config.py")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("COURSE_SCREENSHOTS")
    path = Path(folder).resolve() if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(base URL, token, course copy) of a JupyterLab server, stopped at the end."""
    base = tmp_path_factory.mktemp("lab")
    course = base / "course"
    _copy_course(course)
    # No "get notified about Jupyter news?" toast over the screenshots (and no fetch of it).
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port, token = _free_port(), secrets.token_hex(16)
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        # Kernels and nbgrader's alembic are found on PATH: the venv's first.
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        # Runtime files and user settings of this server only, never the user's own.
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    cmd = [
        str(bin_dir / "jupyter"),
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={course}",
        f"--LabApp.user_settings_dir={base / 'settings'}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (base / "server.log").open("wb")
    server = subprocess.Popen(
        cmd, cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(base / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in {SERVER_START_S} s")
                time.sleep(0.5)
        yield url, token, course
    finally:
        # The whole process group: the server and the kernels it started.
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser():
    # launch() starts Chromium with a new, empty profile of its own (it refuses
    # --user-data-dir, which is for launch_persistent_context).
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            timeout=60_000,
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(UI_MS)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def _open_notebook(page, url: str, token: str, path: str) -> None:
    page.goto(f"{url}/lab/tree/{path}?token={token}&reset", wait_until="domcontentloaded")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=60_000)
    _wait_kernel(page, url, token, path)


def _wait_kernel(page, url: str, token: str, path: str) -> None:
    """Wait until the notebook's kernel has started and the page is connected to it.

    The page's execution indicator reads "idle" from the start, before any kernel exists;
    a Run issued then finds no kernel, clears the prompts and runs nothing. So the server
    is asked first (its sessions API), then the page must show the kernel's name."""
    deadline = time.monotonic() + KERNEL_START_S
    states: list = []
    while True:
        with urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=5) as reply:
            sessions = json.load(reply)
        states = [s["kernel"]["execution_state"] for s in sessions if s.get("path") == path]
        if "idle" in states:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"no idle kernel for {path} in {KERNEL_START_S} s: {sessions}")
        time.sleep(0.5)
    page.wait_for_function(
        """() => {
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            const name = panel && panel.querySelector('.jp-Toolbar-kernelName');
            const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
            return name && /Python/.test(name.textContent) && status
                && status.getAttribute('data-status') === 'idle';
        }""",
        timeout=KERNEL_START_S * 1000,
    )


def _run_all(page) -> None:
    """Run > Run All Cells from the menu bar, as a person would; retried if nothing starts."""
    seen: list[str] = []
    for _ in range(3):
        # Activate the notebook first, as a person's click would: menu commands act on it.
        _cell(page, 0).click()
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        item = page.locator("li.lm-Menu-item[data-command='runmenu:run-all']")
        # A disabled item takes the click and does nothing: the notebook was not current yet.
        disabled = "lm-mod-disabled" in (item.get_attribute("class") or "")
        item.click()
        try:
            page.wait_for_function(
                """() => [...document.querySelectorAll(
                    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt')]
                    .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))""",
                timeout=RUN_START_MS,
            )
            return
        except sync_api.TimeoutError:
            # Note what was in the way (a dialog, a disabled item), close it, and try again.
            dialog = page.locator(".jp-Dialog")
            text = dialog.first.inner_text()[:300] if dialog.count() else "no dialog"
            seen.append(f"{'disabled item, ' if disabled else ''}{text}")
            page.keyboard.press("Escape")
    raise AssertionError(f"Run All started no cell in 3 tries: {seen}")


def _wait_idle(page, timeout_s: float) -> list[str]:
    """Wait until no code cell is queued or running ([*]) and the kernel is idle; return the
    text of every code cell's prompt."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = page.evaluate(
            """() => {
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
            return [status ? status.getAttribute('data-status') : null,
                    [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
                        .map(p => p.textContent)];
        }"""
        )
        if state[0] == "idle" and not any("*" in p for p in state[1]):
            return state[1]
        if time.monotonic() > deadline:
            raise AssertionError(f"still running after {timeout_s} s: {state}")
        time.sleep(0.5)


def _errors(page) -> list[str]:
    """Text of every error or stderr output in the visible notebook."""
    return page.eval_on_selector_all(
        ".jp-NotebookPanel:not(.lm-mod-hidden) "
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
        "nodes => nodes.map(n => n.textContent.slice(0, 500))",
    )


def _cell(page, index: int):
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index)


def _run_cell(page, index: int) -> None:
    """Select cell ``index`` (command mode) and run it with Ctrl+Enter, as a student would."""
    cell = _cell(page, index)
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")


def _set_source(page, index: int, code: str) -> None:
    """Replace the source of cell ``index`` by typing ``code`` into its editor."""
    cell = _cell(page, index)
    cell.scroll_into_view_if_needed()
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    # insert_text types the text as one input event: the editor does not auto-indent it again.
    page.keyboard.insert_text(code)


def _wait_output(page, index: int, pattern: str, timeout_s: float = CELL_S) -> str:
    """Wait until cell ``index`` has an output matching ``pattern``; return the output text."""
    output = _cell(page, index).locator(".jp-OutputArea")
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = output.inner_text() if output.count() else ""
        if re.search(pattern, text):
            return text
        time.sleep(0.25)
    raise AssertionError(f"cell {index}: no output matching {pattern!r} in {timeout_s} s: {text!r}")


def test_lesson_runs_in_jupyterlab_with_its_plots(lab, page, shots):
    url, token, _ = lab
    _open_notebook(page, url, token, "lessons/02_sigmoid.ipynb")
    _run_all(page)
    prompts = _wait_idle(page, LESSON_RUN_S)
    unrun = [i for i, p in enumerate(prompts) if not re.search(r"\[\d+\]", p)]
    assert not unrun, f"code cells not run: {unrun} of {len(prompts)}; errors: {_errors(page)}"
    figures = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedImage img")
    assert figures.count() >= 1, "no matplotlib figure rendered"
    # A rendered figure has a decoded PNG of real size, not a broken image.
    size = figures.first.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert size[0] and size[1] > 100 and size[2] > 100, size
    assert _errors(page) == []
    figures.first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "lesson-02-sigmoid-plot.png"))


def test_exercise_is_checked_in_jupyterlab(lab, page, shots):
    url, token, course = lab
    released = (ROOT / EXERCISE).read_bytes()
    _open_notebook(page, url, token, EXERCISE)
    assert page.locator(".validate-button").first.is_visible(), "nbgrader's Validate button"
    assert "Validate" in page.locator(".validate-button").first.inner_text()

    _run_cell(page, SETUP_CELL)
    page.wait_for_function(
        """i => /\\[\\d+\\]/.test(document.querySelectorAll(
            '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')[i]
            .querySelector('.jp-InputArea-prompt').textContent)""",
        arg=SETUP_CELL,
        timeout=CELL_S * 1000,
    )

    _set_source(page, ANSWER_CELL, GOOD_SIGMOID)
    _run_cell(page, ANSWER_CELL)
    _run_cell(page, CHECK_CELL)
    text = _wait_output(page, CHECK_CELL, r"check\('sigmoid', sigmoid\): (passed|FAILED)")
    assert "check('sigmoid', sigmoid): passed" in text, text
    assert "✗" not in text, text
    _cell(page, ANSWER_CELL).scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "exercise-02-sigmoid-passed.png"))

    _set_source(page, ANSWER_CELL, NAIVE_SIGMOID)
    _run_cell(page, ANSWER_CELL)
    _run_cell(page, CHECK_CELL)
    text = _wait_output(page, CHECK_CELL, r"(?s)FAILED.*\[overflow\]", timeout_s=CELL_S)
    assert "RuntimeWarning" in text and "np.exp(-np.abs(x))" in text, text
    _cell(page, CHECK_CELL).scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "exercise-02-sigmoid-overflow-hint.png"))
    assert _errors(page) == []
    # Everything happened in the copy: the repository's exercise is untouched.
    assert (ROOT / EXERCISE).read_bytes() == released
    assert (course / EXERCISE).is_file()


def test_formgrader_lists_the_assignments(lab, page, shots):
    url, token, course = lab
    page.goto(f"{url}/formgrader/manage_assignments?token={token}", wait_until="load")
    expected = sorted(p.name for p in (course / "solutions").iterdir() if p.is_dir())
    assert len(expected) >= 8
    table = page.locator("table")
    deadline = time.monotonic() + CELL_S
    while time.monotonic() < deadline and not all(
        name in table.first.inner_text() for name in expected
    ):
        time.sleep(0.5)
    shown = table.first.inner_text()
    missing = [name for name in expected if name not in shown]
    assert not missing, f"formgrader does not list {missing}: {shown[:500]!r}"
    page.screenshot(path=str(shots / "formgrader-assignments.png"))
