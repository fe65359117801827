# The README's two commands: `make demo` and `make test`. Each creates .venv (Python 3.11, the pinned
# stack of constraints.txt, fairskl in editable mode) when it is missing or setup.cfg/constraints changed,
# then runs. A second call skips the install.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test docs bench

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,docs,dask,timm]'
	touch $(STAMP)

# The main job: both studies on the synthetic default at --scale small (--resume: a second call
# reuses what the first finished).
demo: $(STAMP)
	$(VENV)/bin/fairskl reproduce nir --out results/nir --resume
	$(VENV)/bin/fairskl reproduce vae-fairness --out results/vae-fairness --resume

test: $(STAMP)
	$(VENV)/bin/python -m pytest

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(VENV)/bin/python $$f || exit 1; done
