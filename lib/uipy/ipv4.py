"""IPv4 (RFC 791): input validation and dispatch, header output and next-hop routing."""
from uipy.compat import const, copy_into, copy_within, eth_ip_header, get16, ip_plain, put16, sum16

PROTO_ICMP = const(1)
PROTO_TCP = const(6)
PROTO_UDP = const(17)

# frame offsets (uipy.frame's), here as constants the compiler puts in place:
# an imported name is a global looked up at each use
_IP = const(14)
_IP_SRC = const(26)
_IP_DST = const(30)
_TRANSPORT = const(34)
_ARP_RESOLVED = const(2)          # uipy.arp's _RESOLVED (send reads ARP's table in place)
_BROADCAST = b"\xff\xff\xff\xff\xff\xff"


def ip_bytes(value, what="address"):
    """'198.18.0.2' (or 4 bytes) -> bytes(4); a clear ValueError otherwise."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) == 4:
            return bytes(value)
    elif isinstance(value, str):
        parts = value.split(".")
        if len(parts) == 4:
            out = bytearray(4)
            ok = True
            for i in range(4):
                p = parts[i]
                if not p.isdigit() or len(p) > 3 or int(p) > 255:
                    ok = False
                    break
                out[i] = int(p)
            if ok:
                return bytes(out)
    raise ValueError("uipy: bad IPv4 %s %r (expected dotted quad like '198.18.0.2')" % (what, value))


def ip_str(b, off=0):
    return "%d.%d.%d.%d" % (b[off], b[off + 1], b[off + 2], b[off + 3])


_TYPING = const(0)
if _TYPING:                       # for the type checker only: the compiler drops it
    from uipy.stack import Stack
    from uipy.reasm import Reassembly


class Ipv4:
    """Made by uipy.stack_setup (the constructor's body runs once: on a stock
    board code is heap); the attributes, declared for the type checker:"""
    stack: "Stack"
    reasm: "Reassembly | None"    # uipy.reasm, loaded with the first fragment
    reasm_size: int               # largest payload put together (0: fragments are dropped)
    reasm_ms: int
    ident: int
    ttl: int
    group_hi: list                # joined multicast groups (0: free slot)
    group_lo: list
    handlers: dict                # protocol number -> input(payload_len, broadcast); filled by the stack
    arp_pending: bool             # the last send() became an ARP request
    orig: "bytearray | None"      # the header of a datagram with options, as it came
    orig_len: int
    orig_at: int                  # ...for the datagram that ip_rx counted as this number
    _hop_hi: int                  # the remembered next hop (see send)
    _hop_lo: int
    _hop_slot: int
    _hop_dst_hi: int
    _hop_dst_lo: int

    # --- input ---

    def input(self, n):
        s = self.stack
        buf = s.buf
        s.stats["ip_rx"] += 1
        # The common datagram in one call (on a board each call and each
        # statement costs more than a byte read): see compat.ip_plain. Anything
        # else is examined (and its drop counted) by _input.
        if s.configured:
            v = ip_plain(buf, n, s.ip, s.mask_lo)
            if v >= 0:
                handler = self.handlers.get(v >> 16)
                if handler is not None:
                    handler((v & 0xFFFF) - 20, 0)
                    return
        self._input(n)

    def _input(self, n):
        s = self.stack
        buf = s.buf
        stats = s.stats
        if n < _TRANSPORT or buf[_IP] >> 4 != 4:
            stats["ip_drop_header"] += 1
            return
        hlen = (buf[_IP] & 0x0F) * 4
        total = (buf[_IP + 2] << 8) | buf[_IP + 3]
        if hlen < 20 or total < hlen or _IP + total > n:
            stats["ip_drop_header"] += 1
            return
        if sum16(buf, _IP, hlen, 0) != 0xFFFF:
            stats["ip_drop_checksum"] += 1
            return
        if not self._source_ok((buf[_IP_SRC] << 8) | buf[_IP_SRC + 1], (buf[_IP_SRC + 2] << 8) | buf[_IP_SRC + 3]):
            stats["ip_drop_source"] += 1
            return
        hi = (buf[_IP_DST] << 8) | buf[_IP_DST + 1]
        lo = (buf[_IP_DST + 2] << 8) | buf[_IP_DST + 3]
        if hi == s.ip_hi and lo == s.ip_lo and (hi | lo):
            if buf[0] & 1:                    # unicast IP in a link-layer broadcast (RFC 1122 3.3.6)
                stats["ip_drop_link_broadcast"] += 1
                return
            broadcast = 0                     # ours: the common case, decided here
        else:
            broadcast = self._dest_kind(hi, lo)
        if broadcast < 0 and (s.ip_hi | s.ip_lo) == 0 and buf[_IP + 9] == PROTO_UDP and \
                n >= _IP + hlen + 4 and get16(buf, _IP + hlen + 2) == 68:
            broadcast = 0                 # no address yet: a DHCP server may answer unicast
        if broadcast < 0:
            stats["ip_drop_not_for_us"] += 1
            return
        if hlen > 20:
            self._strip_options(hlen, total)
            total -= hlen - 20
        if buf[_IP + 6] & 0x3F or buf[_IP + 7]:  # more-fragments flag or an offset
            total = self._fragment(total - 20) + 20
            if total < 20:
                return
        handler = self.handlers.get(buf[_IP + 9])
        if handler is None:
            stats["ip_drop_proto"] += 1
            return
        handler(total - 20, broadcast)

    def _fragment(self, plen):
        """A fragment: the reassembled datagram's payload length once complete, else -1."""
        r = self.reasm
        if r is None and self.reasm_size:
            try:
                from uipy.reasm import Reassembly
                r = self.reasm = Reassembly(self.stack, min(self.reasm_size, self.stack.mtu - 20),
                                            self.reasm_ms)
            except MemoryError:               # no room for it now: the next fragment tries again
                pass
        if r is None:                         # turned off, or no room
            self.stack.stats["ip_drop_fragment"] += 1
            return -1
        return r.add(plen)

    def _source_ok(self, hi, lo):
        """Refuse broadcast, multicast, zero-net and loopback sources (no replies to them)."""
        first = hi >> 8
        if first >= 224 or first == 127:
            return False
        if first == 0:
            # 0.0.0.0 is a legal source only for broadcasts (DHCP discover)
            return hi == 0 and lo == 0
        return (lo | self.stack.mask_lo) != 0xFFFF or not self.subnet_broadcast(hi, lo)

    def on_link(self, hi, lo):
        """hi.lo (two 16-bit halves) is in our subnet."""
        s = self.stack
        return (hi & s.mask_hi) == s.net_hi and (lo & s.mask_lo) == s.net_lo

    def subnet_broadcast(self, hi, lo):
        """hi.lo is the directed broadcast of our subnet.  An unconfigured
        interface, /31 and /32 have none (RFC 3021)."""
        s = self.stack
        return s.mask_lo < 0xFFFE and (hi | s.mask_hi) == 0xFFFF and (lo | s.mask_lo) == 0xFFFF and \
            self.on_link(hi, lo)

    def _dest_kind(self, hi, lo):
        """For a destination that is not our address: 1 for a broadcast we
        accept, -1 otherwise."""
        if hi == 0xFFFF and lo == 0xFFFF:
            return 1
        if self.subnet_broadcast(hi, lo):
            return 1
        if hi >> 12 == 0xE:                   # 224.0.0.0/4
            for i in range(len(self.group_hi)):
                if self.group_hi[i] == hi and self.group_lo[i] == lo:
                    return 1
        return -1

    # --- multicast ---

    def group_mac(self, buf):
        """True when the destination MAC in buf is that of a joined group
        (01:00:5e + the low 23 bits of the group address)."""
        if buf[0] != 0x01 or buf[1] != 0x00 or buf[2] != 0x5E:
            return False
        for i in range(len(self.group_hi)):
            hi = self.group_hi[i]
            if hi and buf[3] == hi & 0x7F and buf[4] == self.group_lo[i] >> 8 and \
                    buf[5] == self.group_lo[i] & 0xFF:
                return True
        return False

    def _strip_options(self, hlen, total):
        """Move the payload down to TRANSPORT so upper layers use fixed offsets."""
        buf = self.stack.buf
        if self.orig is None:
            self.orig = bytearray(60)
        copy_into(self.orig, 0, buf, _IP, hlen)    # an ICMP error quotes it unchanged
        self.orig_len = hlen
        self.orig_at = self.stack.stats["ip_rx"]
        copy_within(buf, _TRANSPORT, _IP + hlen, total - hlen)
        buf[_IP] = 0x45
        put16(buf, _IP + 2, total - hlen + 20)
        self.stack.stats["ip_options_stripped"] += 1

    # --- output ---

    def prepare_reply(self):
        """Address the packet in the buffer back to its sender (IP and Ethernet)."""
        s = self.stack
        buf = s.buf
        copy_into(buf, _IP_DST, buf, _IP_SRC, 4)
        copy_into(buf, _IP_SRC, s.ip, 0, 4)
        copy_into(buf, 0, buf, 6, 6)

    def finish(self, proto, payload_len, ttl=0):
        """Fill in the Ethernet and IPv4 headers around the addresses and the
        destination MAC already in place.  Returns the frame length."""
        s = self.stack
        buf = s.buf
        ident = self.ident
        self.ident = (ident + 1) & 0xFFFF
        eth_ip_header(buf, buf, 0, s.mac, s.ip, payload_len + 20, ident, ((ttl or self.ttl) << 8) | proto)
        s.stats["ip_tx"] += 1
        return _TRANSPORT + payload_len

    def send_reply(self, proto, payload_len):
        """Send a reply prepared with prepare_reply (Ethernet destination known)."""
        self.stack.send_frame(self.finish(proto, payload_len))

    def forget_hop(self):
        """Drop the remembered next hop (the address or the gateway changed)."""
        self._hop_dst_hi = self._hop_dst_lo = -1

    def next_hop_unconfirmed(self, hi, lo):
        """No answers come back from hi.lo: have ARP check the next hop's MAC."""
        s = self.stack
        if not self.on_link(hi, lo):
            hi, lo = s.gw_hi, s.gw_lo
        s.arp.verify(hi, lo)

    def send(self, proto, payload_len, ttl=0):
        """Send the packet in the buffer to the IPv4 destination already written at
        IP_DST (TTL 64 unless given).  Resolves the next hop; on an ARP miss the
        frame is replaced by an ARP request and False is returned (the caller
        retries later)."""
        s = self.stack
        buf = s.buf
        self.arp_pending = False
        ident = self.ident
        self.ident = (ident + 1) & 0xFFFF
        s.stats["ip_tx"] += 1
        hi = (buf[_IP_DST] << 8) | buf[_IP_DST + 1]
        lo = (buf[_IP_DST + 2] << 8) | buf[_IP_DST + 3]
        a = s.arp
        i = self._hop_slot
        if hi == self._hop_dst_hi and lo == self._hop_dst_lo and a.state[i] == _ARP_RESOLVED and \
                a.hi[i] == self._hop_hi and a.lo[i] == self._hop_lo:
            # the same destination as last time, its next hop still resolved:
            # ARP's entry read in place (a call costs more than these tests)
            a.used[i] = s.now
            eth_ip_header(buf, a.mac, 6 * i, s.mac, s.ip, payload_len + 20, ident,
                          ((ttl or self.ttl) << 8) | proto)
            return s.send_frame(_TRANSPORT + payload_len)
        eth_ip_header(buf, _BROADCAST, 0, s.mac, s.ip, payload_len + 20, ident, ((ttl or self.ttl) << 8) | proto)
        return self._route(hi, lo, _TRANSPORT + payload_len)

    def _route(self, hi, lo, n):
        """send() for a destination other than the last one: broadcast and
        multicast MACs, else the next hop's from ARP (or an ARP request)."""
        s = self.stack
        buf = s.buf
        if (hi == 0xFFFF and lo == 0xFFFF) or self.subnet_broadcast(hi, lo):
            return s.send_frame(n)            # the broadcast MAC is in place
        if hi >> 12 == 0xE:                   # multicast: the group's MAC, no ARP
            buf[0] = 0x01
            buf[1] = 0x00
            buf[2] = 0x5E
            buf[3] = hi & 0x7F
            buf[4] = lo >> 8
            buf[5] = lo & 0xFF
            return s.send_frame(n)
        dst_hi = hi
        dst_lo = lo
        if not self.on_link(hi, lo):
            if (s.gw_hi | s.gw_lo) == 0:
                s.stats["ip_no_route"] += 1
                return False
            hi = s.gw_hi
            lo = s.gw_lo
        i = s.arp.lookup_into(hi, lo, buf, 0)
        if i >= 0:
            self._hop_dst_hi = dst_hi         # remember the next hop of this destination
            self._hop_dst_lo = dst_lo
            self._hop_hi = hi
            self._hop_lo = lo
            self._hop_slot = i
            return s.send_frame(n)
        s.stats["arp_miss"] += 1
        self.arp_pending = True
        s.arp.request(hi, lo)
        return False
