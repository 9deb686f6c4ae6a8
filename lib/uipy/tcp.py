"""TCP (RFC 9293): the segment engine, output, timers and the connection table.

The application side of a connection (events, send, close) is in tcp_conn.
Congestion control follows RFC 5681 with NewReno recovery (RFC 6582), the
retransmission timer RFC 6298, initial sequence numbers RFC 6528 and the
blind-attack defences RFC 5961.

Nagle's algorithm is not used: there is no coalescing send buffer to hold
small writes back in, every conn.send() object is already a unit the
application chose, and segments are cut at the MSS from the queued objects.
"""
from uipy.compat import const, sum16, ticks_add, ticks_diff, copy_sum, random_u16, copy_into, random_bytes, \
    get16, put16
from uipy import run
from uipy.tcp_conn import Conn

# Frame offsets, the protocol number and tcp_conn's event and state numbers
# as constants of this module: the compiler puts their values in place, where
# an imported name is a global looked up at each use (many per segment).
# uipy.frame, uipy.ipv4 and uipy.tcp_conn define them; a test checks they agree.
# (get16 and put16 come from compat: TCP does not load uipy.frame.)
_IP_SRC = const(26)
_IP_DST = const(30)
_TRANSPORT = const(34)
_TCP_DATA = const(54)
_PROTO_TCP = const(6)
_CONNECTED = const(1)
_NEWDATA = const(2)
_ACKED = const(4)
_REXMIT = const(8)
_POLL = const(16)
_CLOSED = const(32)
_ABORTED = const(64)
_TIMEDOUT = const(128)
_ST_CLOSED = const(0)
_ST_SYN_SENT = const(2)
_ST_SYN_RCVD = const(3)
_ST_ESTABLISHED = const(4)
_ST_FIN_WAIT_1 = const(5)
_ST_FIN_WAIT_2 = const(6)
_ST_CLOSE_WAIT = const(7)
_ST_CLOSING = const(8)
_ST_LAST_ACK = const(9)
_ST_TIME_WAIT = const(10)
_RECEIVING = const((1 << 4) | (1 << 5) | (1 << 6))
_SENDING = const((1 << 4) | (1 << 7))
_DRAINING = const(_SENDING | (1 << 5) | (1 << 8) | (1 << 9))
_SYNCHRONIZED = const(_DRAINING | (1 << 3) | (1 << 6))

# RFC 6528's keyed hash, for ISNs and SYN cookies: HalfSipHash-2-4 (SipHash on
# 32-bit words).  The viper form allocates nothing; uipy.portable's is for
# CPython and ports without the native emitter (its large ints are heap
# objects on MicroPython).  Both give the same value (tested).
ISN_KEY = bytearray(random_bytes(8))  # one secret per boot
# The segment header is written by one viper call too (a call costs a board
# about what three byte stores do; the header was 30 of them).
try:                                  # CPython: no micropython module; no native emitter: SyntaxError
    from uipy.tcp_viper import isn_hash_viper as isn_hash, tcp_header_viper as tcp_header
except (ImportError, SyntaxError, MemoryError, ValueError):
    from uipy.portable import isn_hash_loop as isn_hash, tcp_header  # noqa: F401

FIN = const(0x01)
SYN = const(0x02)
RST = const(0x04)
PSH = const(0x08)
ACK = const(0x10)

_FAR = const(0x1FFFFFFF)          # a sequence difference too large to matter
_REBASE = const(1 << 28)          # move the sequence bases before offsets grow past small ints
_CWND_MAX = const(1 << 20)
_QUICKACKS = const(8)             # segments ACKed at once at the start and after a loss
MSS_FLOOR = const(64)             # a smaller MSS from a peer is raised to this: at 64 bytes a
                                  # segment costs (64 + 54) / 64 = 1.8 times its data on the wire
_BURST = const(16)                # segments one output() sends at most
# SYN cookies: the MSS is one of these (4 bits of the cookie; a peer's MSS is
# rounded down to the nearest), common ones from links, tunnels and PPPoE
_COOKIE_MSS = (64, 256, 536, 1000, 1024, 1200, 1220, 1260, 1300, 1340, 1360, 1380, 1400, 1420,
               1440, 1460)


def seq_diff(hi, lo, base_hi, base_lo):
    """(hi:lo) - (base_hi:base_lo) modulo 2**32, signed; far values clamp to +-_FAR."""
    d_lo = lo - base_lo
    d_hi = hi - base_hi
    if d_lo < 0:
        d_lo += 0x10000
        d_hi -= 1
    d_hi &= 0xFFFF
    if d_hi >= 0x8000:
        d_hi -= 0x10000
    if d_hi > 0x1FFF:
        return _FAR
    if d_hi < -0x1FFF:
        return -_FAR
    return (d_hi << 16) + d_lo


def seq_add(hi, lo, n):
    """(hi:lo) + n modulo 2**32, as (high 16, low 16).  Off the packet path only:
    the tuple is a heap object (put_seq does the same sum without one)."""
    lo += n & 0xFFFF
    return (hi + (n >> 16) + (lo >> 16)) & 0xFFFF, lo & 0xFFFF


def put_seq(buf, off, base_hi, base_lo, rel):
    """Write base + rel as a 32-bit big-endian sequence number."""
    lo = base_lo + (rel & 0xFFFF)
    hi = base_hi + (rel >> 16) + (lo >> 16)
    put16(buf, off, hi & 0xFFFF)
    put16(buf, off + 2, lo & 0xFFFF)


# Counter names as keyword names: interned when the module loads, so the
# strings counted under them below are the same qstrs, not heap strings
# (see uipy.stack_setup).
STAT_NAMES = tuple(dict(
    tcp_rx=0, tcp_tx=0, tcp_drop_header=0, tcp_drop_checksum=0, tcp_drop_options=0,
    tcp_drop_broadcast=0, tcp_drop_unacceptable=0, tcp_drop_no_ack=0, tcp_out_of_order=0,
    tcp_rst_rx=0, tcp_rst_tx=0, tcp_challenge_acks=0, tcp_challenge_limited=0,
    tcp_syn_backlog_full=0, tcp_syn_table_full=0, tcp_timewait_recycled=0, tcp_retransmits=0,
    tcp_fast_retransmits=0, tcp_timeouts=0, tcp_dup_acks=0, tcp_window_probes=0, tcp_keepalives=0,
    tcp_connects=0, tcp_accepts=0, tcp_reorder_stored=0, tcp_reorder_delivered=0, tcp_no_memory=0,
    tcp_icmp_refused=0, tcp_icmp_ignored=0, tcp_sack_retransmits=0, tcp_syn_cookies=0,
    tcp_cookie_unmatched=0, tcp_ack_limited=0, tcp_clients_waiting=0))


class Listener:
    def __init__(self, port, handler, backlog, window, on_full):
        self.port = port
        self.handler = handler
        self.backlog = backlog        # connections the application holds at once on this port
        self.count = 0
        self.invited = 0              # SYN-ACKs with an open window not yet answered (this second)
        self.window = window          # receive window its connections start with
        self.on_full = on_full        # () -> a connection the application gives up for a newcomer, or None


_TYPING = const(0)
if _TYPING:                       # for the type checker only: the compiler drops it
    from types import ModuleType
    from uipy.stack import Stack
    from uipy.tcp_reorder import ReorderStore
    from uipy.tcp_wait import WaitRoom


class Tcp:
    """A Stack's TCP.  The constructor's body is uipy.tcp_setup's (run once
    and dropped: on a stock board code is heap); the attributes, declared for
    the type checker:"""
    stack: "Stack"
    stats: dict                       # the stack's counters (one attribute load less each)
    our_mss: int                      # the MTU less 40
    window: int                       # receive window connections start with
    rto_initial: int
    rto_min: int
    rto_max: int
    max_retries: int
    syn_retries: int                  # SYN-SENT: 1+2+4+..+60+60 s = 183 s (RFC 1122: >= 3 min)
    synack_retries: int               # SYN-RECEIVED: 63 s, as Linux
    arp_wait_ms: int                  # R2 while retransmissions meet ARP misses (>= 100 s)
    msl_ms: int
    fin_wait_2_ms: int
    delack_ms: int
    poll_ms: int
    keepalive_ms: int
    keepalive_interval_ms: int
    keepalive_count: int
    limited_transmit: bool            # RFC 3042: new data on the first two dup ACKs
    sws_avoid: bool                   # RFC 9293 3.8.6.2.1: no slivers while the ACK clock runs
    sack_on: bool                     # RFC 2018 / 6675 offered and accepted
    sack: "ModuleType | None"         # uipy.tcp_sack once needed (after a loss)
    early_retransmit: bool            # RFC 5827: small flights, nothing new to send
    _sack_perm: bool                  # the segment being parsed offered SACK
    sack_at: int                      # ...and carries SACK blocks here (buffer offset)
    sack_len: int
    ack_gap_ms: int                   # between ACKs to unacceptable segments, per connection
    challenge_per_s: int
    challenge_budget: int
    _budget_at: int
    out_view: memoryview              # conn.out: the payload space after the headers
    conns: "list[Conn]"
    _hash_in: bytearray               # addresses and ports (an ISN), + peer's ISN, time (a cookie)
    _isn_out: bytearray
    _ch: int
    _cl: int
    _last: "Conn | None"              # the connection that got the last segment
    reorder: "ReorderStore | None"    # shared by all connections (tcp_reorder), made at the first gap
    reorder_slots: int
    listeners: "list[Listener | None]"
    wait_slots: int                   # clients noted while their listener is full (tcp_wait)
    waiting: "WaitRoom | None"        # ...the WaitRoom, made when first needed
    more: "ModuleType | None"         # uipy.tcp_more once needed
    loss: "ModuleType | None"         # uipy.tcp_loss once needed
    _admit_due: bool
    busy: bool                        # inside input or tick: output is deferred
    pending: bool                     # some connection wants output
    wakeups: bool

    def __init__(self, stack, conns=4, listeners=4, queue_slots=4, window=4 * 1460,
                 rto_initial=1000, rto_min=200, rto_max=60000, max_retries=8, syn_retries=7,
                 synack_retries=5, arp_wait_ms=100000,
                 msl_ms=30000, fin_wait_2_ms=30000, delack_ms=100, poll_ms=500,
                 keepalive_ms=0, keepalive_interval_ms=10000, keepalive_count=5,
                 challenge_per_s=10, reorder_slots=None, limited_transmit=True, sws_avoid=True,
                 sack=True, early_retransmit=True, ack_gap_ms=500, wait_slots=32):
        run("tcp_setup", "init", self, stack, conns, listeners, queue_slots, window, rto_initial,
            rto_min, rto_max, max_retries, syn_retries, synack_retries, arp_wait_ms, msl_ms,
            fin_wait_2_ms, delack_ms, poll_ms, keepalive_ms, keepalive_interval_ms, keepalive_count,
            challenge_per_s, reorder_slots, limited_transmit, sws_avoid, sack, early_retransmit,
            ack_gap_ms, wait_slots)

    # --- application entry points ---

    def listen(self, port, handler, backlog=2, window=0, on_full=None):
        """Accept connections on port; window (if given) is the receive window
        they start with instead of the Tcp setting.  A handshake that completes
        while backlog connections are held calls on_full() (if given), which may
        return a connection to give up for it (reset by the stack); else the
        client waits (its next try finds a slot)."""
        run("tcp_setup", "listen", self, port, handler, backlog, window, on_full)

    def unlisten(self, port):
        for i in range(len(self.listeners)):
            lst = self.listeners[i]
            if lst is not None and lst.port == port:
                self.listeners[i] = None

    def connect(self, ip, port, handler, local_port=0, window=0):
        """Open a connection to ip (4 bytes) and port; events go to handler.
        The local port is a random ephemeral one unless given; window (if
        given) is the receive window to start with instead of the Tcp setting."""
        return self._more().connect(self, ip, port, handler, local_port, window)

    def icmp_unreachable(self, code, q, n):
        """ICMP destination unreachable quoting n bytes of one of our segments
        (its IP header at q in the buffer): see tcp_more."""
        self._more().icmp_unreachable(self, code, q, n)

    def _more(self):
        """uipy.tcp_more: what a server rarely or never runs, loaded then."""
        m = self.more
        if m is None:
            from uipy import tcp_more as m
            self.more = m
        return m

    def _reorder_store(self):
        """uipy.tcp_reorder's store, made at the first segment after a gap: a
        device on a clean LAN never holds its code or its slots * MSS bytes.
        None while there is no memory for it (that segment is not kept)."""
        try:
            from uipy.tcp_reorder import ReorderStore
            self.reorder = ReorderStore(self.stack, self.reorder_slots, self.our_mss)
        except MemoryError:
            self.stats["tcp_no_memory"] += 1
        return self.reorder

    def _loss(self):
        """uipy.tcp_loss: recovery from losses, loaded at the first one; None
        while there is no memory for its code (counted; a timer fires again,
        a duplicate ACK is let pass)."""
        m = self.loss
        if m is None:
            try:
                from uipy import tcp_loss as m
                self.loss = m
            except MemoryError:
                self.stats["tcp_no_memory"] += 1
        return m

    def _sack(self):
        """uipy.tcp_sack (RFC 2018 / 6675), loaded when SACK information is
        first sent or received: after a loss. None while there is no memory
        for its code (counted; the segment goes without SACK's part)."""
        m = self.sack
        if m is None:
            try:
                from uipy import tcp_sack as m
                self.sack = m
            except MemoryError:
                self.stats["tcp_no_memory"] += 1
        return m

    def want_output(self, c):
        if self.busy:
            c.output_pending = True
            self.pending = True
        else:
            self.output(c)

    def next_hop_resolved(self):
        """An ARP reply came: what became ARP requests goes out now, not at the
        next timer (a first contact's SYN or SYN-ACK, or after an outage)."""
        for c in self.conns:
            if c.state and c.tx_failed and c.rexmit_on:
                c.arp_waits = 0
                m = self._loss()
                if m is not None:
                    m.timeout(self, c)

    def flush(self):
        """Deferred output and wake-ups, after input handling."""
        self.pending = False
        w = self.waiting
        if self._admit_due and w is not None:
            self._admit_due = False
            w.admit(self)
        wake = self.wakeups
        self.wakeups = False
        for c in self.conns:
            if c.state == _ST_CLOSED:
                continue
            if wake and c.woken and (1 << c.state) & _SENDING:
                c.woken = False
                self._notify(c, _POLL)
                c.output_pending = True
            if c.output_pending:
                c.output_pending = False
                self.output(c)

    def abort(self, c):
        if (1 << c.state) & _SYNCHRONIZED:
            self._send_rst(c)
        self.release(c)

    def let_go(self, c):
        """The application is done with c (closed, or gone): it stops counting
        against its listener's limit, whatever the FIN exchange still takes."""
        if c.listener is not None:
            c.listener.count -= 1
            c.listener = None
            self._slot_freed()

    def _slot_freed(self):
        if self.waiting is not None and self.waiting.count:
            self._admit_due = self.pending = True   # a waiting client gets it (in flush)

    def release(self, c):
        """Free the connection's slot."""
        if c.listener is None:
            self._slot_freed()            # a table slot (the listener's was freed before)
        self.let_go(c)
        c.state = _ST_CLOSED
        for i in range(len(c.q_obj)):
            c.q_obj[i] = None
        c.q_count = 0
        c.handler = None
        c.data = None
        c.rexmit_on = c.delack_on = c.persist_on = False
        c.output_pending = False
        if self.reorder is not None:
            self.reorder.forget(c)

    # --- input ---

    def input(self, length, broadcast):
        s = self.stack
        buf = s.buf
        stats = self.stats
        stats["tcp_rx"] += 1
        if broadcast:
            stats["tcp_drop_broadcast"] += 1
            return
        if length < 20:
            stats["tcp_drop_header"] += 1
            return
        doff = (buf[_TRANSPORT + 12] >> 4) * 4
        if doff < 20 or doff > length:
            stats["tcp_drop_header"] += 1
            return
        # one sum from _IP_SRC: the addresses (the pseudo-header's), then the
        # segment, which ipv4 always puts right after them (options stripped)
        if sum16(buf, _IP_SRC, 8 + length, _PROTO_TCP + length) != 0xFFFF:
            stats["tcp_drop_checksum"] += 1
            return
        mss = self._parse_options(doff) if doff > 20 else 0
        if mss < 0:
            stats["tcp_drop_options"] += 1
            return
        sport = (buf[_TRANSPORT] << 8) | buf[_TRANSPORT + 1]
        dport = (buf[_TRANSPORT + 2] << 8) | buf[_TRANSPORT + 3]
        hi = (buf[_IP_SRC] << 8) | buf[_IP_SRC + 1]
        lo = (buf[_IP_SRC + 2] << 8) | buf[_IP_SRC + 3]
        flags = buf[_TRANSPORT + 13]
        c = self._last                      # the connection of the previous segment, most likely
        if c is None or c.state == _ST_CLOSED or c.lport != dport or c.rport != sport or \
                c.rip_lo != lo or c.rip_hi != hi:
            c = self._find(hi, lo, sport, dport)
            self._last = c
        self.busy = True
        try:
            if c is not None and c.state == _ST_TIME_WAIT and flags & (SYN | ACK) == SYN and \
                    seq_diff(get16(buf, _TRANSPORT + 4), get16(buf, _TRANSPORT + 6),
                             c.rcv_base_hi, c.rcv_base_lo) > c.rcv_nxt:
                self.release(c)           # RFC 6191 style: a new incarnation may reuse the pair
                stats["tcp_timewait_recycled"] += 1
                c = None
            if c is None:
                self._no_connection(length, doff, flags, mss, hi, lo, sport, dport)
            elif c.state == _ST_ESTABLISHED and flags & ~PSH == ACK and self._predicted(c, length, doff):
                pass                      # the common case, done by header prediction
            elif c.state == _ST_SYN_SENT:
                self._more().syn_sent(self, c, length, doff, flags, mss)
            else:
                self._segment(c, length, doff, flags)
        finally:
            self.busy = False

    def _predicted(self, c, length, doff):
        """Header prediction (Van Jacobson, RFC 1323 appendix): the next in-order
        segment of an established connection, a pure ACK of new data or data
        with an ACK that is not old, no window to probe, no recovery, nothing
        held out of order. Does what _segment would do, with a fraction of the
        work; False (nothing changed) sends the segment down the full path."""
        buf = self.stack.buf
        d_lo = ((buf[_TRANSPORT + 6] << 8) | buf[_TRANSPORT + 7]) - c.rcv_base_lo
        d_hi = ((buf[_TRANSPORT + 4] << 8) | buf[_TRANSPORT + 5]) - c.rcv_base_hi
        if d_lo < 0:
            d_lo += 0x10000
            d_hi -= 1
        if ((d_hi & 0xFFFF) << 16) + d_lo != c.rcv_nxt:
            return False
        a_lo = ((buf[_TRANSPORT + 10] << 8) | buf[_TRANSPORT + 11]) - c.snd_base_lo
        a_hi = ((buf[_TRANSPORT + 8] << 8) | buf[_TRANSPORT + 9]) - c.snd_base_hi
        if a_lo < 0:
            a_lo += 0x10000
            a_hi -= 1
        a_hi &= 0xFFFF
        if a_hi > 0x1FFF:
            return False
        ack = (a_hi << 16) + a_lo
        dlen = length - doff
        wnd = (buf[_TRANSPORT + 14] << 8) | buf[_TRANSPORT + 15]
        if ack < c.snd_una or ack > c.snd_max or (dlen == 0 and ack == c.snd_una) or \
                wnd == 0 or c.persist_on or c.in_recovery or c.dupacks or c.fin_queued or \
                c.stopped or dlen > c.window or c.resend_head or c.fin_at or \
                (self.reorder is not None and self.reorder.held):
            return False
        events = self._new_ack(c, ack) if ack > c.snd_una else 0
        seq = c.rcv_nxt
        c.snd_wnd = wnd                       # in order, so always a window update
        if wnd > c.max_snd_wnd:
            c.max_snd_wnd = wnd
        c.snd_wl1 = seq
        c.snd_wl2 = ack
        now = self.stack.now
        if dlen:
            c.rcv_nxt = seq + dlen
            c.data = self.stack.view(_TRANSPORT + doff, dlen)
            events |= _NEWDATA
            self._ack_in_order(c, now)
        c.last_rx = now
        c.keepalive_probes = 0
        if events:
            if c.handler is not None:
                c.handler(c, events)
            c.data = None
        if c.state != _ST_CLOSED:
            if c.q_count or c.out_len or c.fin_queued:
                self.output(c)
            elif c.ack_now:                   # what output() would send: a pure ACK
                c.output_pending = False
                self._send_segment(c, c.snd_max, 0, ACK)
            if c.rcv_nxt > _REBASE:
                self._more().rebase_receive(self, c)
        return True

    def _ack_in_order(self, c, now):
        """An in-order data segment arrived: ACK it at once or arm the delayed ACK.
        RFC 1122: at least every second segment; RFC 5681 4.2: at once when it
        fills a gap; and for a while at the start and after a loss (quick ACKs),
        so the peer's window grows without waiting for our delayed-ACK timer."""
        c.unacked_segs += 1
        if c.unacked_segs >= 2 or c.gap or c.quickacks:
            c.ack_now = True
            c.gap = False
            if c.quickacks:
                c.quickacks -= 1
        elif not c.delack_on:
            c.delack_on = True
            c.delack_at = ticks_add(now, self.delack_ms)

    def _parse_options(self, doff):
        """The peer's MSS from the options, 0 when absent, -1 when malformed."""
        buf = self.stack.buf
        i = _TRANSPORT + 20
        end = _TRANSPORT + doff
        mss = 0
        self._sack_perm = False
        self.sack_len = 0
        while i < end:
            kind = buf[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            if i + 1 >= end:
                return -1
            olen = buf[i + 1]
            if olen < 2 or i + olen > end:
                return -1
            if kind == 2:
                if olen != 4:
                    return -1
                mss = get16(buf, i + 2)
            elif kind == 4:
                self._sack_perm = True
            elif kind == 5 and (olen - 2) & 7 == 0:
                self.sack_at = i + 2
                self.sack_len = olen - 2
            i += olen
        return mss

    def _find(self, hi, lo, rport, lport):
        for c in self.conns:
            if c.state != _ST_CLOSED and c.lport == lport and c.rport == rport and \
                    c.rip_lo == lo and c.rip_hi == hi:
                return c
        return None

    def _no_connection(self, length, doff, flags, mss, hi, lo, sport, dport):
        """A segment for no connection: a SYN to a listener gets a SYN cookie, the
        ACK that returns one makes the connection; anything else a RST."""
        if flags & RST:
            return
        if not flags & SYN or not flags & (ACK | FIN):
            for lst in self.listeners:
                if lst is not None and lst.port == dport:
                    if flags & SYN:
                        self._cookie_syn_ack(doff, mss, hi, lo, sport, dport, lst)
                        return
                    if flags & ACK and self._cookie_accept(lst, length, doff, flags, hi, lo, sport, dport):
                        return
        self._reset_reply(length, doff, flags)

    # --- SYN cookies: no state per half-open connection ---
    # Our ISN for a SYN to a listener: 4 bits of time (65.5 s steps), then 28
    # bits of a keyed hash of the addresses, ports, the peer's ISN and the time,
    # plus 6 bits of data (the MSS as an index into _COOKIE_MSS, SACK-permitted,
    # window 0 given): a forged ACK is taken once in 2**22 tries, as Linux's (an
    # empty one, which may be a window probe, is checked twice: 2**21).
    # The ACK that comes back carries ISN + 1: the connection is made then, when
    # the hash checks out and a slot is free; a flood of SYNs costs nothing.

    def _hash_tuple(self, hi, lo, lport, rport):
        """Our address, the peer's (hi.lo) and the ports: the first 12 bytes of
        the hash input, for an ISN and for a cookie alike."""
        d = self._hash_in
        ip = self.stack.ip
        d[0] = ip[0]
        d[1] = ip[1]
        d[2] = ip[2]
        d[3] = ip[3]
        d[4] = hi >> 8
        d[5] = hi & 0xFF
        d[6] = lo >> 8
        d[7] = lo & 0xFF
        d[8] = lport >> 8
        d[9] = lport & 0xFF
        d[10] = rport >> 8
        d[11] = rport & 0xFF
        return d

    def _syn_options(self, sack):
        """The options of a SYN or SYN-ACK at _TCP_DATA: our MSS, and SACK-permitted
        when sack; returns the header length."""
        buf = self.stack.buf
        buf[_TCP_DATA] = 2                     # MSS
        buf[_TCP_DATA + 1] = 4
        put16(buf, _TCP_DATA + 2, self.our_mss)
        if not sack:
            return 24
        buf[_TCP_DATA + 4] = 1                 # NOP, NOP, SACK permitted
        buf[_TCP_DATA + 5] = 1
        buf[_TCP_DATA + 6] = 4
        buf[_TCP_DATA + 7] = 2
        return 28

    def _cookie_hash(self, hi, lo, sport, dport, ihi, ilo, slot):
        """Into self._ch (12 bits) and self._cl (16 bits); no tuple (no allocation)."""
        d = self._hash_tuple(hi, lo, dport, sport)
        d[12] = ihi >> 8
        d[13] = ihi & 0xFF
        d[14] = ilo >> 8
        d[15] = ilo & 0xFF
        d[16] = slot
        h = self._isn_out
        isn_hash(ISN_KEY, d, 20, h)
        self._ch = ((h[0] & 15) << 8) | h[1]
        self._cl = (h[2] << 8) | h[3]

    def _cookie_data(self, hi, lo, sport, dport, shi, slo, ahi, alo, slot):
        """The data bits of our ISN ahi.alo if it is the cookie of that SYN
        (0..63), else a number above 63."""
        self._cookie_hash(hi, lo, sport, dport, shi, slo, slot)
        return ((((ahi & 0xFFF) << 16) | alo) - ((self._ch << 16) | self._cl)) & 0xFFFFFFF

    def _cookie_syn_ack(self, doff, mss, hi, lo, sport, dport, lst):
        """Answer the SYN in the buffer with a SYN-ACK whose ISN is the cookie,
        in place (to the frame's own sender: no ARP needed)."""
        s = self.stack
        buf = s.buf
        ihi = (buf[_TRANSPORT + 4] << 8) | buf[_TRANSPORT + 5]
        ilo = (buf[_TRANSPORT + 6] << 8) | buf[_TRANSPORT + 7]
        sack = doff > 20 and self._sack_perm and self.sack_on
        m = mss or 536
        idx = 15
        while idx and _COOKIE_MSS[idx] > m:
            idx -= 1
        if sack:
            idx += 16
        win = lst.window
        if self.wait_slots:               # no more open windows than free slots: the
            if lst.count + lst.invited >= lst.backlog or self.waiting is not None and self.waiting.count:
                win = 0                   # rest wait in tcp_wait, not in retransmissions
                idx += 32
            else:
                lst.invited += 1
        slot = (s.now >> 16) & 15
        self._cookie_hash(hi, lo, sport, dport, ihi, ilo, slot)
        clo = self._cl + idx
        chi = (slot << 12) | ((self._ch + (clo >> 16)) & 0xFFF)
        s.ipv4.prepare_reply()
        # the header in byte stores: a put16 call each costs twice as much here
        buf[_TRANSPORT] = dport >> 8
        buf[_TRANSPORT + 1] = dport & 0xFF
        buf[_TRANSPORT + 2] = sport >> 8
        buf[_TRANSPORT + 3] = sport & 0xFF
        buf[_TRANSPORT + 4] = chi >> 8
        buf[_TRANSPORT + 5] = chi & 0xFF
        buf[_TRANSPORT + 6] = (clo >> 8) & 0xFF
        buf[_TRANSPORT + 7] = clo & 0xFF
        ilo += 1                              # we acknowledge the peer's SYN
        if ilo > 0xFFFF:
            ilo = 0
            ihi = (ihi + 1) & 0xFFFF
        buf[_TRANSPORT + 8] = ihi >> 8
        buf[_TRANSPORT + 9] = ihi & 0xFF
        buf[_TRANSPORT + 10] = ilo >> 8
        buf[_TRANSPORT + 11] = ilo & 0xFF
        hlen = self._syn_options(sack)
        buf[_TRANSPORT + 12] = hlen << 2
        buf[_TRANSPORT + 13] = SYN | ACK
        buf[_TRANSPORT + 14] = win >> 8
        buf[_TRANSPORT + 15] = win & 0xFF
        buf[_TRANSPORT + 16] = buf[_TRANSPORT + 17] = buf[_TRANSPORT + 18] = buf[_TRANSPORT + 19] = 0
        put16(buf, _TRANSPORT + 16, ~sum16(buf, _IP_SRC, 8 + hlen, _PROTO_TCP + hlen) & 0xFFFF)
        s.stats["tcp_syn_cookies"] += 1
        s.stats["tcp_tx"] += 1
        s.ipv4.send_reply(_PROTO_TCP, hlen)

    def _cookie_accept(self, lst, length, doff, flags, hi, lo, sport, dport):
        """The ACK in the buffer returns one of our cookies: make the connection
        and handle the segment (True).  False (a RST goes back) when it cannot be
        one of ours.  A segment whose time slot is recent but whose hash does
        not check is dropped without a RST: it may be a later segment of the
        client's first flight that overtook the first (the hash covers the
        client's ISN, which only the first one gives); its retransmission comes
        after the first has made the connection.  A client that was given a
        zero window and finds no slot waits in tcp_wait."""
        s = self.stack
        buf = s.buf
        stats = self.stats
        alo = get16(buf, _TRANSPORT + 10) - 1  # our ISN = ack - 1
        ahi = get16(buf, _TRANSPORT + 8)
        if alo < 0:
            alo += 0x10000
            ahi = (ahi - 1) & 0xFFFF
        slot = ahi >> 12
        if ((s.now >> 16) - slot) & 15 > 2:   # older than 2-3 minutes: stale
            return False
        slo = get16(buf, _TRANSPORT + 6) - 1   # the peer's ISN = seq - 1
        shi = get16(buf, _TRANSPORT + 4)
        if slo < 0:
            slo += 0x10000
            shi = (shi - 1) & 0xFFFF
        data = self._cookie_data(hi, lo, sport, dport, shi, slo, ahi, alo, slot)
        if data > 63 and length == doff:      # a window probe: seq = the peer's ISN
            slo += 1
            if slo > 0xFFFF:
                slo = 0
                shi = (shi + 1) & 0xFFFF
            data = self._cookie_data(hi, lo, sport, dport, shi, slo, ahi, alo, slot)
        if data > 63:
            stats["tcp_cookie_unmatched"] += 1
            return True
        waits = data > 31 and length == doff and not flags & FIN   # was told: window 0
        if not waits and lst.invited:
            lst.invited -= 1
        victim = None
        if lst.count >= lst.backlog:
            stats["tcp_syn_backlog_full"] += 1
            victim = lst.on_full() if lst.on_full is not None else None
            if victim is None:
                if waits:
                    self._wait(hi, lo, sport, dport, shi, slo, ahi, alo, data)
                return True                   # the client's next try may find a slot
            self.let_go(victim)               # its place goes to the newcomer
        c = self._cookie_conn(lst, hi, lo, sport, dport, shi, slo, ahi, alo, data)
        if c is None:
            if waits:
                self._wait(hi, lo, sport, dport, shi, slo, ahi, alo, data)
            if victim is not None:
                self.abort(victim)            # (its slot is then free for that try)
            return True
        w = self.waiting
        if w is not None and w.count:         # it may have waited, and come back on its own
            i = w.find(hi, lo, sport, dport)
            if i >= 0:
                w.remove(i)
        if waits:
            self._admit(c, get16(buf, _TRANSPORT + 14))
        else:
            self._segment(c, length, doff, flags)
        if victim is not None:
            self.abort(victim)                # reset once the newcomer's segment is handled
        return True

    def _cookie_conn(self, lst, hi, lo, sport, dport, shi, slo, ahi, alo, data):
        """The connection a returned cookie stands for, in SYN-RECEIVED; None
        when the table is full (the client's next try finds a slot later)."""
        c = self._alloc()
        if c is None:
            self.stats["tcp_syn_table_full"] += 1
            return None
        self._init_conn(c, hi, lo, sport, dport, lst.handler)
        c.listener = lst
        c.window = lst.window
        lst.count += 1
        c.state = _ST_SYN_RCVD
        c.rcv_base_hi = shi
        c.rcv_base_lo = slo
        c.rcv_nxt = 1
        c.snd_base_hi = ahi
        c.snd_base_lo = alo
        c.snd_nxt = c.snd_max = 1
        c.mss = max(MSS_FLOOR, min(_COOKIE_MSS[data & 15], self.our_mss))
        c.sack_ok = data & 16 and self.sack_on
        self.stats["tcp_accepts"] += 1
        return c

    def _admit(self, c, wnd):
        """A client that was told "window 0" gets its connection: established,
        and an ACK that opens the window, which its request follows at once."""
        c.snd_wnd = c.max_snd_wnd = wnd
        c.snd_wl1 = 0
        c.snd_wl2 = 1
        self._established(c, 1)
        self._notify(c, _CONNECTED)
        c.ack_now = True
        self.want_output(c)

    def _wait(self, hi, lo, sport, dport, shi, slo, ahi, alo, data):
        w = self.waiting
        if w is None:
            try:
                from uipy.tcp_wait import WaitRoom
                w = self.waiting = WaitRoom(self.wait_slots)
            except MemoryError:
                return                        # its next probe tries again
        if w.add(self.stack.now, hi, lo, sport, dport, shi, slo, ahi, alo, data,
                 get16(self.stack.buf, _TRANSPORT + 14)):
            self.stats["tcp_clients_waiting"] += 1

    def _established(self, c, ack):
        c.state = _ST_ESTABLISHED
        if c.rtt_seq >= 0:
            self._rtt_sample(c, ticks_diff(self.stack.now, c.rtt_start))
            c.rtt_seq = -1
        elif c.retries and c.srtt == 0:
            c.rto = c.rto_base = max(3000, self.rto_initial)   # RFC 6298 5.7: the SYN timed out
        c.snd_una = ack
        c.rexmit_on = False
        c.retries = 0
        c.cwnd = min(4 * c.mss, max(2 * c.mss, 4380))     # RFC 5681 initial window
        c.ssthresh = 65535
        c.poll_at = ticks_add(self.stack.now, self.poll_ms)

    def _segment(self, c, length, doff, flags):
        """A segment for a synchronized connection (RFC 9293 3.10.7.4)."""
        s = self.stack
        buf = s.buf
        stats = self.stats
        now = s.now
        seq = seq_diff(get16(buf, _TRANSPORT + 4), get16(buf, _TRANSPORT + 6), c.rcv_base_hi, c.rcv_base_lo)
        ack = seq_diff(get16(buf, _TRANSPORT + 8), get16(buf, _TRANSPORT + 10), c.snd_base_hi, c.snd_base_lo)
        wnd = get16(buf, _TRANSPORT + 14)
        dstart = _TRANSPORT + doff
        dlen = length - doff
        fin = 1 if flags & FIN else 0
        seglen = dlen + fin + (1 if flags & SYN else 0)
        rwnd = 0 if c.stopped else c.window
        rcv_nxt = c.rcv_nxt

        # 1. sequence number acceptable?
        if seglen == 0:
            ok = seq == rcv_nxt if rwnd == 0 else rcv_nxt <= seq < rcv_nxt + rwnd
        elif rwnd == 0:
            ok = False
        else:
            ok = rcv_nxt <= seq < rcv_nxt + rwnd or rcv_nxt <= seq + seglen - 1 < rcv_nxt + rwnd
        if not ok:
            if c.state == _ST_SYN_RCVD and flags & (SYN | ACK) == SYN and seq == 0:
                c.snd_nxt = 0                 # our SYN-ACK was lost: send it again
                self._send_syn(c)
                return
            if rwnd == 0 and seq == rcv_nxt and flags & ACK and not flags & (RST | SYN):
                dlen = fin = 0                # zero window: still take the ACK (RFC 9293)
                c.ack_now = True
            else:
                if not flags & RST:
                    stats["tcp_drop_unacceptable"] += 1
                    if c.state == _ST_TIME_WAIT and fin:
                        c.end_at = ticks_add(now, 2 * self.msl_ms)
                    self._ack_invalid(c)
                return

        # 2. RST (RFC 5961 3.2: only an exact match resets, in-window gets a challenge)
        if flags & RST:
            stats["tcp_rst_rx"] += 1
            if seq == rcv_nxt:
                if c.state == _ST_SYN_RCVD and c.listener is not None:
                    self.release(c)           # back to LISTEN
                elif c.state == _ST_CLOSING or c.state == _ST_LAST_ACK or c.state == _ST_TIME_WAIT:
                    self.release(c)
                else:
                    self._drop(c, _ABORTED, False)
            else:
                self._challenge_ack(c)
            return

        # 3. SYN in a synchronized state (RFC 5961 4.2)
        if flags & SYN:
            self._challenge_ack(c)
            return

        # 4. ACK
        if not flags & ACK:
            stats["tcp_drop_no_ack"] += 1
            return
        if seq < rcv_nxt:                     # drop the part we already have
            skip = rcv_nxt - seq
            if skip > dlen:
                if seq + dlen < rcv_nxt:
                    fin = 0
                skip = dlen
            dstart += skip
            dlen -= skip
            seq += skip
        if dlen > rwnd:
            dlen = rwnd
            fin = 0
        events = 0
        if c.state == _ST_SYN_RCVD:
            if 0 < ack <= c.snd_max:
                c.snd_wnd = c.max_snd_wnd = wnd
                c.snd_wl1 = seq
                c.snd_wl2 = ack
                self._established(c, ack)
                events = _CONNECTED
            else:
                self._reset_reply(length, doff, flags)
                return
        if ack > c.snd_max:
            c.ack_now = True                  # acknowledges something not yet sent
            self.output(c)
            return
        if ack < c.snd_una - c.max_snd_wnd:
            stats["tcp_drop_unacceptable"] += 1
            self._ack_invalid(c)              # RFC 5961 5.2: too old to be real
            return
        if doff > 20 and self.sack_len and c.sack_ok:
            m = self._sack()
            if m is not None:
                m.update(self, c)
        if ack > c.snd_una:
            events |= self._new_ack(c, ack)
        elif ack == c.snd_una and dlen == 0 and not fin and wnd == c.snd_wnd and c.snd_max > c.snd_una:
            m = self._loss()
            if m is not None:
                m.dup_ack(self, c)
        if c.snd_wl1 < seq or (c.snd_wl1 == seq and c.snd_wl2 <= ack):
            c.snd_wnd = wnd
            if wnd > c.max_snd_wnd:
                c.max_snd_wnd = wnd
            c.snd_wl1 = seq
            c.snd_wl2 = ack
            if wnd == 0 and c.snd_una < c.snd_max:
                c.retries = 0                 # the peer is alive, only full
            if wnd and c.persist_on:
                c.persist_on = False
                c.persist_backoff = 0
                c.output_pending = True
        fin_acked = c.fin_queued and c.snd_una > c.fin_off
        st = c.state
        if fin_acked:
            if st == _ST_FIN_WAIT_1:
                st = c.state = _ST_FIN_WAIT_2
                c.end_at = ticks_add(now, self.fin_wait_2_ms)
                self.let_go(c)                # closed and drained: the slot is the next client's
            elif st == _ST_CLOSING:
                st = _ST_TIME_WAIT
                self._time_wait(c, now)
            elif st == _ST_LAST_ACK:
                c.state = _ST_CLOSED               # _CLOSED was reported at the peer's FIN
                if events:
                    self._notify(c, events)
                self.release(c)
                return

        # 5. data
        if dlen > 0:
            if (1 << st) & _RECEIVING:
                if seq == c.rcv_nxt:
                    c.rcv_nxt += dlen
                    c.data = self.stack.view(dstart, dlen)
                    events |= _NEWDATA
                    self._ack_in_order(c, now)
                else:
                    stats["tcp_out_of_order"] += 1
                    c.ack_now = True          # a duplicate ACK tells the peer what is missing
                    c.gap = True
                    c.quickacks = _QUICKACKS
                    if seq > c.rcv_nxt and self.reorder_slots:
                        store = self.reorder or self._reorder_store()
                        if store is not None:
                            store.hold(c, seq, dstart, dlen)
            else:
                fin = 0
        # 6. FIN: in order it ends the stream; one that came before missing
        # data is remembered (c.fin_at) and ACKed at once (RFC 5681 4.2)
        if fin and seq + dlen != c.rcv_nxt:
            if seq + dlen > c.rcv_nxt:
                c.fin_at = seq + dlen
            c.ack_now = True
        elif fin or (c.fin_at and c.fin_at == c.rcv_nxt):
            events |= self._peer_fin(c, now)
        c.last_rx = now
        c.keepalive_probes = 0
        if events:
            self._notify(c, events)
            c.data = None
            if events & _NEWDATA and (self.reorder is not None or c.fin_at):
                m = self._loss()              # held segments, or a FIN that came early
                if m is not None:
                    m.deliver_stored(self, c)
        if c.state != _ST_CLOSED:
            self.output(c)
            if c.rcv_nxt > _REBASE:
                self._more().rebase_receive(self, c)

    def _peer_fin(self, c, now):
        """The peer's FIN, in order: the state moves on; _CLOSED the first time."""
        c.rcv_nxt += 1
        c.ack_now = True
        c.fin_at = 0
        st = c.state
        if st == _ST_ESTABLISHED or st == _ST_SYN_RCVD:
            c.state = _ST_CLOSE_WAIT
        elif st == _ST_FIN_WAIT_1:
            c.state = _ST_TIME_WAIT if c.snd_una > c.fin_off else _ST_CLOSING
            self.let_go(c)
        elif st == _ST_FIN_WAIT_2:
            c.state = _ST_TIME_WAIT
        if c.state == _ST_TIME_WAIT:
            self._time_wait(c, now)
        if c.peer_fin:
            return 0
        c.peer_fin = True
        return _CLOSED

    def _new_ack(self, c, ack):
        """Bytes up to ack were acknowledged; returns the events to report."""
        now = self.stack.now
        acked = ack - c.snd_una
        if c.rtt_seq >= 0 and ack > c.rtt_seq:
            self._rtt_sample(c, ticks_diff(now, c.rtt_start))
            c.rtt_seq = -1
        events = 0
        data_end = c.fin_off if c.fin_queued and c.fin_off < ack else ack
        una = c.snd_una
        if data_end > una and data_end > 1:   # (no min/max: a builtin call each)
            events = _ACKED
        c.snd_una = ack
        if c.snd_nxt < ack:
            c.snd_nxt = ack
        count = c.q_count
        if count:
            q = c.q_obj
            ends = c.q_end
            head = c.q_head
            while count and ends[head] <= ack:
                q[head] = None                # acknowledged: drop our reference
                c.q_start = ends[head]
                head = (head + 1) % len(q)
                count -= 1
            c.q_head = head
            c.q_count = count
        if c.out_len and ack >= c.out_off + c.out_len:
            c.out_len = 0
        # congestion window
        if c.in_recovery:
            if ack >= c.recover:              # full acknowledgement: leave recovery
                c.in_recovery = False
                c.cwnd = min(c.ssthresh, max(c.snd_max - c.snd_una, c.mss) + c.mss)
            else:                             # partial: the next hole is lost too
                c.resend_head = True
                c.cwnd = max(c.cwnd - acked + c.mss, c.mss)
        elif c.cwnd < c.ssthresh:
            c.cwnd += acked if acked < c.mss else c.mss
        else:
            c.cwnd += c.mss * c.mss // c.cwnd or 1
        if c.cwnd > _CWND_MAX:
            c.cwnd = _CWND_MAX
        c.dupacks = 0
        c.retries = 0
        c.rto = c.rto_base                    # progress: drop the backoff (as Linux does)
        if c.sack_n:                          # (set by uipy.tcp_sack: loaded)
            self.sack.prune(c, ack)           # type: ignore
        if c.snd_una >= c.snd_max:
            c.rexmit_on = False
        else:
            self._arm_rexmit(c)
        if c.snd_una > _REBASE:
            self._more().rebase_send(self, c)
        return events

    def _time_wait(self, c, now):
        """Enter TIME-WAIT for 2*MSL.  The connection no longer counts against
        its listener's limit: it holds nothing of the application's, and the
        slot is recycled first when the table fills up."""
        c.state = _ST_TIME_WAIT
        c.end_at = ticks_add(now, 2 * self.msl_ms)
        c.rexmit_on = False
        self.let_go(c)

    # --- output ---

    def output(self, c):
        """Send what the windows allow: queued data, FIN, or a due ACK."""
        c.output_pending = False
        st = c.state
        if st == _ST_CLOSED or st == _ST_SYN_SENT:
            return
        if st == _ST_SYN_RCVD:
            if c.ack_now:                     # e.g. the SYN-ACKs of a simultaneous open crossed
                self._send_segment(c, c.snd_max, 0, ACK)
            return
        if c.resend_head:                     # (set by uipy.tcp_loss: loaded)
            self.loss.resend_head(self, c)    # type: ignore
        elif not c.q_count and not c.fin_queued:
            if c.ack_now:                     # nothing queued: at most a pure ACK
                self._send_segment(c, c.snd_max, 0, ACK)
            return
        can_send = (1 << st) & _DRAINING
        mss = c.mss
        # the congestion window in whole segments (Linux counts it in packets):
        # a byte-counted cwnd would otherwise open by slivers
        cwnd = (c.cwnd + mss - 1) // mss * mss
        if c.dupacks and c.dupacks < 3 and not c.in_recovery and self.limited_transmit:
            cwnd += c.dupacks * mss           # RFC 3042: a new segment for each of the first two
        burst = _BURST                        # the rest goes with the next ACK
        while True:
            data_end = c.q_tail if (c.q_count and can_send) else c.snd_nxt
            if data_end < c.snd_nxt:
                data_end = c.snd_nxt
            flight = c.snd_nxt - c.snd_una
            room = c.snd_wnd - flight
            n = data_end - c.snd_nxt          # the least of data, MSS, window and cwnd
            if n > mss:                       # (comparisons: no builtin call)
                n = mss
            if n > room:
                n = room
            if n > cwnd - flight:
                n = cwnd - flight
            if n < 0:
                n = 0
            elif n < mss and n == room and n < data_end - c.snd_nxt and flight and \
                    n < c.max_snd_wnd >> 1 and self.sws_avoid:
                n = 0                         # a sliver of the peer's window: its next ACK opens more
            fin = c.fin_queued and can_send and c.snd_nxt + n == c.fin_off and st != _ST_CLOSE_WAIT
            if n == 0 and not fin and not c.ack_now:
                break
            flags = ACK
            if n and c.snd_nxt + n == data_end:
                flags |= PSH
            if fin:
                flags |= FIN
            fresh = c.snd_nxt >= c.snd_max
            if not fresh and n:
                self.stats["tcp_retransmits"] += 1
            if n == 0 and not fin:
                # A pure ACK carries the highest sequence number sent, not the
                # go-back point: the peer may already hold everything below it
                # and would find an older number unacceptable (as BSD does).
                self._send_segment(c, c.snd_max, 0, ACK)
                break
            off = c.snd_nxt
            ok = self._send_segment(c, off, n, flags)
            c.snd_nxt = off + n + (1 if fin else 0)
            if c.snd_nxt > c.snd_max:
                c.snd_max = c.snd_nxt
            if fresh and n and c.rtt_seq < 0:
                c.rtt_seq = off
                c.rtt_start = self.stack.now
            if (n or fin) and not c.rexmit_on:
                self._arm_rexmit(c)
            burst -= 1
            if not ok or (n == 0 and not fin) or fin or not burst:
                break
            if c.snd_nxt >= data_end and not c.fin_queued:
                break                         # all sent: no second pass to find nothing
        if c.snd_wnd == 0 and c.q_count and c.q_tail > c.snd_nxt and c.snd_una == c.snd_nxt \
                and not c.persist_on:
            # zero window with data waiting: probe instead of retransmitting
            c.persist_on = True
            c.rexmit_on = False
            c.persist_at = ticks_add(self.stack.now, c.rto_base)

    def send_out(self, c, n):
        """uIP contract: n bytes already at _TCP_DATA go out at snd_nxt, not kept."""
        fresh = c.out_len == 0
        if fresh:
            c.out_off = c.snd_nxt
            c.out_len = n
        off = c.out_off
        ok = self._send_segment(c, off, n, ACK | PSH)
        c.snd_nxt = off + n
        if c.snd_nxt > c.snd_max:
            c.snd_max = c.snd_nxt
        if c.q_tail < c.snd_nxt:
            c.q_tail = c.q_start = c.snd_nxt
        if fresh and c.rtt_seq < 0:
            c.rtt_seq = off
            c.rtt_start = self.stack.now
        if not c.rexmit_on:
            self._arm_rexmit(c)
        return ok

    def _send_syn(self, c):
        flags = SYN | ACK if c.state == _ST_SYN_RCVD else SYN
        if c.snd_max == 0:
            c.rtt_seq = 0
            c.rtt_start = self.stack.now
        self._send_segment(c, 0, 0, flags)
        c.snd_nxt = 1
        if c.snd_max < 1:
            c.snd_max = 1
        self._arm_rexmit(c)

    def _send_segment(self, c, off, n, flags):
        """Build one segment for c in the buffer and send it.  The payload comes
        from the send queue, or is already in place for send_out."""
        s = self.stack
        buf = s.buf
        payload = 0                           # the payload's sum; -1: in place, not summed
        if n:
            payload = -1 if c.out_len else self._copy_queued(c, off, n)
        hlen = 20
        if flags & SYN:
            hlen = self._syn_options(c.sack_ok if flags & ACK else self.sack_on)
        elif n == 0 and c.sack_ok and self.reorder is not None and self.reorder.held:
            m = self._sack()
            if m is not None:
                hlen = 20 + m.blocks(self, c, self.reorder)
        tlen = hlen + n
        ahi = alo = r = 0                     # a SYN: acknowledgment number 0
        if flags & ACK:
            ahi = c.rcv_base_hi
            alo = c.rcv_base_lo
            r = c.rcv_nxt
        tcp_header(buf, s.ip, c.rip, c.lport, c.rport, c.snd_base_hi, c.snd_base_lo, off, ahi, alo, r,
                   (hlen << 8) | flags, 0 if c.stopped else c.window,
                   _PROTO_TCP + tlen + payload if payload >= 0 else -1)
        if payload < 0:                       # the pseudo-header's addresses and the segment: contiguous
            v = ~sum16(buf, _IP_SRC, 8 + tlen, _PROTO_TCP + tlen)
            buf[_TRANSPORT + 16] = (v >> 8) & 0xFF
            buf[_TRANSPORT + 17] = v & 0xFF
        c.ack_now = False
        c.delack_on = False
        c.unacked_segs = 0
        s.stats["tcp_tx"] += 1
        ok = s.ipv4.send(_PROTO_TCP, tlen)
        c.tx_failed = s.ipv4.arp_pending      # retry soon, without backoff
        return ok

    def _copy_queued(self, c, off, n):
        """Copy n queued bytes from offset off to _TCP_DATA; their checksum sum."""
        buf = self.stack.buf
        dst = _TCP_DATA
        start = c.q_start
        i = c.q_head
        slots = len(c.q_obj)
        acc = 0
        for _ in range(c.q_count):
            end = c.q_end[i]
            if off < end:
                k = end - off
                if k > n:
                    k = n
                part = copy_sum(buf, dst, c.q_obj[i], off - start, k)
                if (dst - _TCP_DATA) & 1:      # began on an odd byte: its pairs are swapped
                    part = ((part & 0xFF) << 8) | (part >> 8)
                acc += part
                dst += k
                off += k
                n -= k
                if n <= 0:
                    break
            start = end
            i = (i + 1) % slots
        return (acc & 0xFFFF) + (acc >> 16)

    def _send_rst(self, c):
        self.stats["tcp_rst_tx"] += 1
        self._send_segment(c, c.snd_max, 0, RST | ACK)

    def _reset_reply(self, length, doff, flags):
        """RST for a segment that belongs to no connection (never for a RST)."""
        s = self.stack
        buf = s.buf
        if flags & RST:
            return
        seglen = length - doff + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        s.ipv4.prepare_reply()
        sport = get16(buf, _TRANSPORT)
        put16(buf, _TRANSPORT, get16(buf, _TRANSPORT + 2))
        put16(buf, _TRANSPORT + 2, sport)
        if flags & ACK:
            # seq = their ack, no ACK flag
            buf[_TRANSPORT + 4] = buf[_TRANSPORT + 8]
            buf[_TRANSPORT + 5] = buf[_TRANSPORT + 9]
            buf[_TRANSPORT + 6] = buf[_TRANSPORT + 10]
            buf[_TRANSPORT + 7] = buf[_TRANSPORT + 11]
            put16(buf, _TRANSPORT + 8, 0)
            put16(buf, _TRANSPORT + 10, 0)
            buf[_TRANSPORT + 13] = RST
        else:
            # ack = their seq + length, seq = 0
            put_seq(buf, _TRANSPORT + 8, get16(buf, _TRANSPORT + 4), get16(buf, _TRANSPORT + 6), seglen)
            put16(buf, _TRANSPORT + 4, 0)
            put16(buf, _TRANSPORT + 6, 0)
            buf[_TRANSPORT + 13] = RST | ACK
        buf[_TRANSPORT + 12] = 5 << 4
        put16(buf, _TRANSPORT + 14, 0)
        put16(buf, _TRANSPORT + 16, 0)
        put16(buf, _TRANSPORT + 18, 0)
        put16(buf, _TRANSPORT + 16, ~sum16(buf, _IP_SRC, 28, _PROTO_TCP + 20) & 0xFFFF)
        s.stats["tcp_rst_tx"] += 1
        s.stats["tcp_tx"] += 1
        s.ipv4.send_reply(_PROTO_TCP, 20)

    def _challenge_ack(self, c):
        """RFC 5961: a budget for all connections that is refilled each second to
        a random size (so an off-path attacker cannot count it down to learn
        which guess hit, CVE-2016-5696), and the per-connection gap below."""
        stats = self.stats
        if ticks_diff(self.stack.now, c.invalid_at) < self.ack_gap_ms:
            stats["tcp_ack_limited"] += 1
            return
        if self.challenge_budget <= 0:
            stats["tcp_challenge_limited"] += 1
            return
        self.challenge_budget -= 1
        stats["tcp_challenge_acks"] += 1
        self._ack_invalid(c)

    def _ack_invalid(self, c):
        """ACK a segment we did not accept: at most one per ack_gap_ms for each
        connection (RFC 5961 section 7; Linux's tcp_invalid_ratelimit), so a
        flood of forged or stray segments is not answered one for one."""
        now = self.stack.now
        if ticks_diff(now, c.invalid_at) < self.ack_gap_ms:
            self.stats["tcp_ack_limited"] += 1
            return
        c.invalid_at = now
        c.ack_now = True
        self.output(c)

    # --- timers ---

    def tick(self, now):
        if ticks_diff(now, self._budget_at) >= 1000:
            self._budget_at = now
            for lst in self.listeners:
                if lst is not None:
                    lst.invited = 0       # open SYN-ACKs of the last second: answered or lost
            self._slot_freed()            # (a waiting client a freed slot missed, if any)
            self.challenge_budget = (self.challenge_per_s >> 1) + random_u16() % (self.challenge_per_s + 1)
        self.busy = True
        try:
            for c in self.conns:
                if c.state != _ST_CLOSED:
                    self._timers(c, now)
        finally:
            self.busy = False
        self.flush()

    def _timers(self, c, now):
        st = c.state
        if st == _ST_TIME_WAIT or st == _ST_FIN_WAIT_2:
            if ticks_diff(now, c.end_at) >= 0:
                self.release(c)
                return
        if c.rexmit_on and ticks_diff(now, c.rexmit_at) >= 0:
            m = self._loss()
            if m is not None:
                m.timeout(self, c)
                if c.state == _ST_CLOSED:
                    return
        if c.delack_on and ticks_diff(now, c.delack_at) >= 0:
            c.delack_on = False
            c.ack_now = True
            c.output_pending = True
        if c.persist_on and ticks_diff(now, c.persist_at) >= 0:
            self.stats["tcp_window_probes"] += 1
            self._probe(c)
            c.persist_backoff = min(c.persist_backoff + 1, 6)
            c.persist_at = ticks_add(now, min(c.rto_base << c.persist_backoff, self.rto_max))
        if self.keepalive_ms and (1 << st) & _SENDING:
            idle = ticks_diff(now, c.last_rx)
            due = self.keepalive_ms + c.keepalive_probes * self.keepalive_interval_ms
            if idle >= due:
                if c.keepalive_probes >= self.keepalive_count:
                    self.stats["tcp_timeouts"] += 1
                    self._drop(c, _TIMEDOUT, True)
                    return
                c.keepalive_probes += 1
                self.stats["tcp_keepalives"] += 1
                self._probe(c)
        if (1 << st) & _SENDING and ticks_diff(now, c.poll_at) >= 0:
            c.poll_at = ticks_add(now, self.poll_ms)
            self._notify(c, _POLL)
            c.output_pending = True

    def _probe(self, c):
        """An ACK with an old sequence number: the peer answers with its window."""
        self._send_segment(c, c.snd_una - 1, 0, ACK)

    def _arm_rexmit(self, c):
        c.rexmit_on = True
        # after an ARP miss: try again as often as ARP asks (the reply resends at once)
        c.rexmit_at = ticks_add(self.stack.now, self.stack.arp.retry_ms if c.tx_failed else c.rto)

    def _rtt_sample(self, c, r):
        if r < 1:
            r = 1
        if c.srtt == 0:
            c.srtt = r << 3
            c.rttvar = r << 1
        else:
            delta = r - (c.srtt >> 3)
            c.srtt += delta
            if delta < 0:
                delta = -delta
            c.rttvar += delta - (c.rttvar >> 2)
        var = c.rttvar
        rto = (c.srtt >> 3) + (var if var > 10 else 10)   # (comparisons: no builtin calls)
        if rto > self.rto_max:
            rto = self.rto_max
        if rto < self.rto_min:
            rto = self.rto_min
        c.rto = c.rto_base = rto

    # --- helpers ---

    def _notify(self, c, events):
        if c.handler is not None:
            c.handler(c, events)

    def _drop(self, c, event, send_rst):
        """End the connection with _ABORTED or _TIMEDOUT."""
        if send_rst:
            self._send_rst(c)
        c.state = _ST_CLOSED
        self._notify(c, event)
        self.release(c)

    def _alloc(self):
        """A free slot, or the oldest TIME-WAIT one recycled; None when full."""
        oldest = None
        for c in self.conns:
            if c.state == _ST_CLOSED:
                return c
            if c.state == _ST_TIME_WAIT and (oldest is None or ticks_diff(c.end_at, oldest.end_at) < 0):
                oldest = c
        if oldest is not None:
            self.stats["tcp_timewait_recycled"] += 1
            self.release(oldest)
        return oldest

    def _init_conn(self, c, hi, lo, rport, lport, handler):
        now = self.stack.now
        c.rip_hi, c.rip_lo = hi, lo
        rip = c.rip                        # one statement each: a 4-tuple would be allocated
        rip[0] = hi >> 8
        rip[1] = hi & 0xFF
        rip[2] = lo >> 8
        rip[3] = lo & 0xFF
        c.rport = rport
        c.lport = lport
        c.handler = handler
        c.app = None
        c.data = None
        c.listener = None
        c.snd_una = c.snd_nxt = c.snd_max = 0
        c.snd_wnd = c.max_snd_wnd = 0
        c.snd_wl1 = c.snd_wl2 = 0
        c.rcv_nxt = 0
        c.window = self.window
        c.stopped = False
        c.mss = 536
        c.cwnd = c.mss
        c.ssthresh = 65535
        c.dupacks = 0
        c.recover = 0
        c.in_recovery = False
        c.srtt = c.rttvar = 0
        c.rto = c.rto_base = self.rto_initial
        c.rtt_seq = -1
        c.rexmit_on = c.delack_on = c.persist_on = False
        c.retries = 0
        c.arp_waits = 0
        c.invalid_at = ticks_add(now, -self.ack_gap_ms)
        c.sack_ok = False
        c.sack_n = 0
        c.rtx_next = 0
        c.fin_at = 0
        c.soft_error = 0
        c.unacked_segs = 0
        c.ack_now = False
        c.gap = False
        c.quickacks = _QUICKACKS
        c.persist_backoff = 0
        c.last_rx = now
        c.keepalive_probes = 0
        c.poll_at = ticks_add(now, self.poll_ms)
        c.woken = False
        c.fin_queued = False
        c.fin_off = 0
        c.peer_fin = False
        c.q_head = c.q_count = 0
        c.q_start = c.q_tail = 1
        c.out_off = c.out_len = 0
        c.output_pending = False
        c.tx_failed = False
        c.resend_head = False
