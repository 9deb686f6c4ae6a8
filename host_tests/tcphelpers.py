"""Two uipy stacks on an in-memory link with one virtual clock, for TCP tests."""
from uipy.compat import VirtualClock
from uipy.stack import Stack
from uipy.tcp_conn import CONNECTED, NEWDATA, ACKED, REXMIT, POLL, CLOSED, ABORTED, TIMEDOUT
from pipe import make_pipe

MAC_A = bytes.fromhex("020000000a0a")
MAC_B = bytes.fromhex("020000000b0b")
IP_A = "198.18.0.10"
IP_B = "198.18.0.11"

EVENT_NAMES = ((CONNECTED, "CONNECTED"), (NEWDATA, "NEWDATA"), (ACKED, "ACKED"), (REXMIT, "REXMIT"),
               (POLL, "POLL"), (CLOSED, "CLOSED"), (ABORTED, "ABORTED"), (TIMEDOUT, "TIMEDOUT"))


def names(events):
    return [n for bit, n in EVENT_NAMES if events & bit]


class Pair:
    """Stacks a and b joined by a pipe; wrap= lets a test put a fault injector
    (or a recorder) around each end."""

    def __init__(self, tcp_a=None, tcp_b=None, wrap=None, capacity=256, **kw):
        self.clock = VirtualClock(5000)
        end_a, end_b = make_pipe(MAC_A, MAC_B, capacity=capacity)
        self.link_a = wrap(end_a, "a") if wrap else end_a
        self.link_b = wrap(end_b, "b") if wrap else end_b
        self.a = Stack(self.link_a, ip=IP_A, clock=self.clock, tcp=tcp_a, **kw)
        self.b = Stack(self.link_b, ip=IP_B, clock=self.clock, tcp=tcp_b, **kw)

    def step(self, ms=1):
        self.clock.advance(ms)
        for link in (self.link_a, self.link_b):
            if hasattr(link, "poll"):
                link.poll()
        n = self.a.poll() + self.b.poll()
        return n

    def run(self, ms, until=None, step=1):
        """Advance up to ms of virtual time; stop early when until() is true."""
        for _ in range(ms // step):
            self.step(step)
            if until is not None and until():
                return True
        return until() if until is not None else True


class Recorder:
    """A handler that records events and received bytes; optional callbacks."""

    def __init__(self, on_event=None):
        self.events = []
        self.data = bytearray()
        self.conn = None
        self.on_event = on_event

    def __call__(self, conn, events):
        self.conn = conn
        self.events.append((conn.state_name(), names(events)))
        if events & NEWDATA:
            self.data += conn.data
        if self.on_event:
            self.on_event(conn, events)

    def saw(self, name):
        return any(name in ev for _, ev in self.events)
