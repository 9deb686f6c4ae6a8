"""The Stack's set-up: the constructor's checks and body, address changes,
joining a multicast group; and ARP's rare output (requests, announcements,
defending our address).  uipy.run loads it for the call and drops it after:
on a stock board code is heap, and these run at start, on (rare)
configuration changes and a few times a minute at most.
"""
from uipy import compat, run
from uipy.compat import const, copy_into, put16, ticks_add, ticks_diff
from uipy.arp import Arp
from uipy.ipv4 import Ipv4, ip_bytes, ip_str, PROTO_ICMP, PROTO_UDP, PROTO_TCP
from uipy.icmp import Icmp
from uipy.udp import Udp


def init(self, nic, ip, netmask, gateway, arp_size, udp_size, clock, tick_ms, arp_max_age_ms,
         arp_retry_ms, arp_pending_ms, icmp_unreach_per_s, poll_budget, tcp, multicast_groups,
         reassembly, reassembly_ms):
    """Stack.__init__."""
    for name, value in (("arp_size", arp_size), ("udp_size", udp_size),
                        ("tick_ms", tick_ms), ("poll_budget", poll_budget)):
        if not isinstance(value, int) or value < 1:
            raise ValueError("uipy: %s must be a positive int, got %r" % (name, value))
    mac = getattr(nic, "mac", None)
    if not isinstance(mac, (bytes, bytearray)) or len(mac) != 6:
        raise ValueError("uipy: the NIC's MAC must be 6 bytes, got %r" % (mac,))
    if mac[0] & 1:
        raise ValueError("uipy: the NIC's MAC %s is a multicast address" % ":".join("%02x" % b for b in mac))
    if mac == b"\x00" * 6:
        raise ValueError("uipy: the NIC's MAC is all zeros")
    self.nic = nic
    self.mac = bytes(mac)
    self.clock = clock or compat.ticks_ms
    self.now = self.clock()
    self.buf = bytearray(1536)            # one maximum frame (1514) plus slack
    self.mv = memoryview(self.buf)
    self.mtu = 1500
    # The counters, in one dict made up front: counting never inserts a key
    # (no allocation on the packet path); TCP's join when TCP loads.  Their
    # names are written as keyword names, not as strings: a name in the
    # source is interned when the module loads (a qstr: its bytes and about
    # 8 more), where a string constant over 10 characters is a heap object of
    # 32-48 bytes in every module that counts under it.  This module loads
    # before uipy.ipv4, arp, icmp and udp (uipy.stack imports none of them),
    # so their strings load as these qstrs; each module that counts also
    # writes its long names as names in a block the compiler drops
    # (`if _TYPING: dict(arp_evicted=0, ...)`), which makes its strings
    # qstrs whatever the order.
    self.stats = dict(
        # Ethernet and the driver
        rx_frames=0, tx_frames=0, tx_errors=0, drop_short=0, drop_oversize=0,
        drop_not_for_us=0, drop_ethertype=0, handler_errors=0,
        # ARP
        arp_rx=0, arp_tx=0, arp_drop_bad=0, arp_drop_not_for_us=0, arp_unsolicited=0,
        arp_learned=0, arp_evicted=0, arp_expired=0, arp_miss=0, arp_conflict=0, arp_refresh=0,
        arp_updated=0, arp_defended=0,
        # IPv4
        ip_rx=0, ip_tx=0, ip_drop_header=0, ip_drop_checksum=0, ip_drop_fragment=0,
        ip_drop_not_for_us=0, ip_drop_source=0, ip_drop_proto=0, ip_options_stripped=0,
        ip_no_route=0, ip_drop_link_broadcast=0,
        # ICMP
        icmp_rx=0, icmp_tx=0, icmp_drop_short=0, icmp_drop_checksum=0, icmp_drop_type=0,
        icmp_echo_rx=0, icmp_echo_reply_rx=0, icmp_unreach_rx=0, icmp_unreach_tx=0,
        icmp_unreach_limited=0,
        # UDP
        udp_rx=0, udp_tx=0, udp_drop_header=0, udp_drop_checksum=0, udp_no_port=0)
    self.tick_ms = tick_ms
    self.poll_budget = poll_budget
    self._next_tick = ticks_add(self.now, tick_ms)
    self.last_error = None
    self.tickers = []             # fn(now) called on every tick (DHCP, DNS, mDNS timers)
    self._view_start = -1         # cache of the last payload memoryview (see view())
    self._view_len = -1
    self._view = None
    self.hostname = "uipy"
    self.dns_servers = []         # 4-byte addresses, filled by configuration or DHCP
    self.tcp = None
    _unset(self)
    # the protocols' objects (their classes have no constructors: this body
    # runs once) with the attributes their classes declare
    a = self.arp = Arp()
    a.stack = self
    a.size = arp_size
    a.max_age_ms = arp_max_age_ms
    a.retry_ms = arp_retry_ms
    a.pending_ms = arp_pending_ms
    a.state = bytearray(arp_size)
    a.hi = [0] * arp_size
    a.lo = [0] * arp_size
    a.mac = bytearray(6 * arp_size)
    a.stamp = [0] * arp_size
    a.used = [0] * arp_size
    a.asked = [0] * arp_size
    a.refreshing = bytearray(arp_size)
    a.watch = None
    a.defended = None
    a.reply = bytearray(60)
    p = self.ipv4 = Ipv4()
    p.stack = self
    p.reasm = None
    p.reasm_size = reassembly
    p.reasm_ms = reassembly_ms
    p.ident = compat.random_u16()
    p.ttl = 64
    p.group_hi = [0] * multicast_groups
    p.group_lo = [0] * multicast_groups
    p.handlers = {}
    p.arp_pending = False
    p.orig = None
    p.orig_len = 0
    p.orig_at = -1
    p._hop_hi = p._hop_lo = p._hop_slot = 0
    p.forget_hop()
    arp_clear(self)
    c = self.icmp = Icmp()
    c.stack = self
    c.ident = compat.random_u16()
    c.on_echo_reply = None
    c.unreach_per_s = icmp_unreach_per_s
    c.unreach_budget = icmp_unreach_per_s
    c._refilled = self.now
    c._src = bytearray(4)
    c.more = None
    u = self.udp = Udp()
    u.stack = self
    u.ports = [0] * udp_size
    u.handlers = [None] * udp_size
    u._src = bytearray(4)
    self.ipv4.handlers[PROTO_ICMP] = self.icmp.input
    self.ipv4.handlers[PROTO_UDP] = self.udp.input
    if tcp is not False:
        from uipy.tcp import Tcp
        self.tcp = Tcp(self, **(tcp or {}))
        self.ipv4.handlers[PROTO_TCP] = self.tcp.input
    if ip is not None:
        set_address(self, ip, netmask, gateway)


def _unset(self):
    self.ip = b"\x00\x00\x00\x00"
    self.ip_hi = self.ip_lo = 0
    self.configured = False       # an address is set (a plain attribute: see tcp_conn)
    self.mask_hi = self.mask_lo = 0xFFFF
    self.net_hi = self.net_lo = 0
    self.gw_hi = self.gw_lo = 0


def set_address(self, ip, netmask, gateway):
    """Stack.set_address."""
    ip = ip_bytes(ip, "address")
    mask = ip_bytes(netmask, "netmask")
    hi = (ip[0] << 8) | ip[1]
    lo = (ip[2] << 8) | ip[3]
    mhi = (mask[0] << 8) | mask[1]
    mlo = (mask[2] << 8) | mask[3]
    m = (mhi << 16) | mlo
    if m == 0 or (((~m) & 0xFFFFFFFF) + 1) & (~m & 0xFFFFFFFF):
        raise ValueError("uipy: netmask %s is not a contiguous prefix" % ip_str(mask))
    if ip[0] == 0 or ip[0] >= 224 or ip[0] == 127:
        raise ValueError("uipy: %s cannot be an interface address" % ip_str(ip))
    if mlo < 0xFFFE and ((lo | mlo) == 0xFFFF and (hi | mhi) == 0xFFFF or (lo & ~mlo) == 0 and (hi & ~mhi & 0xFFFF) == 0):
        raise ValueError("uipy: %s is the network or broadcast address of its subnet" % ip_str(ip))
    gw_hi = gw_lo = 0
    if gateway is not None:
        gw = ip_bytes(gateway, "gateway")
        gw_hi = (gw[0] << 8) | gw[1]
        gw_lo = (gw[2] << 8) | gw[3]
        if (gw_hi & mhi) != (hi & mhi) or (gw_lo & mlo) != (lo & mlo):
            raise ValueError("uipy: gateway %s is not in the subnet of %s/%s"
                             % (ip_str(gw), ip_str(ip), ip_str(mask)))
    self.ip = ip
    self.ip_hi, self.ip_lo = hi, lo
    self.configured = True
    self.mask_hi, self.mask_lo = mhi, mlo
    self.net_hi, self.net_lo = hi & mhi, lo & mlo
    self.gw_hi, self.gw_lo = gw_hi, gw_lo
    self.ipv4.forget_hop()
    arp_clear(self)
    arp_announce(self.arp)


def clear_address(self):
    """Stack.clear_address."""
    if self.tcp is not None:
        for c in self.tcp.conns:
            if c.state:
                self.tcp.abort(c)
    _unset(self)
    self.ipv4.forget_hop()
    arp_clear(self)


def arp_clear(self):
    """Arp.clear: forget every ARP entry (the address changed, or was taken
    away) and fill in ARP's reply template (everything but the target)."""
    a = self.arp
    a.defended = None
    t = a.reply
    copy_into(t, 6, self.mac, 0, 6)
    copy_into(t, 12, _ARP_HEAD, 0, 10)
    copy_into(t, 22, self.mac, 0, 6)          # sender: us
    copy_into(t, 28, self.ip, 0, 4)
    for i in range(a.size):
        a.state[i] = 0                        # free


def join_multicast(self, group):
    """Stack.join_multicast."""
    group = ip_bytes(group, "multicast group")
    p = self.ipv4
    hi = (group[0] << 8) | group[1]
    lo = (group[2] << 8) | group[3]
    if hi >> 12 != 0xE:
        raise ValueError("uipy: %s is not a multicast address" % ip_str(group))
    free = -1
    for i in range(len(p.group_hi)):
        if p.group_hi[i] == hi and p.group_lo[i] == lo:
            free = -2                     # joined already
            break
        if p.group_hi[i] == 0 and free < 0:
            free = i
    if free == -1:
        raise ValueError("uipy: multicast group table full (multicast_groups=%d)" % len(p.group_hi))
    if free >= 0:
        p.group_hi[free] = hi
        p.group_lo[free] = lo
    allow = getattr(self.nic, "allow_multicast", None)
    if allow is not None:
        allow(True)


# Ethernet type ARP, then the ARP header: Ethernet, IPv4, their sizes, operation (reply)
_ARP_HEAD = b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x02"
_DEFEND_MS = const(10000)  # RFC 5227 DEFEND_INTERVAL


def arp_send(arp, hi, lo, ip_hi, ip_lo):
    """An ARP request for hi.lo from the sender address ip_hi.ip_lo (ours, or
    0.0.0.0 for an RFC 5227 probe), broadcast.  (Parameters named like
    attributes: each name is one more string interned for good.)"""
    s = arp.stack
    buf = s.buf
    copy_into(buf, 0, b"\xff\xff\xff\xff\xff\xff", 0, 6)
    copy_into(buf, 6, s.mac, 0, 6)
    copy_into(buf, 12, _ARP_HEAD, 0, 10)
    buf[21] = 1                     # a request
    copy_into(buf, 22, s.mac, 0, 6)
    put16(buf, 28, ip_hi)
    put16(buf, 30, ip_lo)
    for k in range(32, 38):
        buf[k] = 0
    put16(buf, 38, hi)
    put16(buf, 40, lo)
    s.stats["arp_tx"] += 1
    s.send_frame(42)


def arp_announce(arp):
    """Gratuitous ARP: a request for our own address, so neighbours update."""
    s = arp.stack
    arp_send(arp, s.ip_hi, s.ip_lo, s.ip_hi, s.ip_lo)


def arp_ask(arp, i, hi, lo):
    """Arp.request past its check: slot i (-1: none yet) pending, the request sent."""
    s = arp.stack
    now = s.now
    if i < 0:
        i = arp._slot(now)
        arp.hi[i] = hi
        arp.lo[i] = lo
        arp.used[i] = now
    arp.state[i] = 1                # uipy.arp's _PENDING
    arp.stamp[i] = now
    arp_send(arp, hi, lo, s.ip_hi, s.ip_lo)


def arp_conflict(arp):
    """Another host claims our address (RFC 5227 2.4): defend it once with an
    announcement; a second claim within DEFEND_INTERVAL goes to the DHCP
    client, which gives the address up.  With no client (a static address)
    we keep it, defending at most once per DEFEND_INTERVAL."""
    now = arp.stack.now
    t = arp.defended
    if t is None or not 0 <= ticks_diff(now, t) < _DEFEND_MS:
        arp.defended = now
        arp.stack.stats["arp_defended"] += 1
        arp_announce(arp)
    elif arp.watch is not None:
        arp.watch(True)


# Errors, made here so that their messages are not held by resident modules
# (a string constant is a heap object in its module; these functions' names
# are at most 10 characters, so the strings naming them are interned).

def no_tcp():
    return ValueError("uipy: this stack was made with tcp=False")


def bind_error(udp, port):
    """Why Udp.bind cannot bind port."""
    if not 0 < port < 65536:
        return ValueError("uipy: UDP port %r out of range 1..65535" % (port,))
    if port in udp.ports:
        return ValueError("uipy: UDP port %d is already bound" % port)
    return ValueError("uipy: UDP table full (udp_size=%d)" % len(udp.ports))


def size_error(udp, n):
    return ValueError("uipy: UDP payload of %d bytes exceeds %d" % (n, udp.stack.mtu - 28))
