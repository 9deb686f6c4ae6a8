"""The Stack: configuration, the Ethernet layer, poll() and the periodic tick."""
from uipy import compat, run
from uipy.compat import const, copy_into, same, ticks_add, ticks_diff

_TYPING = const(0)
if _TYPING:                       # for the type checker only: the compiler drops it
    from uipy import stack_setup  # and so run()'s "stack_setup" below is a qstr, not a heap string
    from uipy.arp import Arp
    from uipy.ipv4 import Ipv4
    from uipy.icmp import Icmp
    from uipy.udp import Udp
    from uipy.tcp import Tcp
    # The counters' names over 10 characters, written as names for the compiler
    # only: it then interns the strings counted under them below (qstrs, shared
    # with the stats dict's keys), where such a string would be a heap object of
    # its own (see uipy.stack_setup).
    dict(drop_oversize=0, drop_not_for_us=0, drop_ethertype=0, handler_errors=0)

_FRAME_MAX = const(1514)         # uipy.frame's, as constants put in place by the compiler
_FRAME_MIN = const(60)
_PAD = bytes(_FRAME_MIN)            # zeros for padding short frames

_ETHERTYPE_IPV4 = const(0x0800)
_ETHERTYPE_ARP = const(0x0806)


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

    # Set by the constructor's body (uipy.stack_setup.init, loaded for the
    # call; declared here for the type checker, no code):
    mac: bytes
    clock: "function"            # ms that wrap like time.ticks_ms (or a compat.VirtualClock)
    now: int
    buf: bytearray                # the one frame buffer, and a memoryview of it
    mv: memoryview
    mtu: int
    stats: dict                   # counters by name
    tick_ms: int
    poll_budget: int
    _next_tick: int
    last_error: "Exception | None"
    tickers: list                 # fn(now) called on every tick (DHCP, DNS, mDNS timers)
    _view_start: int              # cache of the last payload memoryview (see view())
    _view_len: int
    _view: "memoryview | None"
    hostname: str
    dns_servers: list             # 4-byte addresses, filled by configuration or DHCP
    ip: bytes
    ip_hi: int
    ip_lo: int
    configured: bool              # an address is set (a plain attribute: see tcp_conn)
    mask_hi: int
    mask_lo: int
    net_hi: int
    net_lo: int
    gw_hi: int
    gw_lo: int
    arp: "Arp"
    ipv4: "Ipv4"
    icmp: "Icmp"
    udp: "Udp"
    tcp: "Tcp | None"

    def __init__(self, nic, ip=None, netmask="255.255.255.0", gateway=None,
                 arp_size=8, udp_size=4, clock=None, tick_ms=50,
                 arp_max_age_ms=300000, arp_retry_ms=1000, arp_pending_ms=5000,
                 icmp_unreach_per_s=10, poll_budget=8, tcp=None, multicast_groups=2,
                 reassembly=1480, reassembly_ms=3000):
        self.nic = nic
        run("stack_setup", "init", self, nic, ip, netmask, gateway, arp_size, udp_size, clock, tick_ms,
            arp_max_age_ms, arp_retry_ms, arp_pending_ms, icmp_unreach_per_s, poll_budget, tcp,
            multicast_groups, reassembly, reassembly_ms)

    # --- configuration ---

    def set_address(self, ip, netmask="255.255.255.0", gateway=None):
        """Set (or change) the interface address; announces it with gratuitous ARP."""
        run("stack_setup", "set_address", self, ip, netmask, gateway)

    def clear_address(self):
        """Forget the interface address (a DHCP lease ended): TCP connections are
        reset, the ARP cache emptied; only broadcasts (and DHCP) get through."""
        run("stack_setup", "clear_address", self)

    def join_multicast(self, group):
        """Receive IPv4 multicast for group (e.g. '224.0.0.251' for mDNS); the NIC's
        filter is opened for multicast if it has allow_multicast()."""
        run("stack_setup", "join_multicast", self, group)

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
                elif not ((same(buf, 0, b"\xff\xff\xff\xff\xff\xff", 6) or self.ipv4.group_mac(buf)) if buf[0] & 1
                          else same(buf, 0, self.mac, 6)):
                    stats["drop_not_for_us"] += 1
                elif kind == _ETHERTYPE_IPV4:
                    self.ipv4.input(n)
                elif kind == _ETHERTYPE_ARP:
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
        if ticks_diff(now, self._next_tick) >= 0:     # the periodic tick
            self._next_tick = ticks_add(now, self.tick_ms)
            try:
                self.arp.tick(now)
                if tcp is not None:
                    tcp.tick(now)
                for fn in self.tickers:
                    fn(now)
            except Exception as e:
                self.stats["handler_errors"] += 1
                self.last_error = e
        return handled

    async def serve(self, idle_ms=5):
        """asyncio: poll forever, yielding to other tasks between passes."""
        while True:
            await compat.sleep_ms(0 if self.poll() else idle_ms)

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
        return self.udp.sendto(data, _ip(ip), port, src_port, ttl)

    def ping(self, ip, seq, size=32):
        return self.icmp.ping(_ip(ip), seq, size)

    def listen(self, port, handler, backlog=2, window=0, on_full=None):
        """Accept TCP connections on port; handler(conn, events) gets their events."""
        if self.tcp is None:
            raise run("stack_setup", "no_tcp")
        self.tcp.listen(port, handler, backlog, window, on_full)

    def connect(self, ip, port, handler, local_port=0, window=0):
        """Open a TCP connection; returns the Conn (CONNECTED arrives later)."""
        if self.tcp is None:
            raise run("stack_setup", "no_tcp")
        return self.tcp.connect(_ip(ip), port, handler, local_port, window)

    def link_up(self):
        return self.nic.link_up()


def _ip(ip):
    """A dotted-quad str as 4 bytes; bytes as they are.  uipy.ipv4 is imported
    here, not with this module: uipy.stack_setup interns the counters' names
    before it loads (see there)."""
    if isinstance(ip, str):
        from uipy.ipv4 import ip_bytes
        return ip_bytes(ip)
    return ip
