# uipy: `make demo` runs the stack on a virtual board, `make test` runs every test level.
# Everything needed is installed on first use (idempotent): a .venv from
# requirements.txt, node_modules from package.json, MicroPython stubs, and
# Debian packages through apt-get when a command is missing.  Without root,
# apt-get or npm (a laptop, macOS) setup warns and goes on: `make test` runs
# every level that can run and names the skipped ones.  Under CI=true a
# missing piece is an error.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
BUILD       := build
STUBS_RP2   := micropython-rp2-stubs==1.28.0.post4
STUBS_ESP32 := micropython-esp32-stubs==1.28.0.post4
DEBS        := iproute2 iputils-ping ethtool tshark netcat-openbsd curl bind9-dnsutils dnsmasq-base chromium mosquitto mosquitto-clients openssl
# command that proves each Debian package is present
DEB_CMDS    := ip ping ethtool tshark nc curl dig dnsmasq chromium mosquitto mosquitto_pub openssl

.PHONY: setup test demo bench mpy deploy flash clean clean-net debs

setup: $(VENV)/.stamp node_modules/.stamp $(BUILD)/stubs/.stamp debs

$(VENV)/.stamp: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

# true under CI=true (or 1/yes), as host_tests/levels.py reads it
IS_CI = case "$$CI" in 1|[Tt]rue|TRUE|[Yy]es|YES) true;; *) false;; esac

node_modules/.stamp: package.json package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
		if $(IS_CI); then echo "npm not found (install Node.js)"; exit 1; fi; \
		echo "warning: npm not found: the 32-bit MicroPython, pyright and rp2040js levels are skipped (install Node.js, then make setup)"; \
	else \
		npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	fi

$(BUILD)/stubs/.stamp: $(VENV)/.stamp Makefile
	rm -rf $(BUILD)/stubs
	$(VENV)/bin/pip install -q --disable-pip-version-check --target $(BUILD)/stubs/rp2 $(STUBS_RP2)
	$(VENV)/bin/pip install -q --disable-pip-version-check --target $(BUILD)/stubs/esp32 $(STUBS_ESP32)
	touch $@

# apt-get only when a needed command is missing (apt-get update first).  Without
# root or apt-get: a warning, and the tests that need those commands are skipped
# (an error under CI=true).
debs:
	@missing=""; for c in $(DEB_CMDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian packages (missing:$$missing)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS) >/dev/null; \
		elif $(IS_CI); then \
			echo "missing:$$missing; need root and apt-get to install $(DEBS)"; exit 1; \
		else \
			echo "warning: missing:$$missing (Debian packages; need root and apt-get: sudo make setup)."; \
			echo "         going on: the tests that need them are skipped and named at the end of make test"; \
		fi; \
	fi

# make test [TESTS="host_tests/test_arp.py ..."]: every level that can run here;
# the last lines name each skipped level and the command that enables it
test: setup
	$(PY) -m pytest $(or $(TESTS),host_tests) -q -p no:cacheprovider

# make demo [BOARD=w5500_evb_pico|pico_enc28j60] [CHIP=enc28j60] [DEMO_SECONDS=10] [DEMO_PORT=8080]
# (exec: make is the demo's parent, whose end the demo notices and cleans up after)
demo: setup
	exec env BOARD=$(BOARD) $(PY) tools/demo.py

bench: setup
	$(PY) tools/bench/bench.py

# make mpy [BOARD=name]: .mpy files per board under build/mpy/<board>/
mpy: setup
	$(PY) tools/device/mpy_build.py $(BOARD)

# make deploy BOARD=w5500_evb_pico PORT=/dev/ttyACM0 [DRY_RUN=1] [SOCKET=1: `import socket` gives uipy's]
deploy: setup
	$(PY) tools/device/deploy.py --board $(BOARD) --port $(or $(PORT),auto) $(if $(DRY_RUN),--dry-run) $(if $(SOCKET),--socket)

# make flash BOARD=esp32_w5500 FIRMWARE=ESP32_GENERIC-....bin [PORT=/dev/ttyUSB0] [DRY_RUN=1]
flash: setup
	$(PY) tools/device/flash.py --board $(BOARD) --firmware $(FIRMWARE) $(if $(PORT),--port $(PORT)) $(if $(DRY_RUN),--dry-run)

clean:
	rm -rf $(BUILD) .pytest_cache

# What a demo or test run killed with SIGKILL left behind (root): uipy's own
# namespaces (uipyns<n>) whose owner is gone, the processes in them, unattached
# uipy TAPs.  FORCE=1: also uipy namespaces without a lock file (older checkouts).
clean-net:
	$(PYTHON) tools/net/clean_net.py $(if $(FORCE),--force)
