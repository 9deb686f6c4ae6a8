"""The Stack: configuration, the Ethernet layer, poll() and the periodic tick."""
from uipy import compat
from uipy.compat import const, copy_into, same, ticks_add, ticks_diff
from uipy.frame import BROADCAST_MAC, new_buffer
from uipy.stats import new_counters
from uipy.arp import Arp
from uipy.ipv4 import Ipv4, ip_bytes, ip_str, PROTO_ICMP, PROTO_UDP, PROTO_TCP
from uipy.icmp import Icmp
from uipy.udp import Udp

_FRAME_MAX = const(1514)         # uipy.frame's, as constants put in place by the compiler
_FRAME_MIN = const(60)
_PAD = bytes(_FRAME_MIN)            # zeros for padding short frames

ETHERTYPE_IPV4 = const(0x0800)
ETHERTYPE_ARP = const(0x0806)


def _check_mac(mac):
    if not isinstance(mac, (bytes, bytearray)) or len(mac) != 6:
        raise ValueError("uipy: the NIC's MAC must be 6 bytes, got %r" % (mac,))
    if mac[0] & 1:
        raise ValueError("uipy: the NIC's MAC %s is a multicast address" % mac_str(mac))
    if mac == b"\x00" * 6:
        raise ValueError("uipy: the NIC's MAC is all zeros")
    return bytes(mac)


def mac_str(mac):
    return ":".join("%02x" % b for b in mac)


class Stack:
    """One network interface.  Call poll() often; nothing in it blocks.

    nic: driver object with mac, recv_into(mv), send(mv, n), link_up().
    clock: function returning milliseconds that wrap like time.ticks_ms
    (tests pass a compat.VirtualClock).
    reassembly: the largest IPv4 payload put together from fragments (one
    datagram at a time, given reassembly_ms to complete; uipy.reasm loads with
    the first fragment); 0 drops fragments.
    tcp: dict of TCP settings (see uipy.tcp.Tcp: conns, listeners, window, ...),
    or False for a UDP-only stack (TCP's code then never loads: about 13 KB
    less heap on a 32-bit board).
    """

    def __init__(self, nic, ip=None, netmask="255.255.255.0", gateway=None,
                 arp_size=8, udp_size=4, clock=None, tick_ms=50,
                 arp_max_age_ms=300000, arp_retry_ms=1000, arp_pending_ms=5000,
                 icmp_unreach_per_s=10, poll_budget=8, tcp=None, multicast_groups=2,
                 reassembly=1480, reassembly_ms=3000):
        for name, value in (("arp_size", arp_size), ("udp_size", udp_size),
                            ("tick_ms", tick_ms), ("poll_budget", poll_budget)):
            if not isinstance(value, int) or value < 1:
                raise ValueError("uipy: %s must be a positive int, got %r" % (name, value))
        self.nic = nic
        self.mac = _check_mac(getattr(nic, "mac", None))
        self.clock = clock or compat.ticks_ms
        self.now = self.clock()
        self.buf, self.mv = new_buffer()
        self.mtu = _FRAME_MAX - 14
        self.stats = new_counters()
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
        self.ip = b"\x00\x00\x00\x00"
        self.ip_hi = self.ip_lo = 0
        self.configured = False       # an address is set (a plain attribute: see tcp_conn)
        self.mask_hi = self.mask_lo = 0xFFFF
        self.net_hi = self.net_lo = 0
        self.gw_hi = self.gw_lo = 0
        self.arp = Arp(self, arp_size, arp_max_age_ms, arp_retry_ms, arp_pending_ms)
        self.ipv4 = Ipv4(self, compat.random_u16(), multicast_groups, reassembly, reassembly_ms)
        self.icmp = Icmp(self, compat.random_u16(), icmp_unreach_per_s)
        self.udp = Udp(self, udp_size)
        self.ipv4.handlers[PROTO_ICMP] = self.icmp.input
        self.ipv4.handlers[PROTO_UDP] = self.udp.input
        self.tcp = None
        if tcp is not False:
            from uipy.tcp import Tcp
            self.tcp = Tcp(self, **(tcp or {}))
            self.ipv4.handlers[PROTO_TCP] = self.tcp.input
        if ip is not None:
            self.set_address(ip, netmask, gateway)

    # --- configuration ---

    def set_address(self, ip, netmask="255.255.255.0", gateway=None):
        """Set (or change) the interface address; announces it with gratuitous ARP."""
        ip = ip_bytes(ip, "address")
        mask = ip_bytes(netmask, "netmask")
        m = int.from_bytes(mask, "big")
        if m == 0 or (((~m) & 0xFFFFFFFF) + 1) & (~m & 0xFFFFFFFF):
            raise ValueError("uipy: netmask %s is not a contiguous prefix" % ip_str(mask))
        hi = (ip[0] << 8) | ip[1]
        lo = (ip[2] << 8) | ip[3]
        mhi = (mask[0] << 8) | mask[1]
        mlo = (mask[2] << 8) | mask[3]
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
        self.arp.clear()
        self.arp.announce()

    def clear_address(self):
        """Forget the interface address (a DHCP lease ended): TCP connections are
        reset, the ARP cache emptied; only broadcasts (and DHCP) get through."""
        if self.tcp is not None:
            for c in self.tcp.conns:
                if c.state:
                    self.tcp.abort(c)
        self.ip = b"\x00\x00\x00\x00"
        self.ip_hi = self.ip_lo = 0
        self.configured = False       # an address is set (a plain attribute: see tcp_conn)
        self.mask_hi = self.mask_lo = 0xFFFF
        self.net_hi = self.net_lo = 0
        self.gw_hi = self.gw_lo = 0
        self.ipv4.forget_hop()
        self.arp.clear()

    def join_multicast(self, group):
        """Receive IPv4 multicast for group (e.g. '224.0.0.251' for mDNS); the NIC's
        filter is opened for multicast if it has allow_multicast()."""
        self.ipv4.join(ip_bytes(group, "multicast group"))
        allow = getattr(self.nic, "allow_multicast", None)
        if allow is not None:
            allow(True)

    # --- the loop ---

    def poll(self):
        """Handle waiting frames (up to poll_budget) and the periodic tick when due.
        Returns the number of frames handled.  Never raises for bad input."""
        nic = self.nic
        mv = self.mv
        handled = 0
        now = self.now = self.clock()
        budget = self.poll_budget
        while handled < budget:
            n = nic.recv_into(mv)
            if not n:
                break
            handled += 1
            buf = self.buf
            stats = self.stats
            stats["rx_frames"] += 1
            # The Ethernet layer, written out (a call costs more than these tests
            # on a board): length, destination (ours, broadcast or a joined
            # multicast group), then the type.
            try:
                kind = (buf[12] << 8) | buf[13]
                if n < 14:
                    stats["drop_short"] += 1
                elif n > _FRAME_MAX:
                    stats["drop_oversize"] += 1
                elif not ((same(buf, 0, BROADCAST_MAC, 6) or self.ipv4.group_mac(buf)) if buf[0] & 1
                          else same(buf, 0, self.mac, 6)):
                    stats["drop_not_for_us"] += 1
                elif kind == ETHERTYPE_IPV4:
                    self.ipv4.input(n)
                elif kind == ETHERTYPE_ARP:
                    self.arp.input(n)
                else:
                    stats["drop_ethertype"] += 1
            except Exception as e:           # a bug or a handler's error: count, keep going
                self.stats["handler_errors"] += 1
                self.last_error = e
        tcp = self.tcp
        if tcp is not None and (tcp.pending or tcp.wakeups):
            try:
                tcp.flush()
            except Exception as e:
                self.stats["handler_errors"] += 1
                self.last_error = e
        if ticks_diff(now, self._next_tick) >= 0:
            self._next_tick = ticks_add(now, self.tick_ms)
            try:
                self.tick(now)
            except Exception as e:
                self.stats["handler_errors"] += 1
                self.last_error = e
        return handled

    async def serve(self, idle_ms=5):
        """asyncio: poll forever, yielding to other tasks between passes."""
        while True:
            await compat.sleep_ms(0 if self.poll() else idle_ms)

    def tick(self, now):
        self.arp.tick(now)
        self.icmp.tick(now)
        if self.tcp is not None:
            self.tcp.tick(now)
        for fn in self.tickers:
            fn(now)

    def view(self, start, n):
        """A memoryview of n bytes of the buffer from start, for handing received
        data to applications.  Reused while start and length repeat (steady
        traffic), so delivery usually allocates nothing."""
        if start != self._view_start or n != self._view_len:
            self._view = self.mv[start:start + n]
            self._view_start = start
            self._view_len = n
        return self._view

    def send_frame(self, n):
        """Send the first n bytes of the buffer as one frame (padded to 60)."""
        if n < _FRAME_MIN:                 # pad with zeros: one copy, not a byte loop
            copy_into(self.buf, n, _PAD, 0, _FRAME_MIN - n)
            n = _FRAME_MIN
        self.stats["tx_frames"] += 1
        if self.nic.send(self.mv, n) is False:
            self.stats["tx_errors"] += 1
            return False
        return True

    # --- conveniences for applications ---

    def udp_bind(self, port, handler):
        self.udp.bind(port, handler)

    def udp_sendto(self, data, ip, port, src_port, ttl=0):
        return self.udp.sendto(data, ip_bytes(ip) if isinstance(ip, str) else ip, port, src_port, ttl)

    def ping(self, ip, seq, size=32):
        return self.icmp.ping(ip_bytes(ip) if isinstance(ip, str) else ip, seq, size)

    def listen(self, port, handler, backlog=2, window=0, on_full=None):
        """Accept TCP connections on port; handler(conn, events) gets their events."""
        self._need_tcp().listen(port, handler, backlog, window, on_full)

    def connect(self, ip, port, handler, local_port=0, window=0):
        """Open a TCP connection; returns the Conn (CONNECTED arrives later)."""
        return self._need_tcp().connect(ip_bytes(ip) if isinstance(ip, str) else ip, port, handler,
                                        local_port, window)

    def _need_tcp(self):
        if self.tcp is None:
            raise ValueError("uipy: this stack was made with tcp=False")
        return self.tcp

    def link_up(self):
        return self.nic.link_up()
