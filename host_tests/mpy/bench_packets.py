"""Per-packet processing time, portable (CPython and MicroPython).
Usage: <python> host_tests/mpy/bench_packets.py <repo root> [rounds]
Prints one line per case: 'name us_per_packet'."""
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
sys.path.insert(0, root + "/lib")
sys.path.insert(0, root + "/host_tests")

import golden_replay

try:
    from time import ticks_us, ticks_diff
except ImportError:
    from time import perf_counter

    def ticks_us():
        return int(perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b


class CountingNic(golden_replay.ReplayNic):
    def send(self, mv, n):
        return True


CASES = (("arp", "arp_request"), ("icmp_echo", "icmp_echo_56"))

frames = {}
for name, request, expected, counter in golden_replay.read_cases(root + "/host_tests/golden_frames.bin"):
    frames[name] = request
stack, _ = golden_replay.make_stack()
nic = CountingNic(golden_replay.US_MAC)
stack.nic = nic
for label, case in CASES:
    frame = frames[case]
    for _ in range(50):
        nic.frame = frame
        stack.poll()
    best = None
    for _ in range(3):
        t0 = ticks_us()
        for _ in range(rounds):
            nic.frame = frame
            stack.poll()
        us = ticks_diff(ticks_us(), t0) / rounds
        best = us if best is None or us < best else best
    print(label, best)
