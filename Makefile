# Two commands: `make run` and `make test`. Each creates .venv on first use and
# installs the project (editable) with its test extra, which brings every other extra; nothing is global.
VENV    ?= .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
JUPYTER ?= $(VENV)/bin/jupyter

.PHONY: install run record test lab student check benchmark site clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# Execute every lesson into runs/ (the committed notebooks stay as they are).
run: $(STAMP)
	$(VENV)/bin/seresnet run --out-dir runs

# Re-execute every lesson in place, so that its committed outputs come from this run.
record: $(STAMP)
	$(VENV)/bin/seresnet record

test: $(STAMP)
	$(PYTHON) -m pytest

# Side by side, in one run: the training step against timm's (and fit's speed options), evaluation,
# an epoch of fit against the article's loop, the batch loader against DataLoader. BENCHMARK_ARGS="step --no-compile"
benchmark: $(STAMP)
	$(VENV)/bin/seresnet benchmark $(BENCHMARK_ARGS)

# JupyterLab on the lessons. As root (usual in a container) it needs --allow-root, passed only then.
lab: $(STAMP)
	@root=; if [ "$$(id -u)" = 0 ]; then root=--allow-root; \
	  echo "Running as root (as in a container): passing --allow-root to JupyterLab."; fi; \
	echo $(JUPYTER) lab --notebook-dir=notebooks $$root $(LAB_ARGS); \
	exec $(JUPYTER) lab --notebook-dir=notebooks $$root $(LAB_ARGS)

# A copy of every lesson for students, in student/ (git-ignored): no solutions, no outputs.
student: $(STAMP)
	$(VENV)/bin/seresnet student --out-dir student

# Run students' notebooks and grade each exercise: make check WORK="alice/ bob/01_stem.ipynb".
# Prints a table; writes checked/grades.csv (a row per exercise, the class's rows kept across calls),
# checked/gradebook.csv (a row per student) and checked/feedback/STUDENT.html; exits non-zero unless
# every exercise passed. CHECK_ARGS="-p 05:train_size 256 --shared-run runs/class --only-changed"
WORK ?= student
check: $(STAMP)
	$(VENV)/bin/seresnet check $(WORK) $(CHECK_ARGS)

# The series as a web book in build/site/, from the committed notebooks (never executed), offline:
# open build/site/index.html. STUDENT=1 builds the edition without solutions into build/site-student/.
STUDENT ?=
site: $(STAMP)
	$(PYTHON) book/build.py $(if $(filter 1 yes true,$(STUDENT)),--student --out build/site-student)

clean:
	rm -rf $(VENV) .pytest_cache build
