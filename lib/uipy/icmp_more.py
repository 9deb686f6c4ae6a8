"""ICMP's rare paths: our echo requests and their replies, and port
unreachable for UDP to a closed port.  uipy.icmp imports this module at the
first use and keeps it (not loaded with the stack: on a stock board code is
heap, and a device that never pings nor meets a closed port never needs it).
"""
from uipy.compat import const, copy_into, copy_within, get16, put16, sum16, ticks_diff

# uipy.icmp's and uipy.frame's numbers, folded in place by the compiler
_UNREACHABLE = const(3)
_ECHO_REQUEST = const(8)
_PORT_UNREACHABLE = const(3)
_IP = const(14)
_IP_DST = const(30)
_TRANSPORT = const(34)
_ICMP_DATA = const(42)
_PROTO_ICMP = const(1)

_TYPING = const(0)
if _TYPING:
    # for the compiler only: the counter's name as a name makes the string
    # counted under it below a qstr, not a heap string (see uipy.stack_setup)
    dict(icmp_unreach_tx=0)


def echo_reply(icmp, length):
    """An echo reply in the buffer: to icmp.on_echo_reply when it answers ours."""
    buf = icmp.stack.buf
    if get16(buf, _TRANSPORT + 4) != icmp.ident or length < 12 or icmp.on_echo_reply is None:
        return
    sent = ((buf[_ICMP_DATA] & 0x3F) << 24) | (buf[_ICMP_DATA + 1] << 16) | get16(buf, _ICMP_DATA + 2)
    copy_into(icmp._src, 0, buf, _IP + 12, 4)
    icmp.on_echo_reply(icmp._src, get16(buf, _TRANSPORT + 6), ticks_diff(icmp.stack.now, sent))


def ping(icmp, ip, seq, size):
    """Icmp.ping."""
    s = icmp.stack
    buf = s.buf
    size = max(4, min(size, s.mtu - 28))
    copy_into(buf, _IP_DST, ip, 0, 4)
    buf[_TRANSPORT] = _ECHO_REQUEST
    buf[_TRANSPORT + 1] = 0
    put16(buf, _TRANSPORT + 2, 0)
    put16(buf, _TRANSPORT + 4, icmp.ident)
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


def port_unreachable(icmp, length):
    """Icmp.port_unreachable, past the rate limit."""
    s = icmp.stack
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
    ip.prepare_reply()
    buf[_TRANSPORT] = _UNREACHABLE
    buf[_TRANSPORT + 1] = _PORT_UNREACHABLE
    for k in range(2, 8):
        buf[_TRANSPORT + k] = 0
    put16(buf, _TRANSPORT + 2, ~sum16(buf, _TRANSPORT, 8 + quoted, 0) & 0xFFFF)
    s.stats["icmp_unreach_tx"] += 1
    s.stats["icmp_tx"] += 1
    ip.send_reply(_PROTO_ICMP, 8 + quoted)
