"""Run under a 32-bit MicroPython with heap_lock (the npm WebAssembly port):
turning an ARP request and an ICMP echo request into their replies must not
allocate.  Prints one line per case, "OK" when all pass.

The host runner copies lib/ and host_tests/ into the interpreter's filesystem
and passes the golden file's path in GOLDEN (set by the runner)."""
import gc
import sys
import micropython

import golden_replay

CASES = ("arp_request", "icmp_echo_56", "icmp_echo_1472")
ROUNDS = 50


def load(path):
    wanted = {}
    for name, request, expected, counter in golden_replay.read_cases(path):
        if name in CASES:
            wanted[name] = (request, expected)
    return wanted


class QuietNic(golden_replay.ReplayNic):
    """Remembers only the length of what was sent: recording bytes would allocate."""

    def __init__(self, mac):
        super().__init__(mac)
        self.sent_len = 0

    def send(self, mv, n):
        self.sent_len = n
        self.sent_count += 1
        return True


def run(path):
    failed = 0
    cases = load(path)
    stack, _ = golden_replay.make_stack()
    nic = QuietNic(golden_replay.US_MAC)
    stack.nic = nic
    for name in CASES:
        request, expected = cases[name]
        nic.frame = request
        stack.poll()                      # warm-up: ARP entry learned, attributes made
        gc.collect()
        before = gc.mem_alloc()
        sent_before = nic.sent_count
        ident = golden_replay.IDENT
        micropython.heap_lock()
        for _ in range(ROUNDS):
            nic.frame = request
            stack.ipv4.ident = ident      # so the last reply matches the golden one
            stack.poll()
        micropython.heap_unlock()
        errors = stack.stats["handler_errors"]
        ok = errors == 0 and nic.sent_count - sent_before == ROUNDS
        ok = ok and bytes(stack.mv[0:nic.sent_len]) == expected
        # Same rounds without the lock, to measure heap bytes per packet.
        gc.collect()
        before = gc.mem_alloc()
        for _ in range(ROUNDS):
            nic.frame = request
            stack.poll()
        per_packet = (gc.mem_alloc() - before) / ROUNDS
        print("%s heap_locked=%s bytes_per_packet=%d %s" % (
            name, "ok" if ok else "FAILED", per_packet, "" if ok else repr(stack.last_error)))
        stack.stats["handler_errors"] = 0
        if not ok:
            failed += 1
    print("implementation:", sys.implementation.name, "maxsize:", sys.maxsize)
    if failed:
        raise SystemExit(1)
    print("OK")


run(GOLDEN)  # noqa: F821 (defined by the runner)
