"""Run under the MicroPython unix port: two uipy stacks on an in-memory link
move 64 KB each way byte-exact over TCP.
Usage: micropython -X heapsize=N host_tests/mpy/tcp_check.py <repo root> [module dir]"""
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
sys.path.insert(0, root + "/host_tests")
sys.path.insert(0, sys.argv[2] if len(sys.argv) > 2 else root + "/lib")

import gc
from mpy_pair import make_pair, run
from uipy.tcp_conn import CONNECTED, NEWDATA, ACKED, POLL

SIZE = 65536
CHUNK = 1024


def byte_at(seed, pos):
    """The test data: a cheap pattern that never repeats within 64 KB."""
    return (pos * 7 + (pos >> 8) * 13 + seed) & 0xFF


def chunk(seed, pos, n):
    """n bytes of the pattern from pos, handed to conn.send as they are: a
    bytes() copy would double the test's own garbage (it is the test's
    allocation, not the stack's, that fragments the small heap)."""
    out = bytearray(n)
    for i in range(n):
        out[i] = byte_at(seed, pos + i)
    return out


class Side:
    """Sends SIZE bytes of its pattern, made a chunk at a time (only the chunks
    in flight exist), and checks what it receives against the peer's pattern."""

    def __init__(self, seed, peer_seed):
        self.seed = seed
        self.peer_seed = peer_seed
        self.pos = 0
        self.count = 0
        self.mismatch = 0

    def handler(self, conn, events):
        if events & NEWDATA:
            data = conn.data
            base = self.count
            for i in range(len(data)):
                if data[i] != byte_at(self.peer_seed, base + i):
                    self.mismatch += 1
            self.count += len(data)
        if events & (CONNECTED | ACKED | POLL):
            while self.pos < SIZE and conn.send_queue_free():
                conn.send(chunk(self.seed, self.pos, CHUNK))
                self.pos += CHUNK


client = Side(1, 2)
server = Side(2, 1)
clock, a, b, la, lb = make_pair()
b.listen(80, server.handler)
a.connect("198.18.0.11", 80, client.handler)
ok = run(clock, a, b, 60000, lambda: client.count >= SIZE and server.count >= SIZE)
gc.collect()
print("done", ok, "client got", client.count, "server got", server.count,
      "mismatches", client.mismatch + server.mismatch, "errors", a.stats["handler_errors"] + b.stats["handler_errors"],
      "free heap", gc.mem_free())
if not ok or client.mismatch or server.mismatch or client.count != SIZE or server.count != SIZE \
        or a.stats["handler_errors"] or b.stats["handler_errors"]:
    print("last errors:", a.last_error, b.last_error)
    sys.exit(1)
print("OK")
