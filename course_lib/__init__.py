"""course_lib: the one library every notebook of the course imports.

Modules, by concept:

- ``activations``: NumPy reference activations with their derivatives (``sigmoid``/``sigmoid_grad``).
- ``losses``: NumPy reference losses with their gradients (``mse``/``mse_grad``).
- ``symbolic``: the same functions as SymPy expressions, and a kink-aware ``lambdify``.
- ``checking``: ``check(name, fn)`` compares a student's function with the reference.
- ``gradcheck``: central finite differences and ``rel_error``.
- ``plotting``: figure helpers with one look.
- ``nn``: a tiny NumPy MLP for experiments, and ``normal_moment`` (E[f(Z)^k], Z ~ N(0, 1)).
- ``timing``: CPU time per call or per element, for the lessons' cost tables.

Only NumPy is imported eagerly; SymPy, SciPy and matplotlib load on first use, so that
``import course_lib`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from course_lib import activations

__version__ = "0.1.0"

_LAZY_MODULES = {
    "losses",
    "mpref",
    "symbolic",
    "checking",
    "gradcheck",
    "plotting",
    "nn",
    "grade",
    "timing",
}
_LAZY_NAMES = {"check": "checking", "CheckResult": "checking"}

if TYPE_CHECKING:  # pragma: no cover
    from course_lib import checking, gradcheck, losses, nn, plotting, symbolic, timing  # noqa: F401
    from course_lib.checking import CheckResult, check  # noqa: F401

__all__ = ["activations", "check", "CheckResult", "versions", *sorted(_LAZY_MODULES)]


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        return importlib.import_module(f"course_lib.{name}")
    if name in _LAZY_NAMES:
        module = importlib.import_module(f"course_lib.{_LAZY_NAMES[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")


def versions() -> str:
    """One line with the versions of Python and the packages a notebook relies on."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {platform.python_version()}", f"course_lib {__version__}"]
    for package in ("numpy", "scipy", "sympy", "matplotlib"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} (not installed)")
    return ", ".join(parts)
