"""Write host_tests/golden_frames.bin: request frames and the replies a correct
stack must send, both built independently with scapy (not by uipy).

Run: .venv/bin/python tools/make_golden.py   (the output is committed)
File format, repeated per case: u8 name length, name, u8 counter length,
counter name, u16 request length, request, u16 reply length, reply (big-endian).
"""
import os
import sys

from scapy.all import ARP, Ether, ICMP, IP, UDP, IPOption_RR, raw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "lib"), os.path.join(ROOT, "host_tests")]
import golden_replay as G  # noqa: E402  (the addresses the replay configures)

US_MAC, US_IP = G.US_MAC.hex(":"), G.US_IP
PEER_MAC, PEER_IP = G.PEER_MAC.hex(":"), G.PEER_IP
IDENT = G.IDENT


def pad(frame):
    b = raw(frame)
    return b + bytes(max(0, 60 - len(b)))


def eth_to_us():
    return Ether(src=PEER_MAC, dst=US_MAC)


def reply_ip(**kw):
    return Ether(src=US_MAC, dst=PEER_MAC) / IP(src=US_IP, dst=PEER_IP, id=IDENT, ttl=64, flags=0, **kw)


def cases():
    out = []
    # name, request, expected reply (or None), counter that must grow
    req = Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=PEER_MAC, psrc=PEER_IP, hwdst="00:00:00:00:00:00", pdst=US_IP)
    rep = Ether(src=US_MAC, dst=PEER_MAC) / ARP(op=2, hwsrc=US_MAC, psrc=US_IP, hwdst=PEER_MAC, pdst=PEER_IP)
    out.append(("arp_request", pad(req), pad(rep), "arp_tx"))

    for size in (0, 1, 56, 1472):
        data = bytes((i * 7) & 0xFF for i in range(size))
        req = eth_to_us() / IP(src=PEER_IP, dst=US_IP, id=77) / ICMP(type=8, id=0x1234, seq=size) / data
        rep = reply_ip(proto=1) / ICMP(type=0, id=0x1234, seq=size) / data
        out.append(("icmp_echo_%d" % size, pad(req), pad(rep), "icmp_echo_rx"))

    req = eth_to_us() / IP(src=PEER_IP, dst=US_IP, options=[IPOption_RR()]) / ICMP(type=8, id=9, seq=1) / b"opts"
    rep = reply_ip(proto=1) / ICMP(type=0, id=9, seq=1) / b"opts"
    out.append(("icmp_echo_ip_options", pad(req), pad(rep), "ip_options_stripped"))

    for size in (0, 1, 100, 1472):
        data = bytes((i * 13 + 1) & 0xFF for i in range(size))
        req = eth_to_us() / IP(src=PEER_IP, dst=US_IP) / UDP(sport=40000, dport=7) / data
        rep = reply_ip(proto=17) / UDP(sport=7, dport=40000) / data
        out.append(("udp_echo_%d" % size, pad(req), pad(rep), "udp_rx"))

    req = eth_to_us() / IP(src=PEER_IP, dst=US_IP) / UDP(sport=40001, dport=7, chksum=0) / b"no checksum"
    rep = reply_ip(proto=17) / UDP(sport=7, dport=40001) / b"no checksum"
    out.append(("udp_zero_checksum", pad(req), pad(rep), "udp_rx"))

    udp = IP(src=PEER_IP, dst=US_IP, id=5) / UDP(sport=40002, dport=9999) / b"closed port!"
    req = eth_to_us() / udp
    quoted = raw(udp)[:28]
    rep = reply_ip(proto=1) / ICMP(type=3, code=3) / quoted
    out.append(("udp_closed_port", pad(req), pad(rep), "icmp_unreach_tx"))

    # Bad input: no reply, the named counter grows.
    good_echo = raw(eth_to_us() / IP(src=PEER_IP, dst=US_IP) / ICMP(type=8, id=1, seq=1) / (b"x" * 20))
    bad = []
    for n in range(1, 14):
        bad.append(("truncated_eth_%d" % n, good_echo[:n], "drop_short"))
    for n in range(14, 34):
        bad.append(("truncated_ip_%d" % n, good_echo[:n], "ip_drop_header"))
    # IP total length claims more than the frame holds
    for n in range(34, len(good_echo)):
        bad.append(("truncated_payload_%d" % n, good_echo[:n], "ip_drop_header"))
    b = bytearray(good_echo); b[14] = 0x44
    bad.append(("ihl_below_5", bytes(b), "ip_drop_header"))
    b = bytearray(good_echo); b[14] = 0x4F
    bad.append(("ihl_beyond_frame", bytes(b), "ip_drop_header"))
    b = bytearray(good_echo); b[14] = 0x65
    bad.append(("ip_version_6_in_ipv4", bytes(b), "ip_drop_header"))
    b = bytearray(good_echo); b[24] ^= 0x55
    bad.append(("bad_ip_checksum", bytes(b), "ip_drop_checksum"))
    b = bytearray(good_echo); b[37] ^= 0x55
    bad.append(("bad_icmp_checksum", bytes(b), "icmp_drop_checksum"))
    udp_bad = bytearray(raw(eth_to_us() / IP(src=PEER_IP, dst=US_IP) / UDP(sport=1, dport=7) / b"payload"))
    udp_bad[41] ^= 0x01
    bad.append(("bad_udp_checksum", bytes(udp_bad), "udp_drop_checksum"))
    short_udp = raw(eth_to_us() / IP(src=PEER_IP, dst=US_IP, proto=17) / b"1234")
    bad.append(("udp_shorter_than_header", short_udp, "udp_drop_header"))
    bad.append(("udp_length_too_big", raw(eth_to_us() / IP(src=PEER_IP, dst=US_IP) / UDP(sport=1, dport=7, len=200) / b"abc"), "udp_drop_header"))
    bad.append(("fragment", raw(eth_to_us() / IP(src=PEER_IP, dst=US_IP, flags="MF") / ICMP() / b"frag"), "ip_drop_fragment"))
    bad.append(("fragment_offset", raw(eth_to_us() / IP(src=PEER_IP, dst=US_IP, frag=100) / b"tail"), "ip_drop_fragment"))
    bad.append(("unknown_ethertype", raw(eth_to_us())[:12] + b"\x88\xb5" + b"\x00" * 46, "drop_ethertype"))
    bad.append(("ipv6_ethertype", raw(eth_to_us())[:12] + b"\x86\xdd" + b"\x60" + b"\x00" * 45, "drop_ethertype"))
    bad.append(("unknown_ip_protocol", raw(eth_to_us() / IP(src=PEER_IP, dst=US_IP, proto=200) / (b"\x00" * 30)), "ip_drop_proto"))
    bad.append(("oversized_frame", good_echo + bytes(1515 - len(good_echo)), "drop_oversize"))
    bad.append(("ip_for_someone_else", raw(eth_to_us() / IP(src=PEER_IP, dst="198.18.0.9") / ICMP() / b"x"), "ip_drop_not_for_us"))
    bad.append(("mac_for_someone_else", raw(Ether(src=PEER_MAC, dst="02:00:00:00:00:99") / IP(src=PEER_IP, dst=US_IP) / ICMP()), "drop_not_for_us"))
    bad.append(("broadcast_source", raw(eth_to_us() / IP(src="255.255.255.255", dst=US_IP) / ICMP() / b"x"), "ip_drop_source"))
    bad.append(("icmp_too_short", raw(eth_to_us() / IP(src=PEER_IP, dst=US_IP, proto=1) / b"\x08\x00"), "icmp_drop_short"))
    arp = raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER_IP, pdst=US_IP))
    b = bytearray(arp); b[18] = 8
    bad.append(("arp_wrong_hw_size", bytes(b), "arp_drop_bad"))
    b = bytearray(arp); b[19] = 16
    bad.append(("arp_wrong_proto_size", bytes(b), "arp_drop_bad"))
    b = bytearray(arp); b[15] = 6
    bad.append(("arp_wrong_hw_type", bytes(b), "arp_drop_bad"))
    for n in (14, 20, 41):
        bad.append(("arp_truncated_%d" % n, arp[:n], "arp_drop_bad"))
    b = bytearray(arp); b[21] = 9
    bad.append(("arp_unknown_op", bytes(b), "arp_drop_bad"))
    bad.append(("arp_for_someone_else", raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER_IP, pdst="198.18.0.77")), "arp_drop_not_for_us"))
    bad.append(("arp_unsolicited_reply", raw(Ether(src="02:00:00:00:00:66", dst=US_MAC) / ARP(op=2, hwsrc="02:00:00:00:00:66", psrc="198.18.0.66", hwdst=US_MAC, pdst=US_IP)), "arp_unsolicited"))
    for name, frame, counter in bad:
        out.append((name, frame, b"", counter))
    return out


def main():
    path = os.path.join(ROOT, "host_tests", "golden_frames.bin")
    with open(path, "wb") as f:
        for name, req, rep, counter in cases():
            for field, size in ((name.encode(), 1), (counter.encode(), 1), (req, 2), (rep, 2)):
                f.write(len(field).to_bytes(size, "big") + field)
    print("wrote", path)


if __name__ == "__main__":
    main()
