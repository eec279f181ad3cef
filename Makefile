# Every target runs inside a local virtual environment, so a fresh machine
# needs nothing but Python 3.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test bench clean

demo: $(STAMP)
	$(BIN)/python -m knn_genre.demo

# The web page of the model that `make demo` trains.
serve: $(STAMP)
	$(BIN)/python -m knn_genre.serve --model data/demo-model.npz

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Reinstall whenever the package metadata changes.
$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,plot,web,browser,dask]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
