"""DHCP client (RFC 2131, options from RFC 2132).

    dhcp = Dhcp(stack, on_change=lambda d, event: print(event, d.address))
    dhcp.start()              # then keep calling stack.poll()

States (dhcp.state): INIT, SELECTING, REQUESTING, BOUND, RENEWING, REBINDING,
INIT-REBOOT, REBOOTING and STOPPED.  The address goes to the stack
(stack.set_address) only once a DHCPACK binds it, and is taken back
(stack.clear_address) when the lease expires, a NAK arrives or on release().
on_change(dhcp, event) is called with "bound" (address set or changed),
"renewed" (lease extended, same address) or "lost" (address cleared).

Lease timers count whole seconds of their own (self.secs), so a lease of days
or an infinite one never meets the wrap of ticks_ms; retransmissions use ticks.
Messages are built straight into the stack's frame buffer.  Packets that are
not ours or are malformed are dropped and counted in dhcp.stats, never raised.
"""
from uipy.compat import const, copy_into, random_bytes, random_u16, ticks_add, ticks_diff
from uipy.frame import UDP_DATA, equal_at
from uipy.ipv4 import ip_bytes, ip_str

CLIENT_PORT = const(68)
SERVER_PORT = const(67)

# message types (option 53)
DISCOVER = const(1)
OFFER = const(2)
REQUEST = const(3)
DECLINE = const(4)
ACK = const(5)
NAK = const(6)
RELEASE = const(7)

_OPTIONS = const(240)          # first option byte: 236-byte BOOTP header + magic cookie
_MIN_LEN = const(300)          # BOOTP minimum message size; shorter ones are padded
_INFINITE = const(-1)          # lease that never expires
_LONG = const(0x3FFFFFFF)      # seconds values at or above this are taken as infinite

_BROADCAST = b"\xff\xff\xff\xff"
_ZERO4 = b"\x00\x00\x00\x00"
_COOKIE = b"\x63\x82\x53\x63"
# subnet mask, router, DNS servers, domain name, lease time, T1, T2
_PARAMS = b"\x01\x03\x06\x0f\x33\x3a\x3b"

_STAT_NAMES = ("discover_tx", "request_tx", "decline_tx", "release_tx", "offer_rx",
               "ack_rx", "nak_rx", "bound", "renewed", "rebound", "rebooted", "expired",
               "link_down", "arp_miss", "drop_short", "drop_foreign", "drop_xid",
               "drop_chaddr", "drop_cookie", "drop_options", "drop_unexpected", "drop_bad_ack")


def _u32s(mv, off):
    """A 32-bit seconds value; huge ones (>= 2**30, a heap int on 32-bit boards) are infinite."""
    if mv[off] >= 0x40:
        return _INFINITE
    return (mv[off] << 24) | (mv[off + 1] << 16) | (mv[off + 2] << 8) | mv[off + 3]


def _check_hostname(name):
    if not isinstance(name, str) or not 0 < len(name) <= 63:
        raise ValueError("uipy: DHCP hostname must be 1..63 characters, got %r" % (name,))
    for c in name:
        if not (c.isalpha() or c.isdigit() or c == "-") or ord(c) > 127:
            raise ValueError("uipy: DHCP hostname %r may hold only letters, digits and '-'" % name)
    return name


class Dhcp:
    """stack: the Stack to configure.  hostname: sent in option 12 (default
    stack.hostname).  retry_ms / retry_max_ms / jitter_ms: RFC 2131 4.1 backoff
    (4 s doubling to 64 s, +-1 s).  init_delay_ms: random wait before the first
    DISCOVER (RFC 2131 4.4.1 suggests 1-10 s).  request_tries: REQUESTs sent
    before discovery restarts; reboot_tries: INIT-REBOOT REQUESTs before
    falling back to discovery.  renew_min_s / renew_max_s: shortest and longest
    gap between renewal retransmissions (RFC: half the time left, at least 60 s).  link_poll_ms: how often nic.link_up() is read.
    """

    def __init__(self, stack, hostname=None, on_change=None, retry_ms=4000,
                 retry_max_ms=64000, jitter_ms=1000, init_delay_ms=1000,
                 request_tries=4, reboot_tries=2, renew_min_s=60, renew_max_s=3600,
                 link_poll_ms=500):
        for name, value in (("retry_ms", retry_ms), ("retry_max_ms", retry_max_ms),
                            ("request_tries", request_tries), ("reboot_tries", reboot_tries),
                            ("renew_min_s", renew_min_s), ("renew_max_s", renew_max_s),
                            ("link_poll_ms", link_poll_ms)):
            if not isinstance(value, int) or value < 1:
                raise ValueError("uipy: Dhcp %s must be a positive int, got %r" % (name, value))
        if not isinstance(jitter_ms, int) or not 0 <= jitter_ms < retry_ms:
            raise ValueError("uipy: Dhcp jitter_ms must be 0..retry_ms-1, got %r" % (jitter_ms,))
        if not isinstance(init_delay_ms, int) or not 0 <= init_delay_ms <= 60000:
            raise ValueError("uipy: Dhcp init_delay_ms must be 0..60000, got %r" % (init_delay_ms,))
        if retry_max_ms < retry_ms or renew_max_s < renew_min_s:
            raise ValueError("uipy: Dhcp retry_max_ms / renew_max_s must be >= retry_ms / renew_min_s")
        self.stack = stack
        self.hostname = None if hostname is None else _check_hostname(hostname)
        if hostname is None:
            _check_hostname(stack.hostname)
        self.on_change = on_change
        self.retry_ms = retry_ms
        self.retry_max_ms = retry_max_ms
        self.jitter_ms = jitter_ms
        self.init_delay_ms = init_delay_ms
        self.request_tries = request_tries
        self.reboot_tries = reboot_tries
        self.renew_min_s = renew_min_s
        self.renew_max_s = renew_max_s
        self.link_poll_ms = link_poll_ms
        self.state = "STOPPED"
        self.stats = {}
        for name in _STAT_NAMES:
            self.stats[name] = 0
        self.secs = 0                 # seconds since start(): the lease clock
        self._ms = 0                  # milliseconds not yet counted into secs
        self._last = 0                # ticks of the previous tick
        self._link = True
        self._link_at = 0             # ticks of the next link_up() poll
        self._xid = bytearray(4)
        self._timer = False           # a (re)transmission is due at _due
        self._due = 0
        self._tries = 0               # messages sent in this state
        self._misses = 0              # renewals in a row lost to an ARP miss
        self._began = 0               # secs when this exchange began (the 'secs' field)
        # the lease: what the server gave (4-byte bytes) and its timers in secs
        self.address = None
        self.netmask = None
        self.gateway = None
        self.server = None
        self.dns = []
        self.domain = None
        self.lease_s = 0
        self.t1_s = 0
        self.t2_s = 0
        self.bound_at = 0             # secs when the lease was last bound / renewed
        self._offer = bytearray(4)    # address offered / asked for
        self._offer_server = bytearray(4)

    # --- public ---

    def start(self, requested=None):
        """Bind UDP 68 and begin: discovery, or INIT-REBOOT of a remembered
        address (requested, e.g. kept in flash across a reset)."""
        if self.state != "STOPPED":
            return
        s = self.stack
        s.udp_bind(CLIENT_PORT, self._input)
        s.tickers.append(self._tick)
        self._last = s.now
        self._link_at = s.now
        self._link = True
        if requested is not None:
            self._offer[:] = ip_bytes(requested, "requested address")
            self._reboot(0)
        elif self.address is not None:     # stopped while holding a lease
            self._offer[:] = self.address
            self._reboot(0)
        else:
            self._init(self._random(self.init_delay_ms))

    def stop(self):
        """Stop all DHCP traffic and timers.  The address stays on the stack (the
        lease may still be valid); use release() to give it back."""
        if self.state == "STOPPED":
            return
        s = self.stack
        s.udp.unbind(CLIENT_PORT)
        if self._tick in s.tickers:
            s.tickers.remove(self._tick)
        self.state = "STOPPED"
        self._timer = False

    def release(self):
        """Send DHCPRELEASE (when a lease is held), clear the address and stop.
        Call it from the main loop, not from inside a stack handler: the message
        is built in the frame buffer."""
        if self.address is not None and self.server is not None and self.state in (
                "BOUND", "RENEWING", "REBINDING"):
            self._new_xid()
            n = self._build(RELEASE, self.address, False, False, True)
            # Unicast to the server; on an ARP miss broadcast it instead, as the
            # server identifier in it still names the server it is meant for.
            if not self.stack.udp.send_payload(n, self.server, SERVER_PORT, CLIENT_PORT):
                n = self._build(RELEASE, self.address, False, False, True)
                self.stack.udp.send_payload(n, _BROADCAST, SERVER_PORT, CLIENT_PORT)
            self.stats["release_tx"] += 1
        self.stop()
        self._drop_lease(True)

    def lease(self):
        """The current lease as a dict (None when no address is held)."""
        if self.address is None:
            return None
        left = -1
        if self.lease_s != _INFINITE:
            left = self.lease_s - (self.secs - self.bound_at)
            if left < 0:
                left = 0
        return {"address": ip_str(self.address), "netmask": ip_str(self.netmask),
                "gateway": ip_str(self.gateway) if self.gateway else None,
                "server": ip_str(self.server) if self.server else None,
                "dns": [ip_str(d) for d in self.dns], "domain": self.domain,
                "lease_s": self.lease_s, "t1_s": self.t1_s, "t2_s": self.t2_s,
                "bound_at_s": self.bound_at, "remaining_s": left}

    # --- states ---

    def _random(self, span):
        """0..span-1 ms at random (0 for span 0)."""
        if span <= 0:
            return 0
        if span <= 0x10000:
            return random_u16() % span
        return ((random_u16() << 14) ^ random_u16()) % span

    def _arm(self, delay_ms):
        self._timer = True
        self._due = ticks_add(self.stack.now, delay_ms)

    def _backoff(self):
        """RFC 2131 4.1: retry_ms doubling per try up to retry_max_ms, +- jitter."""
        d = self.retry_ms
        for _ in range(self._tries - 1):
            d *= 2
            if d >= self.retry_max_ms:
                d = self.retry_max_ms
                break
        if self.jitter_ms:
            d += self._random(2 * self.jitter_ms + 1) - self.jitter_ms
        return d

    def _new_xid(self):
        self._xid[:] = random_bytes(4)

    def _init(self, delay_ms):
        self.state = "INIT"
        self._tries = 0
        if self._link:
            self._arm(delay_ms)
        else:
            self._timer = False

    def _reboot(self, delay_ms):
        """INIT-REBOOT: ask for the address in _offer again (after a link flap or reset)."""
        self.state = "INIT-REBOOT"
        self._tries = 0
        if self._link:
            self._arm(delay_ms)
        else:
            self._timer = False

    def _drop_lease(self, notify):
        had = self.address is not None
        if self.stack.configured and had:
            self.stack.clear_address()
            self.stack.dns_servers = []
        self.address = None
        self.server = None
        if had and notify and self.on_change is not None:
            self.on_change(self, "lost")

    def _restart(self):
        """NAK, expiry, or a failed INIT-REBOOT: drop everything, discover again."""
        self._drop_lease(True)
        self._init(self._random(self.init_delay_ms))

    # --- timers (a stack ticker) ---

    def _tick(self, now):
        d = ticks_diff(now, self._last)
        self._last = now
        if d > 0:
            self._ms += d
            while self._ms >= 1000:
                self._ms -= 1000
                self.secs += 1
        if ticks_diff(now, self._link_at) >= 0:
            self._link_at = ticks_add(now, self.link_poll_ms)
            up = bool(self.stack.nic.link_up())
            if up != self._link:
                self._link_change(up)
        st = self.state
        if self.address is not None and self.lease_s != _INFINITE:
            held = self.secs - self.bound_at
            if held >= self.lease_s:
                self.stats["expired"] += 1
                self._restart()
                return
            if self._link:
                if st == "BOUND" and held >= self.t1_s:
                    self.state = "RENEWING"
                    self._exchange()
                elif st == "RENEWING" and held >= self.t2_s:
                    self.state = "REBINDING"
                    self._exchange()
        if self._timer and self._link and ticks_diff(now, self._due) >= 0:
            self._timer = False
            self._timeout()

    def _exchange(self):
        """A new transaction in the current state: new xid, send at once."""
        self._new_xid()
        self._tries = 0
        self._began = self.secs
        self._send()

    def _link_change(self, up):
        self._link = up
        if not up:
            self.stats["link_down"] += 1
            self._timer = False
            # Keep the address while the cable is out (connections survive a
            # short flap); on return, INIT-REBOOT checks it is still ours.
            if self.address is not None:
                self._offer[:] = self.address
                self.state = "INIT-REBOOT"
            elif self.state != "INIT-REBOOT" and self.state != "REBOOTING":
                self.state = "INIT"
            else:
                self.state = "INIT-REBOOT"
        elif self.state == "INIT-REBOOT":
            self._reboot(0)
        elif self.state == "INIT":
            self._init(self._random(self.init_delay_ms))

    def _timeout(self):
        st = self.state
        if st == "INIT":
            self.state = "SELECTING"
            self._exchange()
        elif st == "INIT-REBOOT":
            self.state = "REBOOTING"
            self._exchange()
        elif st == "SELECTING":
            self._send()
        elif st == "REQUESTING":
            if self._tries >= self.request_tries:
                self._init(0)
            else:
                self._send()
        elif st == "REBOOTING":
            if self._tries >= self.reboot_tries:
                self._restart()
            else:
                self._send()
        elif st == "RENEWING" or st == "REBINDING":
            self._send()

    def _send(self):
        """Send this state's message and arm the retransmission timer."""
        st = self.state
        self._tries += 1
        udp = self.stack.udp
        if st == "SELECTING":
            n = self._build(DISCOVER, None, True, False, False)
            self.stats["discover_tx"] += 1
            udp.send_payload(n, _BROADCAST, SERVER_PORT, CLIENT_PORT)
            self._arm(self._backoff())
            return
        self.stats["request_tx"] += 1
        if st == "REQUESTING":
            n = self._build(REQUEST, None, True, True, True)
        elif st == "REBOOTING":
            n = self._build(REQUEST, None, True, True, False)
        else:                          # RENEWING, REBINDING: ciaddr is ours
            n = self._build(REQUEST, self.address, False, False, False)
        if st != "RENEWING":
            udp.send_payload(n, _BROADCAST, SERVER_PORT, CLIENT_PORT)
            if st == "REBINDING":
                self._arm(self._renew_gap(self.lease_s))
            else:
                self._arm(self._backoff())
            return
        if udp.send_payload(n, self.server, SERVER_PORT, CLIENT_PORT):
            self._misses = 0
        else:
            # ARP miss (set_address emptied the ARP cache): the frame became an
            # ARP request.  Try again at each tick for a second (ARP itself sends
            # one request a second), then at the normal renewal interval.
            self.stats["arp_miss"] += 1
            self._misses += 1
            if self._misses * self.stack.tick_ms < 1000:
                self._tries -= 1
                self._arm(self.stack.tick_ms)
                return
            self._misses = 0
        self._arm(self._renew_gap(self.t2_s))

    def _renew_gap(self, until_s):
        """RFC 2131 4.4.5: half the time left until until_s, at least renew_min_s
        (but never past it), in ms."""
        left = until_s - (self.secs - self.bound_at)
        gap = left // 2
        if gap < self.renew_min_s:
            gap = self.renew_min_s if left > self.renew_min_s else left
        if gap > self.renew_max_s:
            gap = self.renew_max_s
        if gap < 1:
            gap = 1
        if gap > 100000:
            gap = 100000               # keep ticks arithmetic far from the wrap
        return gap * 1000

    # --- output ---

    def _build(self, kind, ciaddr, broadcast, ask_offer, with_server):
        """Write a BOOTREQUEST into the frame buffer at UDP_DATA; returns its length.
        ask_offer: option 50 with the address in _offer; with_server: option 54."""
        s = self.stack
        buf = s.buf
        o = UDP_DATA
        for i in range(o, o + _MIN_LEN):
            buf[i] = 0
        buf[o] = 1                     # BOOTREQUEST
        buf[o + 1] = 1                 # Ethernet
        buf[o + 2] = 6
        buf[o + 4:o + 8] = self._xid
        secs = self.secs - self._began
        if secs > 0xFFFF:
            secs = 0xFFFF
        if kind == REQUEST or kind == DISCOVER:
            buf[o + 8] = secs >> 8
            buf[o + 9] = secs & 0xFF
        if broadcast:
            buf[o + 10] = 0x80         # we cannot take unicast before configured
        if ciaddr is not None:
            buf[o + 12:o + 16] = ciaddr
        buf[o + 28:o + 34] = s.mac
        buf[o + 236:o + 240] = _COOKIE
        p = o + _OPTIONS
        buf[p] = 53
        buf[p + 1] = 1
        buf[p + 2] = kind
        buf[p + 3] = 61                # client identifier: hardware type + MAC
        buf[p + 4] = 7
        buf[p + 5] = 1
        buf[p + 6:p + 12] = s.mac
        p += 12
        if ask_offer:
            buf[p] = 50
            buf[p + 1] = 4
            buf[p + 2:p + 6] = self._offer
            p += 6
        if with_server:
            buf[p] = 54
            buf[p + 1] = 4
            buf[p + 2:p + 6] = self.server if kind == RELEASE else self._offer_server
            p += 6
        if kind == DISCOVER or kind == REQUEST:
            buf[p] = 57                # maximum message size: one unfragmented datagram
            buf[p + 1] = 2
            buf[p + 2] = 1500 >> 8
            buf[p + 3] = 1500 & 0xFF
            p += 4
            name = self.hostname or s.hostname
            if name:
                n = len(name)
                buf[p] = 12
                buf[p + 1] = n
                buf[p + 2:p + 2 + n] = name.encode()
                p += 2 + n
            buf[p] = 55
            buf[p + 1] = len(_PARAMS)
            buf[p + 2:p + 2 + len(_PARAMS)] = _PARAMS
            p += 2 + len(_PARAMS)
        buf[p] = 255
        n = p + 1 - o
        return n if n > _MIN_LEN else _MIN_LEN

    # --- input ---

    def _input(self, data, src_ip, src_port):
        """UDP 68 handler.  data is a view of the frame buffer: everything kept is
        copied out before a reply is built over it."""
        stats = self.stats
        n = len(data)
        if n < _OPTIONS + 1:
            stats["drop_short"] += 1
            return
        if src_port != SERVER_PORT or data[0] != 2 or data[1] != 1 or data[2] != 6:
            stats["drop_foreign"] += 1
            return
        x = self._xid
        if data[4] != x[0] or data[5] != x[1] or data[6] != x[2] or data[7] != x[3]:
            stats["drop_xid"] += 1
            return
        mac = self.stack.mac
        for i in range(6):
            if data[28 + i] != mac[i]:
                stats["drop_chaddr"] += 1
                return
        if data[236] != 99 or data[237] != 130 or data[238] != 83 or data[239] != 99:
            stats["drop_cookie"] += 1
            return
        # One pass over the options, remembering offsets only (no slices).
        kind = 0
        server = mask = router = dns = dns_len = domain = domain_len = 0
        lease = t1 = t2 = None
        i = _OPTIONS
        while i < n:
            code = data[i]
            if code == 255:
                break
            if code == 0:
                i += 1
                continue
            if i + 1 >= n or i + 2 + data[i + 1] > n:
                stats["drop_options"] += 1
                return
            ln = data[i + 1]
            v = i + 2
            if code == 53 and ln == 1:
                kind = data[v]
            elif code == 54 and ln == 4:
                server = v
            elif code == 1 and ln == 4:
                mask = v
            elif code == 3 and ln >= 4:
                router = v
            elif code == 6 and ln >= 4:
                dns = v
                dns_len = ln
            elif code == 15 and ln:
                domain = v
                domain_len = ln
            elif code == 51 and ln == 4:
                lease = _u32s(data, v)
            elif code == 58 and ln == 4:
                t1 = _u32s(data, v)
            elif code == 59 and ln == 4:
                t2 = _u32s(data, v)
            i = v + ln
        else:
            stats["drop_options"] += 1      # no end option
            return
        st = self.state
        if kind == OFFER:
            if st != "SELECTING" or not server or not (data[16] | data[17] | data[18] | data[19]):
                stats["drop_unexpected"] += 1
                return
            stats["offer_rx"] += 1
            copy_into(self._offer, 0, data, 16, 4)
            copy_into(self._offer_server, 0, data, server, 4)
            self.state = "REQUESTING"
            self._tries = 0
            self._send()               # the first offer is taken
            return
        if kind == NAK:
            if st not in ("REQUESTING", "REBOOTING", "RENEWING", "REBINDING") or (
                    st == "REQUESTING" and not (server and equal_at(data, server, self._offer_server))):
                stats["drop_unexpected"] += 1
                return
            stats["nak_rx"] += 1
            self._restart()
            return
        if kind != ACK:
            stats["drop_unexpected"] += 1
            return
        if st not in ("REQUESTING", "REBOOTING", "RENEWING", "REBINDING") or (
                st == "REQUESTING" and not (server and equal_at(data, server, self._offer_server))):
            stats["drop_unexpected"] += 1
            return
        if lease is None or lease == 0 or not (data[16] | data[17] | data[18] | data[19]):
            stats["drop_bad_ack"] += 1
            return
        stats["ack_rx"] += 1
        ip = bytes(data[16:20])
        netmask = bytes(data[mask:mask + 4]) if mask else None
        gateway = bytes(data[router:router + 4]) if router else None
        if server:
            srv = bytes(data[server:server + 4])
        else:
            srv = bytes(src_ip) if st != "REBINDING" else self.server
        servers = []
        for k in range(dns, dns + dns_len - 3, 4):
            if len(servers) < 3:
                servers.append(bytes(data[k:k + 4]))
        dom = None
        if domain:
            try:
                dom = bytes(data[domain:domain + domain_len]).decode()
            except UnicodeError:
                dom = None
        self._bind(st, ip, netmask, gateway, srv, servers, dom, lease, t1, t2)

    def _bind(self, st, ip, netmask, gateway, server, servers, domain, lease, t1, t2):
        """A DHCPACK: configure the stack (if anything changed) and set the timers."""
        s = self.stack
        if netmask is None:
            netmask = b"\xff\xff\xff\x00" if ip[0] >= 192 else (
                b"\xff\xff\x00\x00" if ip[0] >= 128 else b"\xff\x00\x00\x00")
        changed = (ip != self.address or netmask != self.netmask or gateway != self.gateway
                   or not s.configured)
        if changed:
            try:
                s.set_address(ip, netmask, gateway)
            except ValueError:
                try:                   # a gateway outside the subnet: go without it
                    s.set_address(ip, netmask, None)
                    gateway = None
                except ValueError:     # not a usable address: refuse it
                    self.stats["drop_bad_ack"] += 1
                    self._decline(ip, server)
                    return
        self.address = ip
        self.netmask = netmask
        self.gateway = gateway
        self.server = server
        self.dns = servers
        self.domain = domain
        s.dns_servers = list(servers)
        if lease == _INFINITE:
            t1 = t2 = _INFINITE
        else:
            if t2 is None or t2 == _INFINITE or t2 >= lease:
                t2 = lease - lease // 8
            if t1 is None or t1 == _INFINITE or t1 >= t2:
                t1 = lease // 2 if lease // 2 < t2 else t2
        self.lease_s = lease
        self.t1_s = t1
        self.t2_s = t2
        self.bound_at = self.secs
        self.state = "BOUND"
        self._timer = False
        if st == "RENEWING":
            self.stats["renewed"] += 1
        elif st == "REBINDING":
            self.stats["rebound"] += 1
        elif st == "REBOOTING":
            self.stats["rebooted"] += 1
        self.stats["bound"] += 1
        if self.on_change is not None:
            self.on_change(self, "bound" if changed else "renewed")

    def _decline(self, ip, server):
        """DHCPDECLINE for an address we cannot use, then discover again."""
        self._offer[:] = ip
        self._offer_server[:] = server
        n = self._build(DECLINE, None, False, True, True)
        self.stack.udp.send_payload(n, _BROADCAST, SERVER_PORT, CLIENT_PORT)
        self.stats["decline_tx"] += 1
        self._restart()
