"""mDNS responder (RFC 6762): makes <hostname>.local resolve to this board.

    mdns = Mdns(stack)                # hostname defaults to stack.hostname
    mdns.stats                        # counters: answered, suppressed, malformed, ...
    mdns.close()                      # goodbye (TTL 0), unbind, stop the ticker

Answers A (and ANY) questions for the name, case-insensitively, with our
address as a unique record (cache-flush bit set), IP TTL 255, source port 5353:
- to 224.0.0.251:5353, at most once a second (a later answer is deferred);
- unicast to the querier for a QU question, when the record was multicast
  within a quarter of its TTL (otherwise multicast, to refresh every cache);
- a legacy unicast query (source port not 5353) gets a DNS-style answer: its
  id and question echoed, TTL at most 10 s, no cache-flush bit.
No answer when the querier's known answers already hold our record with at
least half its TTL, nor while the stack has no address. Two announcements one
second apart follow every new address. No probing: a response from another
host claiming the name with another address is only counted ("conflicts").
Responses (other than that check) and queries for other names are ignored;
malformed packets are counted and dropped. Nothing is allocated per packet.
"""
from uipy import run
from uipy.compat import const, copy_into, ticks_add, ticks_diff
from uipy.frame import IP_DST, equal_at, get16

MDNS_PORT = const(5353)
_GROUP = b"\xe0\x00\x00\xfb"            # 224.0.0.251

_TYPE_A = const(1)
_TYPE_ANY = const(255)
_CLASS_IN = const(1)
_CLASS_ANY = const(255)
_TOP = const(0x8000)          # cache-flush (in answers) / unicast-response (in questions)
_MAX_JUMPS = const(16)        # compression pointers followed per name
_RATE_MS = const(1000)        # a record is multicast at most once a second (RFC 6762 6)
_ANNOUNCE_MS = const(1000)
_RETRY_MS = const(1000)       # how long a unicast answer waits for ARP

_TYPING = const(0)
if _TYPING:
    # for the compiler only: the counters' names over 10 characters as names
    # make the strings counted under them below qstrs, not heap strings (see
    # uipy.stack_setup; the counters are made by uipy.mdns_setup)
    dict(other_names=0, unconfigured=0, answered_multicast=0, answered_unicast=0, answered_legacy=0,
         suppressed_known=0, unicast_dropped=0)


class Mdns:
    # Set by uipy.mdns_setup.start() (declared here for the type checker; no code):
    hostname: str
    ttl: int
    stats: dict
    _labels: list                     # our name's labels, lowercase bytes
    _hit: bool                        # set by _name(): the name walked was ours
    _resp: bytearray                  # our answer as a whole response; _sync fills the address
    _legacy: bytearray                # the same for a legacy query: header, question, record
    _ip_hi: int                       # the address our answers hold
    _ip_lo: int
    _announce: int                    # announcements still to send
    _announce_at: int
    _last_mc: int
    _mc_ever: bool                    # _last_mc is meaningful
    _mc_pending: bool                 # a multicast answer waits for the rate limit
    _u_kind: "bytearray | None"       # a unicast answer waiting for ARP: _resp or _legacy
    _u_ip: bytearray
    _u_port: int
    _u_until: int
    _fresh_ms: int                    # a quarter TTL: "multicast lately"
    _ticker: object                   # our bound _tick in stack.tickers

    def __init__(self, stack, hostname=None, ttl=120):
        self.stack = stack
        run("mdns_setup", "start", self, hostname, ttl)   # checks, answers, bindings

    def close(self):
        """Say goodbye (our record with TTL 0) and stop answering."""
        run("mdns_setup", "close", self)

    # --- address changes and timers ---

    def _sync(self):
        """Follow the stack's address: new address, new answers and announcements."""
        s = self.stack
        if s.ip_hi == self._ip_hi and s.ip_lo == self._ip_lo:
            return
        self._ip_hi = s.ip_hi
        self._ip_lo = s.ip_lo
        self._mc_ever = self._mc_pending = False
        self._u_kind = None
        if not s.configured:
            self._announce = 0
            return
        ip = s.ip
        r = self._resp
        g = self._legacy
        copy_into(r, len(r) - 4, ip, 0, 4)
        copy_into(g, len(g) - 4, ip, 0, 4)
        self._announce = 2
        self._announce_at = s.now

    def _tick(self, now):
        self._sync()
        if not self.stack.configured:
            return
        if self._mc_ever and ticks_diff(now, self._last_mc) >= self._fresh_ms:
            self._mc_ever = False          # long ago (and ticks wrap after days)
        if self._announce and ticks_diff(now, self._announce_at) >= 0:
            self._announce -= 1
            self._announce_at = ticks_add(now, _ANNOUNCE_MS)
            self.stats["announced"] += 1
            self._send_multicast(now)
        elif self._mc_pending and ticks_diff(now, self._last_mc) >= _RATE_MS:
            self.stats["answered_multicast"] += 1
            self._send_multicast(now)
        if self._u_kind is not None:
            if ticks_diff(now, self._u_until) >= 0:
                self._u_kind = None
                self.stats["unicast_dropped"] += 1
            elif self.stack.udp_sendto(self._u_kind, self._u_ip, self._u_port, MDNS_PORT, 255):
                self._u_kind = None

    def _send_multicast(self, now):
        self._mc_pending = False
        self._mc_ever = True
        self._last_mc = now
        self.stack.udp_sendto(self._resp, _GROUP, MDNS_PORT, MDNS_PORT, 255)

    def _send_unicast(self, data, ip, port):
        if not self.stack.udp_sendto(data, ip, port, MDNS_PORT, 255):
            # An ARP miss (the querier spoke only multicast so far): retry on ticks.
            self._u_kind = data
            copy_into(self._u_ip, 0, ip, 0, 4)
            self._u_port = port
            self._u_until = ticks_add(self.stack.now, _RETRY_MS)

    # --- input ---

    def _name(self, data, n, off):
        """Walk the (possibly compressed) name at off.  Returns the offset just
        past it, or -1 when malformed; self._hit tells whether it is ours."""
        labels = self._labels
        li = 0
        hit = True
        end = -1
        jumps = 0
        total = 0
        while off < n:
            c = data[off]
            if c >= 0xC0:                       # compression pointer
                if off + 1 >= n:
                    return -1
                if end < 0:
                    end = off + 2
                target = ((c & 0x3F) << 8) | data[off + 1]
                jumps += 1
                if target >= off or jumps > _MAX_JUMPS:
                    return -1                   # forward pointer or a loop
                off = target
                continue
            if c >= 0x40:                       # extended label types: not in mDNS
                return -1
            if c == 0:
                self._hit = hit and li == len(labels)
                return end if end >= 0 else off + 1
            total += c + 1
            if total > 255 or off + 1 + c > n:
                return -1
            if hit:
                if li < len(labels) and len(labels[li]) == c:
                    lab = labels[li]
                    for i in range(c):
                        b = data[off + 1 + i]
                        if 0x41 <= b <= 0x5A:
                            b |= 0x20
                        if b != lab[i]:
                            hit = False
                            break
                else:
                    hit = False
                li += 1
            off += 1 + c
        return -1

    def _record(self, data, n, off):
        """Walk the name of the resource record at off.  Returns the offset of its
        type/class/TTL/length header, or -1 when the record runs past n;
        self._hit tells whether the name is ours."""
        off = self._name(data, n, off)
        if off < 0 or off + 10 > n or off + 10 + get16(data, off + 8) > n:
            return -1
        return off

    def _input(self, data, src, sport):
        stats = self.stats
        s = self.stack
        stats["rx"] += 1
        self._sync()
        n = len(data)
        if n < 12:
            stats["malformed"] += 1
            return
        if data[2] & 0x80:
            self._response(data, n)
            return
        if not s.configured:
            stats["unconfigured"] += 1
            return
        if data[2] & 0x78 or data[3] & 0x0F:   # opcode or rcode not 0: ignore (RFC 6762 18)
            stats["other_names"] += 1
            return
        direct = s.buf[IP_DST] < 224           # sent to our address, not the group
        if direct and not s.ipv4.on_link((src[0] << 8) | src[1], (src[2] << 8) | src[3]):
            stats["off_link"] += 1             # unicast from off the link (RFC 6762 11)
            return
        off = 12
        asked = 0                              # 1: a question for us, 2: one wants unicast
        qtype = qclass = 0
        for _ in range(get16(data, 4)):
            off = self._name(data, n, off)
            if off < 0 or off + 4 > n:
                stats["malformed"] += 1
                return
            if self._hit:
                t = get16(data, off)
                c = get16(data, off + 2)
                if (t == _TYPE_A or t == _TYPE_ANY) and ((c & 0x7FFF) == _CLASS_IN or (c & 0x7FFF) == _CLASS_ANY):
                    asked |= 1
                    if c & _TOP:
                        asked |= 2
                    qtype = t
                    qclass = c & 0x7FFF
            off += 4
        known = False
        for _ in range(get16(data, 6)):
            off = self._record(data, n, off)
            if off < 0:
                stats["malformed"] += 1
                return
            rdlen = get16(data, off + 8)
            # TTLs of 65536 s or more are all above half of ours (at most 86400 s)
            if self._hit and rdlen == 4 and get16(data, off) == _TYPE_A and \
                    (get16(data, off + 2) & 0x7FFF) == _CLASS_IN and equal_at(data, off + 10, s.ip) and \
                    (get16(data, off + 4) or get16(data, off + 6) * 2 >= self.ttl):
                known = True
            off += 10 + rdlen
        if not asked:
            stats["other_names"] += 1
            return
        if known:
            stats["suppressed_known"] += 1
            return
        if sport != MDNS_PORT:
            g = self._legacy
            g[0] = data[0]
            g[1] = data[1]
            q = len(g) - 20
            g[q] = qtype >> 8
            g[q + 1] = qtype & 0xFF
            g[q + 2] = qclass >> 8
            g[q + 3] = qclass & 0xFF
            stats["answered_legacy"] += 1
            self._send_unicast(g, src, sport)
            return
        now = s.now
        # QU: unicast while the record's last multicast is under a quarter TTL old
        # (RFC 6762 5.4); a query sent to our address is answered to its sender.
        if direct or asked & 2 and self._mc_ever and ticks_diff(now, self._last_mc) < self.ttl * 250:
            stats["answered_unicast"] += 1
            self._send_unicast(self._resp, src, MDNS_PORT)
        elif self._mc_ever and ticks_diff(now, self._last_mc) < _RATE_MS:
            stats["deferred"] += 1             # sent on the tick once the second is over
            self._mc_pending = True
        else:
            stats["answered_multicast"] += 1
            self._send_multicast(now)

    def _response(self, data, n):
        """Responses are not for us to answer; only look for a host claiming our
        name with another address (counted: no probing or renaming here)."""
        stats = self.stats
        stats["responses"] += 1
        off = 12
        for _ in range(get16(data, 4)):
            off = self._name(data, n, off)
            if off < 0 or off + 4 > n:
                stats["malformed"] += 1
                return
            off += 4
        for _ in range(get16(data, 6) + get16(data, 8) + get16(data, 10)):
            off = self._record(data, n, off)
            if off < 0:
                stats["malformed"] += 1
                return
            rdlen = get16(data, off + 8)
            if self._hit and rdlen == 4 and get16(data, off) == _TYPE_A and \
                    self.stack.configured and not equal_at(data, off + 10, self.stack.ip):
                stats["conflicts"] += 1
                return
            off += 10 + rdlen
