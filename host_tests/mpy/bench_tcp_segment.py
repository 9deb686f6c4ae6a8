"""Time to process one full-MSS in-order TCP data segment (delivery to the
handler and, every second segment, the ACK).  Portable: CPython and MicroPython.
Usage: <python> host_tests/mpy/bench_tcp_segment.py <repo root> [module dir]"""
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
sys.path.insert(0, root + "/host_tests")
sys.path.insert(0, sys.argv[2] if len(sys.argv) > 2 else root + "/lib")

from mpy_pair import make_pair, run

try:
    from time import ticks_us, ticks_diff
except ImportError:
    from time import perf_counter

    def ticks_us():
        return int(perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b


class Counts:
    conn = None
    received = 0

    def handler(self, conn, events):
        self.conn = conn
        if events & 2:            # NEWDATA
            self.received += len(conn.data)


clock, a, b, la, lb = make_pair(tcp={"window": 4 * 1460})
client, server = Counts(), Counts()
b.listen(80, server.handler)
a.connect("198.18.0.11", 80, client.handler)
run(clock, a, b, 3000, lambda: client.conn is not None and server.conn is not None)
two = bytes(2 * 1460)
spent = 0
segments = 0
for r in range(300):
    la.hold = True
    server.conn.send(two)
    clock.advance(1)
    b.poll()
    la.hold = False
    clock.advance(1)
    before = client.received
    t0 = ticks_us()
    a.poll()
    dt = ticks_diff(ticks_us(), t0)
    if r >= 20 and client.received == before + 2920:
        spent += dt
        segments += 2
    clock.advance(1)
    b.poll()
print("tcp_segment", spent / segments if segments else -1)
