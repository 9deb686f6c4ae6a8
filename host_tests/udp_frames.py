"""Hand-made Ethernet/IPv4/UDP and ARP frames and a scripted NIC, for the
DHCP and DNS unit tests (struct only: the frames do not come from uipy)."""
import struct

CLIENT_MAC = b"\x02\x00\x00\x00\x00\x11"
SERVER_MAC = b"\x02\x00\x00\x00\x00\x01"
SERVER_IP = bytes([198, 18, 0, 1])
OFFERED = bytes([198, 18, 0, 123])
BCAST_MAC = b"\xff" * 6


def csum(data):
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_frame(dst_mac, src_ip, dst_ip, sport, dport, payload, src_mac=SERVER_MAC):
    """Ethernet + IPv4 + UDP (checksum 0: none) around payload."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + bytes(payload)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                               bytes(src_ip), bytes(dst_ip)))
    ip[10:12] = struct.pack("!H", csum(bytes(ip)))
    return bytes(dst_mac) + bytes(src_mac) + b"\x08\x00" + bytes(ip) + udp


def parse_udp(frame):
    """(dst_mac, src_ip, dst_ip, sport, dport, payload) of a UDP frame, else None."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ulen = struct.unpack("!H", frame[38:40])[0]
    return (frame[0:6], frame[26:30], frame[30:34], struct.unpack("!H", frame[34:36])[0],
            struct.unpack("!H", frame[36:38])[0], frame[42:34 + ulen])


def arp_request_for(frame):
    """The target address of an ARP request frame, else None."""
    if len(frame) >= 42 and frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x01":
        return frame[38:42]
    return None


def arp_reply(to_mac, to_ip, from_ip, from_mac=SERVER_MAC):
    return (bytes(to_mac) + bytes(from_mac) + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x02"
            + bytes(from_mac) + bytes(from_ip) + bytes(to_mac) + bytes(to_ip))


class FakeNic:
    """Frames sent are kept in .sent; frames in .inbox are received in turn."""

    def __init__(self, mac=CLIENT_MAC):
        self.mac = mac
        self.sent = []
        self.inbox = []
        self.up = True

    def recv_into(self, mv):
        if not self.inbox:
            return 0
        f = self.inbox.pop(0)
        mv[:len(f)] = f
        return len(f)

    def send(self, mv, n):
        if not self.up:
            return False
        self.sent.append(bytes(mv[:n]))
        return True

    def link_up(self):
        return self.up


def run(stack, clock, ms, step=50):
    """Advance the virtual clock by ms, polling every step ms."""
    for _ in range(ms // step):
        clock.advance(step)
        stack.poll()
