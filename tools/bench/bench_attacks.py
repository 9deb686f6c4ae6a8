"""Figures for a small server under attack (issue 11; needs root): firmware-like
settings (Stack tcp conns=6, HttpServer max_conns=4 serving firmware/www) on
CPython in a StackThread over a TAP in a namespace; attackers and clients are
the namespace's kernel and raw frames (tools/net/attacks.py, spoofed sources
in 198.19.0.0/16 only).

    from bench_attacks import attack_figures
    figures.update(attack_figures())     # {} (and a note) when not root / no curl

synflood_page_p99_ms: p99 of curl's page fetch time (connect to last byte, a
    new connection each time, back to back) during a 20 s spoofed SYN flood at
    1000 packets/s (20,000 SYNs from 198.19.0.0/16, random ports and ISNs).
    synflood_page_failures: fetches that failed meanwhile (target 0).
burst_300_served_30s: of 300 kernel clients started at once (threads behind a
    barrier, one connection each, GET / with Connection: close), how many had
    the whole page within 30 s.  burst_300_last_s: when the last of them had
    it (s after the start).
slowloris_page_p99_ms: p99 of curl's page fetch time over 10 s while 12
    slowloris connections (a request head trickled one byte every 0.3 s, a
    new connection when the server drops one) compete for the 4 slots.
tiny_mss_wire_ratio: bytes of all the stack's frames on one connection
    (SYN-ACK, response head and page, FIN; Ethernet, IP and TCP headers
    included) per page byte, for a raw client that announces MSS 1.
"""
import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.path.join(ROOT, "tools") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "tools"))
import paths  # noqa: E402,F401  (tools/paths.py: lib, drivers, tools/emu, net, bench, device)
if os.path.join(ROOT, "host_tests") not in sys.path:
    sys.path.append(os.path.join(ROOT, "host_tests"))

STACK_IP = "198.18.0.2"
KERNEL_IP = "198.18.0.1"
WWW = os.path.join(ROOT, "firmware", "www")
MAX_CONNS = 4
FLOOD_S = 20
FLOOD_PPS = 1000


def _server():
    from kernel_net import KernelNet
    from uipy.httpd import HttpServer
    from uipy.stack import Stack
    net = KernelNet()
    holder = {}

    def build(nic):
        stack = Stack(nic, ip=STACK_IP, gateway=KERNEL_IP, tcp={"conns": MAX_CONNS + 2})
        holder["http"] = HttpServer(stack, root=WWW, max_conns=MAX_CONNS)
        return stack
    net.start(build, idle_s=0.002)
    net.http = holder["http"]
    return net


def _wait_idle(net, limit_s=15):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and net.call(lambda s: net.http.active):
        time.sleep(0.1)


def tiny_mss_ratio(net, size):
    from attacks import RawPeer, http_body, spoof_ip
    p = RawPeer(net.ns.name, net.tap.kernel_if, net.nic.mac, STACK_IP, spoof_ip(4242))
    try:
        if not p.open(mss=1):
            raise RuntimeError("bench_attacks: no SYN-ACK for the MSS 1 peer")
        data = p.request(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=20)
        p.close()
    finally:
        p.close_socket()
    head, body = http_body(data)
    if len(body) != size:
        raise RuntimeError("bench_attacks: MSS 1 peer got %d of %d bytes" % (len(body), size))
    return round(sum(len(f) for f in p.frames) / size, 3)


def attack_figures():
    from attacks import BURST, FETCH_LOOP, FLOOD, SLOWLORIS, finish_json, percentile, run_json, start_json
    if os.geteuid() != 0:
        print("bench_attacks: skipped (needs root for namespaces and TAP devices)")
        return {}
    curl = shutil.which("curl")
    if not curl:
        print("bench_attacks: skipped (no curl)")
        return {}
    url = "http://%s/" % STACK_IP
    size = os.path.getsize(os.path.join(WWW, "index.html"))
    figures = {}
    net = _server()
    try:
        net.ns.ping(STACK_IP)
        figures["tiny_mss_wire_ratio"] = tiny_mss_ratio(net, size)

        _wait_idle(net)
        loris = start_json(net.ns, SLOWLORIS, STACK_IP, 12, 12, 0.3)
        time.sleep(1.5)
        got = run_json(net.ns, FETCH_LOOP, curl, url, 10, size, 2000, timeout=60)
        finish_json(loris, 40)
        figures["slowloris_page_p99_ms"] = round(1000 * percentile(got["times"], 99), 1) if got["times"] else -1
        figures["slowloris_page_failures"] = len(got["fails"])

        _wait_idle(net)
        flood = start_json(net.ns, FLOOD, net.tap.kernel_if, net.nic.mac.hex(), STACK_IP, 80, FLOOD_PPS, FLOOD_S)
        try:
            time.sleep(0.5)
            got = run_json(net.ns, FETCH_LOOP, curl, url, FLOOD_S - 1, size, 100000, timeout=FLOOD_S + 40)
        finally:
            sent = finish_json(flood, FLOOD_S + 20)
        figures["synflood_page_p99_ms"] = round(1000 * percentile(got["times"], 99), 1) if got["times"] else -1
        figures["synflood_page_failures"] = len(got["fails"])
        print("bench_attacks: flood %d SYNs in %.1f s, %d fetches" % (sent["sent"], sent["secs"], len(got["times"])))

        _wait_idle(net)
        res = run_json(net.ns, BURST, STACK_IP, 300, 30, size, timeout=120)
        figures["burst_300_served_30s"] = res["ok"]
        figures["burst_300_last_s"] = round(res["max_s"], 1)
        print("bench_attacks: burst %s" % res)
    finally:
        net.close()
    return figures


if __name__ == "__main__":
    for k, v in sorted(attack_figures().items()):
        print(k, v)
