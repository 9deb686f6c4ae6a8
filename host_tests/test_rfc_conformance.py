"""RFC conformance against crafted frames (scapy), one test per finding of the
black-box probes: a short ARP outage does not abort a connection (RFC 1122
4.2.3.5), unicast IP in a link-layer broadcast is dropped (3.3.6), ICMP
unreachable refuses an opening connection (4.2.3.9), TIME-WAIT is 60 s, a
gratuitous ARP updates an existing entry (RFC 826), SYN-SENT lasts 3 minutes
and the RTO is 3 s after a SYN timed out (RFC 6298 5.7), ICMP errors quote the
header as it came (options included), an early FIN is ACKed and remembered
(RFC 5681 4.2), and a first contact's segment goes out as soon as ARP answers."""
from scapy.all import ARP, ICMP, IP, IPOption, TCP, UDP, Ether, raw

from nethelpers import PEER_MAC, US_MAC, make_stack, run
from tcphelpers import Recorder
from test_tcp_segments import PEER, PEER_ISN, US, accepted_conn, seg, tcp_of

NEW_MAC = "02:00:00:00:00:77"


def arp_reply(mac=PEER_MAC, psrc=PEER):
    return raw(Ether(src=mac, dst=US_MAC) / ARP(op=2, hwsrc=mac, psrc=psrc, hwdst=US_MAC, pdst=US))


def frames_of(nic, kind):
    return [Ether(f) for f in nic.take() if Ether(f).haslayer(kind)]


def connect_out(stack, nic):
    """A connect() whose SYN meets an ARP miss; returns (recorder, conn)."""
    rec = Recorder()
    c = stack.connect(PEER, 5000, rec)
    sent = nic.take()
    assert len(sent) == 1 and Ether(sent[0]).haslayer(ARP)      # the SYN became an ARP request
    return rec, c


def test_syn_goes_out_as_soon_as_arp_answers():
    stack, nic, clock = make_stack()
    rec, c = connect_out(stack, nic)
    clock.advance(3)
    nic.push(arp_reply())
    stack.poll()                                   # no tick passes: at once
    syns = [Ether(f) for f in nic.take()]
    assert len(syns) == 1 and syns[0][TCP].flags == "S"
    assert c.retries == 0                          # an ARP miss is not a retransmission


def test_arp_outage_of_50_s_does_not_abort_and_the_data_then_flows():
    stack, nic, clock, rec, iss = accepted_conn()
    conn = rec.conn
    stack.arp.clear()                              # the neighbour is gone from the cache
    conn.send(b"x" * 500)
    out = nic.take()
    assert len(out) == 1 and Ether(out[0]).haslayer(ARP)
    run(stack, clock, 50000, step=50)              # 50 s of unanswered ARP requests
    assert conn.state_name() == "ESTABLISHED" and not rec.saw("TIMEDOUT")
    asked = [f for f in nic.take() if Ether(f).haslayer(ARP)]
    assert 40 <= len(asked) <= 60                  # about one request a second, no storm
    nic.push(arp_reply())
    stack.poll()
    (data,) = nic.take()
    assert tcp_of(data).seq == iss + 1 and len(tcp_of(data).payload) == 500


def test_arp_outage_ends_the_connection_after_r2():
    stack, nic, clock, rec, iss = accepted_conn()
    stack.arp.clear()
    rec.conn.send(b"y" * 100)
    run(stack, clock, 99000, step=100)
    assert not rec.saw("TIMEDOUT")
    run(stack, clock, 5000, step=100)
    assert rec.saw("TIMEDOUT")


def test_unicast_ip_in_a_broadcast_frame_is_dropped():
    stack, nic, clock = make_stack()
    bcast = "ff:ff:ff:ff:ff:ff"
    for l4 in (ICMP(type=8, id=1, seq=1), UDP(sport=1, dport=9), TCP(sport=1, dport=80, flags="S")):
        nic.push(raw(Ether(src=PEER_MAC, dst=bcast) / IP(src=PEER, dst=US) / l4))
    stack.poll()
    assert nic.take() == []
    assert stack.stats["ip_drop_link_broadcast"] == 3


def test_port_unreachable_refuses_an_opening_connection():
    stack, nic, clock = make_stack()
    nic.push(arp_reply())                          # unsolicited: not learned
    stack.arp.request(0xC612, 0x0001)
    nic.take()
    nic.push(arp_reply())
    stack.poll()
    rec = Recorder()
    c = stack.connect(PEER, 5001, rec)
    (syn,) = [Ether(f) for f in nic.take()]
    quoted = raw(syn[IP])[:28]
    # one that quotes another sequence number is ignored (RFC 5927)
    bad = bytearray(quoted)
    bad[24:28] = b"\x00\x00\x00\x07"
    nic.push(raw(Ether(src=PEER_MAC, dst=US_MAC) / IP(src=PEER, dst=US) / ICMP(type=3, code=3) / bytes(bad)))
    stack.poll()
    assert c.state_name() == "SYN-SENT" and stack.stats["tcp_icmp_ignored"] == 1
    nic.push(raw(Ether(src=PEER_MAC, dst=US_MAC) / IP(src=PEER, dst=US) / ICMP(type=3, code=3) / quoted))
    stack.poll()
    assert rec.saw("ABORTED") and c.state_name() == "CLOSED"
    assert stack.stats["tcp_icmp_refused"] == 1


def test_host_unreachable_is_soft_for_an_open_connection():
    stack, nic, clock, rec, iss = accepted_conn()
    rec.conn.send(b"z" * 10)
    (data,) = [Ether(f) for f in nic.take()]
    nic.push(raw(Ether(src=PEER_MAC, dst=US_MAC) / IP(src=PEER, dst=US) / ICMP(type=3, code=1)
                 / raw(data[IP])[:28]))
    stack.poll()
    assert rec.conn.state_name() == "ESTABLISHED" and rec.conn.soft_error == 2


def test_time_wait_lasts_60_s():
    stack, nic, clock, rec, iss = accepted_conn()
    conn = rec.conn
    conn.close()
    (fin,) = nic.take()
    nic.push(seg("FA", PEER_ISN + 1, tcp_of(fin).seq + 1))
    stack.poll()
    assert conn.state_name() == "TIME-WAIT"
    run(stack, clock, 59000, step=500)
    assert conn.state_name() == "TIME-WAIT"
    run(stack, clock, 2000, step=500)
    assert conn.state_name() == "CLOSED"


def test_gratuitous_arp_updates_an_existing_entry_only():
    stack, nic, clock, rec, iss = accepted_conn()
    garp = raw(Ether(src=NEW_MAC, dst="ff:ff:ff:ff:ff:ff") /
               ARP(op=1, hwsrc=NEW_MAC, psrc=PEER, hwdst="00:00:00:00:00:00", pdst=PEER))
    nic.push(garp)
    stack.poll()
    assert stack.stats["arp_updated"] == 1
    rec.conn.send(b"after failover")
    (data,) = [Ether(f) for f in nic.take()]
    assert data.dst == NEW_MAC
    stranger = raw(Ether(src=NEW_MAC, dst="ff:ff:ff:ff:ff:ff") /
                   ARP(op=1, hwsrc=NEW_MAC, psrc="198.18.0.9", pdst="198.18.0.9"))
    nic.push(stranger)
    stack.poll()
    assert stack.arp.find(0xC612, 0x0009) < 0      # never created from unsolicited traffic


def test_syn_sent_lasts_three_minutes_and_rto_is_3s_after_a_syn_timeout():
    stack, nic, clock = make_stack()
    nic.push(arp_reply())
    stack.arp.request(0xC612, 0x0001)
    nic.push(arp_reply())
    stack.poll()
    nic.take()
    rec = Recorder()
    c = stack.connect(PEER, 5002, rec)
    run(stack, clock, 179000, step=500)
    assert c.state_name() == "SYN-SENT" and not rec.saw("TIMEDOUT")
    run(stack, clock, 10000, step=500)
    assert rec.saw("TIMEDOUT")
    # a SYN answered after one timeout: the RTO for data is 3 s
    nic.take()
    rec = Recorder()
    c = stack.connect(PEER, 5003, rec)
    (syn,) = frames_of(nic, TCP)
    run(stack, clock, 1100, step=100)
    (syn2,) = frames_of(nic, TCP)
    assert syn2[TCP].seq == syn[TCP].seq
    nic.push(raw(Ether(src=PEER_MAC, dst=US_MAC) / IP(src=PEER, dst=US) /
                 TCP(sport=5003, dport=syn[TCP].sport, flags="SA", seq=7000, ack=syn[TCP].seq + 1)))
    stack.poll()
    assert rec.saw("CONNECTED") and c.rto == 3000


def test_icmp_error_quotes_a_header_with_options_as_it_came():
    stack, nic, clock = make_stack()
    nic.push(arp_reply())
    stack.arp.request(0xC612, 0x0001)
    nic.push(arp_reply())
    stack.poll()
    nic.take()
    dgram = IP(src=PEER, dst=US, options=[IPOption(b"\x94\x04\x00\x00")]) / UDP(sport=1234, dport=9) / b"hi"
    sent = raw(dgram)
    nic.push(raw(Ether(src=PEER_MAC, dst=US_MAC) / dgram))
    stack.poll()
    (err,) = [Ether(f) for f in nic.take()]
    icmp = err[ICMP]
    assert icmp.type == 3 and icmp.code == 3
    quoted = raw(icmp)[8:]
    assert quoted == sent[:24 + 8]                 # header with its option, then 8 bytes


def test_early_fin_is_acked_at_once_and_remembered():
    stack, nic, clock, rec, iss = accepted_conn()
    nic.push(seg("FA", PEER_ISN + 1 + 5, iss + 1))          # FIN after 5 missing bytes
    stack.poll()
    (dup,) = nic.take()
    assert tcp_of(dup).ack == PEER_ISN + 1 and rec.conn.state_name() == "ESTABLISHED"
    nic.push(seg("A", PEER_ISN + 1, iss + 1, payload=b"hello"))
    stack.poll()
    (ack,) = nic.take()
    assert tcp_of(ack).ack == PEER_ISN + 1 + 5 + 1           # the data and the FIN
    assert rec.data == b"hello" and rec.saw("CLOSED")
    assert rec.conn.state_name() == "CLOSE-WAIT"


class ArpOutage:
    """Wraps a NIC: while .on, ARP frames towards the stack are lost (the
    neighbour has gone quiet: a switch reboot, a cable moved)."""

    def __init__(self, nic):
        self.nic = nic
        self.mac = nic.mac
        self.on = False
        self.dropped = 0

    def recv_into(self, mv):
        while True:
            n = self.nic.recv_into(mv)
            if not (n and self.on and mv[12] == 0x08 and mv[13] == 0x06):
                return n
            self.dropped += 1

    def send(self, mv, n):
        return self.nic.send(mv, n)

    def link_up(self):
        return self.nic.link_up()

    def fileno(self):
        return self.nic.fileno()

    def wait(self, timeout):
        return self.nic.wait(timeout)


def test_download_survives_10_s_without_arp_answers():
    """End to end: the kernel downloads 2 MB from the stack; mid-way the stack
    forgets its neighbour and hears no ARP for 10 s; the transfer then completes
    byte-exact (before, 8 retries at 200 ms ended it in 1.8 s)."""
    import threading
    import time
    import bench_tcp
    from kernel_net import KERNEL_IP, STACK_IP, KernelNet
    from levels import need_root
    from uipy.stack import Stack
    need_root()
    size = 2 << 20
    data = bench_tcp.payload(size, 5)
    src = bench_tcp.Source({5005: data}, chunk=8192)
    outage = []
    net = KernelNet(wrap=lambda nic: outage.append(ArpOutage(nic)) or outage[0])
    try:
        net.start(lambda nic: Stack(nic, ip=STACK_IP, gateway=KERNEL_IP,
                                    tcp={"window": 8 * 1460, "queue_slots": 8}))
        net.call(lambda s: s.listen(5005, src))
        box = {}
        t = threading.Thread(target=lambda: box.update(r=bench_tcp.kernel_download(net.ns, 5005, limit=60)))
        t.start()
        end = time.monotonic() + 10
        while net.stats()["tcp_tx"] < 100 and time.monotonic() < end:   # the download runs
            time.sleep(0.01)

        def begin(s):
            outage[0].on = True
            s.arp.clear()
        net.call(begin)
        time.sleep(10)
        net.call(lambda s: setattr(outage[0], "on", False))
        t.join(60)
        stats = net.stats()
    finally:
        net.close()
    assert outage[0].dropped > 0, "the outage never happened"
    assert box["r"]["n"] == size and box["r"]["sha"] == bench_tcp.sha(data), box
    assert not src.errors and stats["tcp_timeouts"] == 0


def fragments(pkt, size):
    from scapy.all import fragment
    return [raw(Ether(src=PEER_MAC, dst=US_MAC) / f) for f in fragment(pkt, fragsize=size)]


def learned_stack(**kw):
    stack, nic, clock = make_stack(**kw)
    stack.arp.request(0xC612, 0x0001)
    nic.push(arp_reply())
    stack.poll()
    nic.take()
    return stack, nic, clock


def test_two_fragment_echo_is_reassembled_and_answered():
    stack, nic, clock = learned_stack()
    payload = bytes(range(256)) * 4
    frags = fragments(IP(src=PEER, dst=US, id=4242) / ICMP(type=8, id=7, seq=1) / payload, 512)
    assert len(frags) == 3
    for f in reversed(frags):                       # out of order as well
        nic.push(f)
    stack.poll()
    (reply,) = [Ether(f) for f in nic.take()]
    assert reply[ICMP].type == 0 and bytes(reply[ICMP].payload) == payload
    assert stack.stats["ip_frag_done"] == 1


def test_fragmented_udp_reaches_its_handler():
    stack, nic, clock = learned_stack()
    got = []
    stack.udp_bind(5353, lambda data, ip, port: got.append(bytes(data)))
    body = b"answer " * 150
    for f in fragments(IP(src=PEER, dst=US, id=77) / UDP(sport=53, dport=5353) / body, 400):
        nic.push(f)
    stack.poll()
    assert got == [body]


def test_bad_fragments_are_dropped_and_counted():
    stack, nic, clock = learned_stack()
    got = []
    stack.udp_bind(9999, lambda data, ip, port: got.append(bytes(data)))
    a = fragments(IP(src=PEER, dst=US, id=1) / UDP(sport=1, dport=9999) / (b"a" * 1000), 512)
    over = bytearray(a[1])                          # the second fragment moved back onto the first
    over[20:22] = b"\x00\x20"                      # offset 256 (x8): overlaps 0..511 of data
    from scapy.all import IP as SIP
    fixed = Ether(bytes(over))
    del fixed[SIP].chksum
    nic.push(a[0])
    nic.push(raw(fixed))
    stack.poll()
    assert stack.stats["ip_frag_overlap"] == 1 and got == []
    big = fragments(IP(src=PEER, dst=US, id=2) / UDP(sport=1, dport=9999) / (b"b" * 3000), 1400)
    for f in big:
        nic.push(f)
    stack.poll()
    assert stack.stats["ip_frag_too_big"] >= 1 and got == []
    # a lost fragment: the datagram is abandoned after reassembly_ms, the next one completes
    c = fragments(IP(src=PEER, dst=US, id=3) / UDP(sport=1, dport=9999) / (b"c" * 800), 512)
    nic.push(c[0])
    stack.poll()
    d = fragments(IP(src=PEER, dst=US, id=4) / UDP(sport=1, dport=9999) / (b"d" * 800), 512)
    nic.push(d[0])
    stack.poll()
    assert stack.stats["ip_frag_busy"] == 1          # one datagram at a time
    clock.advance(3500)
    for f in d:
        nic.push(f)
    stack.poll()
    assert stack.stats["ip_frag_timeout"] == 1 and got == [b"d" * 800]


def test_reassembly_can_be_left_out():
    stack, nic, clock = learned_stack(reassembly=0)
    for f in fragments(IP(src=PEER, dst=US, id=9) / ICMP(type=8) / (b"x" * 900), 512):
        nic.push(f)
    stack.poll()
    assert nic.take() == [] and stack.stats["ip_drop_fragment"] == 2
    assert stack.ipv4.reasm is None
