"""Tools the test levels need.  Under CI=true a missing tool is a failure,
never a skip: every level must really run there."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason):
    """Skip locally, fail under CI."""
    if CI:
        pytest.fail("test level cannot run under CI: " + reason)
    pytest.skip(reason)


def tool(name, where=None):
    path = os.path.join(where, name) if where else shutil.which(name)
    if not path or not os.path.exists(path):
        unavailable("%s not found (run make setup)" % name)
    return path


def need_root():
    if os.geteuid() != 0:
        unavailable("needs root for network namespaces and TAP devices")


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
        unavailable("real-firmware level: " + why)
