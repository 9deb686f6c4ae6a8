"""A TCP connection as the application sees it: events, sending, closing.

Connections live in a fixed table made when the stack starts; a slot is
reused after the connection ends.  The application gets handler(conn, events).

Sending, two ways:
- conn.send(obj): obj (bytes, str or a memoryview of data that will not
  change) is kept by reference until the peer acknowledges it, so the stack
  retransmits by itself and keeps several segments in flight.
- uIP's contract: write up to conn.mss bytes into conn.out and call
  conn.send_out(n).  The stack does not keep them: on REXMIT the handler must
  write the same bytes again.  One such segment is in flight at a time.

Sequence numbers are kept as offsets from the initial sequence numbers (the
absolute values are 32-bit and would be heap objects on 32-bit MicroPython).
"""
from uipy.compat import const

# Events (a bitmask) passed to handler(conn, events)
CONNECTED = const(1)    # the connection is established
NEWDATA = const(2)      # conn.data holds new bytes (valid during this call only)
ACKED = const(4)        # the peer acknowledged data we sent
REXMIT = const(8)       # send_out data was lost: write it again
POLL = const(16)        # idle poll, or conn.wake() was called
CLOSED = const(32)      # the peer has finished sending (FIN), or the connection ended
ABORTED = const(64)     # reset by the peer, or refused
TIMEDOUT = const(128)   # no answer after the maximum retransmissions

# States (RFC 9293)
ST_CLOSED = const(0)
ST_LISTEN = const(1)
ST_SYN_SENT = const(2)
ST_SYN_RCVD = const(3)
ST_ESTABLISHED = const(4)
ST_FIN_WAIT_1 = const(5)
ST_FIN_WAIT_2 = const(6)
ST_CLOSE_WAIT = const(7)
ST_CLOSING = const(8)
ST_LAST_ACK = const(9)
ST_TIME_WAIT = const(10)

# Sets of states as bit masks of (1 << state): testing them allocates nothing
# (a tuple of imported constants would be built at run time on MicroPython).
RECEIVING = const((1 << ST_ESTABLISHED) | (1 << ST_FIN_WAIT_1) | (1 << ST_FIN_WAIT_2))
SENDING = const((1 << ST_ESTABLISHED) | (1 << ST_CLOSE_WAIT))
DRAINING = const(SENDING | (1 << ST_FIN_WAIT_1) | (1 << ST_CLOSING) | (1 << ST_LAST_ACK))
SYNCHRONIZED = const(DRAINING | (1 << ST_SYN_RCVD) | (1 << ST_FIN_WAIT_2))
_CAN_SEND = const(SENDING | (1 << ST_SYN_SENT) | (1 << ST_SYN_RCVD))   # send() queues in these

STATE_NAMES = ("CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
               "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT")


_TYPING = const(0)
if _TYPING:                       # for the type checker only: the compiler drops it
    from typing import Any, Callable
    from uipy.tcp import Listener, Tcp


class Conn:
    """One slot of the connection table.  Made by uipy.tcp_setup.new_conn (run
    once at start and dropped: on a stock board code is heap); the attributes,
    declared for the type checker:"""
    tcp: "Tcp"
    state: int
    rip: bytearray                  # remote address
    rip_hi: int
    rip_lo: int
    rport: int
    lport: int
    listener: "Listener | None"     # the Listener that accepted us (passive open)
    handler: "Callable[[Conn, int], Any] | None"
    app: "Any"                      # free for the application's state
    data: "memoryview | None"       # received bytes during NEWDATA
    out: memoryview                 # scratch space after the headers (uIP contract)
    mss: int
    # send side: offsets from the send base (ISS at offset 0)
    snd_base_hi: int
    snd_base_lo: int
    snd_una: int
    snd_nxt: int
    snd_max: int
    snd_wnd: int
    max_snd_wnd: int
    snd_wl1: int                    # receive-side offset of the last window update
    snd_wl2: int                    # send-side offset of the last window update
    # receive side: offsets from the receive base (IRS at offset 0)
    rcv_base_hi: int
    rcv_base_lo: int
    rcv_nxt: int
    window: int                     # what the application can take
    stopped: bool
    # congestion control (RFC 5681, NewReno RFC 6582)
    cwnd: int
    ssthresh: int
    dupacks: int
    recover: int
    in_recovery: bool
    resend_head: bool               # fast retransmit due at the next output
    # SACK (RFC 2018): agreed at the handshake; the peer's blocks as up to 3
    # disjoint ranges of send offsets (sorted), and where hole resending is
    sack_ok: bool
    sack_l: "list | None"           # the peer's SACK scoreboard (made with its first blocks)
    sack_r: "list | None"
    sack_n: int
    rtx_next: int
    # round-trip time (RFC 6298), in ms; srtt scaled by 8, rttvar by 4
    srtt: int
    rttvar: int
    rto: int                        # current timeout, with backoff
    rto_base: int                   # from the RTT estimate, without backoff
    rtt_seq: int                    # send offset being timed, -1 when none
    rtt_start: int
    # timers: absolute ticks, armed flags
    rexmit_on: bool
    rexmit_at: int
    retries: int
    arp_waits: int                  # timeouts whose segment met an ARP miss (not retries)
    invalid_at: int                 # when an unacceptable segment was last ACKed
    delack_on: bool
    delack_at: int
    unacked_segs: int
    ack_now: bool
    gap: bool                       # data arrived out of order: ACK the filler at once
    quickacks: int                  # segments still to ACK at once
    persist_on: bool
    persist_at: int
    persist_backoff: int
    end_at: int                     # TIME-WAIT and FIN-WAIT-2 deadline
    last_rx: int                    # for keepalive
    keepalive_probes: int
    poll_at: int
    woken: bool
    # closing
    fin_queued: bool
    fin_off: int                    # send offset of our FIN once queued
    peer_fin: bool
    fin_at: int                     # receive offset of a FIN that came before missing data
    soft_error: int                 # ICMP unreachable code seen (reported on a timeout)
    # send queue: objects kept by reference, ring of queue_slots
    q_obj: list
    q_end: list                     # send offset just after each object
    q_head: int
    q_count: int
    q_start: int                    # send offset of the head object's first byte
    q_tail: int                     # send offset after the last queued byte
    out_off: int                    # send_out data: offset and length in flight
    out_len: int
    output_pending: bool            # output deferred until input handling ends
    tx_failed: bool                 # the last segment became an ARP request
    # --- information (methods, not properties: a class with a property makes
    # every attribute store on its instances about three times slower in
    # MicroPython, and the engine stores to connections all the time) ---

    def state_name(self):
        return STATE_NAMES[self.state]

    def remote(self):
        return "%d.%d.%d.%d" % (self.rip[0], self.rip[1], self.rip[2], self.rip[3]), self.rport

    def send_space(self):
        """Bytes that could go on the wire now (peer window and congestion window)."""
        room = min(self.snd_wnd, self.cwnd) - (self.snd_nxt - self.snd_una)
        return max(0, min(room, self.mss))

    def send_queue_free(self):
        """How many more objects conn.send() accepts now."""
        return len(self.q_obj) - self.q_count

    def unacked(self):
        """Bytes sent or queued and not yet acknowledged."""
        return self.q_tail - self.snd_una if self.q_count else self.out_len

    # --- sending ---

    def send(self, obj):
        """Queue obj for sending, kept by reference.  False when the queue is full
        (wait for ACKED) or a send_out segment is in flight."""
        if not (1 << self.state) & _CAN_SEND or self.fin_queued:
            raise OSError(107, "uipy: connection not open for sending (%s)" % self.state_name())
        if type(obj) is not bytes:    # (bytes, the common case, are kept as they are)
            if isinstance(obj, str):
                obj = obj.encode()
            elif isinstance(obj, bytearray):
                obj = bytes(obj)      # a mutable buffer could change before it is acknowledged
        n = len(obj)
        if n == 0:
            return True
        q = self.q_obj
        count = self.q_count
        if count == len(q) or self.out_len:
            return False
        tail = self.q_tail
        if count == 0:
            self.q_start = tail
        i = (self.q_head + count) % len(q)
        q[i] = obj
        tail += n
        self.q_tail = tail
        self.q_end[i] = tail
        self.q_count = count + 1
        self.tcp.want_output(self)
        return True

    def send_out(self, n):
        """uIP contract: send the n bytes written into conn.out now, not kept."""
        if not (1 << self.state) & SENDING:
            raise OSError(107, "uipy: connection not open for sending (%s)" % self.state_name())
        if self.q_count or n > self.mss:
            return False
        if self.out_len == 0 and self.send_space() < n:
            return False
        return self.tcp.send_out(self, n)

    def close(self):
        """Send FIN after the queued data; the receive side stays open until the peer's FIN."""
        st = self.state
        if st == ST_SYN_SENT:
            self.tcp.release(self)
        elif st == ST_SYN_RCVD or st == ST_ESTABLISHED:
            self._queue_fin(ST_FIN_WAIT_1)
        elif st == ST_CLOSE_WAIT:
            self._queue_fin(ST_LAST_ACK)
            self.tcp.let_go(self)      # both sides closed: only the FIN exchange remains

    def _queue_fin(self, next_state):
        if not self.fin_queued:
            self.fin_queued = True
            self.fin_off = self.q_tail   # after everything handed to us
            self.state = next_state
            self.tcp.want_output(self)

    def abort(self):
        """Reset the connection at once (RST to the peer); no further events."""
        self.tcp.abort(self)

    # --- receiving ---

    def stop(self):
        """Back-pressure: advertise a zero window until restart()."""
        self.stopped = True

    def restart(self):
        if self.stopped:
            self.stopped = False
            self.ack_now = True        # a window update, so the peer resumes
            self.tcp.want_output(self)

    def wake(self):
        """Call the handler with POLL on the next pass."""
        self.woken = True
        self.tcp.wakeups = True
