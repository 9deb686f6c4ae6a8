"""UDP (RFC 768): a fixed table of bound ports with receive callbacks, and sendto.

A received checksum of 0 means the sender did not compute one; a computed
checksum of 0 is sent as 0xFFFF.
"""
from uipy import run
from uipy.compat import const, copy_into, get16, put16, sum16

# uipy.frame's offsets and the protocol number as this module's const()s:
# folded in place, where an imported name is a global lookup at each use
# (a test checks they agree)
_IP_SRC = const(26)
_IP_DST = const(30)
_TRANSPORT = const(34)
_UDP_DATA = const(42)
_PROTO_UDP = const(17)


_TYPING = const(0)
if _TYPING:                       # for the type checker only: the compiler drops it
    from uipy import stack_setup  # and so run()'s "stack_setup" below is a qstr, not a heap string
    from uipy.stack import Stack
    # The counters' names over 10 characters, written as names for the compiler
    # only: it then interns the strings counted under them below (qstrs, shared
    # with the stats dict's keys), where such a string would be a heap object of
    # its own (see uipy.stack_setup).
    dict(udp_drop_header=0, udp_drop_checksum=0, udp_no_port=0)


class Udp:
    """Made by uipy.stack_setup (the constructor's body runs once: on a stock
    board code is heap); the attributes, declared for the type checker:"""
    stack: "Stack"
    ports: list                   # bound ports (0: free slot)
    handlers: list                # their handlers
    _src: bytearray               # sender address handed to handlers

    def bind(self, port, handler):
        """Deliver datagrams for port to handler(data, src_ip, src_port).
        data is a memoryview and src_ip a bytearray, both valid only during the call."""
        ports = self.ports
        if not (0 < port < 65536 and port not in ports and 0 in ports):
            raise run("stack_setup", "bind_error", self, port)   # the error saying why
        i = ports.index(0)
        ports[i] = port
        self.handlers[i] = handler

    def unbind(self, port):
        for i in range(len(self.ports)):
            if self.ports[i] == port:
                self.ports[i] = 0
                self.handlers[i] = None

    def input(self, length, broadcast):
        s = self.stack
        buf = s.buf
        stats = s.stats
        stats["udp_rx"] += 1
        if length < 8:
            stats["udp_drop_header"] += 1
            return
        ulen = get16(buf, _TRANSPORT + 4)
        if ulen < 8 or ulen > length:
            stats["udp_drop_header"] += 1
            return
        # the checksum over the datagram and the pseudo-header: both addresses
        # (contiguous), protocol and length
        if get16(buf, _TRANSPORT + 6) and \
                sum16(buf, _TRANSPORT, ulen, sum16(buf, _IP_SRC, 8, _PROTO_UDP + ulen)) != 0xFFFF:
            stats["udp_drop_checksum"] += 1
            return
        port = get16(buf, _TRANSPORT + 2)
        ports = self.ports
        for i in range(len(ports)):
            handler = self.handlers[i]
            if ports[i] == port and handler is not None:
                copy_into(self._src, 0, buf, _IP_SRC, 4)
                handler(s.view(_UDP_DATA, ulen - 8), self._src, get16(buf, _TRANSPORT))
                return
        stats["udp_no_port"] += 1
        if not broadcast:
            s.icmp.port_unreachable(length)

    def sendto(self, data, ip, port, src_port, ttl=0):
        """Send data (bytes-like) to ip (4 bytes) and port.  False when it could not
        go out yet (ARP miss: the frame became an ARP request; send again later)."""
        n = len(data)
        if n > self.stack.mtu - 28:
            raise run("stack_setup", "size_error", self, n)
        self.stack.buf[_UDP_DATA:_UDP_DATA + n] = data
        return self.send_payload(n, ip, port, src_port, ttl)

    def send_payload(self, n, ip, port, src_port, ttl=0):
        """Send the n bytes already written at _UDP_DATA (for instance a reply built
        in place over the received datagram) to ip and port."""
        s = self.stack
        buf = s.buf
        copy_into(buf, _IP_DST, ip, 0, 4)
        copy_into(buf, _IP_SRC, s.ip, 0, 4)
        put16(buf, _TRANSPORT, src_port)
        put16(buf, _TRANSPORT + 2, port)
        put16(buf, _TRANSPORT + 4, n + 8)
        put16(buf, _TRANSPORT + 6, 0)
        c = ~sum16(buf, _TRANSPORT, n + 8, sum16(buf, _IP_SRC, 8, _PROTO_UDP + n + 8)) & 0xFFFF
        put16(buf, _TRANSPORT + 6, c if c else 0xFFFF)
        s.stats["udp_tx"] += 1
        return s.ipv4.send(_PROTO_UDP, n + 8, ttl)
