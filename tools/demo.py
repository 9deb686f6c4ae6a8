"""make demo: the uipy firmware on a virtual board, reachable from a browser.

Sets up a network namespace whose kernel side of a TAP (198.18.0.1/24) runs
dnsmasq (DHCP and DNS), then runs firmware/main.py, unchanged, on the virtual
board: the real W5500 (default) or ENC28J60 driver talking to the chip
emulator whose wire is the TAP.  The board gets its address by DHCP, the
kernel fetches the page and the JSON status with curl to prove it works, and
a port on 127.0.0.1 is forwarded into the namespace so a browser on this
machine can open the page.  Serves until Ctrl-C, or DEMO_SECONDS.

    make demo                          # W5500, serve until Ctrl-C
    make demo CHIP=enc28j60 DEMO_SECONDS=10 DEMO_PORT=8080

Needs root (namespaces, TAP devices).  Exit status 0 only if every check passed.
"""
import importlib.util
import json
import os
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, d) for d in ("lib", "drivers", "tools")] + [ROOT]
import paths  # noqa: E402,F401  (tools/paths.py: tools/emu, net, bench, device on sys.path)

KERNEL_IP = "198.18.0.1"
DHCP_RANGE = ("198.18.0.100", "198.18.0.150")
HOSTNAME = "uipy-demo"


def say(msg):
    print("demo: " + msg, flush=True)


def load_firmware():
    """firmware/main.py as a module (the file a board runs at boot)."""
    spec = importlib.util.spec_from_file_location("uipy_firmware_main", os.path.join(ROOT, "firmware", "main.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_dnsmasq(ns, tap, workdir):
    import shutil
    import dnsmasq
    exe = shutil.which("dnsmasq")
    if not exe:
        raise SystemExit("demo: dnsmasq is missing (Debian package dnsmasq-base; make demo installs it)")
    return dnsmasq.start(ns, dnsmasq.command(exe, tap.kernel_if, workdir, DHCP_RANGE,
                                             extra=["--dhcp-option=option:router," + KERNEL_IP]), workdir)


def main():
    if os.geteuid() != 0:
        print("demo: needs root to create a network namespace and a TAP device.\n"
              "      run it as root: sudo make demo", file=sys.stderr)
        return 2
    chip = os.environ.get("CHIP", "w5500")
    seconds = float(os.environ.get("DEMO_SECONDS", "0") or 0)
    port = int(os.environ.get("DEMO_PORT", "8080"))
    from netns import Namespace, create_tap_in_ns
    import boards
    from forward import PortForward

    firmware = load_firmware()
    ok = True
    with Namespace() as ns, tempfile.TemporaryDirectory() as workdir:
        tap = create_tap_in_ns(ns, KERNEL_IP + "/24")
        ns.own(tap)
        start_dnsmasq(ns, tap, workdir)
        say("namespace %s: kernel at %s with dnsmasq, %s chip emulator on TAP %s"
            % (ns.name, KERNEL_IP, chip.upper(), tap.kernel_if))
        nic = boards.nic("virtual", chip=chip, tap=tap)
        cfg = firmware.load_config(os.path.join(workdir, "none.json"), {
            "board": "virtual", "hostname": HOSTNAME, "dhcp": True,
            "www": os.path.join(ROOT, "firmware", "www")})
        device = firmware.Device(cfg, nic=nic)
        stop = threading.Event()
        runner = threading.Thread(target=device.run, args=(stop.is_set,), daemon=True)
        runner.start()
        forward = None
        try:
            deadline = time.monotonic() + 20
            while not device.stack.configured and time.monotonic() < deadline:
                time.sleep(0.05)
            if not device.stack.configured:
                say("FAILED: no DHCP lease within 20 s")
                return 1
            ip = device.address()
            say("board got %s by DHCP" % ip)
            page = ns.run(["curl", "-s", "-m", "5", "-w", "\n%{http_code} %{time_starttransfer}",
                           "http://%s/" % ip], check=False).stdout
            body, _, tail = page.rpartition("\n")
            code, ttfb = (tail.split() + ["", ""])[:2]
            good = code == "200" and HOSTNAME in body or code == "200" and "<html" in body.lower()
            say("kernel: GET / -> %s, %d bytes, first byte after %.1f ms %s"
                % (code, len(body), float(ttfb or 0) * 1000, "ok" if good else "FAILED"))
            ok &= good
            status = ns.run(["curl", "-s", "-m", "5", "http://%s/status.json" % ip], check=False).stdout
            try:
                info = json.loads(status)
                say("kernel: GET /status.json -> name %s, uptime %s s, %s frames received"
                    % (info.get("name"), info.get("uptime_s"), info.get("stats", {}).get("rx_frames")))
            except ValueError:
                say("kernel: GET /status.json FAILED: %r" % status[:80])
                ok = False
            ping = ns.run(["ping", "-c", "3", "-i", "0.2", "-W", "1", ip], check=False).stdout
            ok &= " 0% packet loss" in ping
            say("kernel: ping %s: %s" % (ip, [l for l in ping.splitlines() if "packet loss" in l][:1]))
            try:
                forward = PortForward(ns.name, ip, 80, listen_port=port)
                say("open http://127.0.0.1:%d/ in a browser on this machine" % forward.port)
            except OSError as e:
                say("could not listen on 127.0.0.1:%d (%s); set DEMO_PORT" % (port, e))
            say("%s (stats: %s)" % ("all checks passed" if ok else "SOME CHECKS FAILED",
                                    ", ".join("%s=%d" % kv for kv in sorted(device.stack.stats.items()) if kv[1])[:300]))
            if seconds:
                say("serving for %g s" % seconds)
                time.sleep(seconds)
            else:
                say("serving until Ctrl-C")
                while True:
                    time.sleep(1)
        except KeyboardInterrupt:
            say("stopping")
        finally:
            stop.set()
            runner.join(2)
            if forward:
                forward.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
