"""DNS resolver (RFC 1035): A records, asynchronous, with a small TTL cache.

    r = Resolver(stack)                   # servers: stack.dns_servers (DHCP fills it)
    r.resolve("example.lan", lambda name, ip: print(name, ip))

The callback gets the name (lowercased, no trailing dot) and the address as
4 bytes, or None (NXDOMAIN, no A record, or no answer after the retries).
Queries go out from the stack's ticker, so resolve() may be called from inside
a stack handler; a cache hit or a dotted-quad name calls back at once, from
inside resolve().  Each query has a random id and a random source port of its
own (RFC 5452); an answer counts only if it comes from the server asked, from
port 53, echoes our id and question, and is a response.  Compression pointers
are followed with a bound on jumps and name length, so a crafted packet cannot
loop.  Anything malformed is dropped and counted in resolver.stats.
"""
from uipy import run
from uipy.compat import const, random_u16, ticks_add, ticks_diff
from uipy.frame import TRANSPORT, UDP_DATA, equal_at, get16
from uipy.ipv4 import ip_bytes

DNS_PORT = const(53)
_TYPE_A = const(1)
_TYPE_CNAME = const(5)
_CLASS_IN = const(1)
_MAX_JUMPS = const(16)         # compression pointers followed per name
_MAX_CHAIN = const(8)          # CNAME hops followed inside one answer
_MAX_RRS = const(32)           # answer records looked at


def encode_name(name):
    """'www.example.lan' -> (normalized str, question name in wire form).
    A bad name's ValueError is made by uipy.dns_cfg (loaded for it): its
    message is no string held by this module."""
    if not isinstance(name, str):
        raise run("dns_cfg", "name_error", name, 0)
    norm = name.lower()
    if norm.endswith("."):
        norm = norm[:-1]
    out = bytearray()
    for label in norm.split("."):
        if not 0 < len(label) <= 63:
            raise run("dns_cfg", "name_error", name, 1)
        out.append(len(label))
        for c in label:
            o = ord(c)
            if o <= 32 or o >= 127:
                raise run("dns_cfg", "name_error", name, 2)
            out.append(o)
    out.append(0)
    if len(out) > 255:
        raise run("dns_cfg", "name_error", name, 3)
    return norm, bytes(out)


def _lower(c):
    return c + 32 if 65 <= c <= 90 else c


def name_end(msg, off, n):
    """Offset just past the (possibly compressed) name at off, or -1."""
    while off < n:
        ln = msg[off]
        if ln >= 0xC0:
            return off + 2 if off + 1 < n else -1
        if ln > 63:
            return -1
        if ln == 0:
            return off + 1
        off += ln + 1
    return -1


def names_equal(msg, a, b, n):
    """Compare the names at offsets a and b of msg (case-insensitive),
    following pointers: at most _MAX_JUMPS each, at most 255 bytes of name."""
    ja = jb = 0
    total = 0
    while True:
        while a < n and msg[a] >= 0xC0:
            if a + 1 >= n or ja >= _MAX_JUMPS:
                return False
            a = ((msg[a] & 0x3F) << 8) | msg[a + 1]
            ja += 1
        while b < n and msg[b] >= 0xC0:
            if b + 1 >= n or jb >= _MAX_JUMPS:
                return False
            b = ((msg[b] & 0x3F) << 8) | msg[b + 1]
            jb += 1
        if a >= n or b >= n:
            return False
        ln = msg[a]
        if ln != msg[b] or ln > 63 or a + ln >= n or b + ln >= n:
            return False
        if ln == 0:
            return True
        for k in range(1, ln + 1):
            if _lower(msg[a + k]) != _lower(msg[b + k]):
                return False
        total += ln + 1
        if total > 255:
            return False
        a += ln + 1
        b += ln + 1


class _Query:
    """One name being resolved: its callbacks, id, source port and retry state."""

    def __init__(self, name, qname, port, now):
        self.name = name
        self.qname = qname
        self.callbacks = []
        self.port = port
        self.id = random_u16()
        self.server = None
        self.tries = 0                # attempts started
        self.deadline = now           # end of the current attempt (first: now)
        self.sent = True              # False: waiting to resend after an ARP miss
        self.resend = now


class Resolver:
    """servers: list of addresses ('198.18.0.1' or 4 bytes); None means
    stack.dns_servers, read at each attempt.  Each attempt waits timeout_ms; the
    servers are tried in turn, (1 + retries) rounds.  cache_size answers are
    kept for their TTL clamped to min_ttl_s..max_ttl_s (TTL 0: not kept).
    max_pending names may be in flight at once, each on its own UDP port."""

    def __init__(self, stack, servers=None, cache_size=4, timeout_ms=2000, retries=2,
                 min_ttl_s=5, max_ttl_s=3600, max_pending=2):
        self.stack = stack
        # settings checked, servers as 4 bytes (uipy.dns_cfg, loaded for the call)
        self.servers = run("dns_cfg", "check", servers, cache_size, timeout_ms, retries, min_ttl_s,
                           max_ttl_s, max_pending)
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.min_ttl_s = min_ttl_s
        self.max_ttl_s = max_ttl_s
        self.max_pending = max_pending
        self.pending = []
        self._c_name = [None] * cache_size
        self._c_addr = [None] * cache_size
        self._c_exp = [0] * cache_size
        # the counters written as names, so they are interned (see uipy.stack_setup)
        self.stats = dict(queries=0, sent=0, retransmits=0, answers=0, nxdomain=0, no_data=0,
                          server_errors=0, timeouts=0, cache_hits=0, busy=0, arp_wait=0,
                          drop_short=0, drop_mismatch=0, drop_malformed=0, drop_stray=0,
                          callback_errors=0)
        self.last_error = None
        self._ttl = 0                 # TTL of the answer _answer() found
        stack.tickers.append(self._tick)

    def close(self):
        """Stop: pending queries are dropped (no callbacks), ports unbound."""
        for q in self.pending:
            self.stack.udp.unbind(q.port)
        self.pending = []
        if self._tick in self.stack.tickers:
            self.stack.tickers.remove(self._tick)

    # --- public ---

    def resolve(self, name, callback):
        """Look name up; callback(name, ip_bytes_or_None) comes later from
        poll(), or at once for a cached name or a dotted quad.  Returns True
        when it called back at once."""
        addr = None
        if isinstance(name, str) and name[:1].isdigit():
            try:
                addr = ip_bytes(name)
            except ValueError:
                pass
        if addr is not None:
            callback(name, addr)
            return True
        norm, qname = encode_name(name)
        addr = self.lookup_cached(norm)
        if addr is not None:
            self.stats["cache_hits"] += 1
            callback(norm, addr)
            return True
        for q in self.pending:
            if q.name == norm:
                q.callbacks.append(callback)
                return False
        port = self._bind_port() if len(self.pending) < self.max_pending else 0
        if port == 0:
            self.stats["busy"] += 1
            callback(norm, None)
            return True
        q = _Query(norm, qname, port, self.stack.now)
        q.callbacks.append(callback)
        self.pending.append(q)
        return False

    def lookup_cached(self, name):
        """The cached address of name (4 bytes) while its TTL lasts, else None."""
        if not name:
            return None
        name = name.lower()
        if name.endswith("."):
            name = name[:-1]
        now = self.stack.now
        for i in range(len(self._c_name)):
            if self._c_name[i] == name:
                if ticks_diff(self._c_exp[i], now) > 0:
                    return self._c_addr[i]
                self._c_name[i] = None
        return None

    def flush(self):
        """Empty the cache."""
        for i in range(len(self._c_name)):
            self._c_name[i] = None
            self._c_addr[i] = None

    # --- internals ---

    def _bind_port(self):
        """A random unused ephemeral port bound to our handler, or 0."""
        udp = self.stack.udp
        if 0 not in udp.ports:
            return 0
        for _ in range(8):
            port = 49152 + (random_u16() & 0x3FFF)
            if port not in udp.ports:
                udp.bind(port, self._input)
                return port
        return 0

    def _call(self, cb, name, addr):
        try:
            cb(name, addr)
        except Exception as e:        # the application's error: count it, go on
            self.stats["callback_errors"] += 1
            self.last_error = e

    def _finish(self, q, addr):
        if q in self.pending:
            self.pending.remove(q)
        self.stack.udp.unbind(q.port)
        for cb in q.callbacks:
            self._call(cb, q.name, addr)

    def _store(self, name, addr, ttl):
        if ttl <= 0:
            return
        if ttl < self.min_ttl_s:
            ttl = self.min_ttl_s
        if ttl > self.max_ttl_s:
            ttl = self.max_ttl_s
        now = self.stack.now
        names = self._c_name
        slot = -1
        for i in range(len(names)):
            if names[i] == name:
                slot = i
                break
            if names[i] is None and slot < 0:
                slot = i
        if slot < 0:                  # full: replace the entry that expires first
            slot = 0
            for i in range(1, len(names)):
                if ticks_diff(self._c_exp[i], self._c_exp[slot]) < 0:
                    slot = i
        names[slot] = name
        self._c_addr[slot] = addr
        self._c_exp[slot] = ticks_add(now, ttl * 1000)

    def _tick(self, now):
        for i in range(len(self._c_name)):      # expire before the ticks could wrap
            if self._c_name[i] is not None and ticks_diff(self._c_exp[i], now) <= 0:
                self._c_name[i] = None
                self._c_addr[i] = None
        for q in list(self.pending) if self.pending else ():
            if ticks_diff(now, q.deadline) >= 0:
                self._attempt(q, now)
            elif not q.sent and ticks_diff(now, q.resend) >= 0:
                self._transmit(q, now)

    def _attempt(self, q, now):
        servers = self.servers if self.servers is not None else self.stack.dns_servers
        if not servers:
            self.stats["timeouts"] += 1
            self._finish(q, None)
            return
        if q.tries >= (self.retries + 1) * len(servers):
            self.stats["timeouts"] += 1
            self._finish(q, None)
            return
        if q.tries:
            self.stats["retransmits"] += 1
        else:
            self.stats["queries"] += 1
        q.server = servers[q.tries % len(servers)]
        q.tries += 1
        q.deadline = ticks_add(now, self.timeout_ms)
        self._transmit(q, now)

    def _transmit(self, q, now):
        """Write the query into the frame buffer and send it."""
        buf = self.stack.buf
        o = UDP_DATA
        buf[o] = q.id >> 8
        buf[o + 1] = q.id & 0xFF
        buf[o + 2] = 0x01             # RD: recursion desired
        buf[o + 3] = 0
        buf[o + 4] = 0
        buf[o + 5] = 1                # one question
        for i in range(o + 6, o + 12):
            buf[i] = 0
        n = len(q.qname)
        buf[o + 12:o + 12 + n] = q.qname
        p = o + 12 + n
        buf[p] = 0
        buf[p + 1] = _TYPE_A
        buf[p + 2] = 0
        buf[p + 3] = _CLASS_IN
        q.sent = self.stack.udp.send_payload(16 + n, q.server, DNS_PORT, q.port)
        if q.sent:
            self.stats["sent"] += 1
        else:
            # ARP miss (or no route): the ARP request is out.  Try again at each
            # tick; the ARP layer itself limits its requests to one a second.
            self.stats["arp_wait"] += 1
            q.resend = now

    def _input(self, msg, src_ip, src_port):
        """Handler of every query port; the port the datagram came to picks the query."""
        stats = self.stats
        port = get16(self.stack.buf, TRANSPORT + 2)
        q = None
        for p in self.pending:
            if p.port == port:
                q = p
        if q is None:
            stats["drop_stray"] += 1
            return
        n = len(msg)
        if n < 12:
            stats["drop_short"] += 1
            return
        srv = q.server
        if src_port != DNS_PORT or srv is None or not equal_at(src_ip, 0, srv) or get16(msg, 0) != q.id or \
                msg[2] & 0xF8 != 0x80 or get16(msg, 4) != 1:
            stats["drop_mismatch"] += 1      # not a standard-query response to us
            return
        qn = q.qname
        end = 12 + len(qn)
        if end + 4 > n:
            stats["drop_malformed"] += 1
            return
        for k in range(len(qn)):
            if _lower(msg[12 + k]) != qn[k]:
                stats["drop_mismatch"] += 1
                return
        if get16(msg, end) != _TYPE_A or get16(msg, end + 2) != _CLASS_IN:
            stats["drop_mismatch"] += 1
            return
        rcode = msg[3] & 0x0F
        if rcode == 3:
            stats["nxdomain"] += 1
            self._finish(q, None)
            return
        if rcode != 0 or msg[2] & 0x02:       # SERVFAIL, REFUSED, ... or truncated
            stats["server_errors"] += 1
            q.deadline = self.stack.now       # next server at the next tick
            return
        found = self._answer(msg, end + 4, get16(msg, 6), n)
        if found < 0:
            stats["drop_malformed"] += 1
            return
        if found == 0:
            stats["no_data"] += 1
            self._finish(q, None)
            return
        stats["answers"] += 1
        addr = bytes(msg[found:found + 4])
        self._store(q.name, addr, self._ttl)
        self._finish(q, addr)

    def _answer(self, msg, start, count, n):
        """Find the A record for the question (offset 12), following CNAMEs.
        Returns the offset of the 4 address bytes, 0 if none, -1 if malformed;
        the smallest TTL along the chain is left in self._ttl."""
        if count > _MAX_RRS:
            count = _MAX_RRS
        # First pass: every record must be well formed, its owner name too
        # (compared with itself: pointers followed, loops caught by the bounds).
        off = start
        for _ in range(count):
            rr = name_end(msg, off, n)
            if rr < 0 or rr + 10 > n or rr + 10 + get16(msg, rr + 8) > n or \
                    not names_equal(msg, off, off, n):
                return -1
            off = rr + 10 + get16(msg, rr + 8)
        target = 12
        ttl = self.max_ttl_s
        for _ in range(_MAX_CHAIN):
            nxt = 0
            off = start
            for _ in range(count):
                rr = name_end(msg, off, n)
                rtype = get16(msg, rr)
                rdlen = get16(msg, rr + 8)
                if get16(msg, rr + 2) == _CLASS_IN and (rtype == _TYPE_A or rtype == _TYPE_CNAME) \
                        and names_equal(msg, off, target, n):
                    t = self._rr_ttl(msg, rr + 4)
                    if t < ttl:
                        ttl = t
                    if rtype == _TYPE_A and rdlen == 4:
                        self._ttl = ttl
                        return rr + 10
                    if rtype == _TYPE_CNAME and rdlen and names_equal(msg, rr + 10, rr + 10, n):
                        nxt = rr + 10
                off = rr + 10 + rdlen
            if not nxt:
                return 0
            target = nxt
        return 0

    def _rr_ttl(self, msg, off):
        """TTL in seconds, without a heap int on 32-bit boards: top bit set means 0
        (RFC 2181 8), anything past max_ttl_s is max_ttl_s."""
        b = msg[off]
        if b & 0x80:
            return 0
        if b or msg[off + 1] >= 0x80:
            return self.max_ttl_s
        return (msg[off + 1] << 16) | (msg[off + 2] << 8) | msg[off + 3]
