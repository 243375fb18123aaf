# Two commands: `make run` and `make test`. Each creates .venv on first use and
# installs the project (editable) with its test extra into it; nothing is global.
VENV   ?= .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run record test lab benchmark clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# Execute every lesson into runs/ (the committed notebooks stay as they are).
run: $(STAMP)
	$(PYTHON) -m seresnet_lib.series run --out-dir runs

# Re-execute every lesson in place, so that its committed outputs come from this run.
record: $(STAMP)
	$(PYTHON) -m seresnet_lib.series record

test: $(STAMP)
	$(PYTHON) -m pytest

# Batch loader vs torch DataLoader with per-image transforms, side by side.
benchmark: $(STAMP)
	$(PYTHON) -m seresnet_lib.benchmark

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

clean:
	rm -rf $(VENV) .pytest_cache
