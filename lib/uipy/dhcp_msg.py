"""The DHCP client's exchanges: messages built and parsed, retransmission.

uipy.dhcp imports this module when an exchange begins and drops it once the
lease is bound (or the client stopped), so the code is in RAM only while it
is needed.  Every function takes the Dhcp object (d) first.
"""
from uipy import run
from uipy.compat import const, copy_into, random_bytes
from uipy.frame import UDP_DATA, equal_at
from uipy.ipv4 import ip_bytes, ip_str

_CLIENT_PORT = const(68)
_SERVER_PORT = const(67)

# message types (option 53)
_DISCOVER = const(1)
_OFFER = const(2)
_REQUEST = const(3)
_DECLINE = const(4)
_ACK = const(5)
_NAK = const(6)
_RELEASE = const(7)

_OPTIONS = const(240)          # first option byte: 236-byte BOOTP header + magic cookie
_MIN_LEN = const(300)          # BOOTP minimum message size; shorter ones are padded
_INFINITE = const(-1)          # lease that never expires

_BROADCAST = b"\xff\xff\xff\xff"
_COOKIE = b"\x63\x82\x53\x63"
# subnet mask, router, DNS servers, domain name, lease time, T1, T2
_PARAMS = b"\x01\x03\x06\x0f\x33\x3a\x3b"


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


def init(d, hostname, args, settings):
    """Dhcp(stack, hostname, on_change, *args, **settings): the constructor's
    body (stack and on_change are set already)."""
    _construct(d, hostname, *args, **settings)


def _construct(d, hostname, retry_ms=4000, retry_max_ms=64000, jitter_ms=1000, init_delay_ms=1000,
               request_tries=4, reboot_tries=2, renew_min_s=60, renew_max_s=3600, link_poll_ms=500,
               probe_num=3, probe_wait_ms=1000, probe_min_ms=1000, probe_max_ms=2000,
               announce_wait_ms=2000, decline_wait_ms=10000):
    d.hostname = hostname
    d.retry_ms = retry_ms
    d.retry_max_ms = retry_max_ms
    d.jitter_ms = jitter_ms
    d.init_delay_ms = init_delay_ms
    d.request_tries = request_tries
    d.reboot_tries = reboot_tries
    d.renew_min_s = renew_min_s
    d.renew_max_s = renew_max_s
    d.link_poll_ms = link_poll_ms
    d.probe_num = probe_num
    d.probe_wait_ms = probe_wait_ms
    d.probe_min_ms = probe_min_ms
    d.probe_max_ms = probe_max_ms
    d.announce_wait_ms = announce_wait_ms
    d.decline_wait_ms = decline_wait_ms
    _check(d)
    d._ack = None                 # CHECKING: the ACK's lease, bound once the probes pass
    d.state = "STOPPED"
    d._m = None                   # this module while an exchange has it loaded
    # the counters written as names, so they are interned (see uipy.stack_setup)
    d.stats = dict(discover_tx=0, request_tx=0, decline_tx=0, release_tx=0, probe_tx=0,
                   offer_rx=0, ack_rx=0, nak_rx=0, bound=0, renewed=0, rebound=0,
                   rebooted=0, expired=0, link_down=0, arp_miss=0, probe_conflict=0,
                   gave_up=0, drop_short=0, drop_foreign=0, drop_xid=0, drop_chaddr=0,
                   drop_cookie=0, drop_options=0, drop_unexpected=0, drop_bad_ack=0,
                   bad_address=0, bad_server=0, bad_router=0, no_memory=0)
    d.secs = 0                    # seconds since start(): the lease clock
    d._ms = 0                     # milliseconds not yet counted into secs
    d._last = 0                   # ticks of the previous tick
    d._link = True
    d._link_at = 0                # ticks of the next link_up() poll
    d._xid = bytearray(4)
    d._timer = False              # a (re)transmission is due at _due
    d._due = 0
    d._tries = 0                  # messages sent in this state
    d._misses = 0                 # renewals in a row lost to an ARP miss
    d._began = 0                  # secs when this exchange began (the 'secs' field)
    # the lease: what the server gave (4-byte bytes) and its timers in secs
    d.address = None
    d.netmask = None
    d.gateway = None
    d.server = None
    d.dns = []
    d.domain = None
    d.lease_s = 0
    d.t1_s = 0
    d.t2_s = 0
    d.bound_at = 0                # secs when the lease was last bound / renewed
    d._offer = bytearray(4)       # address offered / asked for
    d._offer_server = bytearray(4)


def start(d, requested):
    """Dhcp.start, when stopped."""
    s = d.stack
    s.udp_bind(_CLIENT_PORT, d._input)
    s.tickers.append(d._tick)
    s.arp.watch = d._arp
    d._last = s.now
    d._link_at = s.now
    d._link = True
    if requested is not None:
        d._offer[:] = ip_bytes(requested, "requested address")
        d._begin("INIT-REBOOT", 0)
    elif d.address is not None:     # stopped while holding a lease
        d._offer[:] = d.address
        d._begin("INIT-REBOOT", 0)
    else:
        d._begin("INIT", d._random(d.init_delay_ms))


def _check(d):
    """The constructor's settings; ValueError for a bad one."""
    for name in ("retry_ms", "retry_max_ms", "request_tries", "reboot_tries", "renew_min_s",
                 "renew_max_s", "link_poll_ms"):
        value = getattr(d, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError("uipy: Dhcp %s must be a positive int, got %r" % (name, value))
    if not isinstance(d.jitter_ms, int) or not 0 <= d.jitter_ms < d.retry_ms:
        raise ValueError("uipy: Dhcp jitter_ms must be 0..retry_ms-1, got %r" % (d.jitter_ms,))
    if not isinstance(d.init_delay_ms, int) or not 0 <= d.init_delay_ms <= 60000:
        raise ValueError("uipy: Dhcp init_delay_ms must be 0..60000, got %r" % (d.init_delay_ms,))
    if d.retry_max_ms < d.retry_ms or d.renew_max_s < d.renew_min_s:
        raise ValueError("uipy: Dhcp retry_max_ms / renew_max_s must be >= retry_ms / renew_min_s")
    for name in ("probe_num", "probe_wait_ms", "probe_min_ms", "probe_max_ms", "announce_wait_ms",
                 "decline_wait_ms"):
        value = getattr(d, name)
        if not isinstance(value, int) or not 0 <= value <= 60000:
            raise ValueError("uipy: Dhcp %s must be an int 0..60000, got %r" % (name, value))
    if d.probe_max_ms < d.probe_min_ms or d.probe_num > 10:
        raise ValueError("uipy: Dhcp probe_max_ms must be >= probe_min_ms, probe_num at most 10")
    _check_hostname(d.stack.hostname if d.hostname is None else d.hostname)


def link_change(d, up):
    """nic.link_up() changed (Dhcp._tick polls it)."""
    d._link = up
    if not up:
        d.stats["link_down"] += 1
        d._timer = False
        # Keep the address while the cable is out (connections survive a
        # short flap); on return, INIT-REBOOT checks it is still ours.
        if d.address is not None:
            d._offer[:] = d.address
            d.state = "INIT-REBOOT"
        elif d.state != "INIT-REBOOT" and d.state != "REBOOTING":
            d.state = "INIT"
        else:
            d.state = "INIT-REBOOT"
    elif d.state == "INIT-REBOOT":
        d._begin("INIT-REBOOT", 0)
    elif d.state == "INIT":
        d._begin("INIT", d._random(d.init_delay_ms))


def lease(d):
    """Dhcp.lease() while an address is held."""
    left = -1
    if d.lease_s != _INFINITE:
        left = d.lease_s - (d.secs - d.bound_at)
        if left < 0:
            left = 0
    return {"address": ip_str(d.address), "netmask": ip_str(d.netmask),
            "gateway": ip_str(d.gateway) if d.gateway else None,
            "server": ip_str(d.server) if d.server else None,
            "dns": [ip_str(a) for a in d.dns], "domain": d.domain,
            "lease_s": d.lease_s, "t1_s": d.t1_s, "t2_s": d.t2_s,
            "bound_at_s": d.bound_at, "remaining_s": left}


def release(d):
    """DHCPRELEASE of the lease held, if it is in force."""
    if d.server is None or d.state not in ("BOUND", "RENEWING", "REBINDING"):
        return
    _new_xid(d)
    n = _build(d, _RELEASE, d.address, False, False, True)
    # Unicast to the server; on an ARP miss broadcast it instead, as the
    # server identifier in it still names the server it is meant for.
    udp = d.stack.udp
    if not udp.send_payload(n, d.server, _SERVER_PORT, _CLIENT_PORT):
        n = _build(d, _RELEASE, d.address, False, False, True)
        udp.send_payload(n, _BROADCAST, _SERVER_PORT, _CLIENT_PORT)
    d.stats["release_tx"] += 1


# --- timers ---

def _backoff(d):
    """RFC 2131 4.1: retry_ms doubling per try up to retry_max_ms, +- jitter."""
    t = d.retry_ms
    for _ in range(d._tries - 1):
        t *= 2
        if t >= d.retry_max_ms:
            t = d.retry_max_ms
            break
    if d.jitter_ms:
        t += d._random(2 * d.jitter_ms + 1) - d.jitter_ms
    return t


def _new_xid(d):
    d._xid[:] = random_bytes(4)


def exchange(d):
    """A new transaction in the current state: new xid, send at once."""
    _new_xid(d)
    d._tries = 0
    d._began = d.secs
    _send(d)


def timeout(d):
    """The retransmission timer fired."""
    st = d.state
    if st == "INIT":
        d.state = "SELECTING"
        exchange(d)
    elif st == "INIT-REBOOT":
        d.state = "REBOOTING"
        exchange(d)
    elif st == "SELECTING":
        _send(d)
    elif st == "REQUESTING":
        if d._tries >= d.request_tries:
            d._begin("INIT", 0)
        else:
            _send(d)
    elif st == "REBOOTING":
        if d._tries >= d.reboot_tries:
            d._restart()
        else:
            _send(d)
    elif st == "RENEWING" or st == "REBINDING":
        _send(d)
    elif st == "CHECKING":
        _probe(d)


def _send(d):
    """Send this state's message and arm the retransmission timer."""
    st = d.state
    d._tries += 1
    udp = d.stack.udp
    if st == "SELECTING":
        n = _build(d, _DISCOVER, None, True, False, False)
        d.stats["discover_tx"] += 1
        udp.send_payload(n, _BROADCAST, _SERVER_PORT, _CLIENT_PORT)
        d._arm(_backoff(d))
        return
    d.stats["request_tx"] += 1
    if st == "REQUESTING":
        n = _build(d, _REQUEST, None, True, True, True)
    elif st == "REBOOTING":
        n = _build(d, _REQUEST, None, True, True, False)
    else:                          # RENEWING, REBINDING: ciaddr is ours
        n = _build(d, _REQUEST, d.address, False, False, False)
    if st != "RENEWING":
        udp.send_payload(n, _BROADCAST, _SERVER_PORT, _CLIENT_PORT)
        if st == "REBINDING":
            d._arm(_renew_gap(d, d.lease_s))
        else:
            d._arm(_backoff(d))
        return
    if udp.send_payload(n, d.server, _SERVER_PORT, _CLIENT_PORT):
        d._misses = 0
    else:
        # ARP miss (set_address emptied the ARP cache): the frame became an
        # ARP request.  Try again at each tick for a second (ARP itself sends
        # one request a second), then at the normal renewal interval.
        d.stats["arp_miss"] += 1
        d._misses += 1
        if d._misses * d.stack.tick_ms < 1000:
            d._tries -= 1
            d._arm(d.stack.tick_ms)
            return
        d._misses = 0
    d._arm(_renew_gap(d, d.t2_s))


def _renew_gap(d, until_s):
    """RFC 2131 4.4.5: half the time left until until_s, at least renew_min_s
    (but never past it), in ms."""
    left = until_s - (d.secs - d.bound_at)
    gap = left // 2
    if gap < d.renew_min_s:
        gap = d.renew_min_s if left > d.renew_min_s else left
    if gap > d.renew_max_s:
        gap = d.renew_max_s
    if gap < 1:
        gap = 1
    if gap > 100000:
        gap = 100000               # keep ticks arithmetic far from the wrap
    return gap * 1000


# --- address conflict detection (RFC 5227 2.1) ---

def _probe(d):
    """CHECKING's timer: the next ARP probe, or bind once the last one has
    gone unanswered for announce_wait_ms."""
    ip = d._ack[1]
    if d._tries >= d.probe_num:
        _bind(d, *d._ack)
        d._ack = None
        return
    d._tries += 1
    d.stats["probe_tx"] += 1
    # sender 0.0.0.0: a probe updates nobody's ARP cache
    run("stack_setup", "arp_send", d.stack.arp, (ip[0] << 8) | ip[1], (ip[2] << 8) | ip[3], 0, 0)
    if d._tries < d.probe_num:
        d._arm(d.probe_min_ms + d._random(d.probe_max_ms - d.probe_min_ms + 1))
    else:
        d._arm(d.announce_wait_ms)


def arp_in(d):
    """An ARP packet (in the frame buffer) while CHECKING: another host's
    packet from the address, or its probe for it, means it is taken."""
    s = d.stack
    buf = s.buf
    ack = d._ack
    ip = ack[1]
    if equal_at(buf, 22, s.mac) or not 0 < buf[21] < 3:   # ours, or neither request nor reply
        return
    if equal_at(buf, 28, ip) or (not (buf[28] | buf[29] | buf[30] | buf[31]) and equal_at(buf, 38, ip)):
        d.stats["probe_conflict"] += 1
        _decline(d, ip, ack[4])


def _u32(data, o):
    return (data[o] << 24) | (data[o + 1] << 16) | (data[o + 2] << 8) | data[o + 3]


def _bad(a, ip, mask):
    """a cannot be a host's address: 0/8, loopback, multicast, class E and
    broadcast, or the network or broadcast address of ip's subnet."""
    top = a >> 24
    if top == 0 or top == 127 or top >= 224:
        return True
    host = mask ^ 0xFFFFFFFF
    return host > 1 and (a & mask) == (ip & mask) and ((a & host) == 0 or (a & host) == host)


def _invalid(data, server, mask, router):
    """The counter naming what cannot be valid in this offer or ACK, else None."""
    ip = _u32(data, 16)
    if mask:
        m = _u32(data, mask)
    else:
        m = 0xFFFFFF00 if ip >> 24 >= 192 else (0xFFFF0000 if ip >> 24 >= 128 else 0xFF000000)
    if _bad(ip, ip, m):
        return "bad_address"
    if server:
        a = _u32(data, server)
        if a == ip or _bad(a, ip, m):
            return "bad_server"
    if router:
        a = _u32(data, router)
        if a == ip or _bad(a, ip, m) or (a & m) != (ip & m):
            return "bad_router"
    return None


# --- output ---

def _build(d, kind, ciaddr, broadcast, ask_offer, with_server):
    """Write a BOOTREQUEST into the frame buffer at UDP_DATA; returns its length.
    ask_offer: option 50 with the address in _offer; with_server: option 54."""
    s = d.stack
    buf = s.buf
    o = UDP_DATA
    for i in range(o, o + _MIN_LEN):
        buf[i] = 0
    buf[o] = 1                     # BOOTREQUEST
    buf[o + 1] = 1                 # Ethernet
    buf[o + 2] = 6
    buf[o + 4:o + 8] = d._xid
    secs = d.secs - d._began
    if secs > 0xFFFF:
        secs = 0xFFFF
    if kind == _REQUEST or kind == _DISCOVER:
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
        buf[p + 2:p + 6] = d._offer
        p += 6
    if with_server:
        buf[p] = 54
        buf[p + 1] = 4
        buf[p + 2:p + 6] = d.server if kind == _RELEASE else d._offer_server
        p += 6
    if kind == _DISCOVER or kind == _REQUEST:
        buf[p] = 57                # maximum message size: one unfragmented datagram
        buf[p + 1] = 2
        buf[p + 2] = 1500 >> 8
        buf[p + 3] = 1500 & 0xFF
        p += 4
        name = d.hostname or s.hostname
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

def take(d, data, src_ip):
    """The rest of the UDP 68 handler, after Dhcp._input's checks (length,
    BOOTREPLY from port 67, our xid).  data is a view of the frame buffer:
    everything kept is copied out before a reply is built over it."""
    stats = d.stats
    n = len(data)
    mac = d.stack.mac
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
    st = d.state
    if kind == _OFFER:
        if st != "SELECTING" or not server or not (data[16] | data[17] | data[18] | data[19]):
            stats["drop_unexpected"] += 1
            return
        bad = _invalid(data, server, mask, router)
        if bad:
            stats[bad] += 1
            return
        stats["offer_rx"] += 1
        copy_into(d._offer, 0, data, 16, 4)
        copy_into(d._offer_server, 0, data, server, 4)
        d.state = "REQUESTING"
        d._tries = 0
        _send(d)                   # the first offer is taken
        return
    if (kind != _NAK and kind != _ACK) or st not in ("REQUESTING", "REBOOTING", "RENEWING", "REBINDING") or (
            st == "REQUESTING" and not (server and equal_at(data, server, d._offer_server))):
        stats["drop_unexpected"] += 1
        return
    if kind == _NAK:
        stats["nak_rx"] += 1
        d._restart()
        return
    if lease is None or lease == 0 or not (data[16] | data[17] | data[18] | data[19]):
        stats["drop_bad_ack"] += 1
        return
    bad = _invalid(data, server, mask, router)
    if bad:
        stats[bad] += 1
        return
    stats["ack_rx"] += 1
    ip = bytes(data[16:20])
    netmask = bytes(data[mask:mask + 4]) if mask else None
    gateway = bytes(data[router:router + 4]) if router else None
    if server:
        srv = bytes(data[server:server + 4])
    else:
        srv = bytes(src_ip) if st != "REBINDING" else d.server
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
    got = (st, ip, netmask, gateway, srv, servers, dom, lease, t1, t2, d.secs)
    s = d.stack
    if (st == "REQUESTING" or st == "REBOOTING") and d.probe_num and not (s.configured and s.ip == ip):
        # A new address: probe it before use (RFC 5227 2.1).  One we still
        # hold (a link flap) is ours already: ARP defends it.
        d._drop_lease(True)
        d._ack = got
        d.state = "CHECKING"
        d._tries = 0
        d._arm(d._random(d.probe_wait_ms))
        return
    _bind(d, *got)


def _bind(d, st, ip, netmask, gateway, server, servers, domain, lease, t1, t2, at):
    """A DHCPACK (at: secs when it came): configure the stack (if anything
    changed) and set the timers."""
    s = d.stack
    if netmask is None:
        netmask = b"\xff\xff\xff\x00" if ip[0] >= 192 else (
            b"\xff\xff\x00\x00" if ip[0] >= 128 else b"\xff\x00\x00\x00")
    changed = (ip != d.address or netmask != d.netmask or gateway != d.gateway
               or not s.configured)
    if changed:
        try:
            s.set_address(ip, netmask, gateway)
        except ValueError:
            try:                   # a gateway outside the subnet: go without it
                s.set_address(ip, netmask, None)
                gateway = None
            except ValueError:     # not a usable address: refuse it
                d.stats["drop_bad_ack"] += 1
                _decline(d, ip, server)
                return
    d.address = ip
    d.netmask = netmask
    d.gateway = gateway
    d.server = server
    d.dns = servers
    d.domain = domain
    s.dns_servers = list(servers)
    if lease == _INFINITE:
        t1 = t2 = _INFINITE
    else:
        if t2 is None or t2 == _INFINITE or t2 >= lease:
            t2 = lease - lease // 8
        if t1 is None or t1 == _INFINITE or t1 >= t2:
            t1 = lease // 2 if lease // 2 < t2 else t2
    d.lease_s = lease
    d.t1_s = t1
    d.t2_s = t2
    d.bound_at = at
    d.state = "BOUND"
    d._timer = False
    if st == "RENEWING":
        d.stats["renewed"] += 1
    elif st == "REBINDING":
        d.stats["rebound"] += 1
    elif st == "REBOOTING":
        d.stats["rebooted"] += 1
    d.stats["bound"] += 1
    if d.on_change is not None:
        d.on_change(d, "bound" if changed else "renewed")


def _decline(d, ip, server):
    """DHCPDECLINE for an address we cannot use, then discover again after
    decline_wait_ms (RFC 2131 3.1.5)."""
    d._offer[:] = ip
    d._offer_server[:] = server
    n = _build(d, _DECLINE, None, False, True, True)
    d.stack.udp.send_payload(n, _BROADCAST, _SERVER_PORT, _CLIENT_PORT)
    d.stats["decline_tx"] += 1
    d._drop_lease(True)
    d._ack = None
    d._begin("INIT", d.decline_wait_ms)
