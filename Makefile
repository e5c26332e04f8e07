# Set-up and entry points. `make run` and `make test` work on a fresh machine
# with Python 3.11: each creates .venv and installs graphopt into it first.
# `make test` also runs the suite on Python 3.10 (JetPack 6's interpreter) in
# .venv310, found as python3.10 or in pyenv's versions.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
PYTHON310 ?= $(shell ls -d $$(pyenv root 2>/dev/null)/versions/3.10*/bin/python3.10 2>/dev/null | tail -n 1 \
	|| true)
ifeq ($(PYTHON310),)
PYTHON310 := $(shell command -v python3.10)
endif
VENV := .venv
BIN := $(VENV)/bin
VENV310 := .venv310
BIN310 := $(VENV310)/bin
DETECTOR := examples/02_person_detector
OUT ?= build/detector
FRAMES ?= 200
# Where the measuring targets (evaluate, bench, ablate, profile) write their generated results pages;
# `make bench RESULTS=` leaves the docs alone.
RESULTS ?= --results-dir docs/results

.PHONY: run test train evaluate bench ablate profile fuzz clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(BIN310)/.installed: pyproject.toml
	@test -n "$(PYTHON310)" || { echo "make test needs Python 3.10 (python3.10 on PATH, or pyenv's 3.10.13)"; exit 2; }
	$(PYTHON310) -m venv $(VENV310)
	$(BIN310)/python -m pip install --quiet --upgrade pip
	$(BIN310)/python -m pip install --quiet -e '.[test]'
	touch $@

# The reference detector: optimize its naive export with the default passes
# (clean-up, host-stage fusion driven by detector.toml, static shapes; each
# checked against onnxruntime or the host pipeline), then run the fused
# detector on a synthetic test scene; then the same with --fp16 (NMS on
# log-odds, float16 conversion with its precision guard) into $(OUT)-fp16;
# then the whole pipeline, --fp16 --ground-plane (each scale's network only
# on the rows where a person can stand), into $(OUT)-ground, with a picture
# of the bands.
run: $(BIN)/.installed
	$(BIN)/graphopt optimize $(DETECTOR)/model.onnx -o $(OUT) \
		--config $(DETECTOR)/detector.toml --verify
	$(BIN)/graphopt detect $(OUT)/model.onnx --config $(DETECTOR)/detector.toml \
		--scene 1000004 -o $(OUT)/detections.png
	$(BIN)/graphopt optimize $(DETECTOR)/model.onnx -o $(OUT)-fp16 \
		--config $(DETECTOR)/detector.toml --verify --fp16
	$(BIN)/graphopt detect $(OUT)-fp16/model.onnx --config $(DETECTOR)/detector.toml \
		--scene 1000004 -o $(OUT)-fp16/detections.png
	$(BIN)/graphopt optimize $(DETECTOR)/model.onnx -o $(OUT)-ground \
		--config $(DETECTOR)/detector.toml --verify --fp16 --ground-plane
	$(BIN)/graphopt detect $(OUT)-ground/model.onnx --config $(DETECTOR)/detector.toml \
		--scene 1000004 -o $(OUT)-ground/detections.png
	$(BIN)/graphopt bands --config $(DETECTOR)/detector.toml --scene 1000004 -o $(OUT)-ground/bands.png

# Lint and type-check (target Python 3.10), then the whole suite on Python 3.11
# and on Python 3.10; the two runs must pass and skip the same tests.
test: $(BIN)/.installed $(BIN310)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	mkdir -p build
	$(BIN)/python -m pytest -q --junitxml=build/junit-py311.xml
	$(BIN310)/python -m pytest -q --junitxml=build/junit-py310.xml
	$(BIN)/python .ci/same_tests.py build/junit-py311.xml build/junit-py310.xml

# Retrain the shipped detector (PyTorch CPU, about a quarter of an hour on 2 cores).
train: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test,train]'
	$(BIN)/python $(DETECTOR)/train.py

# Miss rate at 0.1 FPPI and logit margins of the shipped detector on the synthetic test set.
evaluate: $(BIN)/.installed
	$(BIN)/graphopt evaluate $(DETECTOR)/model.onnx --config $(DETECTOR)/detector.toml \
		--weights $(DETECTOR)/weights.npz --frames $(FRAMES) --json build/evaluation.json $(RESULTS)

# Per-frame latency and FLOPs of the naive deployment, then every deployment
# side by side (naive, onnxruntime offline, onnxsim, graphopt) with the FLOP
# floor, then float16 with the NMS on log-odds against the naive float16
# conversions (onnxconverter-common from the bench extra), then ground-plane
# slicing against the unsliced graphs with a sweep over its margin, then
# graphopt against onnxruntime offline, onnxsim, onnxslim and Polygraphy on
# the detector and on example 01, then the YOLO exports per frame (host
# pipeline, cv2 client, fused graph, onnxruntime-extensions).
bench: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/bench_naive.py --json build/bench_naive.json $(RESULTS)
	$(BIN)/python benchmarks/bench_overhead.py --json build/bench_overhead.json $(RESULTS)
	$(BIN)/python benchmarks/bench_fp16.py --json build/bench_fp16.json $(RESULTS)
	$(BIN)/python benchmarks/bench_head.py --json build/bench_head.json $(RESULTS)
	$(BIN)/python benchmarks/bench_ground_plane.py --json build/bench_ground_plane.json $(RESULTS)
	$(BIN)/python benchmarks/bench_peers.py examples/01_redundant_cnn/model.onnx --input-shape input:1x3x480x640 \
		--frames 30 --json build/bench_peers.json $(RESULTS)
	$(BIN)/python benchmarks/bench_yolo.py --json build/bench_yolo.json $(RESULTS)
	$(BIN)/python benchmarks/bench_yolo_fp16.py --json build/bench_yolo_fp16.json $(RESULTS)

# The waterfall on this machine: the naive detector, each pass added, each left
# out (several minutes on 2 cores), into build/ablation/ and its results page.
ablate: $(BIN)/.installed
	$(BIN)/graphopt ablate $(DETECTOR)/model.onnx --config $(DETECTOR)/detector.toml -o build/ablation $(RESULTS)
	$(BIN)/python -m graphopt.results docs    # the README's waterfall: the newest machine's chart

# Float32 against float16 per op family and per operator type of the fused detector, on this machine.
profile: $(BIN)/.installed
	$(BIN)/graphopt profile-ops $(DETECTOR)/model.onnx --config $(DETECTOR)/detector.toml -o build/profile $(RESULTS)

# A long random fuzzing run of model loading and the pass pipeline (CI runs 60 derandomized cases).
fuzz: $(BIN)/.installed
	GRAPHOPT_FUZZ_EXAMPLES=$${GRAPHOPT_FUZZ_EXAMPLES:-5000} $(BIN)/python -m pytest -q -W ignore tests/reliability/test_fuzz.py

clean:
	rm -rf $(VENV) $(VENV310) build
