"""ARP (RFC 826) for IPv4 over Ethernet: a fixed-size cache with LRU replacement.

Entries are learned only from requests aimed at our address and from replies
to our own requests, so unsolicited replies cannot poison the cache.  On a
miss the outgoing frame is replaced by an ARP request, as uIP does; the layer
above retries (TCP retransmits, the UDP application sends again).
Sending requests and announcements and defending our address are rare (a
few a minute at most): that code is uipy.stack_setup's, loaded for the call.
IPv4 addresses are held as two 16-bit halves: a 32-bit int would be a heap
object on 32-bit MicroPython.
"""
from uipy import run
from uipy.compat import const, copy_into, same, ticks_diff

_FREE = const(0)
_PENDING = const(1)      # request sent, no answer yet
_RESOLVED = const(2)

_OP_REQUEST = const(1)
_OP_REPLY = const(2)
_ARP_LEN = const(42)     # Ethernet header + ARP packet

# Offsets of the ARP fields in the frame buffer
_OPER = const(20)
_SHA = const(22)
_SPA = const(28)
_THA = const(32)
_TPA = const(38)


_TYPING = const(0)
if _TYPING:                       # for the type checker only: the compiler drops it
    from uipy import stack_setup  # and so run()'s "stack_setup" below is a qstr, not a heap string
    from uipy.stack import Stack
    # The counters' names over 10 characters, written as names for the compiler
    # only: it then interns the strings counted under them below (qstrs, shared
    # with the stats dict's keys), where such a string would be a heap object of
    # its own (see uipy.stack_setup).
    dict(arp_evicted=0, arp_learned=0, arp_expired=0, arp_refresh=0, arp_drop_bad=0,
         arp_drop_not_for_us=0, arp_conflict=0, arp_unsolicited=0, arp_updated=0)


class Arp:
    """Made by uipy.stack_setup (the constructor's body runs once: on a stock
    board code is heap); the attributes, declared for the type checker:"""
    stack: "Stack"
    size: int
    max_age_ms: int               # a resolved entry is forgotten after this
    retry_ms: int                 # minimum gap between requests for one address
    pending_ms: int               # an unanswered request is given up after this
    state: bytearray              # per slot: _FREE, _PENDING, _RESOLVED
    hi: list                      # IPv4 address, high and low 16 bits
    lo: list
    mac: bytearray                # 6 bytes a slot
    stamp: list                   # when learned (resolved) or last requested (pending)
    used: list                    # last lookup, for LRU replacement
    asked: list                   # when a refresh request was last sent
    refreshing: bytearray         # 1: a refresh request is out (its reply is expected), 2: wanted
    # fn(claimed), the DHCP client's ear: claimed False for every ARP packet
    # seen while no address is set (it is in the buffer: the client probes
    # an address), True when another host claims ours again within
    # DEFEND_INTERVAL of our defence (RFC 5227 2.4: give the address up).
    watch: "function | None"
    defended: "int | None"        # ticks of our last defence, None: none since set
    # our ARP reply as far as it does not depend on the request: Ethernet
    # source and type, header, opcode, sender (us), zero padding (set with the
    # address: uipy.stack_setup)
    reply: bytearray

    # --- cache ---

    def find(self, hi, lo):
        for i in range(self.size):
            if self.state[i] != _FREE and self.hi[i] == hi and self.lo[i] == lo:
                return i
        return -1

    def _slot(self, now):
        """A free slot, or the least recently used one (counted as evicted)."""
        oldest = 0
        for i in range(self.size):
            if self.state[i] == _FREE:
                return i
            if ticks_diff(self.used[i], self.used[oldest]) < 0:
                oldest = i
        self.stack.stats["arp_evicted"] += 1
        return oldest

    def _learn(self, i, hi, lo, now):
        """Store the sender of the ARP packet in the buffer into slot i."""
        if i < 0:
            i = self._slot(now)
            self.used[i] = now
            self.hi[i] = hi
            self.lo[i] = lo
        self.state[i] = _RESOLVED
        self.refreshing[i] = 0
        self.stamp[i] = now
        s = self.stack
        copy_into(self.mac, 6 * i, s.buf, _SHA, 6)
        s.stats["arp_learned"] += 1

    def lookup_into(self, hi, lo, buf, off):
        """Write the MAC for hi.lo at buf[off:off+6]; its slot, or -1 when not resolved."""
        i = self.find(hi, lo)
        return i if i >= 0 and self.mac_into(i, hi, lo, buf, off) else -1

    def mac_into(self, i, hi, lo, buf, off):
        """lookup_into for a slot found before: True when slot i still holds hi.lo resolved."""
        if self.state[i] != _RESOLVED or self.hi[i] != hi or self.lo[i] != lo:
            return False
        self.used[i] = self.stack.now
        copy_into(buf, off, self.mac, 6 * i, 6)
        return True

    def verify(self, hi, lo):
        """An upper layer gets no answers through this neighbour (TCP
        retransmissions): ask for its address again at the next tick, in case
        the cached MAC is wrong.  The entry stays usable meanwhile."""
        i = self.find(hi, lo)
        if i >= 0 and self.state[i] == _RESOLVED and self.refreshing[i] != 1:
            self.refreshing[i] = 2

    def clear(self):
        """Forget every entry (the address changed, or was taken away)."""
        run("stack_setup", "arp_clear", self.stack)

    def tick(self, now):
        for i in range(self.size):
            st = self.state[i]
            if st == _RESOLVED:
                age = ticks_diff(now, self.stamp[i])
                if age >= self.max_age_ms:
                    self.state[i] = _FREE
                    self.stack.stats["arp_expired"] += 1
                elif (self.refreshing[i] == 2 or age >= self.max_age_ms - (self.max_age_ms >> 2) and
                      ticks_diff(self.used[i], self.stamp[i]) > 0) and \
                        (not self.refreshing[i] or ticks_diff(now, self.asked[i]) >= self.retry_ms):
                    # In use and getting old: ask again before it expires, so
                    # traffic to it never stalls on a miss.
                    self.refreshing[i] = 1
                    self.asked[i] = now
                    self.stack.stats["arp_refresh"] += 1
                    self._rare("arp_send", self.hi[i], self.lo[i], self.stack.ip_hi, self.stack.ip_lo)
            elif st == _PENDING and ticks_diff(now, self.stamp[i]) >= self.pending_ms:
                self.state[i] = _FREE

    # --- input ---

    def input(self, n):
        s = self.stack
        buf = s.buf
        stats = s.stats
        stats["arp_rx"] += 1
        # hardware Ethernet, protocol IPv4, their sizes, the opcode's high byte
        if n < _ARP_LEN or not same(buf, 14, b"\x00\x01\x08\x00\x06\x04\x00", 7) or buf[_SHA] & 1:
            stats["arp_drop_bad"] += 1
            return
        op = buf[_OPER + 1]
        hi = (buf[_SPA] << 8) | buf[_SPA + 1]
        lo = (buf[_SPA + 2] << 8) | buf[_SPA + 3]
        if not s.configured:
            stats["arp_drop_not_for_us"] += 1
            if self.watch is not None:
                self.watch(False)
            return
        if hi == s.ip_hi and lo == s.ip_lo:
            if same(buf, _SHA, s.mac, 6):    # our own frame, looped back
                stats["arp_drop_not_for_us"] += 1
                return
            stats["arp_conflict"] += 1      # another host claims our address
            self._rare("arp_conflict")
            return
        now = s.now
        i = -1                            # find(hi, lo), written out: a call costs more on a board
        for k in range(self.size):
            if self.state[k] != _FREE and self.hi[k] == hi and self.lo[k] == lo:
                i = k
                break
        if not same(buf, _TPA, s.ip, 4):
            if i >= 0 and self.state[i] == _RESOLVED:
                # RFC 826's merge step for an entry we already have: take the
                # sender's MAC (gratuitous ARP: a failover, a replaced device).
                # Entries are never created from unsolicited packets: that is
                # the defence against poisoning.
                m = 6 * i
                mac = self.mac
                for k in range(6):
                    if mac[m + k] != buf[_SHA + k]:
                        copy_into(mac, m, buf, _SHA, 6)
                        stats["arp_updated"] += 1
                        break
                self.stamp[i] = now
                self.refreshing[i] = 0
            stats["arp_drop_not_for_us"] += 1
            return
        if op == _OP_REQUEST:
            if hi | lo:                      # an RFC 5227 probe has sender 0.0.0.0
                if i < 0:
                    self._learn(i, hi, lo, now)
                else:                        # a known sender: _learn's update, written out
                    self.state[i] = _RESOLVED
                    self.refreshing[i] = 0
                    self.stamp[i] = now
                    copy_into(self.mac, 6 * i, buf, _SHA, 6)
                    stats["arp_learned"] += 1
            # the reply, in place: target <- sender, Ethernet destination <-
            # the sender's MAC, the rest from our reply's template
            copy_into(buf, _THA, buf, _SHA, 10)
            copy_into(buf, 0, buf, _SHA, 6)
            t = self.reply
            copy_into(buf, 6, t, 6, 26)
            copy_into(buf, _ARP_LEN, t, _ARP_LEN, 18)
            stats["arp_tx"] += 1
            s.send_frame(60)
        elif op == _OP_REPLY:
            if i >= 0 and (self.state[i] == _PENDING or self.refreshing[i]):
                pending = self.state[i] == _PENDING
                self._learn(i, hi, lo, now)
                if pending and s.tcp is not None:
                    s.tcp.next_hop_resolved()     # resend what met the miss now, not at its timer
            else:
                stats["arp_unsolicited"] += 1
        else:
            stats["arp_drop_bad"] += 1

    # --- output ---

    def request(self, hi, lo):
        """Write an ARP request for hi.lo into the buffer (over whatever was there) and send it."""
        i = self.find(hi, lo)
        if i >= 0 and self.state[i] == _PENDING and ticks_diff(self.stack.now, self.stamp[i]) < self.retry_ms:
            return                               # asked very recently: wait for the answer
        self._rare("arp_ask", i, hi, lo)

    def _rare(self, function, *args):
        """uipy.stack_setup.<function>(self, *args), loaded for the call: with no
        memory for its code nothing is sent (a request is asked for again by
        the next send or tick, a claim on our address defended at the next)."""
        try:
            run("stack_setup", function, self, *args)
        except MemoryError:
            pass
