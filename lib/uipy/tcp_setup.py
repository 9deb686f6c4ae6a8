"""TCP set-up: the checks and the building of a Tcp (its settings, connection
table, reorder store) and of a listener, run by uipy.run and dropped after:
on a stock board code is heap, and these run at start and at listen() only.
"""
from uipy.compat import const
from uipy.tcp import STAT_NAMES, Listener
from uipy.tcp_conn import Conn, ST_CLOSED

_TCP_DATA = const(54)                 # uipy.frame's (a test checks it)


def init(tcp, stack, conns, listeners, queue_slots, window, rto_initial, rto_min, rto_max,
         max_retries, syn_retries, synack_retries, arp_wait_ms, msl_ms, fin_wait_2_ms, delack_ms,
         poll_ms, keepalive_ms, keepalive_interval_ms, keepalive_count, challenge_per_s,
         reorder_slots, limited_transmit, sws_avoid, sack, early_retransmit, ack_gap_ms, wait_slots):
    """Tcp.__init__ (the attributes are described in the class)."""
    for name, value in (("tcp_conns", conns), ("tcp_listeners", listeners),
                        ("tcp_queue_slots", queue_slots), ("tcp_window", window)):
        if not isinstance(value, int) or value < 1:
            raise ValueError("uipy: %s must be a positive int, got %r" % (name, value))
    for name in STAT_NAMES:
        stack.stats[name] = 0
    tcp.stack = stack
    tcp.stats = stack.stats
    tcp.our_mss = stack.mtu - 40
    tcp.window = min(window, 65535)
    tcp.rto_initial = rto_initial
    tcp.rto_min = rto_min
    tcp.rto_max = rto_max
    tcp.max_retries = max_retries
    tcp.syn_retries = syn_retries
    tcp.synack_retries = synack_retries
    tcp.arp_wait_ms = arp_wait_ms
    tcp.msl_ms = msl_ms
    tcp.fin_wait_2_ms = fin_wait_2_ms
    tcp.delack_ms = delack_ms
    tcp.poll_ms = poll_ms
    tcp.keepalive_ms = keepalive_ms
    tcp.keepalive_interval_ms = keepalive_interval_ms
    tcp.keepalive_count = keepalive_count
    tcp.limited_transmit = limited_transmit
    tcp.sws_avoid = sws_avoid
    tcp.sack_on = bool(sack)
    tcp.sack = None                   # uipy.tcp_sack: loaded after a loss (Tcp._sack)
    tcp.early_retransmit = early_retransmit
    tcp._sack_perm = False
    tcp.sack_at = 0
    tcp.sack_len = 0
    tcp.ack_gap_ms = ack_gap_ms
    tcp.challenge_per_s = challenge_per_s
    tcp.challenge_budget = challenge_per_s
    tcp._budget_at = stack.now
    tcp.out_view = stack.mv[_TCP_DATA:_TCP_DATA + tcp.our_mss]
    tcp.conns = [new_conn(tcp, queue_slots) for _ in range(conns)]
    tcp._hash_in = bytearray(20)
    tcp._isn_out = bytearray(4)
    tcp._ch = tcp._cl = 0
    tcp._last = None
    # the reorder store: by default a window's worth after one lost segment;
    # made at the first segment after a gap (Tcp._reorder_store)
    if reorder_slots is None:
        reorder_slots = max(0, tcp.window // tcp.our_mss - 1)
    tcp.reorder_slots = reorder_slots
    tcp.reorder = None
    tcp.listeners = [None] * listeners
    tcp.wait_slots = wait_slots
    tcp.waiting = None
    tcp.more = None
    tcp.loss = None
    tcp._admit_due = False
    tcp.busy = False
    tcp.pending = False
    tcp.wakeups = False


def new_conn(tcp, queue_slots):
    """A connection slot (Conn has no constructor: its body runs here once):
    what Tcp._init_conn leaves to the callers that open a connection, then
    the rest as _init_conn sets it for each one."""
    c = Conn()
    c.tcp = tcp
    c.state = ST_CLOSED
    c.rip = bytearray(4)
    c.out = tcp.out_view
    c.snd_base_hi = c.snd_base_lo = c.rcv_base_hi = c.rcv_base_lo = 0
    c.rtt_start = c.rexmit_at = c.delack_at = c.persist_at = c.end_at = 0
    c.sack_l = c.sack_r = None        # made by uipy.tcp_sack with the first blocks
    c.q_obj = [None] * queue_slots
    c.q_end = [0] * queue_slots
    tcp._init_conn(c, 0, 0, 0, 0, None)
    return c


def listen(tcp, port, handler, backlog, window, on_full):
    """Tcp.listen."""
    if not 0 < port < 65536:
        raise ValueError("uipy: TCP port %r out of range 1..65535" % (port,))
    if backlog < 1:
        raise ValueError("uipy: backlog must be at least 1")
    free = -1
    for i in range(len(tcp.listeners)):
        lst = tcp.listeners[i]
        if lst is not None and lst.port == port:
            raise ValueError("uipy: TCP port %d is already listening" % port)
        if lst is None and free < 0:
            free = i
    if free < 0:
        raise ValueError("uipy: listener table full (tcp_listeners=%d)" % len(tcp.listeners))
    tcp.listeners[free] = Listener(port, handler, backlog, min(window, 65535) or tcp.window, on_full)
