"""uipy demo: the stack on a TAP device, the Linux kernel as its peer.

Creates a network namespace holding the kernel side of a TAP (198.18.0.1/24),
runs a uipy Stack at 198.18.0.2 with a UDP echo service on port 7, then:
the kernel pings the stack, a kernel UDP socket sends a few datagrams and reads
the echoes, the stack pings the kernel, UDP to a closed port is refused.
Prints a short report and cleans up. Needs root (namespaces, TAP devices).
Exit status 0 only if everything worked. Run: make demo (or python tools/demo.py).
"""
import json
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, d) for d in ("lib", "drivers", "tools")]

STACK_IP = "198.18.0.2"
KERNEL_IP = "198.18.0.1"
ECHO_PORT = 7
CLOSED_PORT = 9
MESSAGES = ["hello uipy", "x" * 100, "the quick brown fox " * 50]

UDP_SCRIPT = r"""
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], int(sys.argv[2])))
s.settimeout(1)
out = []
for msg in json.loads(sys.argv[3]):
    got = None
    for attempt in range(3):             # the first may meet an ARP miss
        s.send(msg.encode())
        try:
            got = s.recv(4096).decode()
            break
        except socket.timeout:
            pass
    out.append(got)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.connect((sys.argv[1], int(sys.argv[4])))
c.settimeout(2)
c.send(b"anyone?")
try:
    c.recv(100)
    refused = "answered"
except ConnectionRefusedError:
    refused = "refused"
except socket.timeout:
    refused = "timeout"
print(json.dumps({"echoes": out, "closed_port": refused}))
"""


def short(s, n=24):
    return s if len(s) <= n else "%s... (%d bytes)" % (s[:n - 8], len(s))


def main():
    if os.geteuid() != 0:
        print("uipy demo: needs root to create a network namespace and a TAP device.\n"
              "Run it as root, e.g.: sudo make demo  (or: sudo .venv/bin/python tools/demo.py)")
        return 2
    from hostrun import StackThread
    from netns import Namespace, create_tap_in_ns
    from uipy.stack import Stack, mac_str

    failures = []
    started = time.monotonic()
    ns = Namespace()
    thread = None
    try:
        ns.create()
        tap = create_tap_in_ns(ns, KERNEL_IP + "/24")
        # The demo covers ARP, ICMP and UDP; TCP comes with the virtual board.
        stack = Stack(tap, ip=STACK_IP, gateway=KERNEL_IP, tcp=False)

        def echo(data, ip, port):
            stack.udp.send_payload(len(data), ip, port, ECHO_PORT)

        stack.udp_bind(ECHO_PORT, echo)
        thread = StackThread(stack, tap).start()
        print("uipy demo")
        print("  stack  %s  mac %s  on TAP %s" % (STACK_IP, mac_str(stack.mac), tap.name))
        print("  kernel %s  in network namespace %s" % (KERNEL_IP, ns.name))
        print()

        # 1. the kernel pings the stack
        r = ns.run(["ping", "-n", "-c", "5", "-i", "0.2", "-W", "1", STACK_IP], check=False, timeout=15)
        rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", r.stdout)]
        print("[1] kernel pings stack: %d/5 replies, rtt ms: %s"
              % (len(rtts), " ".join("%.3f" % x for x in rtts) or "-"))
        if len(rtts) != 5:
            failures.append("kernel ping: %d/5 replies" % len(rtts))
        state = ns.neigh_state(STACK_IP)
        kmac = ns.neigh_mac(STACK_IP)
        print("    kernel neighbour entry: %s %s" % (mac_str(kmac) if kmac else "-", state))
        if kmac != stack.mac:
            failures.append("kernel has no neighbour entry with the stack's MAC")

        # 2. UDP echo from a kernel socket, and a closed port
        r = ns.run([sys.executable, "-c", UDP_SCRIPT, STACK_IP, str(ECHO_PORT), json.dumps(MESSAGES),
                    str(CLOSED_PORT)], check=False, timeout=20)
        try:
            res = json.loads(r.stdout)
        except ValueError:
            res = {"echoes": [None] * len(MESSAGES), "closed_port": "script failed: " + r.stderr.strip()}
        ok = 0
        for sent, got in zip(MESSAGES, res["echoes"]):
            good = got == sent
            ok += good
            print("[2] UDP to port %d: %-34s -> %s" % (ECHO_PORT, repr(short(sent)),
                  "echoed, byte-exact" if good else "WRONG: %r" % (got,)))
        if ok != len(MESSAGES):
            failures.append("UDP echo: %d/%d" % (ok, len(MESSAGES)))
        print("    UDP to closed port %d: %s" % (CLOSED_PORT, {
            "refused": "ECONNREFUSED (ICMP port unreachable), as it should"}.get(res["closed_port"], res["closed_port"])))
        if res["closed_port"] != "refused":
            failures.append("closed port: %s" % res["closed_port"])

        # 3. the stack pings the kernel
        replies = []
        thread.call(lambda s: setattr(s.icmp, "on_echo_reply",
                                      lambda src, seq, rtt: replies.append((seq, rtt))))
        sent = 0
        for seq in range(1, 40):
            if len(replies) >= 5:
                break
            if thread.call(lambda s: s.ping(KERNEL_IP, seq, size=56)):
                sent += 1
            time.sleep(0.1)
        time.sleep(0.1)
        got = list(replies)
        print("[3] stack pings kernel: %d requests sent, %d replies, rtt ms: %s"
              % (sent, len(got), " ".join(str(rtt) for _, rtt in got) or "-"))
        if len(got) < 5:
            failures.append("stack ping: %d replies" % len(got))

        stats = thread.call(lambda s: dict(s.stats))
        print()
        print("stack counters (non-zero):")
        items = ["%s=%d" % (k, v) for k, v in stats.items() if v]
        for i in range(0, len(items), 4):
            print("  " + "  ".join("%-24s" % x for x in items[i:i + 4]).rstrip())
        if stats["handler_errors"]:
            failures.append("handler errors: %d (last: %r)" % (stats["handler_errors"], stack.last_error))
    except Exception as e:
        failures.append("%s: %s" % (type(e).__name__, e))
    finally:
        if thread is not None:
            try:
                thread.stop()
            except Exception as e:
                failures.append("stack thread: %r" % (e,))
        ns.delete()
    print()
    if failures:
        print("RESULT: FAILED (%.1f s): %s" % (time.monotonic() - started, "; ".join(failures)))
        return 1
    print("RESULT: all checks passed (%.1f s); namespace %s removed" % (time.monotonic() - started, ns.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
