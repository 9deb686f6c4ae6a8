"""ICMP (RFC 792): echo replies built in place, our own echo requests, and
destination-unreachable for UDP to a closed port (rate-limited, RFC 1812 4.3.2.8)."""
from uipy.compat import const, copy_into, ip_header, sum16, ticks_diff
from uipy.frame import copy_within, get16, put16

ECHO_REPLY = const(0)
UNREACHABLE = const(3)
ECHO_REQUEST = const(8)
_PORT_UNREACHABLE = const(3)
# uipy.frame's offsets and uipy.ipv4's protocol numbers as constants the
# compiler puts in place (an imported name is a global looked up at each use)
_IP = const(14)
_IP_SRC = const(26)
_IP_DST = const(30)
_TRANSPORT = const(34)
_ICMP_DATA = const(42)
_PROTO_ICMP = const(1)
_PROTO_TCP = const(6)


class Icmp:
    def __init__(self, stack, ident, unreach_per_s):
        self.stack = stack
        self.ident = ident                # identifier of our echo requests
        self.on_echo_reply = None         # callback(src_ip, seq, rtt_ms)
        self.unreach_per_s = unreach_per_s
        self.unreach_budget = unreach_per_s
        self._refilled = stack.now
        self._src = bytearray(4)          # sender of the current reply, valid during the callback

    def tick(self, now):
        if ticks_diff(now, self._refilled) >= 1000:
            self._refilled = now
            self.unreach_budget = self.unreach_per_s

    def input(self, length, broadcast):
        s = self.stack
        buf = s.buf
        stats = s.stats
        stats["icmp_rx"] += 1
        if length < 8:
            stats["icmp_drop_short"] += 1
            return
        if sum16(buf, _TRANSPORT, length, 0) != 0xFFFF:
            stats["icmp_drop_checksum"] += 1
            return
        kind = buf[_TRANSPORT]
        if kind == ECHO_REQUEST and buf[_TRANSPORT + 1] == 0 and not broadcast:
            stats["icmp_echo_rx"] += 1
            # The reply, in place and written out (on a board a call costs
            # more than a copy): back to the sender, from us; type 0 and the
            # checksum adjusted (RFC 1624 eqn. 3: ~(~HC + ~0x0800 + 0), one fold
            # is enough); a new IPv4 header around the addresses.
            copy_into(buf, 0, buf, 6, 6)
            copy_into(buf, 6, s.mac, 0, 6)
            copy_into(buf, _IP_DST, buf, _IP_SRC, 4)
            copy_into(buf, _IP_SRC, s.ip, 0, 4)
            buf[_TRANSPORT] = ECHO_REPLY
            c = (((buf[_TRANSPORT + 2] << 8) | buf[_TRANSPORT + 3]) ^ 0xFFFF) + (~(ECHO_REQUEST << 8) & 0xFFFF)
            c = ((c & 0xFFFF) + (c >> 16)) ^ 0xFFFF
            buf[_TRANSPORT + 2] = c >> 8
            buf[_TRANSPORT + 3] = c & 0xFF
            ip = s.ipv4
            ident = ip.ident
            ip.ident = (ident + 1) & 0xFFFF
            ip_header(buf, length + 20, ident, (ip.ttl << 8) | _PROTO_ICMP)   # Ethernet type stays IPv4
            stats["ip_tx"] += 1
            stats["icmp_tx"] += 1
            s.send_frame(_TRANSPORT + length)
        elif kind == ECHO_REPLY:
            stats["icmp_echo_reply_rx"] += 1
            self._echo_reply_in(length)
        elif kind == UNREACHABLE:
            stats["icmp_unreach_rx"] += 1
            q = _TRANSPORT + 8             # the quoted IP header of what we sent
            if length >= 36 and buf[q + 9] == _PROTO_TCP and s.tcp is not None and not broadcast:
                s.tcp.icmp_unreachable(buf[_TRANSPORT + 1], q, length - 8)
        else:
            stats["icmp_drop_type"] += 1

    def _echo_reply_in(self, length):
        buf = self.stack.buf
        if get16(buf, _TRANSPORT + 4) != self.ident or length < 12 or self.on_echo_reply is None:
            return
        sent = ((buf[_ICMP_DATA] & 0x3F) << 24) | (buf[_ICMP_DATA + 1] << 16) | get16(buf, _ICMP_DATA + 2)
        copy_into(self._src, 0, buf, _IP + 12, 4)
        self.on_echo_reply(self._src, get16(buf, _TRANSPORT + 6), ticks_diff(self.stack.now, sent))

    def ping(self, ip, seq, size=32):
        """Send an echo request to ip (4 bytes) carrying size data bytes (the first
        four hold the send time).  False when it could not go out yet (ARP miss)."""
        s = self.stack
        buf = s.buf
        size = max(4, min(size, s.mtu - 28))
        copy_into(buf, _IP_DST, ip, 0, 4)
        buf[_TRANSPORT] = ECHO_REQUEST
        buf[_TRANSPORT + 1] = 0
        put16(buf, _TRANSPORT + 2, 0)
        put16(buf, _TRANSPORT + 4, self.ident)
        put16(buf, _TRANSPORT + 6, seq & 0xFFFF)
        now = s.now
        buf[_ICMP_DATA] = (now >> 24) & 0xFF
        buf[_ICMP_DATA + 1] = (now >> 16) & 0xFF
        put16(buf, _ICMP_DATA + 2, now & 0xFFFF)
        for k in range(4, size):
            buf[_ICMP_DATA + k] = k & 0xFF
        put16(buf, _TRANSPORT + 2, ~sum16(buf, _TRANSPORT, 8 + size, 0) & 0xFFFF)
        s.stats["icmp_tx"] += 1
        return s.ipv4.send(_PROTO_ICMP, 8 + size)

    def port_unreachable(self, length):
        """Answer the UDP datagram in the buffer (length bytes after the IP header)
        with port unreachable, quoting its IP header and first 8 payload bytes."""
        s = self.stack
        if self.unreach_budget <= 0:
            s.stats["icmp_unreach_limited"] += 1
            return
        self.unreach_budget -= 1
        buf = s.buf
        ip = s.ipv4
        head = min(8, length)
        if ip.orig_at == s.stats["ip_rx"]:    # it came with options: quote its header as it was
            quoted = ip.orig_len + head
            copy_into(buf, _TRANSPORT + 8 + ip.orig_len, buf, _TRANSPORT, head)
            copy_into(buf, _TRANSPORT + 8, ip.orig, 0, ip.orig_len)
        else:
            quoted = 20 + head
            copy_within(buf, _TRANSPORT + 8, _IP, quoted)
        s.ipv4.prepare_reply()
        buf[_TRANSPORT] = UNREACHABLE
        buf[_TRANSPORT + 1] = _PORT_UNREACHABLE
        for k in range(2, 8):
            buf[_TRANSPORT + k] = 0
        put16(buf, _TRANSPORT + 2, ~sum16(buf, _TRANSPORT, 8 + quoted, 0) & 0xFFFF)
        s.stats["icmp_unreach_tx"] += 1
        s.stats["icmp_tx"] += 1
        s.ipv4.send_reply(_PROTO_ICMP, 8 + quoted)
