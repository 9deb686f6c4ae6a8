"""Import paths for the host tools: the one place that knows tools/ is grouped.

    tools/emu/     chip models and interpreter emulation (w5500_emu, enc28j60_emu, fake_spi)
    tools/emu/rp2/ the real RP2040 firmware in rp2040js (rp2board, chipbus, fsimage, rp2run.mjs)
    tools/net/     host networking (netns, packet_link, faults, pcap, pipe, forward, dnsmasq, hostrun)
    tools/bench/   benchmarks (bench, bench_*)
    tools/device/  device tools (mpy_build, deploy, flash)

The modules keep flat names (`from fake_spi import FakePin`, `from netns import
Namespace`): importing this module puts lib/, drivers/, tools/ and each group
folder at the front of sys.path (those not already on it). A program in a group
folder reaches it with

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import paths  # noqa: E402,F401

and host_tests/conftest.py does the same. Scripts that run under MicroPython
(host_tests/mpy, the inline scripts in host_tests) add root + "/tools/emu"
themselves: no os.path there.
"""
import os
import sys

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
GROUPS = ("emu", "emu/rp2", "net", "bench", "device")
DIRS = ([os.path.join(ROOT, "lib"), os.path.join(ROOT, "drivers"), TOOLS]
        + [os.path.join(TOOLS, g) for g in GROUPS])

sys.path[:0] = [d for d in DIRS if d not in sys.path]
