"""Shared helpers for the unit tests: a scriptable NIC and a stack factory."""
from collections import deque

from uipy.compat import VirtualClock
from uipy.stack import Stack

US_MAC = bytes.fromhex("020000000002")
PEER_MAC = bytes.fromhex("020000000001")


class FakeNic:
    """Frames queued with push() are received; sent frames are collected in .sent."""

    def __init__(self, mac=US_MAC):
        self.mac = mac
        self.rx = deque()
        self.sent = []
        self.up = True

    def push(self, frame):
        self.rx.append(bytes(frame))

    def recv_into(self, mv):
        if not self.rx:
            return 0
        f = self.rx.popleft()
        mv[:len(f)] = f
        return len(f)

    def send(self, mv, n):
        self.sent.append(bytes(mv[:n]))
        return True

    def link_up(self):
        return self.up

    def take(self):
        out, self.sent = self.sent, []
        return out


def make_stack(**kw):
    nic = FakeNic()
    clock = VirtualClock(1000)
    kw.setdefault("ip", "198.18.0.2")
    kw.setdefault("gateway", "198.18.0.1")
    stack = Stack(nic, clock=clock, **kw)
    nic.take()          # drop the gratuitous ARP
    return stack, nic, clock


def run(stack, clock, ms, step=10):
    """Advance the virtual clock by ms, polling every step."""
    for _ in range(ms // step):
        clock.advance(step)
        stack.poll()
