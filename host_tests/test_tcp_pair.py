"""TCP between two uipy stacks on an in-memory link, virtual clock."""
import hashlib
import os

import pytest

from faults import FaultyLink
from tcphelpers import IP_A, IP_B, Pair, Recorder
from uipy import tcp as tcp_module
from uipy.tcp_conn import ACKED, CLOSED, CONNECTED, NEWDATA, POLL, REXMIT


def established_pair(tcp_a=None, tcp_b=None, server=None, **kw):
    p = Pair(tcp_a=tcp_a, tcp_b=tcp_b, **kw)
    srv = server or Recorder()
    p.b.listen(80, srv)
    cli = Recorder()
    conn = p.a.connect(IP_B, 80, cli)
    assert p.run(3000, until=lambda: conn.state_name() == "ESTABLISHED" and srv.conn is not None)
    return p, conn, cli, srv


class Sender:
    """Sends a large payload in chunks as the queue frees up (on ACKED/POLL)."""

    def __init__(self, payload, chunk=4096, close=False):
        self.payload = payload
        self.pos = 0
        self.chunk = chunk
        self.close = close

    def pump(self, conn):
        while self.pos < len(self.payload) and conn.send_queue_free():
            piece = memoryview(self.payload)[self.pos:self.pos + self.chunk]
            assert conn.send(piece)
            self.pos += len(piece)
        if self.close and self.pos >= len(self.payload):
            conn.close()
            self.close = False


def test_active_and_passive_open_and_close_walk_every_state():
    p, conn, cli, srv = established_pair()
    assert cli.events[0] == ("ESTABLISHED", ["CONNECTED"])
    assert srv.events[0] == ("ESTABLISHED", ["CONNECTED"])
    conn.send(b"request")
    p.run(300, until=lambda: bytes(srv.data) == b"request")
    conn.close()
    assert conn.state_name() == "FIN-WAIT-1"
    p.run(300, until=lambda: srv.conn.state_name() == "CLOSE-WAIT" and conn.state_name() == "FIN-WAIT-2")
    assert srv.saw("CLOSED")
    # half-close: the server may still send after the client's FIN
    srv.conn.send(b"late reply")
    p.run(300, until=lambda: bytes(cli.data) == b"late reply")
    assert conn.state_name() == "FIN-WAIT-2"
    srv.conn.close()
    assert srv.conn.state_name() == "LAST-ACK"
    p.run(300, until=lambda: conn.state_name() == "TIME-WAIT")
    assert srv.conn.state_name() == "CLOSED" and cli.saw("CLOSED")
    p.run(2 * p.a.tcp.msl_ms + 200)
    assert conn.state_name() == "CLOSED"
    assert p.a.stats["handler_errors"] == p.b.stats["handler_errors"] == 0


def test_simultaneous_open():
    p = Pair()
    ra, rb = Recorder(), Recorder()
    # both sides connect to each other's port at once: SYNs cross
    p.a.arp.lookup_into  # noqa (ARP is resolved by the first exchange below)
    p.a.ping(IP_B, 1)
    p.run(50)
    ca = p.a.connect(IP_B, 5000, ra, local_port=6000)
    cb = p.b.connect(IP_A, 6000, rb, local_port=5000)
    states = set()
    p.run(3000, until=lambda: states.update((ca.state_name(), cb.state_name())) or
          (ca.state_name() == cb.state_name() == "ESTABLISHED"))
    assert ca.state_name() == cb.state_name() == "ESTABLISHED"
    assert "SYN-RECEIVED" in states
    assert ra.saw("CONNECTED") and rb.saw("CONNECTED")
    ca.send(b"ping")
    cb.send(b"pong")
    p.run(500, until=lambda: bytes(ra.data) == b"pong" and bytes(rb.data) == b"ping")
    assert bytes(ra.data) == b"pong" and bytes(rb.data) == b"ping"


def test_simultaneous_close_goes_through_closing():
    p, conn, cli, srv = established_pair()
    seen = set()
    conn.close()
    srv.conn.close()            # both FINs cross
    p.run(1000, until=lambda: seen.update((conn.state_name(), srv.conn.state_name())) or
          conn.state_name() == srv.conn.state_name() == "TIME-WAIT")
    assert "CLOSING" in seen
    assert conn.state_name() == srv.conn.state_name() == "TIME-WAIT"
    p.run(2 * p.a.tcp.msl_ms + 200)
    assert conn.state_name() == srv.conn.state_name() == "CLOSED"


def test_connection_refused_is_aborted():
    p = Pair()
    cli = Recorder()
    conn = p.a.connect(IP_B, 81, cli)
    p.run(2000, until=lambda: cli.saw("ABORTED"))
    assert cli.events[-1] == ("CLOSED", ["ABORTED"]) and conn.state_name() == "CLOSED"
    assert p.b.stats["tcp_rst_tx"] == 1


def test_syn_timeout_backs_off_then_timedout():
    p = Pair(tcp_a={"syn_retries": 3, "rto_initial": 1000})
    p.b.ping(IP_A, 1)           # resolve ARP first so only the SYNs count
    p.run(100)
    p.link_a.pipe.set_up(False)
    cli = Recorder()
    conn = p.a.connect(IP_B, 80, cli)
    sent_at = [p.clock.now]
    last = p.a.stats["tcp_tx"]
    for _ in range(20000):
        p.step(1)
        if p.a.stats["tcp_tx"] != last:
            last = p.a.stats["tcp_tx"]
            sent_at.append(p.clock.now)
        if cli.saw("TIMEDOUT"):
            break
    assert cli.events[-1][1] == ["TIMEDOUT"] and conn.state_name() == "CLOSED"
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:])]
    assert len(gaps) == 3 and gaps[1] >= 1.9 * gaps[0] and gaps[2] >= 1.9 * gaps[1], gaps


def test_data_rto_backoff_and_timedout():
    p, conn, cli, srv = established_pair(tcp_a={"max_retries": 4, "rto_max": 8000})
    p.link_a.pipe.set_up(False)
    conn.send(b"x" * 1000)
    sent_at = [p.clock.now]
    last = p.a.stats["tcp_retransmits"]
    for _ in range(60000):
        p.step(1)
        if p.a.stats["tcp_retransmits"] != last:
            last = p.a.stats["tcp_retransmits"]
            sent_at.append(p.clock.now)
        if cli.saw("TIMEDOUT"):
            break
    assert cli.saw("TIMEDOUT") and conn.state_name() == "CLOSED"
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:])]
    assert len(gaps) >= 4
    for a, b in zip(gaps, gaps[1:]):
        assert b >= 1.8 * a or b >= 8000 - 60, gaps


def test_zero_window_stop_probe_restart():
    received = Recorder()
    p, conn, cli, srv = established_pair(server=received)
    srv.conn.stop()
    payload = os.urandom(30000)
    sender = Sender(payload)
    sender.pump(conn)
    p.run(200)
    got_before = len(srv.data)
    p.run(5000)
    assert len(srv.data) <= got_before + 6000         # at most what was in flight before the window shut
    assert p.a.stats["tcp_window_probes"] >= 2
    srv.conn.restart()
    cli.on_event = lambda c, ev: sender.pump(c)
    p.run(20000, until=lambda: len(srv.data) == len(payload))
    assert bytes(srv.data) == payload


def test_backlog_full_waits_in_the_client_then_admits():
    """SYN cookies: the second client completes its handshake, but while the
    listener's one slot is held the server makes no connection for it; its
    request waits in the client (retransmitted) and is served once the slot is free."""
    p = Pair(tcp_a={"conns": 4})
    srv = Recorder()
    p.b.listen(80, srv, backlog=1)
    r1, r2 = Recorder(), Recorder()
    c1 = p.a.connect(IP_B, 80, r1)
    p.run(2000, until=lambda: c1.state_name() == "ESTABLISHED")
    c2 = p.a.connect(IP_B, 80, r2)
    p.run(500, until=lambda: c2.state_name() == "ESTABLISHED")
    assert c2.send(b"second")
    p.run(1500)
    assert p.b.stats["tcp_syn_backlog_full"] >= 1 and len([c for c in p.b.tcp.conns if c.state]) == 1
    c1.close()
    p.run(500, until=lambda: srv.conn.state_name() == "CLOSE-WAIT")
    srv.conn.close()
    p.run(10000, until=lambda: bytes(srv.data) == b"second")
    assert bytes(srv.data) == b"second" and srv.conn.lport == 80 and srv.conn.rport == c2.lport


def test_connection_table_full_and_time_wait_recycled():
    p = Pair(tcp_a={"conns": 2}, tcp_b={"conns": 8})
    p.b.listen(80, Recorder(), backlog=8)
    conns = []
    for _ in range(2):
        r = Recorder()
        c = p.a.connect(IP_B, 80, r)
        p.run(1000, until=lambda: c.state_name() == "ESTABLISHED")
        conns.append(c)
    with pytest.raises(OSError, match="table full"):
        p.a.connect(IP_B, 80, Recorder())
    for c in conns:                      # active close: a ends in TIME-WAIT
        c.close()
    p.run(200)
    for c in p.b.tcp.conns:
        if c.state_name() == "CLOSE-WAIT":
            c.close()
    p.run(200, until=lambda: all(c.state_name() == "TIME-WAIT" for c in conns))
    assert all(c.state_name() == "TIME-WAIT" for c in conns)
    c3 = p.a.connect(IP_B, 80, Recorder())
    assert p.a.stats["tcp_timewait_recycled"] == 1
    p.run(1000, until=lambda: c3.state_name() == "ESTABLISHED")
    assert c3.state_name() == "ESTABLISHED"


def test_several_segments_in_flight_and_mss():
    p, conn, cli, srv = established_pair(tcp_b={"window": 8 * 1460})
    assert conn.mss == 1460
    flights = []
    conn.send(b"z" * 200000)
    for _ in range(3000):
        p.step(1)
        flights.append(conn.snd_max - conn.snd_una)
        if len(srv.data) == 200000:
            break
    assert len(srv.data) == 200000
    assert max(flights) >= 4 * 1460      # several full segments in flight at once


@pytest.mark.parametrize("seed", [1, 2])
def test_one_megabyte_each_way_through_faults(seed):
    """10% loss, plus duplication, reordering, corruption and jitter, on each
    direction of the link (each end faults what it sends)."""
    def wrap(link, side):
        return FaultyLink(link, seed=seed * 10 + (side == "b"), loss=0.10, duplicate=0.03, reorder=0.05,
                          corrupt=0.03, delay_ms=2, jitter_ms=3, direction="tx")

    p = Pair(wrap=wrap, tcp_a={"window": 8 * 1460}, tcp_b={"window": 8 * 1460})
    p.link_a.clock = p.link_b.clock = p.clock        # the injectors follow the virtual clock
    up = os.urandom(1 << 20)
    down = os.urandom(1 << 20)
    s_up, s_down = Sender(up), Sender(down)
    srv = Recorder(lambda c, ev: s_down.pump(c) if ev & (CONNECTED | ACKED | POLL) else None)
    p.b.listen(80, srv)
    cli = Recorder(lambda c, ev: s_up.pump(c) if ev & (CONNECTED | ACKED | POLL) else None)
    p.a.connect(IP_B, 80, cli)
    p.run(900000, until=lambda: len(srv.data) >= len(up) and len(cli.data) >= len(down), step=2)
    assert len(srv.data) == len(up) and len(cli.data) == len(down)
    assert hashlib.sha256(srv.data).digest() == hashlib.sha256(up).digest()
    assert hashlib.sha256(cli.data).digest() == hashlib.sha256(down).digest()
    for s in (p.a, p.b):
        assert s.stats["handler_errors"] == 0, s.last_error
        assert s.stats["tcp_retransmits"] > 0
    assert p.a.stats["tcp_drop_checksum"] + p.b.stats["tcp_drop_checksum"] > 0   # corruption was caught
    assert p.a.stats["tcp_fast_retransmits"] + p.b.stats["tcp_fast_retransmits"] > 0
    assert p.link_a.counters["tx_lost"] > 100 and p.link_b.counters["tx_reordered"] > 10


def test_send_out_uip_contract_regenerates_on_rexmit():
    """uIP style: the application writes into conn.out and rewrites on REXMIT."""
    lost = {"n": 0}

    def wrap(link, side):
        if side != "a":
            return link

        class DropFirstData:
            mac = link.mac

            def __getattr__(self, name):
                return getattr(link, name)

            def send(self, mv, n):
                if n > 60 and mv[47] & 0x08 and lost["n"] == 0:   # first PSH segment: lose it
                    lost["n"] = 1
                    return True
                return link.send(mv, n)
        return DropFirstData()

    chunks = [bytes([65 + i]) * 1000 for i in range(5)]
    state = {"i": 0, "rexmits": 0}

    def app(conn, events):
        if events & REXMIT:
            state["rexmits"] += 1
            state["i"] -= 1                  # regenerate the chunk that was lost
        if events & (CONNECTED | ACKED | REXMIT) and state["i"] < len(chunks):
            data = chunks[state["i"]]
            conn.out[:len(data)] = data
            assert conn.send_out(len(data))
            state["i"] += 1

    p = Pair(wrap=wrap)
    srv = Recorder()
    p.b.listen(80, srv)
    p.a.connect(IP_B, 80, app)
    p.run(10000, until=lambda: len(srv.data) == 5000)
    assert bytes(srv.data) == b"".join(chunks)
    assert state["rexmits"] == 1 and lost["n"] == 1


def test_delayed_ack_every_second_segment_or_timer():
    p, conn, cli, srv = established_pair(tcp_b={"delack_ms": 200})
    conn.send(b"w" * 1460 * 10)                          # past the quick ACKs of the start
    p.run(300, until=lambda: len(srv.data) == 14600)
    assert srv.conn.quickacks == 0
    p.run(300)
    acks_before = p.b.stats["tcp_tx"]
    conn.send(b"a" * 100)
    p.run(20)
    assert p.b.stats["tcp_tx"] == acks_before            # held back
    p.run(250)
    assert p.b.stats["tcp_tx"] == acks_before + 1        # sent when the timer ran out
    conn.send(b"b" * 1460 * 2)
    p.run(20)
    assert p.b.stats["tcp_tx"] == acks_before + 2        # second full segment: ACK at once


def test_ack_piggybacks_on_reply():
    p, conn, cli, srv = established_pair()
    srv.on_event = lambda c, ev: c.send(b"reply") if ev & NEWDATA else None
    before = p.b.stats["tcp_tx"]
    conn.send(b"question")
    p.run(50, until=lambda: bytes(cli.data) == b"reply")
    assert p.b.stats["tcp_tx"] == before + 1             # one segment: data + ACK


def test_sequence_numbers_across_32bit_wrap_and_rebase(monkeypatch):
    monkeypatch.setattr(tcp_module, "_REBASE", 50000)    # rebase often
    from uipy import tcp_more
    orig = tcp_more.new_iss

    def near_wrap(tcp, c):
        orig(tcp, c)
        c.snd_base_hi, c.snd_base_lo = 0xFFFF, 0xF000     # 4 KB before 2**32
    monkeypatch.setattr(tcp_more, "new_iss", near_wrap)
    p, conn, cli, srv = established_pair()
    payload = os.urandom(300000)
    s1, s2 = Sender(payload), Sender(payload[::-1])
    cli.on_event = lambda c, ev: s1.pump(c)
    srv.on_event = lambda c, ev: s2.pump(c)
    s1.pump(conn)
    s2.pump(srv.conn)
    p.run(60000, until=lambda: len(srv.data) == len(cli.data) == len(payload))
    assert bytes(srv.data) == payload and bytes(cli.data) == payload[::-1]
    assert conn.snd_una < 50000 + 70000                  # offsets were rebased


def test_poll_and_wake_events():
    p, conn, cli, srv = established_pair(tcp_a={"poll_ms": 300})
    cli.events.clear()
    p.run(1000)
    polls = sum(1 for _, ev in cli.events if ev == ["POLL"])
    assert 2 <= polls <= 4
    cli.events.clear()
    conn.wake()
    p.step(1)
    assert cli.events and cli.events[0][1] == ["POLL"]


def test_abort_sends_rst_and_peer_sees_aborted():
    p, conn, cli, srv = established_pair()
    conn.abort()
    p.run(100)
    assert conn.state_name() == "CLOSED" and srv.saw("ABORTED")
    assert cli.events[-1][1] != ["ABORTED"]              # no event for the one who aborted


def test_keepalive_probes_then_timedout_when_peer_vanishes():
    p, conn, cli, srv = established_pair(tcp_a={"keepalive_ms": 2000, "keepalive_interval_ms": 500,
                                               "keepalive_count": 3})
    p.run(5000)                                   # peer answers the probes: still up
    assert conn.state_name() == "ESTABLISHED" and p.a.stats["tcp_keepalives"] >= 2
    p.link_a.pipe.set_up(False)
    p.run(10000, until=lambda: cli.saw("TIMEDOUT"))
    assert cli.saw("TIMEDOUT") and conn.state_name() == "CLOSED"


def test_keepalive_is_off_by_default():
    p, conn, cli, srv = established_pair()
    p.run(20000)
    assert p.a.stats["tcp_keepalives"] == 0 and conn.state_name() == "ESTABLISHED"


def test_fin_wait_2_times_out_when_peer_never_closes():
    p, conn, cli, srv = established_pair(tcp_a={"fin_wait_2_ms": 3000})
    conn.close()
    p.run(500, until=lambda: conn.state_name() == "FIN-WAIT-2")
    assert conn.state_name() == "FIN-WAIT-2"
    p.run(3500)
    assert conn.state_name() == "CLOSED" and srv.conn.state_name() == "CLOSE-WAIT"


def test_ephemeral_ports_are_random_in_range():
    p = Pair(tcp_a={"conns": 8})
    p.b.listen(80, Recorder(), backlog=8)
    ports = [p.a.connect(IP_B, 80, Recorder()).lport for _ in range(8)]
    assert all(49152 <= port <= 65535 for port in ports)
    assert len(set(ports)) == 8 and ports != sorted(ports)


def test_send_refused_after_close_and_queue_full():
    p, conn, cli, srv = established_pair(tcp_a={"queue_slots": 2})
    assert conn.send(b"1") and conn.send(b"2")
    assert conn.send(b"3") is False                # both slots hold unacknowledged data
    assert conn.send_queue_free() == 0
    p.run(300)
    assert conn.send_queue_free() == 2
    conn.close()
    with pytest.raises(OSError):
        conn.send(b"after close")


def test_time_wait_does_not_hold_the_listener_slot():
    """The server closes first (as HTTP does): its TIME-WAIT connections must
    not block new connections to the port."""
    p = Pair(tcp_b={"conns": 6})
    srv = Recorder(lambda c, ev: c.close() if ev & NEWDATA else None)
    p.b.listen(80, srv, backlog=1)
    for i in range(3):
        cli = Recorder(lambda c, ev: c.send(b"hi") if ev & CONNECTED else (c.close() if ev & CLOSED else None))
        conn = p.a.connect(IP_B, 80, cli)
        p.run(500, until=lambda: conn.state_name() == "CLOSED")
        assert conn.state_name() == "CLOSED", i
    assert sum(1 for c in p.b.tcp.conns if c.state_name() == "TIME-WAIT") == 3
    assert p.b.stats["tcp_syn_backlog_full"] == 0


def test_quick_acks_at_start_and_after_loss():
    p, conn, cli, srv = established_pair()
    before = p.b.stats["tcp_tx"]
    conn.send(b"q" * 100)
    p.run(20)
    assert p.b.stats["tcp_tx"] == before + 1            # ACKed at once: still in quick-ACK mode
    assert srv.conn.quickacks == 7
