"""dnsmasq as the DHCP and DNS server of a test namespace or the demo (host only).

    args = command(exe, tap.kernel_if, workdir, ("198.18.0.100", "198.18.0.150"))
    proc = start(ns, args, workdir)          # returns once dnsmasq has started

Nothing is read from /etc: no configuration file, no resolv.conf, no hosts
file; leases, pid and log live in workdir.
"""
import os
import subprocess
import time


def command(exe, ifname, workdir, dhcp_range, dns_port=53, extra=()):
    """dnsmasq on ifname only: DHCP on dhcp_range (first, last; /24, 2-minute
    leases, dnsmasq's shortest), DNS on dns_port (0 turns DNS off)."""
    return [exe, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            "--bind-interfaces", "--interface=" + ifname, "--port=%d" % dns_port,
            "--dhcp-range=%s,%s,255.255.255.0,2m" % tuple(dhcp_range),
            "--dhcp-leasefile=" + os.path.join(workdir, "leases"),
            "--pid-file=" + os.path.join(workdir, "dnsmasq.pid"),
            "--log-facility=" + log_path(workdir)] + list(extra)


def log_path(workdir):
    return os.path.join(workdir, "dnsmasq.log")


def read_log(workdir):
    try:
        with open(log_path(workdir)) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def start(ns, args, workdir, timeout_s=5.0):
    """Run args in namespace ns (tracked by it, stopped by PID at its end);
    return the process once its log says it started (a restart counts only
    the log written after this call)."""
    mark = len(read_log(workdir))
    proc = ns.popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    while "started, version" not in read_log(workdir)[mark:]:
        if proc.poll() is not None:
            raise RuntimeError("dnsmasq exited: %s" % proc.stderr.read().decode(errors="replace"))
        if time.monotonic() > deadline:
            raise RuntimeError("dnsmasq did not start within %g s" % timeout_s)
        time.sleep(0.02)
    return proc
