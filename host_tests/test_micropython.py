"""Real MicroPython: the unix port (small heap) replays the golden frames; the
32-bit WebAssembly port checks that ARP and ICMP replies allocate nothing."""
import os

from levels import ROOT, VENV_BIN, run, tool
from mpycompile import compile_tree


def test_golden_frames_under_micropython_unix_64k_heap(tmp_path):
    mp = tool("micropython", VENV_BIN)
    lib = compile_tree(tmp_path / "lib")
    r = run([mp, "-X", "heapsize=64K", "host_tests/mpy/golden_check.py", ROOT, lib])
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
    assert "failures: 0" in r.stdout
    assert "checksum: viper" in r.stdout          # the native emitter path is the one tested


def test_no_allocation_under_32bit_micropython_heap_lock():
    node = tool("node")
    tool("micropython.mjs", os.path.join(ROOT, "node_modules", "@micropython", "micropython-webassembly-pyscript"))
    r = run([node, "tools/emu/mpy_wasm.mjs", "host_tests/mpy/alloc_check.py", "lib", "host_tests"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "maxsize: 2147483647" in r.stdout      # really a 32-bit build
    for case in ("arp_request", "icmp_echo_56", "icmp_echo_1472"):
        assert "%s heap_locked=ok bytes_per_packet=0" % case in r.stdout, r.stdout


def test_tcp_64k_each_way_under_micropython_unix(tmp_path):
    """Two stacks on an in-memory link, 64 KB each way, byte-exact.  192K on
    the 64-bit unix port is about 96K on a 32-bit board, for two stacks (each
    with its reorder store) plus the test's data in flight."""
    mp = tool("micropython", VENV_BIN)
    lib = compile_tree(tmp_path / "lib")
    r = run([mp, "-X", "heapsize=192K", "host_tests/mpy/tcp_check.py", ROOT, lib])
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
    assert "client got 65536 server got 65536 mismatches 0 errors 0" in r.stdout


def test_tcp_ack_and_data_allocate_nothing_under_32bit_micropython():
    node = tool("node")
    r = run([node, "tools/emu/mpy_wasm.mjs", "host_tests/mpy/tcp_alloc_check.py", "lib", "host_tests"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "maxsize: 2147483647" in r.stdout
    assert "pure_ack heap_locked=ok" in r.stdout and "data_segment heap_locked=ok" in r.stdout
