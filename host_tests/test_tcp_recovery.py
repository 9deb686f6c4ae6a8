"""TCP loss recovery without stalls: SACK (RFC 2018 blocks sent, RFC 6675-style
hole retransmission), limited transmit (RFC 3042), sender-side silly window
avoidance (RFC 9293 3.8.6.2.1).  Crafted segments (scapy) for the wire format,
two stacks on an in-memory link with chosen losses for the behaviour."""
from scapy.all import Ether, IP, TCP, raw

from nethelpers import PEER_MAC, US_MAC, make_stack
from tcphelpers import IP_B, Pair, Recorder
from test_tcp_segments import PEER, PEER_ISN, US, seg, tcp_of

MSS = 1000


def sack_blocks(t):
    for opt in t.options:
        if opt[0] == "SAck":
            v = list(opt[1])
            return list(zip(v[0::2], v[1::2]))
    return None


def payload_len(e):
    """TCP payload bytes of a frame (scapy counts Ethernet padding as payload)."""
    return e[IP].len - 4 * e[IP].ihl - 4 * e[TCP].dataofs


def sack_conn(**kw):
    """A stack that accepted a connection whose SYN offered SACK."""
    stack, nic, clock = make_stack(**kw)
    from scapy.all import ARP
    nic.push(raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER, pdst=US)))
    stack.poll()
    nic.take()
    rec = Recorder()
    stack.listen(80, rec)
    nic.push(seg("S", PEER_ISN, options=[("MSS", MSS), ("SAckOK", b"")]))
    stack.poll()
    (synack,) = nic.take()
    t = tcp_of(synack)
    iss = t.seq
    nic.push(seg("A", PEER_ISN + 1, iss + 1))
    stack.poll()
    return stack, nic, clock, rec, iss, t


def test_sack_permitted_is_answered_only_when_offered():
    stack, nic, clock, rec, iss, synack = sack_conn()
    assert ("SAckOK", b"") in synack.options and rec.conn.sack_ok
    stack, nic, clock, rec, iss, synack = sack_conn(tcp={"sack": False})
    assert ("SAckOK", b"") not in synack.options and not rec.conn.sack_ok


def test_duplicate_acks_carry_sack_blocks_for_what_is_held():
    stack, nic, clock, rec, iss, _ = sack_conn(tcp={"window": 8 * 1460})
    base = PEER_ISN + 1
    nic.push(seg("A", base + 1000, iss + 1, payload=b"b" * 1000))      # 0..999 lost
    stack.poll()
    (dup,) = nic.take()
    assert tcp_of(dup).ack == base and sack_blocks(tcp_of(dup)) == [(base + 1000, base + 2000)]
    nic.push(seg("A", base + 3000, iss + 1, payload=b"d" * 1000))      # 2000..2999 lost too
    stack.poll()
    (dup,) = nic.take()
    assert sack_blocks(tcp_of(dup)) == [(base + 1000, base + 2000), (base + 3000, base + 4000)]
    nic.push(seg("A", base + 2000, iss + 1, payload=b"c" * 1000))      # fills the second hole
    stack.poll()
    (dup,) = nic.take()
    assert sack_blocks(tcp_of(dup)) == [(base + 1000, base + 4000)]   # merged
    nic.push(seg("A", base, iss + 1, payload=b"a" * 1000))
    stack.poll()
    (ack,) = nic.take()
    assert tcp_of(ack).ack == base + 4000 and sack_blocks(tcp_of(ack)) is None
    assert bytes(rec.data) == b"a" * 1000 + b"b" * 1000 + b"c" * 1000 + b"d" * 1000


def _no_memory_for(monkeypatch, module):
    """Imports of uipy.<module> fail with MemoryError while the returned
    list's item is true (and the module is not already loaded)."""
    import builtins
    import sys
    real = builtins.__import__
    short = [True]

    def imp(name, *a, **kw):
        fromlist = a[2] if len(a) > 2 else kw.get("fromlist")
        if short[0] and (name == "uipy." + module or (fromlist and module in fromlist)):
            raise MemoryError
        return real(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", imp)
    monkeypatch.delitem(sys.modules, "uipy." + module, raising=False)
    return short


def test_the_reorder_store_is_made_at_the_first_gap_and_survives_no_memory(monkeypatch):
    """No store (code or slots) until data arrives after a gap; without memory
    for it then, that segment is not kept (counted in tcp_no_memory) and the
    next one after a gap gets the store."""
    stack, nic, clock, rec, iss, _ = sack_conn(tcp={"window": 4 * 1460})
    base = PEER_ISN + 1
    nic.push(seg("A", base, iss + 1, payload=b"a" * 1000))              # in order: no store
    stack.poll()
    nic.take()
    assert stack.tcp.reorder is None
    short = _no_memory_for(monkeypatch, "tcp_reorder")
    nic.push(seg("A", base + 2000, iss + 1, payload=b"c" * 1000))      # 1000..1999 lost
    stack.poll()
    (dup,) = nic.take()
    assert stack.tcp.reorder is None and stack.stats["tcp_no_memory"] == 1
    assert tcp_of(dup).ack == base + 1000 and sack_blocks(tcp_of(dup)) is None   # nothing held
    short[0] = False
    nic.push(seg("A", base + 2000, iss + 1, payload=b"c" * 1000))      # again: now kept
    stack.poll()
    (dup,) = nic.take()
    assert stack.tcp.reorder is not None and sack_blocks(tcp_of(dup)) == [(base + 2000, base + 3000)]
    nic.push(seg("A", base + 1000, iss + 1, payload=b"b" * 1000))
    stack.poll()
    (ack,) = nic.take()
    assert tcp_of(ack).ack == base + 3000
    assert bytes(rec.data) == b"a" * 1000 + b"b" * 1000 + b"c" * 1000


def test_loss_and_sack_code_load_at_the_first_loss_and_survive_no_memory(monkeypatch):
    """uipy.tcp_loss and uipy.tcp_sack are not held by a connection that has
    seen no loss; a retransmission timeout with no memory for tcp_loss's code
    is counted and fires again at the next tick, which then resends."""
    from nethelpers import run
    stack, nic, clock, rec, iss, _ = sack_conn()
    rec.conn.send(b"x" * 500)
    stack.poll()
    (first,) = nic.take()
    assert payload_len(Ether(first)) == 500
    nic.push(seg("A", PEER_ISN + 1, iss + 501))                         # ACKed: no loss
    stack.poll()
    assert stack.tcp.loss is None and stack.tcp.sack is None
    short = _no_memory_for(monkeypatch, "tcp_loss")
    rec.conn.send(b"y" * 500)
    stack.poll()
    nic.take()                                                          # lost
    run(stack, clock, 3000)
    assert nic.take() == [] and stack.stats["tcp_no_memory"] >= 1 and stack.stats["handler_errors"] == 0
    short[0] = False
    run(stack, clock, 100)
    resent = [f for f in nic.take() if payload_len(Ether(f)) == 500]
    assert resent and tcp_of(resent[0]).seq == iss + 501 and stack.tcp.loss is not None


class Losses:
    """Wraps one end of the pair: data segments whose payload starts at the
    given offsets from the first one seen are lost, once each."""

    def __init__(self, link, offsets):
        self.link = link
        self.mac = link.mac
        self.offsets = set(offsets)
        self.first = None
        self.lost = []
        self.sent = []

    def __getattr__(self, name):
        return getattr(self.link, name)

    def send(self, mv, n):
        frame = bytes(mv[:n])
        e = Ether(frame)
        if e.haslayer(TCP) and payload_len(e):
            seq = e[TCP].seq
            if self.first is None:
                self.first = seq
            off = (seq - self.first) & 0xFFFFFFFF
            self.sent.append((off, payload_len(e)))
            if off in self.offsets:
                self.offsets.discard(off)
                self.lost.append(off)
                return True
        return self.link.send(mv, n)


def transfer(losses, size=40 * 1460, **tcp):
    cfg = {"window": 16 * 1460, "queue_slots": 8}
    cfg.update(tcp)
    ends = {}

    def wrap(link, side):
        if side == "a":
            ends["a"] = Losses(link, losses)
            return ends["a"]
        return link
    p = Pair(tcp_a=cfg, tcp_b=cfg, wrap=wrap)
    srv = Recorder()
    p.b.listen(80, srv)
    data = bytes((i * 31) & 0xFF for i in range(size))
    conn = p.a.connect(IP_B, 80, Recorder())
    p.run(2000, until=lambda: conn.state_name() == "ESTABLISHED")
    assert conn.send(data)
    t0 = p.clock.now
    p.run(30000, until=lambda: len(srv.data) == size, step=1)
    assert bytes(srv.data) == data
    return p, conn, ends["a"], p.clock.now - t0


def test_three_losses_in_one_window_recover_without_a_timeout():
    lost = [5 * 1460, 7 * 1460, 9 * 1460]
    p, conn, link, ms = transfer(lost)
    assert sorted(link.lost) == lost
    assert p.a.stats["tcp_timeouts"] == 0 and p.a.stats["tcp_sack_retransmits"] >= 2
    assert ms < 200                                  # no 200 ms RTO anywhere
    # without SACK, NewReno repairs one hole per round trip; still no timeout here
    p2, conn2, link2, ms2 = transfer(lost, sack=False)
    assert p2.a.stats["tcp_sack_retransmits"] == 0


def test_loss_early_in_a_small_window_uses_limited_transmit():
    """Five segments with the initial window of three, the first lost: only two
    duplicate ACKs come back unless the sender sends new data on them (RFC 3042)."""
    p, conn, link, ms = transfer([0], size=5 * 1460)
    assert p.a.stats["tcp_timeouts"] == 0 and ms < 150, ms
    p2, conn2, link2, ms2 = transfer([0], size=5 * 1460, limited_transmit=False, sack=False)
    assert ms2 > 150                                 # the retransmission timer was needed


def test_loss_at_the_tail_of_a_small_flight_uses_early_retransmit():
    """Four segments, the second lost, nothing more to send: two duplicate ACKs
    are all there will be, and they are enough (RFC 5827)."""
    p, conn, link, ms = transfer([1460], size=4 * 1460)
    assert p.a.stats["tcp_timeouts"] == 0 and ms < 150, ms
    p2, conn2, link2, ms2 = transfer([1460], size=4 * 1460, early_retransmit=False, sack=False)
    assert ms2 > 150


def test_no_slivers_after_a_loss():
    p, conn, link, ms = transfer([3 * 1460, 20 * 1460], size=60 * 1460)
    small = [n for off, n in link.sent if n < 1460 and off + n < 60 * 1460]
    assert small == [], small


def test_reordering_without_loss_sends_nothing_twice():
    class Reorder(Losses):
        def send(self, mv, n):
            e = Ether(bytes(mv[:n]))
            if e.haslayer(TCP) and payload_len(e) and self.held is None and self.count == 3:
                self.held = bytes(mv[:n])
                self.count += 1
                return True
            if e.haslayer(TCP) and payload_len(e):
                self.count += 1
            ok = self.link.send(mv, n)
            if self.held is not None and self.count == 5:
                self.link.send(self.held, len(self.held))
                self.held = b""
            return ok
    cfg = {"window": 16 * 1460, "queue_slots": 8}

    def wrap(link, side):
        if side == "a":
            r = Reorder(link, [])
            r.held = None
            r.count = 0
            return r
        return link
    p = Pair(tcp_a=cfg, tcp_b=cfg, wrap=wrap)
    srv = Recorder()
    p.b.listen(80, srv)
    conn = p.a.connect(IP_B, 80, Recorder())
    p.run(2000, until=lambda: conn.state_name() == "ESTABLISHED")
    data = bytes(range(256)) * 40
    conn.send(data)
    p.run(5000, until=lambda: len(srv.data) == len(data))
    assert bytes(srv.data) == data
    assert p.a.stats["tcp_retransmits"] == 0
