"""How long does ``import course_lib`` take in a fresh interpreter?

Runs ``python -c "import course_lib"`` and the bare ``python -c pass`` in fresh subprocesses,
7 times each, and prints the medians and their difference (the cost of the import itself;
target < 0.3 s). Then lists which heavy modules (sympy, matplotlib, scipy) the import pulled
in, read from ``sys.modules`` inside a subprocess: the package promises to load them lazily.

Run: ``python benchmarks/startup.py``. The exit code is 0 whatever the figures.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

RUNS = 7
TARGET_SECONDS = 0.3
HEAVY = ("sympy", "matplotlib", "scipy")
# Prints, as JSON, which heavy top-level packages are in sys.modules after the import.
PROBE = (
    "import sys, json, course_lib; "
    f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
)


def wall_time(code: str) -> float:
    """Seconds for one fresh ``python -c code``, from process start to exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def median_time(code: str, runs: int = RUNS) -> float:
    wall_time(code)  # warm the file-system cache so that the first run is not an outlier
    return statistics.median(wall_time(code) for _ in range(runs))


def main() -> int:
    bare = median_time("pass")
    with_import = median_time("import course_lib")
    cost = with_import - bare
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True
    ).stdout
    heavy = json.loads(probe.strip().splitlines()[-1])
    print(f"Start-up time, median of {RUNS} fresh runs ({sys.executable})")
    print(f"  python -c pass                   {bare:.3f} s")
    print(f'  python -c "import course_lib"    {with_import:.3f} s')
    verdict = "PASS" if cost < TARGET_SECONDS else "FAIL"
    print(
        f"  import course_lib alone          {cost:.3f} s   (target < {TARGET_SECONDS} s) {verdict}"
    )
    print(
        f"  heavy modules imported: {', '.join(heavy) if heavy else 'none'} (of {', '.join(HEAVY)})"
    )
    return 0


if __name__ == "__main__":
    main()
    sys.exit(0)
