# The README's two commands live here: `make demo` (the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Strict editable installs link each file, so the install is redone when the set of files changes.
FILES_HASH := $(shell find protocol simulator reader conformance fixtures -type f ! -name '*.pyc' 2>/dev/null | sort | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(FILES_HASH)
# Bytecode for the installed package, written once (an environment with PYTHONDONTWRITEBYTECODE
# would otherwise compile me162 from source in every process: 30 ms of CPU per reader the
# conformance suite starts).  Stale files are compiled again; Python checks each source's time.
COMPILE := $(BIN)/python -c "import compileall, os, me162; compileall.compile_dir(os.path.dirname(me162.__file__), quiet=1)"
PACKAGES := -m me162 -p me162.protocol -p me162.simulator -p me162.reader -p me162.conformance -p me162.fixtures

.PHONY: demo test lint typecheck pytest bench clean install test-deps ha-test conformance-peers

# The demo needs me162 and its runtime dependencies only; the tests add the dev tools.
RUN_STAMP := $(VENV)/.installed-run-$(FILES_HASH)

install: $(STAMP)

$(RUN_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing me162 into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install -q --upgrade pip > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@$(BIN)/python -m pip install -q -e . --config-settings editable_mode=strict >> $(VENV)/install.log 2>&1 \
		|| (cat $(VENV)/install.log; exit 1)
	@$(COMPILE) >> $(VENV)/install.log 2>&1
	@rm -f $(VENV)/.installed-run-*
	@touch $(RUN_STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing me162 and its dev tools into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install -q --upgrade pip > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@$(BIN)/python -m pip install -q -e '.[dev]' --config-settings editable_mode=strict >> $(VENV)/install.log 2>&1 \
		|| (cat $(VENV)/install.log; exit 1)
	@$(COMPILE) >> $(VENV)/install.log 2>&1
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP) $(RUN_STAMP)

DEMO_LINK := $(CURDIR)/$(VENV)/ttyME162

# The main job: a virtual ME162 on a pty, read by the reference reader in real time.
demo: $(RUN_STAMP)
	@$(COMPILE)
	@$(BIN)/me162-sim --pty --link $(DEMO_LINK) > /dev/null 2> $(VENV)/demo-sim.log & pid=$$!; \
	for i in $$(seq 100); do [ -e $(DEMO_LINK) ] && break; sleep 0.05; done; \
	echo "virtual ME162 on $(DEMO_LINK); reading it with me162-read:"; \
	$(BIN)/me162-read $(DEMO_LINK); rc=$$?; kill $$pid; wait $$pid 2>/dev/null; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy $(PACKAGES)
	$(BIN)/mypy tests bench tools conformance/readers

# The real parts the tests start (never mocked, never skipped): a C compiler and Node.js with the
# serialport package for the serial-port matrix, Mosquitto for the MQTT publisher, Chromium for
# the report's layout at 1280 px, tshark for the Wireshark dissector.  Installed from Debian and
# npm when missing.
NODE_READER := tests/readers/node
test-deps:
	@missing=""; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	{ command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto; } || missing="$$missing mosquitto"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v tshark >/dev/null 2>&1 || missing="$$missing tshark"; \
	if [ -n "$$missing" ]; then \
		echo "installing what the tests start:$$missing (apt-get)"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@test -d $(NODE_READER)/node_modules/serialport || { \
		echo "installing the serialport npm package for the Node.js reader"; \
		cd $(NODE_READER) && npm ci --no-audit --no-fund --silent; }

pytest: $(STAMP) test-deps
	@$(COMPILE)
	$(BIN)/pytest

# End to end with a real Home Assistant core, installed by tools/ha_env.py into a cached venv.
ha-test: $(STAMP) test-deps
	@venv=$$($(BIN)/python tools/ha_env.py) && ME162_HA_VENV=$$venv $(BIN)/pytest -m homeassistant tests/test_home_assistant.py

test: lint typecheck pytest ha-test

# The benchmarks measure peers beside me162: pwitab's client (PyPI, the bench extra) and
# smartmeter-obis (npm, bench/peers/node), installed here when missing.
bench: $(STAMP) test-deps
	@$(BIN)/python -m pip install -q -e '.[dev,bench]' --config-settings editable_mode=strict >> $(VENV)/install.log 2>&1
	@test -d bench/peers/node/node_modules/smartmeter-obis || { \
		echo "installing smartmeter-obis (npm) for bench/bench_decode.py"; \
		cd bench/peers/node && npm ci --no-audit --no-fund --silent; }
	$(BIN)/python bench/run_all.py

# Re-measure docs/conformance-results.md: the reference reader and the third-party readers
# shipped as declarations, each installed by its own prepare step into ~/.cache/me162 (pwitab's
# client comes with the bench extra).  Real-time peers take a few minutes each.
PEERS := me162-read pwitab iec62056-21-dzg pymeterreader smartmeter-obis
conformance-peers: $(STAMP) test-deps
	@$(BIN)/python -m pip install -q -e '.[dev,bench]' --config-settings editable_mode=strict >> $(VENV)/install.log 2>&1
	@mkdir -p build/peers; for r in $(PEERS); do \
		echo "grading $$r"; rm -rf build/peers/$$r; \
		$(BIN)/me162-check --reader $$r --bundle build/peers/$$r > build/peers-$$r.log 2>&1; \
		rc=$$?; [ $$rc -le 1 ] || { cat build/peers-$$r.log; exit $$rc; }; tail -1 build/peers-$$r.log; \
	done
	$(BIN)/python tools/verdict_table.py --into docs/conformance-results.md $(addprefix build/peers/,$(PEERS))

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
