"""The TCP reorder store: segments that arrive after a gap wait here, shared by
all connections, instead of being dropped.  slots * MSS bytes, allocated once.

A peer without SACK (Linux talking to uipy) otherwise recovers from one lost
segment only by its retransmission timer, resending the whole window."""
from uipy.compat import copy_into


class ReorderStore:
    def __init__(self, stack, slots, mss):
        self.stack = stack
        self.mss = mss
        self.buf = bytearray(slots * mss)
        self.owner = [None] * slots  # type: list
        self.seq = [0] * slots        # receive offset of the first byte
        self.len = [0] * slots
        self.held = 0                 # slots in use (0: nothing to look through)

    def hold(self, c, seq, start, n):
        """Keep n bytes of the buffer from start, received for c at offset seq."""
        slot = -1
        for i in range(len(self.owner)):
            owner = self.owner[i]
            if owner is c and self.seq[i] == seq:
                return                        # already held
            if owner is None and slot < 0:
                slot = i
        if slot < 0 or n > self.mss:
            return
        copy_into(self.buf, slot * self.mss, self.stack.buf, start, n)
        self.owner[slot] = c
        self.seq[slot] = seq
        self.len[slot] = n
        self.held += 1
        self.stack.stats["tcp_reorder_stored"] += 1

    def next_for(self, c):
        """The held data that now follows c.rcv_nxt, as a memoryview (advancing
        c.rcv_nxt past it), or None.  Slots overtaken by retransmissions are freed."""
        for i in range(len(self.owner)):
            if self.owner[i] is not c:
                continue
            seq = self.seq[i]
            end = seq + self.len[i]
            if end <= c.rcv_nxt:
                self.owner[i] = None          # already covered by a retransmission
                self.held -= 1
            elif seq <= c.rcv_nxt:
                base = i * self.mss
                self.owner[i] = None
                self.held -= 1
                skip = c.rcv_nxt - seq
                c.rcv_nxt = end
                self.stack.stats["tcp_reorder_delivered"] += 1
                return memoryview(self.buf)[base + skip:base + self.len[i]]
        return None

    def forget(self, c):
        for i in range(len(self.owner)):
            if self.owner[i] is c:
                self.owner[i] = None
                self.held -= 1

    def rebase(self, c, shift):
        for i in range(len(self.owner)):
            if self.owner[i] is c:
                self.seq[i] -= shift
