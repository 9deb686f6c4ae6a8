"""Run under a 32-bit MicroPython with heap_lock (the npm WebAssembly port):
processing a pure ACK, and delivering in-order data segments to the handler
(with the ACK they cause), must not allocate.  Prints "OK" when all pass."""
import gc
import micropython
import sys

from mpy_pair import make_pair, run
from uipy.tcp_conn import NEWDATA, ACKED

ROUNDS = 20
SEGMENT = 1460


class Counts:
    def __init__(self):
        self.received = 0
        self.acked = 0
        self.conn = None

    def handler(self, conn, events):
        self.conn = conn
        if events & NEWDATA:
            self.received += len(conn.data)
        if events & ACKED:
            self.acked += 1


def locked_poll(stack, lock):
    """stack.poll(), with the heap locked when lock is true; True when it did not
    allocate.  The first rounds run unlocked to warm caches (the data view)."""
    errors = stack.stats["handler_errors"]
    if lock:
        micropython.heap_lock()
    stack.poll()
    if lock:
        micropython.heap_unlock()
    return stack.stats["handler_errors"] == errors     # a MemoryError is caught and counted


def main():
    clock, a, b, la, lb = make_pair()
    client, server = Counts(), Counts()
    b.listen(80, server.handler)
    a.connect("198.18.0.11", 80, client.handler)
    assert run(clock, a, b, 3000, lambda: client.conn is not None and server.conn is not None)
    two_segments = bytes(2 * SEGMENT)
    failures = 0

    # 1. a pure ACK: a sends two segments, b acknowledges, a processes the ACK locked
    ok_rounds = 0
    for r in range(ROUNDS + 2):
        la.hold = True
        client.conn.send(two_segments)
        for _ in range(3):
            clock.advance(1)
            b.poll()
        la.hold = False
        before = client.acked
        clock.advance(1)
        if locked_poll(a, r >= 2) and client.acked > before and r >= 2:
            ok_rounds += 1
    print("pure_ack heap_locked=%s rounds=%d/%d" % ("ok" if ok_rounds >= ROUNDS else "FAILED", ok_rounds, ROUNDS + 2))
    failures += ok_rounds < ROUNDS

    # 2. in-order data: b sends two full segments, a delivers them and ACKs, locked
    ok_rounds = 0
    for r in range(ROUNDS + 2):
        la.hold = True
        server.conn.send(two_segments)
        clock.advance(1)
        b.poll()
        la.hold = False
        before = client.received
        clock.advance(1)
        if locked_poll(a, r >= 2) and client.received == before + 2 * SEGMENT and r >= 2:
            ok_rounds += 1
        for _ in range(3):
            clock.advance(1)
            b.poll()
    print("data_segment heap_locked=%s rounds=%d/%d" % ("ok" if ok_rounds >= ROUNDS else "FAILED", ok_rounds, ROUNDS + 2))
    failures += ok_rounds < ROUNDS

    # bytes per packet, unlocked, for the benchmarks
    gc.collect()
    start = gc.mem_alloc()
    for _ in range(ROUNDS):
        la.hold = True
        server.conn.send(two_segments)
        clock.advance(1)
        b.poll()
        la.hold = False
        clock.advance(1)
        a.poll()
        for _ in range(3):
            clock.advance(1)
            b.poll()
    print("bytes_per_round_including_sender=%d" % ((gc.mem_alloc() - start) // ROUNDS))
    print("implementation:", sys.implementation.name, "maxsize:", sys.maxsize, "errors:", a.last_error)
    if failures:
        raise SystemExit(1)
    print("OK")


main()
