# Set-up and entry points. `make run` and `make test` work on a fresh machine
# with Python 3.11: each creates .venv and installs graphopt into it first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
EXAMPLE := examples/01_redundant_cnn
OUT ?= build/example

.PHONY: run test clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/graphopt optimize $(EXAMPLE)/model.onnx -o $(OUT) \
		--input-shape input:1x3x240x320 --verify

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build
