# Every target sets up its own virtual environment first (.venv), re-created
# when pyproject.toml is newer than the last install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test safety demo bench lint clean mutants hil-m3 hil-rp2040

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m sim_device.core_build  # the simulator's firmware core (C, via cffi)
	touch $(STAMP)

# make test: the whole suite, its results as JUnit XML, then the safety case judged from
# them (make safety) — whatever pytest said, so a red run still leaves the matrix to read;
# make test fails if either does. Two pytest runs side by side: the C firmware's real-time
# HIL suites (posix, QEMU, rp2040js: ~2.5 minutes of mostly waiting on real time) in one,
# started first, its output printed when it ends; everything else spread over
# TEST_WORKERS processes (pytest-xdist, one module per worker at a time: module fixtures
# are set up once). Plain `pytest` runs all of it in one process.
RESULTS := build/test-results
JUNIT := $(RESULTS)/junit.xml
JUNIT_FIRMWARE := $(RESULTS)/junit-firmware.xml
FIRMWARE_SUITES := tests/hil/test_hil_firmware.py
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider
test: $(STAMP)
	mkdir -p $(RESULTS); rm -f $(JUNIT) $(JUNIT_FIRMWARE); \
	$(PYTEST) $(FIRMWARE_SUITES) --junitxml=$(JUNIT_FIRMWARE) > $(RESULTS)/firmware.log 2>&1 & \
	fw=$$!; trap 'kill $$fw 2>/dev/null' INT TERM; \
	rc=0; $(PYTEST) -n $(TEST_WORKERS) --dist loadscope --ignore=$(FIRMWARE_SUITES) \
	    --junitxml=$(JUNIT) || rc=$$?; \
	echo "== the C firmware's real-time suites ($(FIRMWARE_SUITES), beside the rest):"; \
	wait $$fw || rc=$$((rc ? rc : 1)); cat $(RESULTS)/firmware.log; \
	$(BIN)/python -m safety_case --junit $(JUNIT) $(JUNIT_FIRMWARE) --out build/safety/matrix.md \
	    || rc=$$((rc ? rc : 1)); \
	exit $$rc

# The traceability matrix (build/safety/matrix.md) from docs/safety/ and the JUnit XML of
# the last make test; red when a risk control has no test, or its test failed or skipped.
safety: $(STAMP)
	$(BIN)/python -m safety_case --junit $(JUNIT) $(JUNIT_FIRMWARE) --out build/safety/matrix.md

demo: $(STAMP)
	$(BIN)/python -m firmware_host.demo

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Mutation testing of the firmware's C core against the HIL suite (tests/hil/mutation.py):
# every universalmutator mutant, or MUTANTS_ARGS="--sample 200" for a sample.
MUTANTS_ARGS ?=
mutants: $(STAMP)
	$(BIN)/python -m pip install --quiet universalmutator
	$(BIN)/python tests/hil/mutation.py --json firmware/build/mutants/results.json $(MUTANTS_ARGS)

# The whole HIL suite on the Cortex-M3 image under QEMU (make test runs a subset of it).
hil-m3: $(STAMP)
	mkdir -p firmware/build; rm -f firmware/build/m3-pty.txt
	$(BIN)/python -m firmware.launch m3 > firmware/build/m3-pty.txt & \
	pid=$$!; \
	while [ ! -s firmware/build/m3-pty.txt ]; do kill -0 $$pid || exit 1; sleep 0.2; done; \
	$(BIN)/python -m pytest -q -p no:cacheprovider hil_tests --port $$(head -1 firmware/build/m3-pty.txt) \
	    --rig-config firmware/ports/mps2-an385/rig.toml; \
	status=$$?; kill $$pid; wait $$pid; exit $$status

# The whole HIL suite on the firmware under rp2040js (an emulated Raspberry Pi Pico, real
# time, ~2.5 minutes; make test runs a subset in tests/hil/test_hil_firmware.py). The last
# line, the harness's as it stops: the emulator's speed against real time and its CPU.
hil-rp2040: $(STAMP)
	mkdir -p firmware/build; rm -f firmware/build/rp2040-pty.txt
	$(BIN)/python -m firmware.launch rp2040 > firmware/build/rp2040-pty.txt & \
	pid=$$!; \
	while [ ! -s firmware/build/rp2040-pty.txt ]; do kill -0 $$pid || exit 1; sleep 0.2; done; \
	$(BIN)/python -m pytest -q -p no:cacheprovider hil_tests --port $$(head -1 firmware/build/rp2040-pty.txt) \
	    --rig-config firmware/ports/rp2040/rig.toml --allow-motion; \
	status=$$?; kill $$pid; wait $$pid; exit $$status

clean:
	rm -rf $(VENV) build *.egg-info
