"""TCP: recovery from losses, loaded by uipy.tcp at the first one: the
retransmission timeout (and the resend after an ARP miss), duplicate ACKs and
fast retransmit (RFC 5681, NewReno RFC 6582, early retransmit RFC 5827),
resending the first unacknowledged segment or the next SACK hole, and handing
over what the reorder store held. On a stock board code is heap: a device on a
clean LAN never holds these. Functions of the Tcp engine, which they take as
their first argument.
"""
from uipy.tcp import ACK, FIN
from uipy.tcp_conn import NEWDATA, REXMIT, TIMEDOUT, ST_CLOSED, ST_SYN_SENT, ST_SYN_RCVD, RECEIVING


def timeout(tcp, c):
    """The retransmission timer fired, or the ARP reply came for a segment
    that met a miss (c.tx_failed: then it is no loss and no retry: the
    neighbour has arp_wait_ms to answer again, RFC 1122 4.2.3.5)."""
    stats = tcp.stats
    syn = c.state == ST_SYN_SENT or c.state == ST_SYN_RCVD
    arp_miss = c.tx_failed
    if arp_miss:
        c.arp_waits += 1
        if c.arp_waits * tcp.stack.arp.retry_ms > tcp.arp_wait_ms:
            stats["tcp_timeouts"] += 1
            tcp._drop(c, TIMEDOUT, False)    # the RST would only become an ARP request
            return
    else:
        c.retries += 1
        if c.retries > (tcp.max_retries if not syn else
                        tcp.syn_retries if c.state == ST_SYN_SENT else tcp.synack_retries):
            stats["tcp_timeouts"] += 1
            tcp._drop(c, TIMEDOUT, not syn)
            return
        c.rto = min(c.rto * 2, tcp.rto_max)
        stats["tcp_retransmits"] += 1     # (a segment that met an ARP miss never left)
    if c.retries >= 2:
        tcp.stack.ipv4.next_hop_unconfirmed(c.rip_hi, c.rip_lo)
    c.rtt_seq = -1
    if syn:
        c.snd_nxt = 0
        tcp._send_syn(c)
        return
    if not arp_miss:                      # a loss: RFC 5681 3.1
        c.sack_n = 0                      # RFC 2018: SACK information is not kept past a timeout
        c.ssthresh = max((c.snd_max - c.snd_una) // 2, 2 * c.mss)
        c.cwnd = c.mss
        c.in_recovery = False
        c.dupacks = 0
        c.recover = c.snd_max
    c.snd_nxt = c.snd_una                 # go back: resend from the first unacknowledged byte
    c.rexmit_on = False
    if c.out_len:
        tcp._notify(c, REXMIT)
    else:
        tcp.output(c)
    if not c.rexmit_on and not c.persist_on and c.snd_una < c.snd_max:
        tcp._arm_rexmit(c)


def dup_ack(tcp, c):
    """A duplicate ACK: limited transmit (RFC 3042), then fast retransmit at
    the threshold, and in recovery a new hole or an inflated window."""
    tcp.stats["tcp_dup_acks"] += 1
    c.dupacks += 1
    if c.dupacks < 3 and tcp.limited_transmit:
        c.output_pending = True           # limited transmit may send new data
        tcp.pending = True
    thresh = 3
    if tcp.early_retransmit and (not c.q_count or c.q_tail <= c.snd_max):
        segs = (c.snd_max - c.snd_una + c.mss - 1) // c.mss
        if 1 < segs < 4:
            thresh = segs - 1             # RFC 5827: fewer than 3 duplicate ACKs can come
    if c.dupacks == thresh and not c.in_recovery and c.snd_una >= c.recover:
        tcp.stats["tcp_fast_retransmits"] += 1
        c.ssthresh = max((c.snd_max - c.snd_una) // 2, 2 * c.mss)
        c.recover = c.snd_max
        c.in_recovery = True
        c.resend_head = True
        c.rtx_next = c.snd_una
        c.cwnd = c.ssthresh + 3 * c.mss
    elif c.in_recovery and c.sack_n and tcp.sack.next_hole(c)[0] >= 0:   # (sack_n: tcp_sack loaded)
        c.resend_head = True              # a segment left the network: the next hole goes
        c.output_pending = True
        tcp.pending = True
    elif c.in_recovery:
        c.cwnd += c.mss                   # a segment has left the network
        c.output_pending = True
        tcp.pending = True


def resend_head(tcp, c):
    """Send the first unacknowledged segment again (fast retransmit, partial
    ACK), or with SACK the next hole.  Called from output(), after any
    received data was delivered: the segment is built in the buffer that
    held it."""
    c.resend_head = False
    if c.sack_n and not c.out_len:           # (sack_n: tcp_sack loaded)
        start, end = tcp.sack.next_hole(c)
        if start < 0:
            return                        # every hole resent once: new data may follow
        n = min(end - start, c.mss)
        tcp.stats["tcp_retransmits"] += 1
        tcp.stats["tcp_sack_retransmits"] += 1
        c.rtt_seq = -1
        c.rtx_next = start + n
        tcp._send_segment(c, start, n, ACK)
        tcp._arm_rexmit(c)
        return
    tcp.stats["tcp_retransmits"] += 1
    c.rtt_seq = -1                        # Karn: no sample from a retransmission
    if c.out_len:
        c.snd_nxt = c.snd_una
        tcp._notify(c, REXMIT)
        return
    end = c.q_tail if c.q_count else c.snd_una
    n = min(end - c.snd_una, c.mss)
    flags = ACK
    if c.fin_queued and c.snd_una + n == c.fin_off and c.snd_max > c.fin_off:
        flags |= FIN
    if n > 0 or flags & FIN:
        tcp._send_segment(c, c.snd_una, n, flags)
        tcp._arm_rexmit(c)


def deliver_stored(tcp, c):
    """Hand over held segments that now follow on in order."""
    store = tcp.reorder
    while store is not None and c.state != ST_CLOSED and not c.stopped:
        data = store.next_for(c)
        if data is None:
            break
        c.ack_now = True
        c.data = data
        tcp._notify(c, NEWDATA)
        c.data = None
    if c.fin_at and c.fin_at == c.rcv_nxt and (1 << c.state) & RECEIVING:
        events = tcp._peer_fin(c, tcp.stack.now)     # the FIN that came early
        if events:
            tcp._notify(c, events)
