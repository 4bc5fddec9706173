# The course in two commands:
#   make lab    set everything up and open JupyterLab on the course
#   make test   set everything up and run the whole suite
# Every other target is a step of those two, or a convenience.

PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed

# nbgrader runs `alembic` through subprocess, and notebooks start kernels by name:
# both need the venv's bin/ first on PATH for everything make runs.
export PATH := $(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# JupyterLab refuses to run as root without --allow-root (containers, CI machines),
# and on a machine without a display there is no browser to open.
LAB_FLAGS :=
ifeq ($(shell id -u),0)
LAB_FLAGS += --allow-root
endif
ifeq ($(DISPLAY)$(WAYLAND_DISPLAY),)
ifneq ($(shell uname -s),Darwin)
LAB_FLAGS += --no-browser
endif
endif

.PHONY: help install lab test test-lib test-notebooks lint format bench clean exercises demo-class site screenshots

help:
	@echo "make lab     set up .venv and open JupyterLab on the course"
	@echo "make test    set up .venv and run the library tests, lint and every notebook"
	@echo "make bench   print the accuracy, start-up, cost, checker and autograde figures"
	@echo "make exercises   regenerate exercises/ from solutions/ (nbgrader)"
	@echo "make demo-class  grade a simulated class of 30 students per assignment"
	@echo "make site    build the static HTML edition into site/ (lessons executed, ~1.5 min)"
	@echo "make clean   remove .venv and caches"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "course: Python 3.11 or newer is needed, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV) || { echo "course: could not create $(VENV). On Debian/Ubuntu: sudo apt install python3-venv"; exit 1; }

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@# rfc3987-syntax (via jsonschema[format-nongpl]) costs 1-3 s in every process that
	@# imports jsonschema (nbgrader, nbclient, each notebook test); notebooks never use
	@# the "iri" format it checks.
	$(BIN)/python -m pip uninstall --yes --quiet rfc3987-syntax
	@touch $@

install: $(STAMP)

lab: install
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(LAB_FLAGS)

test: install lint test-lib test-notebooks

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-lib: install
	$(BIN)/python -m pytest -n 2 --dist loadfile tests

# exercises/ is left out on purpose: released exercises fail until they are answered.
# Sliders drawn once, no widget (course_lib.plotting.slider): nbclient can hang on widget cells.
test-notebooks: install
	COURSE_STATIC_SLIDERS=1 $(BIN)/python -m pytest -n 2 --nbmake --nbmake-timeout=120 $(wildcard lessons solutions)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/cost.py
	$(BIN)/python benchmarks/check_speed.py
	$(BIN)/python benchmarks/autograde.py

# exercises/ is generated from solutions/ by nbgrader, with a throwaway gradebook.
exercises: install
	$(BIN)/python scripts/make_exercises.py

# 30 simulated students per assignment: autograde, feedback, export (grading/demo-class/).
demo-class: install
	$(BIN)/python scripts/demo_class.py

# The static HTML edition: lessons executed with their plots, exercises as released, an index.
site: install
	$(BIN)/python scripts/build_site.py
	COURSE_SITE_DIR=site $(BIN)/python -m pytest -q tests/test_site.py

# Refresh docs/screenshots/ from the browser test (needs Debian's chromium).
screenshots: install
	COURSE_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/test_browser.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
