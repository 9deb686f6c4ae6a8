"""Clients waiting for a listener slot: a few bytes each, no connection.

When a listener's slots are all held, a SYN gets a SYN cookie with a zero
window.  The client completes the handshake but cannot send its request: it
waits in its own persist timer, sending zero-window probes.  Its ACK (or a
probe) carries the cookie back; uipy notes the client here (addresses, ports,
both ISNs, the cookie's MSS and SACK bits, its window).  When a slot frees, the
oldest waiting client gets the connection and an ACK that opens the window, and
its request comes at once, instead of at its next retransmission, which backs
off to seconds after a few misses.  A burst of clients larger than the table
then queues here in arrival order; one the room has no space for probes again
later (its probes back off as retransmissions do).

Loaded by uipy.tcp only when a listener is first full.
"""
from array import array

_N = 11                               # halves per entry: hi, lo, sport, dport,
_DPORT = 3                            # peer ISN hi/lo, our ISN hi/lo, cookie data,
_STAMP = 10                           # the client's window, time noted (s)
MAX_AGE_S = 60                        # older than this: the client has given up


class WaitRoom:
    def __init__(self, slots):
        self.e = array("H", bytes(2 * _N * slots))
        self.count = 0

    def find(self, hi, lo, sport, dport):
        """Index of that client's entry, or -1."""
        e = self.e
        for i in range(0, len(e), _N):
            if e[i + _DPORT] == dport and e[i] == hi and e[i + 1] == lo and e[i + 2] == sport:
                return i
        return -1

    def add(self, now, hi, lo, sport, dport, shi, slo, ahi, alo, data, wnd):
        """Note a waiting client (once); False when the room is full."""
        e = self.e
        i = self.find(hi, lo, sport, dport)
        if i >= 0:
            e[i + 9] = wnd
            return True
        if self.count * _N >= len(e):
            return False
        i = 0
        while e[i + _DPORT]:                  # a free entry (port 0 is never listened on)
            i += _N
        e[i] = hi
        e[i + 1] = lo
        e[i + 2] = sport
        e[i + _DPORT] = dport
        e[i + 4] = shi
        e[i + 5] = slo
        e[i + 6] = ahi
        e[i + 7] = alo
        e[i + 8] = data
        e[i + 9] = wnd
        e[i + _STAMP] = (now >> 10) & 0xFFFF
        self.count += 1
        return True

    def oldest(self, now, port):
        """Index of the longest-waiting client of port (entries too old to
        matter are forgotten on the way), or -1."""
        e = self.e
        best = -1
        age = -1
        t = (now >> 10) & 0xFFFF
        for i in range(0, len(e), _N):
            if e[i + _DPORT] == port:
                a = (t - e[i + _STAMP]) & 0xFFFF
                if a > MAX_AGE_S:
                    self.remove(i)
                elif a > age:
                    best = i
                    age = a
        return best

    def remove(self, i):
        self.e[i + _DPORT] = 0
        self.count -= 1

    def admit(self, tcp):
        """Slots freed: the longest-waiting clients get them (tcp.flush calls
        this when the buffer is free for the ACKs)."""
        e = self.e
        for lst in tcp.listeners:
            while self.count and lst is not None and lst.count < lst.backlog:
                i = self.oldest(tcp.stack.now, lst.port)
                if i < 0:
                    break
                c = tcp._cookie_conn(lst, e[i], e[i + 1], e[i + 2], e[i + 3], e[i + 4], e[i + 5],
                                     e[i + 6], e[i + 7], e[i + 8])
                if c is None:
                    return                    # the table is full: when a slot frees
                self.remove(i)
                tcp._admit(c, e[i + 9])
