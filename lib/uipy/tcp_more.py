"""TCP: what a server rarely or never runs, loaded by uipy.tcp the first time
it is needed: the active open (connect and SYN-SENT), ICMP errors for a
connection, and moving sequence bases after 256 MB (offsets stay small ints).
On a stock board code is heap: a web server that never connects out does not
hold these.  Functions of the Tcp engine, which they take as their first
argument.
"""
from uipy.compat import const, get16, random_u16
from uipy.tcp import ACK, RST, SYN, MSS_FLOOR, ISN_KEY, isn_hash, seq_add, seq_diff
from uipy.tcp_conn import CONNECTED, ABORTED, ST_SYN_SENT, ST_SYN_RCVD

_TRANSPORT = const(34)                # uipy.frame's (a test checks it)


def connect(tcp, ip, port, handler, local_port, window):
    """Tcp.connect."""
    if not 0 < port < 65536 or not 0 <= local_port < 65536:
        raise ValueError("uipy: TCP port %r out of range 1..65535" % (port,))
    hi = (ip[0] << 8) | ip[1]
    lo = (ip[2] << 8) | ip[3]
    if local_port and tcp._find(hi, lo, port, local_port) is not None:
        raise OSError(98, "uipy: local port %d already connected there" % local_port)
    c = tcp._alloc()
    if c is None:
        raise OSError(12, "uipy: TCP connection table full (tcp_conns=%d)" % len(tcp.conns))
    tcp._init_conn(c, hi, lo, port, local_port or ephemeral_port(tcp, hi, lo, port), handler)
    c.state = ST_SYN_SENT
    if window:
        c.window = min(window, 65535)
    new_iss(tcp, c)
    tcp.stats["tcp_connects"] += 1
    tcp._send_syn(c)
    return c


def syn_sent(tcp, c, length, doff, flags, mss):
    buf = tcp.stack.buf
    stats = tcp.stats
    ack = seq_diff(get16(buf, _TRANSPORT + 8), get16(buf, _TRANSPORT + 10), c.snd_base_hi, c.snd_base_lo)
    if flags & ACK and ack != c.snd_max:
        if not flags & RST:
            tcp._reset_reply(length, doff, flags)
        return
    if flags & RST:
        if flags & ACK:               # connection refused
            stats["tcp_rst_rx"] += 1
            tcp._drop(c, ABORTED, False)
        return
    if not flags & SYN:
        return
    c.rcv_base_hi = get16(buf, _TRANSPORT + 4)
    c.rcv_base_lo = get16(buf, _TRANSPORT + 6)
    c.rcv_nxt = 1
    c.mss = max(MSS_FLOOR, min(mss or 536, tcp.our_mss))
    c.sack_ok = tcp.sack_on and doff > 20 and tcp._sack_perm
    c.snd_wnd = c.max_snd_wnd = get16(buf, _TRANSPORT + 14)
    c.snd_wl1 = 0
    if flags & ACK:
        c.snd_wl2 = ack
        tcp._established(c, ack)
        c.ack_now = True
        tcp._notify(c, CONNECTED)
        tcp.output(c)
    else:                             # simultaneous open
        c.state = ST_SYN_RCVD
        c.snd_nxt = 0
        tcp._send_syn(c)


def new_iss(tcp, c):
    """RFC 6528: a 4-microsecond clock plus a keyed hash of the connection's
    addresses and ports, in 16-bit halves: no byte strings, no large ints."""
    s = tcp.stack
    h = tcp._isn_out
    isn_hash(ISN_KEY, tcp._hash_tuple(c.rip_hi, c.rip_lo, c.lport, c.rport), 12, h)
    now = s.now
    lo = (now & 0xFFFF) * 250 + ((h[2] << 8) | h[3])
    hi = (now >> 16) * 250 + ((h[0] << 8) | h[1]) + (lo >> 16)
    c.snd_base_hi = hi & 0xFFFF
    c.snd_base_lo = lo & 0xFFFF


def ephemeral_port(tcp, hi, lo, rport):
    for _ in range(64):
        port = 49152 + random_u16() % 16384
        if tcp._find(hi, lo, rport, port) is None:
            return port
    raise OSError(98, "uipy: no free ephemeral port")


def icmp_unreachable(tcp, code, q, n):
    """ICMP destination unreachable quoting n bytes of one of our segments
    (its IP header at q in the buffer).  Protocol and port unreachable
    refuse a connection that is still opening (RFC 1122 4.2.3.9; a socket
    sees ECONNREFUSED); other codes, and any for an open connection, are
    soft errors, kept for the report if it times out (RFC 5461)."""
    s = tcp.stack
    buf = s.buf
    t = q + (buf[q] & 0x0F) * 4
    if t + 8 > q + n:
        return
    c = tcp._find(get16(buf, q + 16), get16(buf, q + 18), get16(buf, t + 2), get16(buf, t))
    if c is None:
        return
    seq = seq_diff(get16(buf, t + 4), get16(buf, t + 6), c.snd_base_hi, c.snd_base_lo)
    if not c.snd_una <= seq < max(c.snd_max, 1):
        s.stats["tcp_icmp_ignored"] += 1   # quotes nothing we have in flight (RFC 5927)
        return
    if (code == 2 or code == 3) and (c.state == ST_SYN_SENT or c.state == ST_SYN_RCVD):
        s.stats["tcp_icmp_refused"] += 1
        tcp._drop(c, ABORTED, False)
    else:
        c.soft_error = code + 1


def rebase_send(tcp, c):
    """Move the send base up so offsets stay small ints."""
    shift = c.snd_una
    c.snd_base_hi, c.snd_base_lo = seq_add(c.snd_base_hi, c.snd_base_lo, shift)
    c.snd_una -= shift
    c.snd_nxt -= shift
    c.snd_max -= shift
    c.snd_wl2 -= shift
    c.recover -= shift
    if c.rtt_seq >= 0:
        c.rtt_seq -= shift
    c.q_start -= shift
    c.q_tail -= shift
    for i in range(len(c.q_end)):
        c.q_end[i] -= shift
    c.fin_off -= shift
    c.out_off -= shift
    c.rtx_next = max(0, c.rtx_next - shift)
    for i in range(c.sack_n):
        c.sack_l[i] -= shift
        c.sack_r[i] -= shift


def rebase_receive(tcp, c):
    """Move the receive base up so offsets stay small ints."""
    shift = c.rcv_nxt
    c.rcv_base_hi, c.rcv_base_lo = seq_add(c.rcv_base_hi, c.rcv_base_lo, shift)
    c.rcv_nxt -= shift
    c.snd_wl1 -= shift
    if c.fin_at:
        c.fin_at -= shift
    if tcp.reorder is not None:
        tcp.reorder.rebase(c, shift)
