"""A fault injector that wraps any uipy link (host only).

    link = FaultyLink(TapNic("tap0"), seed=7, loss=0.05, delay_ms=20, clock=clock)

tx means frames the stack sends, rx frames the stack receives. Each direction has
its own seeded random generator and draws the same number of values per frame,
so frame k of a direction meets the same fate for a given seed whatever the
other settings or the interleaving with the other direction.

Per frame, in order: loss (dropped), corrupt (one bit flipped past the Ethernet
header, so the frame still reaches the stack and a checksum has to catch it;
never an ARP frame, which has no checksum and on a real link would have been
dropped by the Ethernet FCS),
duplicate (sent twice), reorder (held until the next frame of that direction has
gone, or reorder_hold_ms passed, or flush()), delay (delay_ms plus a uniform
0..jitter_ms; with jitter frames may overtake each other, as on netem).

Held frames move on whenever the link is used (send, recv_into) or on poll().
clock() gives milliseconds (wrapping at 2**30 is fine, like ticks_ms); tests
may pass a virtual clock, the default is the real monotonic clock.
"""
import heapq
import random
import time

ETH_HLEN = 14
_MASK = (1 << 30) - 1
_HALF = 1 << 29


def _diff(a, b):
    """a - b for millisecond ticks that may wrap at 2**30."""
    return ((a - b + _HALF) & _MASK) - _HALF


def real_clock_ms():
    return int(time.monotonic() * 1000) & _MASK


class _Direction:
    """Fault state of one direction; deliver(frame) hands a frame on."""

    def __init__(self, link, name, deliver):
        self.link = link
        self.name = name
        self.deliver = deliver
        self.rng = random.Random("%s/%s" % (link.seed, name))
        self.held = None              # reordered copies: [(frame, extra_ms), ...]
        self.held_at = 0
        self.timed = []               # heap of (due, seq, frame)
        self.seq = 0

    def count(self, what, k=1):
        key = self.name + "_" + what
        self.link.counters[key] = self.link.counters.get(key, 0) + k

    def feed(self, frame):
        lk = self.link
        r = self.rng
        # Always seven draws, so decisions don't shift when settings change.
        r_loss, r_corrupt, r_pos, r_bit, r_dup, r_reorder, r_jitter = [r.random() for _ in range(7)]
        self.count("frames")
        if r_loss < lk.loss:
            self.count("lost")
            return
        frame = bytearray(frame)
        # (not ARP: it has no checksum, and on a real link the Ethernet FCS drops
        # a damaged frame before any stack sees it; IPv4 checksums are what we test)
        if r_corrupt < lk.corrupt and len(frame) > ETH_HLEN and frame[12:14] != b"\x08\x06":
            i = ETH_HLEN + int(r_pos * (len(frame) - ETH_HLEN))
            frame[i] ^= 1 << int(r_bit * 8)
            self.count("corrupted")
        extra = lk.delay_ms + int(r_jitter * (lk.jitter_ms + 1))
        copies = [(frame, extra)]
        if r_dup < lk.duplicate:
            copies.append((bytearray(frame), extra))
            self.count("duplicated")
        if r_reorder < lk.reorder and self.held is None:
            self.held = copies
            self.held_at = lk.clock()
            self.count("reordered")
            return
        for f, x in copies:
            self.emit(f, x)
        self.release_held()

    def release_held(self):
        if self.held is not None:
            held, self.held = self.held, None
            for f, x in held:
                self.emit(f, x)

    def emit(self, frame, extra):
        if extra <= 0:
            self.deliver(frame)
            return
        self.count("delayed")
        self.seq += 1
        heapq.heappush(self.timed, (self.link.clock() + extra, self.seq, frame))

    def pump(self, now):
        if self.held is not None and _diff(now, self.held_at) >= self.link.reorder_hold_ms:
            self.release_held()
        # The heap is ordered by raw due value; fine unless the clock wraps while
        # frames are held, and then frames are at worst released a little late.
        while self.timed and _diff(now, self.timed[0][0]) >= 0:
            self.deliver(heapq.heappop(self.timed)[2])

    def flush(self):
        self.release_held()
        while self.timed:
            self.deliver(heapq.heappop(self.timed)[2])

    def pending(self):
        return len(self.timed) + (len(self.held) if self.held else 0)

    def next_due(self, now):
        """Milliseconds until this direction next has something to release."""
        waits = []
        if self.timed:
            waits.append(_diff(self.timed[0][0], now))
        if self.held is not None:
            waits.append(_diff(self.held_at, now) + self.link.reorder_hold_ms)
        return max(0, min(waits)) if waits else None


class FaultyLink:
    def __init__(self, inner, seed, loss=0.0, duplicate=0.0, reorder=0.0, corrupt=0.0,
                 delay_ms=0, jitter_ms=0, clock=None, direction="both", reorder_hold_ms=100):
        if direction not in ("both", "rx", "tx"):
            raise ValueError("direction must be 'both', 'rx' or 'tx'")
        self.inner = inner
        self.seed = seed
        self.loss = loss
        self.duplicate = duplicate
        self.reorder = reorder
        self.corrupt = corrupt
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        self.reorder_hold_ms = reorder_hold_ms
        self.clock = clock or real_clock_ms
        self.counters = {}
        self.ready = []               # rx frames through the faults, not yet read
        self.scratch = bytearray(65536)
        self.tx = _Direction(self, "tx", self._send_inner) if direction in ("both", "tx") else None
        self.rx = _Direction(self, "rx", self.ready.append) if direction in ("both", "rx") else None

    @property
    def mac(self):
        return self.inner.mac

    def link_up(self):
        return self.inner.link_up()

    def __getattr__(self, name):
        # fileno(), wait(), close() ... of the wrapped link
        return getattr(self.inner, name)

    def _send_inner(self, frame):
        self.inner.send(frame, len(frame))

    def send(self, mv, n):
        if self.tx is None:
            return self.inner.send(mv, n)
        self.poll()
        self.tx.feed(bytes(mv[:n]))   # copy: the stack reuses its buffer
        return True

    def recv_into(self, mv):
        self.poll()
        if self.rx is None:
            return self.inner.recv_into(mv)
        # Pull from the inner link until a frame survives the faults (bounded).
        for _ in range(64):
            if self.ready:
                break
            n = self.inner.recv_into(memoryview(self.scratch))
            if not n:
                break
            self.rx.feed(self.scratch[:n])
        if not self.ready:
            return 0
        frame = self.ready.pop(0)
        n = min(len(frame), len(mv))
        mv[:n] = frame[:n]
        return n

    def poll(self):
        """Hand on every held frame whose time has come."""
        now = self.clock()
        for d in (self.tx, self.rx):
            if d is not None:
                d.pump(now)

    def flush(self):
        """Hand on every held frame now, whatever its due time."""
        for d in (self.tx, self.rx):
            if d is not None:
                d.flush()

    def pending(self):
        """Frames held back (delayed or reordered), plus rx frames not yet read."""
        return sum(d.pending() for d in (self.tx, self.rx) if d is not None) + len(self.ready)

    def next_due(self):
        """Milliseconds until the next held frame is due (0: now), None if none held."""
        if self.ready:
            return 0
        now = self.clock()
        waits = [w for w in (d.next_due(now) for d in (self.tx, self.rx) if d is not None)
                 if w is not None]
        return min(waits) if waits else None


class Cable:
    """A link whose cable can be pulled: while up is False, frames in both
    directions are lost and link_up() says so (DHCP and link-flap tests)."""

    def __init__(self, inner, up=True):
        self.inner = inner
        self.mac = inner.mac
        self.up = up

    def recv_into(self, mv):
        n = self.inner.recv_into(mv)
        return n if self.up else 0

    def send(self, mv, n):
        return self.inner.send(mv, n) if self.up else False

    def link_up(self):
        return self.up

    def fileno(self):
        return self.inner.fileno()
