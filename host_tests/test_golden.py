"""Golden frames (made by scapy, tools/make_golden.py) replayed through the stack."""
import os

from scapy.all import Ether, IP, ICMP, UDP

import golden_replay

GOLDEN = os.path.join(os.path.dirname(__file__), "golden_frames.bin")


def test_replay_matches_golden_frames():
    count, failures = golden_replay.replay(GOLDEN)
    assert count > 90
    assert failures == []


def test_golden_replies_are_valid_per_scapy():
    """The expected replies themselves carry correct checksums (scapy recomputes)."""
    checked = 0
    for name, _, expected, _ in golden_replay.read_cases(GOLDEN):
        if not expected:
            continue
        pkt = Ether(expected)
        if IP in pkt:
            ip = pkt[IP]
            ip2 = ip.copy()
            ip2.chksum = None
            assert IP(bytes(ip2))[IP].chksum == ip.chksum, name
            for layer in (ICMP, UDP):
                if layer in pkt:
                    l2 = IP(bytes(ip))
                    orig = l2[layer].chksum
                    del l2[layer].chksum
                    assert IP(bytes(l2))[layer].chksum == orig, name
            checked += 1
    assert checked >= 10
