"""Portable (MicroPython and CPython) helpers for the TCP checks: an in-memory
link and two stacks on one virtual clock."""
from uipy.compat import VirtualClock, copy_into
from uipy.stack import Stack


class RingLink:
    """One end of an in-memory link.  Frames are copied into a ring of
    preallocated buffers on the other end, so the link itself allocates nothing
    (the allocation checks run it under heap_lock)."""

    def __init__(self, mac, slots=8):
        self.mac = mac
        self.peer = None
        self.bufs = [bytearray(1536) for _ in range(slots)]
        self.lens = [0] * slots
        self.head = 0
        self.count = 0
        self.hold = False          # when True, frames for this end wait
        self.dropped = 0
        self.sent = 0

    def send(self, mv, n):
        p = self.peer
        if p.count == len(p.bufs):
            p.dropped += 1
            return False
        i = (p.head + p.count) % len(p.bufs)
        copy_into(p.bufs[i], 0, mv, 0, n)
        p.lens[i] = n
        p.count += 1
        self.sent += 1
        return True

    def recv_into(self, mv):
        if self.hold or not self.count:
            return 0
        i = self.head
        n = self.lens[i]
        copy_into(mv, 0, self.bufs[i], 0, n)
        self.head = (i + 1) % len(self.bufs)
        self.count -= 1
        return n

    def link_up(self):
        return True


def make_pair(tcp=None):
    clock = VirtualClock(5000)
    la = RingLink(b"\x02\x00\x00\x00\x0a\x0a")
    lb = RingLink(b"\x02\x00\x00\x00\x0b\x0b")
    la.peer, lb.peer = lb, la
    a = Stack(la, ip="198.18.0.10", clock=clock, tcp=tcp)
    b = Stack(lb, ip="198.18.0.11", clock=clock, tcp=tcp)
    return clock, a, b, la, lb


def run(clock, a, b, ms, until):
    for _ in range(ms):
        clock.advance(1)
        a.poll()
        b.poll()
        if until():
            return True
    return False
