"""DHCP figures for the benchmarks (needs root and dnsmasq): the stack on
CPython over a TAP in a network namespace, dnsmasq on the kernel side.

    from bench_dhcp import dhcp_figures
    figures.update(dhcp_figures())     # {} (and a note) when not root / no dnsmasq

dhcp_lease_ms:  median over runs of the time from link up to BOUND, a full
                DISCOVER / OFFER / REQUEST / ACK exchange (fresh client) and
                the ARP check of the address as firmware/main.py runs it
                (DHCP_PROBE there: two probes, about 0.6 s).
dhcp_reboot_ms: median time from link up (after a link down) to BOUND again,
                the INIT-REBOOT REQUEST / ACK exchange.

Both include the wait for the client to notice the link (one 50 ms stack tick
at most, half of it on average).  They are the client's own latency: the client runs with init_delay_ms=0 and
link_poll_ms=50 (the defaults add a random 0-1 s start delay, RFC 2131 4.4.1,
and read the link every 500 ms), and dnsmasq with --no-ping (otherwise it
pings a new address for up to 3 s before offering it).
"""
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.path.join(ROOT, "tools") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "tools"))
import paths  # noqa: E402,F401  (tools/paths.py: lib, drivers, tools/emu, net, bench, device)

KERNEL_IP = "198.18.0.1"


def firmware_probe():
    """firmware/main.py's DHCP_PROBE settings (the ARP check before binding)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("uipy_firmware_main", os.path.join(ROOT, "firmware", "main.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.DHCP_PROBE


def _wait(thread, cond, limit_s):
    deadline = time.monotonic() + limit_s
    while not thread.call(lambda s: cond()):
        if time.monotonic() > deadline:
            raise RuntimeError("bench_dhcp: no lease within %.0f s" % limit_s)
        time.sleep(0.001)
    return time.monotonic()


def lease_times(runs=15):
    """(link-up-to-lease ms list, link-flap-to-lease ms list)."""
    import dnsmasq
    from faults import Cable
    from hostrun import StackThread
    from netns import Namespace, create_tap_in_ns
    from uipy.dhcp import Dhcp
    from uipy.stack import Stack

    fresh, reboot = [], []
    probe = firmware_probe()
    with tempfile.TemporaryDirectory() as tmp, Namespace() as ns:
        tap = create_tap_in_ns(ns, KERNEL_IP + "/24")
        proc = dnsmasq.start(ns, dnsmasq.command("dnsmasq", tap.kernel_if, tmp,
                                                 ("198.18.0.100", "198.18.0.150"), dns_port=0,
                                                 extra=["--no-ping"]), tmp)
        try:
            for i in range(runs + 1):               # the first run warms dnsmasq up
                nic = Cable(tap, up=False)
                stack = Stack(nic, tcp=False)
                dhcp = Dhcp(stack, init_delay_ms=0, link_poll_ms=50, **probe)
                thread = StackThread(stack, tap).start()
                try:
                    thread.call(lambda s: dhcp.start())
                    # The client has seen the link down; link up at a random
                    # point of the 50 ms tick, so the figure holds the average
                    # detection delay and not a lucky (or unlucky) phase.
                    time.sleep(0.1 + random.random() * 0.05)
                    t0 = time.monotonic()
                    thread.call(lambda s: setattr(nic, "up", True))
                    t1 = _wait(thread, lambda: dhcp.state == "BOUND", 10)
                    thread.call(lambda s: setattr(nic, "up", False))
                    _wait(thread, lambda: dhcp.state == "INIT-REBOOT", 5)
                    time.sleep(random.random() * 0.05)
                    t2 = time.monotonic()
                    thread.call(lambda s: setattr(nic, "up", True))
                    t3 = _wait(thread, lambda: dhcp.state == "BOUND" and dhcp.stats["rebooted"], 10)
                    thread.call(lambda s: dhcp.release())
                finally:
                    thread.stop()
                if i:
                    fresh.append((t1 - t0) * 1000)
                    reboot.append((t3 - t2) * 1000)
        finally:
            proc.send_signal(signal.SIGTERM)
    return fresh, reboot


def dhcp_figures():
    if os.geteuid() != 0:
        print("bench_dhcp: not root, DHCP figures (dhcp_lease_ms) skipped")
        return {}
    if shutil.which("dnsmasq") is None:
        print("bench_dhcp: dnsmasq not installed, DHCP figures (dhcp_lease_ms) skipped")
        return {}
    fresh, reboot = lease_times()
    return {"dhcp_lease_ms": round(statistics.median(fresh), 1),
            "dhcp_reboot_ms": round(statistics.median(reboot), 1)}


if __name__ == "__main__":
    print(dhcp_figures())
