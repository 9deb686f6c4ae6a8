"""IPv4 reassembly (RFC 791, RFC 815 in spirit): one datagram at a time, into
a fixed buffer of up to one frame's payload, with a timeout.

Loaded by ipv4 with the first fragment it sees (and kept): a board that never
meets a fragment pays nothing for it.  A fragment of another datagram while
one is in progress is dropped (the sender's own retransmission brings it
back); an overlap, a datagram larger than the buffer or a non-final fragment
whose length is not a multiple of 8 drops the datagram.  All are counted.
"""
from uipy.compat import copy_into, ticks_diff
from uipy.frame import IP, IP_SRC, TRANSPORT, put16

STAT_NAMES = ("ip_frag_rx", "ip_frag_done", "ip_frag_busy", "ip_frag_overlap", "ip_frag_too_big",
              "ip_frag_bad", "ip_frag_timeout")


class Reassembly:
    def __init__(self, stack, size, timeout_ms):
        self.stack = stack
        self.data = bytearray(size)           # the payload, in place
        self.blocks = bytearray(size // 8 + 1)  # 1 for every 8-byte block received
        self.head = bytearray(20)             # the first fragment's header
        self.key = bytearray(7)               # source address, identification, protocol
        self.timeout_ms = timeout_ms
        self.active = False
        self.started = 0
        self.total = -1                       # payload length, once the last fragment came
        self.got = 0                          # payload bytes received
        self.have_head = False
        for name in STAT_NAMES:
            stack.stats[name] = 0

    def _same(self, buf):
        k = self.key
        return k[0] == buf[IP_SRC] and k[1] == buf[IP_SRC + 1] and k[2] == buf[IP_SRC + 2] and \
            k[3] == buf[IP_SRC + 3] and k[4] == buf[IP + 4] and k[5] == buf[IP + 5] and k[6] == buf[IP + 9]

    def _start(self, buf, now):
        copy_into(self.key, 0, buf, IP_SRC, 4)
        self.key[4] = buf[IP + 4]
        self.key[5] = buf[IP + 5]
        self.key[6] = buf[IP + 9]
        for i in range(len(self.blocks)):
            self.blocks[i] = 0
        self.active = True
        self.started = now
        self.total = -1
        self.got = 0
        self.have_head = False

    def add(self, plen):
        """The fragment in the buffer (options stripped: payload at TRANSPORT,
        plen bytes).  When it completes a datagram, the whole datagram is put in
        the buffer as one unfragmented packet and its payload length returned;
        else -1."""
        s = self.stack
        buf = s.buf
        stats = s.stats
        now = s.now
        stats["ip_frag_rx"] += 1
        if self.active and ticks_diff(now, self.started) > self.timeout_ms:
            stats["ip_frag_timeout"] += 1
            self.active = False
        if not self.active:
            self._start(buf, now)
        elif not self._same(buf):
            stats["ip_frag_busy"] += 1
            return -1
        off = (((buf[IP + 6] & 0x1F) << 8) | buf[IP + 7]) * 8
        more = buf[IP + 6] & 0x20
        end = off + plen
        if end > len(self.data):
            stats["ip_frag_too_big"] += 1
            self.active = False
            return -1
        blocks = self.blocks
        if (more and plen & 7) or (self.total >= 0 and (end > self.total or not more)) or \
                (not more and any(blocks[(end + 7) >> 3:])):
            stats["ip_frag_bad"] += 1             # not a multiple of 8, past the end, two ends
            self.active = False
            return -1
        for b in range(off >> 3, (end + 7) >> 3):
            if blocks[b]:
                stats["ip_frag_overlap"] += 1      # overlapping fragments: drop it all
                self.active = False
                return -1
        for b in range(off >> 3, (end + 7) >> 3):
            blocks[b] = 1
        copy_into(self.data, off, buf, TRANSPORT, plen)
        self.got += plen
        if not more:
            self.total = end
        if off == 0:
            copy_into(self.head, 0, buf, IP, 20)
            self.have_head = True
        if self.total < 0 or self.got != self.total or not self.have_head:
            return -1
        # complete: the datagram, unfragmented, in the buffer
        total = self.total
        copy_into(buf, IP, self.head, 0, 20)
        copy_into(buf, TRANSPORT, self.data, 0, total)
        put16(buf, IP + 2, total + 20)
        buf[IP + 6] = 0
        buf[IP + 7] = 0
        self.active = False
        stats["ip_frag_done"] += 1
        return total


