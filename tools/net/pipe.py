"""An in-memory Ethernet link between two stacks (host only).

    a, b = make_pipe(mac_a, mac_b, capacity=64)

Frames sent on a are received on b and the other way round. Each direction is a
bounded queue: when full, the new frame is dropped and counted, as a switch
port would. pipe.up (reach it as a.pipe) switches the link on and off.
"""
from collections import deque


class PipeEnd:
    def __init__(self, pipe, mac):
        self.pipe = pipe
        self.mac = bytes(mac)
        self.peer = None
        self.queue = deque()          # frames waiting to be received here
        self.counters = {"sent": 0, "received": 0, "dropped_full": 0,
                         "dropped_down": 0, "truncated": 0}

    def send(self, mv, n):
        if not self.pipe.up:
            self.counters["dropped_down"] += 1
            return False
        q = self.peer.queue
        if len(q) >= self.pipe.capacity:
            self.counters["dropped_full"] += 1
            return False
        q.append(bytes(mv[:n]))       # a copy: the sender reuses its buffer
        self.counters["sent"] += 1
        return True

    def recv_into(self, mv):
        if not self.queue:
            return 0
        frame = self.queue.popleft()
        n = len(frame)
        if n > len(mv):
            self.counters["truncated"] += 1
            n = len(mv)
        mv[:n] = frame[:n]
        self.counters["received"] += 1
        return n

    def link_up(self):
        return self.pipe.up

    def pending(self):
        """Frames waiting to be received on this end."""
        return len(self.queue)


class Pipe:
    def __init__(self, mac_a, mac_b, capacity=64):
        self.capacity = capacity
        self.up = True
        self.a = PipeEnd(self, mac_a)
        self.b = PipeEnd(self, mac_b)
        self.a.peer = self.b
        self.b.peer = self.a

    def set_up(self, up):
        self.up = bool(up)


def make_pipe(mac_a, mac_b, capacity=64):
    p = Pipe(mac_a, mac_b, capacity)
    return p.a, p.b
