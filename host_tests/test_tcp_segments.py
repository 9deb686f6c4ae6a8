"""TCP against hand-made segments (scapy): RST rules, challenge ACKs, options,
segments for no connection.  The peer here is the test itself."""
import pytest
from scapy.all import ARP, Ether, IP, TCP, raw

from nethelpers import PEER_MAC, US_MAC, make_stack
from tcphelpers import Recorder

PEER, US = "198.18.0.1", "198.18.0.2"
PEER_ISN = 1000000


def seg(flags, seq, ack=0, sport=40000, dport=80, payload=b"", window=8192, options=None):
    t = TCP(sport=sport, dport=dport, flags=flags, seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF,
            window=window, options=options or [])
    return raw(Ether(src=PEER_MAC, dst=US_MAC) / IP(src=PEER, dst=US) / t / payload)


def fix_tcp_checksum(frame):
    from uipy.compat import sum16
    tlen = len(frame) - 34
    frame[50:52] = b"\x00\x00"
    c = ~sum16(frame, 34, tlen, sum16(frame, 26, 8, 6 + tlen)) & 0xFFFF
    frame[50:52] = c.to_bytes(2, "big")
    return bytes(frame)


def tcp_of(frame):
    return Ether(frame)[TCP]


def accepted_conn(**kw):
    """A stack with a listener and one connection established by the test."""
    stack, nic, clock = make_stack(**kw)
    nic.push(raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER, pdst=US)))
    stack.poll()
    nic.take()
    rec = Recorder()
    stack.listen(80, rec)
    nic.push(seg("S", PEER_ISN, options=[("MSS", 1000)]))
    stack.poll()
    (synack,) = nic.take()
    t = tcp_of(synack)
    assert t.flags == "SA" and t.ack == PEER_ISN + 1
    assert ("MSS", 1460) in t.options
    iss = t.seq
    nic.push(seg("A", PEER_ISN + 1, iss + 1))
    stack.poll()
    assert rec.saw("CONNECTED") and rec.conn.mss == 1000
    return stack, nic, clock, rec, iss


def test_rst_for_segment_to_closed_port():
    stack, nic, clock = make_stack()
    nic.push(seg("S", 5000, dport=9))
    stack.poll()
    (rst,) = nic.take()
    t = tcp_of(rst)
    assert t.flags == "RA" and t.seq == 0 and t.ack == 5001
    nic.push(seg("A", 5000, 777777, dport=9, payload=b"data"))
    stack.poll()
    t = tcp_of(nic.take()[0])
    assert t.flags == "R" and t.seq == 777777


def test_no_rst_in_reply_to_rst():
    stack, nic, clock = make_stack()
    nic.push(seg("R", 5000, dport=9))
    nic.push(seg("RA", 5000, 1, dport=9))
    stack.poll()
    assert nic.take() == []


def test_exact_rst_aborts_and_in_window_rst_gets_challenge_ack():
    stack, nic, clock, rec, iss = accepted_conn()
    nic.push(seg("R", PEER_ISN + 1 + 100))          # in window, not exact
    stack.poll()
    (ack,) = nic.take()
    assert tcp_of(ack).flags == "A" and tcp_of(ack).ack == PEER_ISN + 1
    assert rec.conn.state_name() == "ESTABLISHED" and stack.stats["tcp_challenge_acks"] == 1
    nic.push(seg("R", PEER_ISN + 1 + 100000))       # outside the window: ignored
    stack.poll()
    assert nic.take() == [] and rec.conn.state_name() == "ESTABLISHED"
    nic.push(seg("R", PEER_ISN + 1))                # exact
    stack.poll()
    assert rec.events[-1][1] == ["ABORTED"] and rec.conn.state_name() == "CLOSED"


def test_syn_on_established_gets_challenge_ack():
    stack, nic, clock, rec, iss = accepted_conn()
    nic.push(seg("S", PEER_ISN + 50))
    stack.poll()
    (ack,) = nic.take()
    assert tcp_of(ack).flags == "A" and rec.conn.state_name() == "ESTABLISHED"


def test_challenge_acks_are_rate_limited():
    """One challenge ACK per ack_gap_ms for a connection, and a budget for all
    connections refilled each second to a random size (RFC 5961 7, CVE-2016-5696)."""
    stack, nic, clock, rec, iss = accepted_conn()
    for i in range(30):
        nic.push(seg("S", PEER_ISN + 50 + i))
    for _ in range(5):
        stack.poll()
    assert len(nic.take()) == 1
    assert stack.stats["tcp_ack_limited"] + stack.stats["tcp_challenge_limited"] == 29
    clock.advance(stack.tcp.ack_gap_ms)
    nic.push(seg("S", PEER_ISN + 99))
    stack.poll()
    assert len(nic.take()) == 1
    per_s = stack.tcp.challenge_per_s
    budgets = set()
    for _ in range(20):
        clock.advance(1000)
        stack.poll()
        budgets.add(stack.tcp.challenge_budget)
    assert len(budgets) > 3 and min(budgets) >= per_s // 2 and max(budgets) <= per_s // 2 + per_s


@pytest.mark.parametrize("state_setup", ["FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "LAST-ACK", "SYN-RECEIVED"])
def test_rst_in_each_state(state_setup):
    if state_setup == "SYN-RECEIVED":
        # a passive open keeps no state before the handshake completes (SYN
        # cookies): SYN-RECEIVED comes from a simultaneous open
        stack, nic, clock = make_stack()
        nic.push(raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER, pdst=US)))
        stack.poll()
        rec = Recorder()
        conn = stack.connect(PEER, 5000, rec, local_port=40000)
        nic.take()
        nic.push(seg("S", PEER_ISN, sport=5000, dport=40000))
        stack.poll()
        nic.take()
        assert conn.state_name() == "SYN-RECEIVED"
        nic.push(seg("R", PEER_ISN + 1, sport=5000, dport=40000))
        stack.poll()
        assert conn.state_name() == "CLOSED" and rec.saw("ABORTED")
        return
    stack, nic, clock, rec, iss = accepted_conn()
    conn = rec.conn
    if state_setup in ("FIN-WAIT-1", "FIN-WAIT-2"):
        conn.close()
        nic.take()
        if state_setup == "FIN-WAIT-2":
            nic.push(seg("A", PEER_ISN + 1, iss + 2))
            stack.poll()
    else:
        nic.push(seg("FA", PEER_ISN + 1, iss + 1))
        stack.poll()
        if state_setup == "LAST-ACK":
            conn.close()
    nic.take()
    assert conn.state_name() == state_setup
    nic.push(seg("R", PEER_ISN + 1 + (0 if state_setup in ("FIN-WAIT-1", "FIN-WAIT-2") else 1)))
    stack.poll()
    assert conn.state_name() == "CLOSED"


def test_malformed_options_dropped_unknown_skipped():
    stack, nic, clock = make_stack()
    stack.listen(80, Recorder())
    bad = bytearray(seg("S", 1, options=[("MSS", 1400)]))
    bad[55] = 40                                   # MSS option length runs past the header
    nic.push(fix_tcp_checksum(bad))
    stack.poll()
    assert stack.stats["tcp_drop_options"] == 1 and nic.take() == []
    # unknown option kinds (here 30, length 6) and NOPs are skipped; MSS still read
    nic.push(seg("S", 1, sport=40001, options=[("NOP", None), (30, b"\x01\x02\x03\x04"), ("MSS", 1300)]))
    stack.poll()
    (synack,) = nic.take()
    nic.push(seg("A", 2, tcp_of(synack).seq + 1, sport=40001))
    stack.poll()
    conn = next(c for c in stack.tcp.conns if c.state_name() == "ESTABLISHED")
    assert conn.mss == 1300                        # one of the cookie's MSS values


def test_bad_tcp_checksum_and_short_header_dropped():
    stack, nic, clock, rec, iss = accepted_conn()
    f = bytearray(seg("A", PEER_ISN + 1, iss + 1, payload=b"hello"))
    f[-1] ^= 1
    nic.push(bytes(f))
    short = raw(Ether(src=PEER_MAC, dst=US_MAC) / IP(src=PEER, dst=US, proto=6) / (b"\x00" * 12))
    nic.push(short)
    stack.poll()
    assert stack.stats["tcp_drop_checksum"] == 1 and stack.stats["tcp_drop_header"] == 1
    assert bytes(rec.data) == b""


def test_out_of_order_segment_dropped_with_duplicate_ack():
    stack, nic, clock, rec, iss = accepted_conn()
    nic.push(seg("PA", PEER_ISN + 1 + 500, iss + 1, payload=b"later"))
    stack.poll()
    (dup,) = nic.take()
    assert tcp_of(dup).ack == PEER_ISN + 1 and stack.stats["tcp_out_of_order"] == 1
    nic.push(seg("PA", PEER_ISN + 1, iss + 1, payload=b"first"))
    stack.poll()
    assert bytes(rec.data) == b"first"


def test_old_duplicate_data_is_trimmed():
    stack, nic, clock, rec, iss = accepted_conn()
    nic.push(seg("PA", PEER_ISN + 1, iss + 1, payload=b"hello"))
    nic.push(seg("PA", PEER_ISN + 1 + 3, iss + 1, payload=b"lo world"))   # overlaps
    stack.poll()
    assert bytes(rec.data) == b"hello world"


def test_ack_for_unsent_data_gets_ack_and_is_dropped():
    stack, nic, clock, rec, iss = accepted_conn()
    nic.push(seg("PA", PEER_ISN + 1, iss + 5000, payload=b"x"))
    stack.poll()
    (ack,) = nic.take()
    assert tcp_of(ack).ack == PEER_ISN + 1 and bytes(rec.data) == b""


def test_zero_window_advertised_when_stopped_and_update_on_restart():
    stack, nic, clock, rec, iss = accepted_conn()
    rec.conn.stop()
    nic.push(seg("PA", PEER_ISN + 1, iss + 1, payload=b"x" * 10))
    stack.poll()
    (ack,) = nic.take()
    assert tcp_of(ack).window == 0 and tcp_of(ack).ack == PEER_ISN + 1 and bytes(rec.data) == b""
    rec.conn.restart()
    (update,) = nic.take()
    assert tcp_of(update).window > 0


def test_retransmitted_syn_gets_syn_ack_again():
    stack, nic, clock = make_stack()
    stack.listen(80, Recorder())
    nic.push(raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER, pdst=US)))
    nic.push(seg("S", 42))
    stack.poll()
    first = [tcp_of(f) for f in nic.take() if TCP in Ether(f)]
    nic.push(seg("S", 42))
    stack.poll()
    again = [tcp_of(f) for f in nic.take()]
    assert again[0].flags == "SA" and again[0].seq == first[0].seq


def test_isn_differs_per_connection():
    stack, nic, clock = make_stack()
    stack.listen(80, Recorder(), backlog=4)
    nic.push(raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER, pdst=US)))
    seqs = []
    for port in (40000, 40001, 40002):
        nic.push(seg("S", 1, sport=port))
        stack.poll()
        seqs += [tcp_of(f).seq for f in nic.take() if TCP in Ether(f)]
    assert len(set(seqs)) == 3


def test_peer_mss_limits_segment_size():
    stack, nic, clock, rec, iss = accepted_conn(tcp={"window": 8000})     # the peer announced MSS 1000
    rec.conn.send(b"m" * 2500)
    sizes = [len(tcp_of(f).payload) for f in nic.take()]
    assert sizes == [1000, 1000, 500]


def test_tcp_module_constants_agree_with_their_sources():
    """uipy.tcp keeps frame offsets, the protocol number and tcp_conn's event
    and state numbers as its own const()s (folded in place on MicroPython,
    where an imported name is a global lookup at each use): they must agree."""
    from uipy import frame, ipv4, tcp, tcp_conn
    for name in ("IP_SRC", "IP_DST", "TRANSPORT", "TCP_DATA"):
        assert getattr(tcp, "_" + name) == getattr(frame, name), name
    assert tcp._PROTO_TCP == ipv4.PROTO_TCP
    for name in ("CONNECTED", "NEWDATA", "ACKED", "REXMIT", "POLL", "CLOSED", "ABORTED", "TIMEDOUT",
                 "ST_CLOSED", "ST_SYN_SENT", "ST_SYN_RCVD", "ST_ESTABLISHED", "ST_FIN_WAIT_1",
                 "ST_FIN_WAIT_2", "ST_CLOSE_WAIT", "ST_CLOSING", "ST_LAST_ACK", "ST_TIME_WAIT",
                 "RECEIVING", "SENDING", "DRAINING", "SYNCHRONIZED"):
        assert getattr(tcp, "_" + name) == getattr(tcp_conn, name), name


def test_other_modules_constants_agree_with_their_sources():
    """The same for uipy.udp, uipy.tcp_sack and uipy.httpd's private copies."""
    from uipy import frame, httpd, ipv4, tcp_conn, tcp_sack, udp
    for name in ("IP_SRC", "IP_DST", "TRANSPORT", "UDP_DATA"):
        assert getattr(udp, "_" + name) == getattr(frame, name), name
    assert udp._PROTO_UDP == ipv4.PROTO_UDP
    assert tcp_sack._TCP_DATA == frame.TCP_DATA
    from uipy import tcp_more
    assert tcp_more._TRANSPORT == frame.TRANSPORT
    from uipy import tcp_setup
    assert tcp_setup._TCP_DATA == frame.TCP_DATA
    from uipy import arp
    assert ipv4._ARP_RESOLVED == arp._RESOLVED
    for name in ("CONNECTED", "NEWDATA", "ACKED", "POLL", "CLOSED", "ABORTED", "TIMEDOUT"):
        assert getattr(httpd, "_" + name) == getattr(tcp_conn, name), name


# MicroPython's map sizes (py/map.c): an instance's attribute table grows only
# when it is full, to the next of these
_MAP_SIZES = (0, 2, 4, 6, 8, 10, 12, 17, 23, 29, 37, 47, 59, 73, 97, 127, 167, 223)


def attribute_table_fill(obj):
    n = len(vars(obj))
    return n, next(size for size in _MAP_SIZES if size >= n)


def test_tcp_objects_leave_room_in_their_attribute_tables():
    """A method call on an instance looks for the name in the instance's own
    attribute table first, probing until an empty slot: in a table that is
    nearly full that is most of the table, on every call. Tcp with 47
    attributes (a full table of 47) made a segment 50-90 us slower on an
    RP2040 than with 48 (a table of 59). Keep the hot objects at most 85%
    full: add or remove attributes to move them out of the slow band."""
    stack, nic, clock = make_stack()
    stack.listen(80, lambda c, e: None)
    for obj in (stack.tcp, stack.tcp.conns[0]):
        n, size = attribute_table_fill(obj)
        assert n <= 0.85 * size, "%s has %d attributes in a table of %d" % (type(obj).__name__, n, size)
