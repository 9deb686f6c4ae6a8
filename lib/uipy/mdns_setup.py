"""The mDNS responder's set-up and goodbye: uipy.mdns imports this module for
Mdns() and Mdns.close() and drops it after, so its code is in RAM only then."""
from uipy.compat import const
from uipy.mdns import _GROUP, MDNS_PORT

MDNS_GROUP = "224.0.0.251"
# The counters' names, written as names so that they are interned (see uipy.stack_setup)
COUNTERS = tuple(dict(rx=0, malformed=0, responses=0, conflicts=0, other_names=0, unconfigured=0,
                      off_link=0, answered_multicast=0, answered_unicast=0, answered_legacy=0,
                      suppressed_known=0, deferred=0, announced=0, unicast_dropped=0))

_TYPE_A = const(1)
_CLASS_IN = const(1)
_FLUSH = const(0x8000)        # cache-flush bit of the class
_LEGACY_TTL = const(10)       # RFC 6762 6.7: at most 10 s in a legacy unicast answer
_RATE_MS = const(1000)


def _rr(buf, off, cls, ttl):
    """Type A, class, TTL and a 4-byte rdata (filled by Mdns._sync) at off."""
    buf[off + 1] = _TYPE_A
    buf[off + 2] = cls >> 8
    buf[off + 3] = cls & 0xFF
    buf[off + 4] = ttl >> 24
    buf[off + 5] = (ttl >> 16) & 0xFF
    buf[off + 6] = (ttl >> 8) & 0xFF
    buf[off + 7] = ttl & 0xFF
    buf[off + 9] = 4


def start(m, hostname, ttl):
    """Mdns(stack, hostname, ttl): check, build the answers, bind and tick."""
    stack = m.stack
    if hostname is None:
        hostname = stack.hostname
    if not isinstance(ttl, int) or not 1 <= ttl <= 86400:
        raise ValueError("uipy: mDNS ttl must be an int of 1..86400 seconds, got %r" % (ttl,))
    if not isinstance(hostname, str):
        raise ValueError("uipy: mDNS hostname must be a str, got %r" % (hostname,))
    if hostname.lower().endswith(".local"):
        hostname = hostname[:-6]
    labels = []
    wire = bytearray()
    for part in (hostname + ".local").split("."):
        b = part.encode()
        if not 1 <= len(b) <= 63 or max(b) > 127:
            raise ValueError("uipy: bad mDNS hostname %r (ASCII labels of 1..63 bytes)" % hostname)
        labels.append(part.lower().encode())
        wire.append(len(b))
        wire.extend(b)
    wire.append(0)
    if len(wire) > 255:
        raise ValueError("uipy: mDNS hostname %r is too long" % hostname)
    m.hostname = hostname
    m.ttl = ttl
    m._labels = labels
    m._hit = False                    # set by _name(): the name walked was ours
    m.stats = stats = {}
    for k in COUNTERS:
        stats[k] = 0
    nl = len(wire)
    # Our answer as a whole response (id 0, flags QR|AA, one answer), made once;
    # only the address in it changes.
    r = bytearray(12 + nl + 14)
    r[2] = 0x84
    r[7] = 1
    r[12:12 + nl] = wire
    _rr(r, 12 + nl, _CLASS_IN | _FLUSH, ttl)
    m._resp = r
    # The legacy answer: header, the question echoed, the record pointing at it.
    g = bytearray(12 + nl + 4 + 16)
    g[2] = 0x84
    g[5] = 1
    g[7] = 1
    g[12:12 + nl] = wire
    a = 12 + nl + 4
    g[a] = 0xC0
    g[a + 1] = 12
    _rr(g, a + 2, _CLASS_IN, min(ttl, _LEGACY_TTL))
    m._legacy = g
    m._ip_hi = m._ip_lo = 0           # the address our answers hold
    m._announce = 0                   # announcements still to send
    m._announce_at = 0
    m._last_mc = 0
    m._mc_ever = False                # _last_mc is meaningful
    m._mc_pending = False             # a multicast answer waits for the rate limit
    m._u_kind = None                  # a unicast answer waiting for ARP: _resp or _legacy
    m._u_ip = bytearray(4)
    m._u_port = 0
    m._u_until = 0
    stack.join_multicast(MDNS_GROUP)
    stack.udp_bind(MDNS_PORT, m._input)
    m._fresh_ms = max(ttl * 250, _RATE_MS)   # a quarter TTL: "multicast lately"
    m._ticker = m._tick               # one bound method, so close() finds it again
    stack.tickers.append(m._ticker)


def close(m):
    """Mdns.close(): our record once more with TTL 0 (a goodbye), then unbind."""
    s = m.stack
    if s.configured:
        m._sync()
        r = bytearray(m._resp)        # the answer itself keeps its TTL (for a restart)
        for i in range(len(r) - 10, len(r) - 6):
            r[i] = 0
        s.udp_sendto(r, _GROUP, MDNS_PORT, MDNS_PORT, 255)
    s.udp.unbind(MDNS_PORT)
    if m._ticker in s.tickers:
        s.tickers.remove(m._ticker)
