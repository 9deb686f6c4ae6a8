"""Host figures for the benchmarks (needs root): the stack on CPython over a TAP
in a network namespace, the Linux kernel as peer.

    from bench_host import host_figures
    figures.update(host_figures())     # {} (and a note) when not root

host_ping_rtt_ms: median RTT of `ping -c 50 -i 0.01` from the kernel to the stack.
"""
import os
import re
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.path.join(ROOT, "tools") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "tools"))
import paths  # noqa: E402,F401  (tools/paths.py: lib, drivers, tools/emu, net, bench, device)

STACK_IP = "198.18.0.2"
KERNEL_IP = "198.18.0.1"


def ping_rtts(chip=None, count=50, interval="0.01"):
    """Per-packet RTTs (ms) of a kernel ping to a uipy stack over TAP, or through
    chip ("w5500", "enc28j60") on the virtual board."""
    from hostrun import StackThread
    from netns import Namespace, create_tap_in_ns
    from uipy.stack import Stack

    with Namespace() as ns:
        tap = create_tap_in_ns(ns, KERNEL_IP + "/24")
        nic = tap
        if chip is not None:
            import boards
            nic = boards.nic("virtual", chip=chip, tap=tap)
        stack = Stack(nic, ip=STACK_IP, gateway=KERNEL_IP, tcp=False)
        thread = StackThread(stack, nic).start()
        try:
            # One ping first so ARP is settled and not in the figure.
            ns.run(["ping", "-n", "-q", "-c", "1", "-W", "1", STACK_IP], check=False)
            r = ns.run(["ping", "-n", "-c", count, "-i", interval, "-W", "1", STACK_IP],
                       check=False, timeout=count * 0.05 + 15)
        finally:
            thread.stop()
    return [float(x) for x in re.findall(r"time=([\d.]+) ms", r.stdout)]


def host_figures():
    if os.geteuid() != 0:
        print("bench_host: not root, host figures (host_ping_rtt_ms) skipped")
        return {}
    rtts = ping_rtts()
    if len(rtts) < 45:
        raise RuntimeError("bench_host: only %d of 50 pings answered" % len(rtts))
    return {"host_ping_rtt_ms": round(statistics.median(rtts), 3)}


if __name__ == "__main__":
    print(host_figures())
