"""ICMP (RFC 792): echo replies built in place, our own echo requests, and
destination-unreachable for UDP to a closed port (rate-limited, RFC 1812 4.3.2.8).
Echo replies are resident; the rare paths live in uipy.icmp_more."""
from uipy.compat import const, copy_into, eth_ip_header, sum16, ticks_diff

_ECHO_REPLY = const(0)
_UNREACHABLE = const(3)
_ECHO_REQUEST = const(8)
# uipy.frame's offsets and uipy.ipv4's protocol numbers as constants the
# compiler puts in place (an imported name is a global looked up at each use)
_IP_SRC = const(26)
_IP_DST = const(30)
_TRANSPORT = const(34)
_PROTO_ICMP = const(1)
_PROTO_TCP = const(6)


_TYPING = const(0)
if _TYPING:                       # for the type checker only: the compiler drops it
    from uipy.stack import Stack
    from types import ModuleType
    # The counters' names over 10 characters, written as names for the compiler
    # only: it then interns the strings counted under them below (qstrs, shared
    # with the stats dict's keys), where such a string would be a heap object of
    # its own (see uipy.stack_setup).
    dict(icmp_drop_short=0, icmp_drop_checksum=0, icmp_echo_rx=0, icmp_echo_reply_rx=0,
         icmp_unreach_rx=0, icmp_drop_type=0, icmp_unreach_limited=0)


class Icmp:
    """Made by uipy.stack_setup (the constructor's body runs once: on a stock
    board code is heap); the attributes, declared for the type checker:"""
    stack: "Stack"
    ident: int                    # identifier of our echo requests
    on_echo_reply: "function | None"  # callback(src_ip, seq, rtt_ms)
    unreach_per_s: int
    unreach_budget: int
    _refilled: int
    _src: bytearray               # sender of the current reply, valid during the callback
    more: "ModuleType | None"         # uipy.icmp_more once loaded


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
        if kind == _ECHO_REQUEST and buf[_TRANSPORT + 1] == 0 and not broadcast:
            stats["icmp_echo_rx"] += 1
            # The reply, in place and written out (on a board a call costs
            # more than a copy): back to the sender, from us; type 0 and the
            # checksum adjusted (RFC 1624 eqn. 3: ~(~HC + ~0x0800 + 0), one fold
            # is enough); new Ethernet and IPv4 headers, the sender's MAC
            # (buf[6:12]) as the destination, in one call.
            copy_into(buf, _IP_DST, buf, _IP_SRC, 4)
            buf[_TRANSPORT] = _ECHO_REPLY
            c = (((buf[_TRANSPORT + 2] << 8) | buf[_TRANSPORT + 3]) ^ 0xFFFF) + (~(_ECHO_REQUEST << 8) & 0xFFFF)
            c = ((c & 0xFFFF) + (c >> 16)) ^ 0xFFFF
            buf[_TRANSPORT + 2] = c >> 8
            buf[_TRANSPORT + 3] = c & 0xFF
            ip = s.ipv4
            ident = ip.ident
            ip.ident = (ident + 1) & 0xFFFF
            eth_ip_header(buf, buf, 6, s.mac, s.ip, length + 20, ident, (ip.ttl << 8) | _PROTO_ICMP)
            stats["ip_tx"] += 1
            stats["icmp_tx"] += 1
            s.send_frame(_TRANSPORT + length)
        elif kind == _ECHO_REPLY:
            stats["icmp_echo_reply_rx"] += 1
            if self.on_echo_reply is not None:
                m = self._more()
                if m is not None:             # else no memory for its code now: dropped
                    m.echo_reply(self, length)
        elif kind == _UNREACHABLE:
            stats["icmp_unreach_rx"] += 1
            q = _TRANSPORT + 8             # the quoted IP header of what we sent
            if length >= 36 and buf[q + 9] == _PROTO_TCP and s.tcp is not None and not broadcast:
                s.tcp.icmp_unreachable(buf[_TRANSPORT + 1], q, length - 8)
        else:
            stats["icmp_drop_type"] += 1

    def _more(self):
        """uipy.icmp_more (our echo requests and their replies, port
        unreachable: rare, so not loaded with the stack), imported at the first
        use and kept; None when there is no memory for its code now."""
        m = self.more
        if m is None:
            try:
                from uipy import icmp_more as m
            except MemoryError:
                return None
            self.more = m
        return m

    def ping(self, ip, seq, size=32):
        """Send an echo request to ip (4 bytes) carrying size data bytes (the first
        four hold the send time).  False when it could not go out yet (ARP miss,
        or no memory for the code that builds it)."""
        m = self._more()
        return False if m is None else m.ping(self, ip, seq, size)

    def port_unreachable(self, length):
        """Answer the UDP datagram in the buffer (length bytes after the IP header)
        with port unreachable, quoting its IP header and first 8 payload bytes
        (rate-limited; counted as limited when there is no memory for the code)."""
        now = self.stack.now
        if ticks_diff(now, self._refilled) >= 1000:    # the budget refilled each second
            self._refilled = now
            self.unreach_budget = self.unreach_per_s
        m = self._more() if self.unreach_budget > 0 else None
        if m is None:
            self.stack.stats["icmp_unreach_limited"] += 1
            return
        self.unreach_budget -= 1
        m.port_unreachable(self, length)
