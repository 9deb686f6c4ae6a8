"""A network namespace with dnsmasq (DHCP and DNS) on the kernel side of a TAP,
and a uipy stack on the other side: shared by test_dhcp.py and test_dns.py."""
import os
import signal
import time

import dnsmasq
from faults import Cable
from levels import tool

KERNEL_IP = "198.18.0.1"
RANGE = ("198.18.0.100", "198.18.0.150")
OTHER_RANGE = ("198.18.0.160", "198.18.0.200")
FAST = dict(retry_ms=400, retry_max_ms=1600, jitter_ms=100, init_delay_ms=0,
            reboot_tries=2, renew_min_s=1, renew_max_s=1, link_poll_ms=50,
            probe_num=2, probe_wait_ms=0, probe_min_ms=100, probe_max_ms=150,
            announce_wait_ms=200, decline_wait_ms=500)


def ip_int(s):
    a = [int(x) for x in s.split(".")]
    return (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]


def in_range(ip, rng):
    return ip_int(rng[0]) <= ip_int(ip) <= ip_int(rng[1])


class DnsmasqNet:
    """A namespace with dnsmasq on the kernel side of a TAP, and a uipy stack
    (not yet running: call run()) on the other side."""

    def __init__(self, tmpdir, stack_ip=None):
        from netns import Namespace, create_tap_in_ns
        from uipy.stack import Stack

        self.dir = str(tmpdir)
        self.proc = None
        self.thread = None
        self.ns = Namespace().create()
        try:
            self.tap = create_tap_in_ns(self.ns, KERNEL_IP + "/24")
            self.nic = Cable(self.tap)
            kw = {"ip": stack_ip, "gateway": KERNEL_IP} if stack_ip else {}
            self.stack = Stack(self.nic, tcp=False, udp_size=6, **kw)
        except BaseException:
            self.ns.delete()
            raise
        self.leasefile = os.path.join(self.dir, "leases")

    def start_dnsmasq(self, *extra, rng=RANGE, t1=None, t2=None, fresh=False):
        """Start dnsmasq (DHCP on rng, DNS on port 53); wait until it serves."""
        assert self.proc is None
        if fresh and os.path.exists(self.leasefile):
            os.unlink(self.leasefile)
        extra = ["--no-ping", "--log-dhcp", "--log-queries"] + list(extra)
        if t1:
            extra.append("--dhcp-option=option:T1,%d" % t1)
        if t2:
            extra.append("--dhcp-option=option:T2,%d" % t2)
        self.proc = dnsmasq.start(self.ns, dnsmasq.command(tool("dnsmasq"), self.tap.kernel_if, self.dir,
                                                           rng, extra=extra), self.dir)

    def stop_dnsmasq(self):
        p, self.proc = self.proc, None
        if p is not None:
            self.ns.procs.remove(p)
            p.send_signal(signal.SIGTERM)
            p.wait(5)
            p.stderr.close()

    def log(self):
        return dnsmasq.read_log(self.dir)

    def leases(self):
        """{ip: (expiry, mac, hostname)} from dnsmasq's lease file."""
        out = {}
        try:
            with open(self.leasefile) as f:
                for line in f:
                    p = line.split()
                    if len(p) >= 4:
                        out[p[2]] = (int(p[0]), p[1], p[3])
        except FileNotFoundError:
            pass
        return out

    def run(self):
        from hostrun import StackThread
        self.thread = StackThread(self.stack, self.tap).start()
        return self.thread

    def call(self, fn):
        return self.thread.call(lambda s: fn())

    def wait(self, cond, limit_s, what="condition"):
        deadline = time.monotonic() + limit_s
        while True:
            v = self.thread.call(lambda s: cond())
            if v:
                return v
            assert time.monotonic() < deadline, "timed out waiting for " + what
            time.sleep(0.02)

    def close(self):
        try:
            if self.thread is not None:
                self.thread.stop()
        finally:
            self.stop_dnsmasq()
            self.ns.delete()


def make_client(net, events=None, **kw):
    from uipy.dhcp import Dhcp
    net.stack.hostname = "uipy-test"
    opts = dict(FAST)
    opts.update(kw)

    def on_change(d, event):
        if events is not None:
            events.append((event, d.address))

    return Dhcp(net.stack, on_change=on_change, **opts)


def bound(dhcp):
    return lambda: dhcp.state == "BOUND" and dhcp.address is not None


