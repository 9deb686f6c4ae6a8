"""Network namespaces for host tests and the demo (host only, needs root).

    with Namespace() as ns:
        tap = create_tap_in_ns(ns, "198.18.0.1/24")     # stack side: tap
        ns.run(["ping", "-c1", "198.18.0.2"], check=False)

Every test host lives in a namespace made here, so no frame ever reaches a real
interface. As a second guard, every IPv4 address handed to these helpers or
found in a command run through them must be in 198.18.0.0/15 (loopback, 0.0.0.0
and netmasks aside); anything else is refused before it runs.
"""
import atexit
import ipaddress
import itertools
import os
import re
import shlex
import signal
import subprocess

from packet_link import PacketLink
from tap import TapNic

ALLOWED_NET = ipaddress.ip_network("198.18.0.0/15")
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_QUAD = re.compile(r"(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?:/(\d{1,2}))?(?![\d.])")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_counter = itertools.count()
_live = {}                            # name -> Namespace, deleted at exit if still there


class NetnsError(RuntimeError):
    pass


def unique_name(prefix="uipy"):
    """A name unique to this process, short enough for an interface (<= 15)."""
    return "%s%d%s" % (prefix, os.getpid() % 10000, next(_counter))[:15]


def check_addr(addr):
    """Refuse an IPv4 address or address/prefix outside 198.18.0.0/15."""
    iface = ipaddress.ip_interface(addr)
    if iface.version != 4 or iface.ip not in ALLOWED_NET or iface.network.prefixlen < ALLOWED_NET.prefixlen:
        raise ValueError("address %r is outside 198.18.0.0/15; test traffic must stay there" % addr)
    return addr


def _check_cmd(args):
    for arg in args:
        for quad, prefix in _QUAD.findall(arg):
            try:
                ip = ipaddress.ip_address(quad)
            except ValueError:
                continue          # 999.1.2.3: not an address
            if ip in ALLOWED_NET or ip in _LOOPBACK or ip == ipaddress.ip_address("0.0.0.0"):
                continue
            if not prefix and _is_netmask(ip):
                continue
            raise ValueError("command %r names %s, outside 198.18.0.0/15" % (args, quad))


def _is_netmask(ip):
    v = int(ip)
    inv = ~v & 0xFFFFFFFF
    return v != 0 and inv & (inv + 1) == 0


def _argv(cmd):
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


class Namespace:
    def __init__(self, name=None):
        self.name = name or unique_name("uipyns")
        if not _NAME.match(self.name):
            raise ValueError("bad namespace name %r" % self.name)
        self.procs = []
        self.owned = []               # links to close before the namespace goes
        self.created = False

    # --- life cycle ---
    def create(self):
        # Fails if the name is taken: never adopt someone else's namespace.
        _run(["ip", "netns", "add", self.name], timeout=10)
        self.created = True
        _live[self.name] = self
        self.run(["ip", "link", "set", "lo", "up"])
        return self

    def delete(self):
        for p in self.procs:
            _stop(p)
        self.procs = []
        # Open sockets pin the namespace (and the veth in it) after `ip netns del`.
        for obj in reversed(self.owned):
            try:
                obj.close()
            except OSError:
                pass
        self.owned = []
        if self.created:
            _run(["ip", "netns", "del", self.name], check=False, timeout=10)
            self.created = False
        _live.pop(self.name, None)

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.delete()

    def own(self, obj):
        """Close obj (anything with close()) when the namespace is deleted."""
        self.owned.append(obj)
        return obj

    # --- running things inside ---
    def run(self, cmd, check=True, timeout=10, input=None):
        """Run cmd inside the namespace; returns CompletedProcess (text output)."""
        argv = _argv(cmd)
        _check_cmd(argv)
        return _run(["ip", "netns", "exec", self.name] + argv, check=check, timeout=timeout, input=input)

    def popen(self, cmd, **kw):
        """Start cmd in the background inside the namespace; stopped by PID at delete()."""
        argv = _argv(cmd)
        _check_cmd(argv)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        # `ip netns exec` execs the command, so the PID is the command's own.
        p = subprocess.Popen(["ip", "netns", "exec", self.name] + argv, **kw)
        self.procs.append(p)
        return p

    def sysctl(self, key, value):
        self.run(["sysctl", "-q", "-w", "%s=%s" % (key, value)])

    # --- looking inside ---
    def neigh_state(self, ip):
        """Neighbour-cache state of ip ('REACHABLE', 'STALE', 'FAILED', ...) or None."""
        check_addr(ip)
        out = self.run(["ip", "neigh", "show", "to", ip]).stdout.split()
        return out[-1] if out else None

    def neigh_mac(self, ip):
        """The MAC the kernel has for ip, as bytes, or None."""
        check_addr(ip)
        out = self.run(["ip", "neigh", "show", "to", ip]).stdout.split()
        if "lladdr" in out:
            return bytes.fromhex(out[out.index("lladdr") + 1].replace(":", ""))
        return None

    def ss(self, opts="-tan"):
        """Sockets as dicts: state, recv_q, send_q, local, peer."""
        rows = []
        for line in self.run(["ss", "-H"] + opts.split()).stdout.splitlines():
            f = line.split()
            if len(f) >= 5:
                rows.append({"state": f[0], "recv_q": int(f[1]), "send_q": int(f[2]),
                             "local": f[3], "peer": f[4]})
        return rows

    def ping(self, ip, count=1, timeout_s=2):
        """True if ip answers count echo requests from inside the namespace."""
        check_addr(ip)
        r = self.run(["ping", "-n", "-q", "-c", count, "-W", timeout_s, ip],
                     check=False, timeout=count * timeout_s + 5)
        return r.returncode == 0


def _run(argv, check=True, timeout=10, input=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise NetnsError("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r


def _stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(2)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(2)
    for f in (p.stdout, p.stderr, p.stdin):
        if f:
            f.close()


def _setup_kernel_if(ns, ifname, kernel_ip):
    # No IPv6 on the test interfaces: no router solicitations or MLD reports
    # turning up in the stack's input and in captures. Set before the link is up.
    ns.sysctl("net.ipv6.conf.%s.disable_ipv6" % ifname, 1)
    ns.run(["ip", "addr", "add", kernel_ip, "dev", ifname])
    ns.run(["ip", "link", "set", ifname, "up"])


def create_tap_in_ns(ns, kernel_ip="198.18.0.1/24", name=None, mac=None):
    """A TAP whose interface (with kernel_ip) is in ns; returns the stack-side TapNic.

    The device is created from this process (in our namespace) and then moved:
    the file descriptor stays attached to it across the move.
    """
    check_addr(kernel_ip)
    name = name or unique_name("uitap")
    tap = TapNic(name, mac=mac)
    try:
        _run(["ip", "link", "set", name, "netns", ns.name])
        _setup_kernel_if(ns, name, kernel_ip)
    except Exception:
        tap.close()
        raise
    tap.ns = ns
    tap.kernel_if = name
    tap.kernel_ip = kernel_ip
    return ns.own(tap)


def create_veth_in_ns(ns, kernel_ip="198.18.0.1/24", wire_ns=None, names=None, mac=None):
    """A veth pair: the kernel end (with kernel_ip) in ns, the wire end in
    wire_ns (default: ns too), read and written by the returned PacketLink.

    Offloads are off on both ends, or the kernel hands frames over with
    unfinished (partial) checksums and never checks the ones it receives.
    """
    check_addr(kernel_ip)
    wire_ns = wire_ns or ns
    k_if, w_if = names or (unique_name("uivk"), unique_name("uivw"))
    # Both ends are created inside ns: nothing appears in our own namespace.
    ns.run(["ip", "link", "add", k_if, "type", "veth", "peer", "name", w_if])
    try:
        if wire_ns is not ns:
            ns.run(["ip", "link", "set", w_if, "netns", wire_ns.name])
        for n, ifn in ((ns, k_if), (wire_ns, w_if)):
            n.run(["ethtool", "-K", ifn, "rx", "off", "tx", "off"])
            n.sysctl("net.ipv6.conf.%s.disable_ipv6" % ifn, 1)
        # The wire end has no address; arp off keeps that kernel from ever
        # speaking on it, so only the stack does.
        wire_ns.run(["ip", "link", "set", w_if, "arp", "off", "up"])
        _setup_kernel_if(ns, k_if, kernel_ip)
        link = PacketLink(w_if, netns=wire_ns.name, mac=mac)
    except Exception:
        ns.run(["ip", "link", "del", k_if], check=False)
        raise
    link.ns = ns
    link.wire_ns = wire_ns
    link.kernel_if = k_if
    link.kernel_ip = kernel_ip
    return wire_ns.own(link)


@atexit.register
def _cleanup():
    for ns in list(_live.values()):
        ns.delete()
