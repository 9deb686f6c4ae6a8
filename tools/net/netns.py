"""Network namespaces for host tests and the demo (host only, needs root).

    with Namespace() as ns:
        tap = create_tap_in_ns(ns, "198.18.0.1/24")     # stack side: tap
        ns.run(["ping", "-c1", "198.18.0.2"], check=False)

Every test host lives in a namespace made here, so no frame ever reaches a real
interface. As a second guard, every IPv4 address handed to these helpers or
found in a command run through them must be in 198.18.0.0/15 (loopback, 0.0.0.0
and netmasks aside); anything else is refused before it runs.

Leftovers.  While a Namespace exists, its creator holds an flock on
RUN_DIR/<name>.lock (taken before `ip netns add`, released after `ip netns
del`).  A run killed hard (SIGKILL) leaves the namespace, and the processes in
it, behind, but the kernel drops the lock: clean_leftovers() (at the start of
the demo and of a root test session, and `make clean-net`) removes every
namespace named by unique_name() whose lock is free, stopping the processes in
it by PID first.  A name of another scheme is never touched; a uipy name
without a lock file (an older checkout's run) only with force=True.  TAP
devices need no lock: they are not persistent, the kernel removes one when the
last descriptor closes.
"""
import atexit
import errno
import fcntl
import ipaddress
import itertools
import os
import re
import shlex
import signal
import subprocess
import time

from packet_link import PacketLink
from tap import TapNic

ALLOWED_NET = ipaddress.ip_network("198.18.0.0/15")
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_QUAD = re.compile(r"(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?:/(\d{1,2}))?(?![\d.])")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_counter = itertools.count()
_live = {}                            # name -> Namespace, deleted at exit if still there
RUN_DIR = os.environ.get("UIPY_RUN_DIR", "/run/uipy")
# every prefix unique_name() is called with in this module; clean_leftovers()
# touches only names of exactly this form
PREFIXES = ("uipyns", "uitap", "uivk", "uivw")
OWN_NAME = re.compile(r"^(?:%s)[0-9]+$" % "|".join(PREFIXES))


class NetnsError(RuntimeError):
    pass


def unique_name(prefix="uipy"):
    """A name unique to this process, short enough for an interface (<= 15).
    A new prefix must be added to PREFIXES, or its leftovers are never found."""
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
        self.lock = None              # fd holding the flock on RUN_DIR/<name>.lock

    # --- life cycle ---
    def create(self):
        self.lock = _take_lock(self.name)
        _live[self.name] = self
        try:
            # Fails if the name is taken: never adopt someone else's namespace.
            _run(["ip", "netns", "add", self.name], timeout=10)
        except NetnsError:
            self.delete()
            raise
        except BaseException:
            # Interrupted (a signal): `ip` may have made it; it is ours, we hold its lock.
            self.created = True
            raise
        self.created = True
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
            # Anything else still in it (a process whose Popen a signal cut short).
            _stop_pids(_pids_in(self.name))
            _run(["ip", "netns", "del", self.name], check=False, timeout=10)
            self.created = False
        _live.pop(self.name, None)
        if self.lock is not None:
            _drop_lock(self.name, self.lock)
            self.lock = None

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


# --- ownership and leftovers ---

def _lock_path(name):
    return os.path.join(RUN_DIR, name + ".lock")


def _take_lock(name):
    """An fd with an exclusive flock on name's lock file (made if needed)."""
    os.makedirs(RUN_DIR, mode=0o755, exist_ok=True)
    path = _lock_path(name)
    for _ in range(3):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise NetnsError("namespace name %s is in use by a running process" % name)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False              # swept between open and flock: take a new one
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, b"%d\n" % os.getpid())
            return fd
        os.close(fd)
    raise NetnsError("cannot lock %s" % path)


def _drop_lock(name, fd):
    try:
        os.unlink(_lock_path(name))
    except FileNotFoundError:
        pass
    os.close(fd)


def _try_lock(name):
    """(state, fd): 'held' by a live process, 'free' (fd: now ours), or 'none' (no file)."""
    try:
        fd = os.open(_lock_path(name), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return "none", None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return "held", None
        raise
    return "free", fd


def namespaces():
    """Names of all network namespaces (`ip netns list`)."""
    out = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _root_links():
    out = _run(["ip", "-o", "link", "show"], check=False).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.count(":") >= 2]


def _attached_taps():
    """Names of TAP devices some process has open (tun fdinfo has 'iff:')."""
    names = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir("/proc/%s/fdinfo" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) != "/dev/net/tun":
                    continue
                with open("/proc/%s/fdinfo/%s" % (pid, fd)) as f:
                    for line in f:
                        if line.startswith("iff:"):
                            names.add(line.split()[1])
            except OSError:
                continue
    return names


def _pids_in(name):
    out = _run(["ip", "netns", "pids", name], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _stop_pids(pids, grace_s=2.0):
    """SIGTERM each PID, SIGKILL what is still there after grace_s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if os.path.exists("/proc/%d" % p)]
            time.sleep(0.02)
        if not pids:
            return


def leftovers(force=False):
    """uipy namespaces no live process owns: lock file there and free (or,
    with force, no lock file at all).  Never this process's own."""
    found = []
    for name in namespaces():
        if not OWN_NAME.match(name) or name in _live:
            continue
        state, fd = _try_lock(name)
        if fd is not None:
            os.close(fd)
        if state == "free" or state == "none" and force:
            found.append(name)
    return found


def clean_leftovers(force=False):
    """Remove what killed runs left behind; returns the names removed.

    - a namespace named by unique_name() whose owner is gone (see leftovers()):
      the processes in it are stopped by PID, then `ip netns del`;
    - a stale lock file (free, its namespace gone);
    - a TAP in this namespace with a uipy name that no process has open
      (only a persistent one can outlive its process).
    """
    removed = []
    existing = set(namespaces())
    for name in sorted(existing):
        if not OWN_NAME.match(name) or name in _live:
            continue
        state, fd = _try_lock(name)
        if state == "held" or state == "none" and not force:
            continue
        gone = False
        try:
            _stop_pids(_pids_in(name))
            gone = _run(["ip", "netns", "del", name], check=False).returncode == 0
            if gone:
                removed.append(name)
        finally:
            if fd is not None and gone:
                _drop_lock(name, fd)
            elif fd is not None:
                os.close(fd)          # keep the file: the next sweep tries again
    try:
        files = os.listdir(RUN_DIR)
    except OSError:
        files = []
    for f in files:
        name = f[:-len(".lock")]
        if not f.endswith(".lock") or not OWN_NAME.match(name) or name in existing or name in _live:
            continue
        state, fd = _try_lock(name)
        if fd is not None:
            _drop_lock(name, fd)
    links = [n for n in _root_links() if OWN_NAME.match(n)]
    if links:
        attached = _attached_taps()
        for name in links:
            is_tap = os.path.exists("/sys/class/net/%s/tun_flags" % name)
            if is_tap and name not in attached or force and not is_tap:
                _run(["ip", "link", "del", name], check=False)
                removed.append(name)
    return removed


@atexit.register
def _cleanup():
    for ns in list(_live.values()):
        ns.delete()
