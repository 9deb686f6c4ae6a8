"""DHCP client (RFC 2131, options from RFC 2132).

    dhcp = Dhcp(stack, on_change=lambda d, event: print(event, d.address))
    dhcp.start()              # then keep calling stack.poll()

States (dhcp.state): INIT, SELECTING, REQUESTING, CHECKING, BOUND, RENEWING,
REBINDING, INIT-REBOOT, REBOOTING and STOPPED.  The address goes to the stack
(stack.set_address) only once a DHCPACK binds it and ARP probes found no other
host using it (CHECKING, RFC 5227 2.1; in use: DHCPDECLINE, then discovery
again after decline_wait_ms, RFC 2131 3.1.5), and is taken back
(stack.clear_address) when the lease expires, a NAK arrives, on release(), or
when another host claims it twice within 10 s (RFC 5227 2.4: the stack's ARP
defends it once).  Offers and ACKs whose address, server identifier or router
cannot be valid are refused and counted (bad_address, bad_server, bad_router).
on_change(dhcp, event) is called with "bound" (address set or changed),
"renewed" (lease extended, same address) or "lost" (address cleared).

Lease timers count whole seconds of their own (self.secs), so a lease of days
or an infinite one never meets the wrap of ticks_ms; retransmissions use ticks.
Messages are built straight into the stack's frame buffer.  Packets that are
not ours or are malformed are dropped and counted in dhcp.stats, never raised.

Memory: this module holds only the lease timers and the state.  Building and
parsing messages (uipy.dhcp_msg) is imported when an exchange begins and
dropped again once the lease is bound, the client stopped or the link down: a
lease renewal runs every few minutes or hours, and on a stock board code is
heap.  The constructor's body and the handling of a link change live there
too.  If that import finds no memory, the exchange is tried again a second
later, a link change at the next link poll (counted as no_memory).
"""
from uipy import discard, run
from uipy.compat import const, random_u16, ticks_add, ticks_diff

CLIENT_PORT = const(68)
SERVER_PORT = const(67)

_INFINITE = const(-1)          # lease that never expires (as uipy.dhcp_msg sets it)

_TYPING = const(0)
if _TYPING:
    # for the compiler only: names make the strings below qstrs (shared with
    # the counter and uipy.dhcp_msg's function), not heap strings of their own
    dict(drop_foreign=0, link_change=0)


class Dhcp:
    """stack: the Stack to configure.  hostname: sent in option 12 (default
    stack.hostname).  retry_ms / retry_max_ms / jitter_ms: RFC 2131 4.1 backoff
    (4 s doubling to 64 s, +-1 s).  init_delay_ms: random wait before the first
    DISCOVER (RFC 2131 4.4.1 suggests 1-10 s).  request_tries: REQUESTs sent
    before discovery restarts; reboot_tries: INIT-REBOOT REQUESTs before
    falling back to discovery.  renew_min_s / renew_max_s: shortest and longest
    gap between renewal retransmissions (RFC: half the time left, at least 60 s).
    link_poll_ms: how often nic.link_up() is read.
    probe_num / probe_wait_ms / probe_min_ms / probe_max_ms / announce_wait_ms:
    the ARP probes of an address before it is used (RFC 5227 2.1.1: a random
    wait up to probe_wait_ms, probe_num probes from 0.0.0.0 spaced randomly
    probe_min_ms..probe_max_ms, then announce_wait_ms of listening; about 5 s
    with these RFC defaults); probe_num=0 binds at once.  decline_wait_ms: the
    pause after a DHCPDECLINE before the next DISCOVER (RFC 2131 3.1.5: 10 s).
    The settings after on_change, in this order, with their defaults:
    retry_ms=4000, retry_max_ms=64000, jitter_ms=1000, init_delay_ms=1000,
    request_tries=4, reboot_tries=2, renew_min_s=60, renew_max_s=3600,
    link_poll_ms=500, probe_num=3, probe_wait_ms=1000, probe_min_ms=1000,
    probe_max_ms=2000, announce_wait_ms=2000, decline_wait_ms=10000 (the
    signature of uipy.dhcp_msg's constructor body: it runs once, and on a
    stock board code is heap).
    """

    # Set by the constructor's body (uipy.dhcp_msg.init, loaded for the call;
    # declared here for the type checker, no code): the settings as attributes
    # of their names, and
    init_delay_ms: int
    link_poll_ms: int
    state: str                    # see the module docstring
    stats: dict                   # counters by name
    secs: int                     # seconds since start(): the lease clock
    _xid: bytearray               # this exchange's transaction id
    _offer: bytearray             # address offered / asked for
    # the lease: what the server gave (4-byte bytes) and its timers in secs
    address: "bytes | None"
    netmask: "bytes | None"
    gateway: "bytes | None"
    server: "bytes | None"
    dns: list
    domain: "str | None"
    lease_s: int
    t1_s: int
    t2_s: int
    bound_at: int                 # secs when the lease was last bound / renewed
    _link: bool                   # the link is up (as last polled; set by start())

    def __init__(self, stack, hostname=None, on_change=None, *args, **settings):
        self.stack = stack
        self.on_change = on_change
        # the settings checked (ValueError for a bad one); MemoryError when
        # there is no memory to load the code
        run("dhcp_msg", "init", self, hostname, args, settings)

    # --- the message module, loaded for an exchange ---

    def _call(self, fn, *args):
        """uipy.dhcp_msg.fn(self, *args), importing the module if needed and
        dropping it after when no exchange is under way (bound, stopped or the
        link down).  False when there is no memory to import it."""
        m = self._m
        if m is None:
            try:
                from uipy import dhcp_msg as m
            except MemoryError:
                discard("dhcp_msg")
                self.stats["no_memory"] += 1
                return False
            self._m = m
        try:
            return getattr(m, fn)(self, *args)
        finally:
            if self.state == "BOUND" or self.state == "STOPPED" or not self._link:
                # forget uipy.dhcp_msg: its code becomes garbage once no frame runs it
                self._m = None
                discard("dhcp_msg")

    # --- public ---

    def start(self, requested=None):
        """Bind UDP 68 and begin: discovery, or INIT-REBOOT of a remembered
        address (requested, e.g. kept in flash across a reset).  The body is
        uipy.dhcp_msg's, loaded for the call (it runs once): MemoryError when
        there is no memory for it, as from the constructor."""
        if self.state == "STOPPED":
            run("dhcp_msg", "start", self, requested)

    def stop(self):
        """Stop all DHCP traffic and timers.  The address stays on the stack (the
        lease may still be valid); use release() to give it back."""
        if self.state == "STOPPED":
            return
        s = self.stack
        s.udp.unbind(CLIENT_PORT)
        if self._tick in s.tickers:
            s.tickers.remove(self._tick)
        s.arp.watch = None
        self.state = "STOPPED"
        self._timer = False
        self._m = None                # uipy.dhcp_msg forgotten (see _call)
        discard("dhcp_msg")

    def release(self):
        """Send DHCPRELEASE (when a lease is held), clear the address and stop.
        Call it from the main loop, not from inside a stack handler: the message
        is built in the frame buffer."""
        if self.address is not None:
            self._call("release")         # the DHCPRELEASE, when the lease is in force
        self.stop()
        self._drop_lease(True)

    def lease(self):
        """The current lease as a dict (None when no address is held)."""
        if self.address is None:
            return None
        return self._call("lease") or None

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

    def _begin(self, state, delay_ms):
        """Start over in state "INIT" (discovery) or "INIT-REBOOT" (ask for the
        address in _offer again, after a link flap or reset) after delay_ms."""
        self.state = state
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
        """NAK, expiry, a failed INIT-REBOOT or an address lost to another
        host: drop everything, discover again."""
        self._drop_lease(True)
        self._ack = None
        self._begin("INIT", self._random(self.init_delay_ms))

    def _arp(self, claimed):
        """The stack's ARP watch (see uipy.arp): probe replies while CHECKING,
        a second claim on our address while holding it."""
        if claimed:
            if self.address is not None:
                self.stats["gave_up"] += 1
                self._restart()
        elif self.state == "CHECKING":
            self._call("arp_in")

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
                self._call("link_change", up)   # no memory: seen again at the next poll
        st = self.state
        if self.address is not None and self.lease_s != _INFINITE:
            held = self.secs - self.bound_at
            if held >= self.lease_s:
                self.stats["expired"] += 1
                self._restart()
                return
            if self._link and (st == "BOUND" and held >= self.t1_s or st == "RENEWING" and held >= self.t2_s):
                # a new transaction in the next state, sent at once
                self.state = "RENEWING" if st == "BOUND" else "REBINDING"
                if self._call("exchange") is False:
                    self._arm(1000)       # no memory: the retransmission timer tries again
        if self._timer and self._link and ticks_diff(now, self._due) >= 0:
            self._timer = False
            if self._call("timeout") is False:
                self._arm(1000)       # no memory for the message code: again in a second

    # --- input ---

    def _input(self, data, src_ip, src_port):
        """UDP 68 handler.  The cheap checks run here, so other clients'
        broadcast replies never load the message code; the rest in uipy.dhcp_msg."""
        stats = self.stats
        if len(data) < 241:
            stats["drop_short"] += 1
            return
        if src_port != SERVER_PORT or data[0] != 2 or data[1] != 1 or data[2] != 6:
            stats["drop_foreign"] += 1
            return
        x = self._xid
        if data[4] != x[0] or data[5] != x[1] or data[6] != x[2] or data[7] != x[3]:
            stats["drop_xid"] += 1
            return
        self._call("take", data, src_ip)
