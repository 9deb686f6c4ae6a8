"""make demo: the uipy firmware on a virtual board, reachable from a browser.

Sets up a network namespace whose kernel side of a TAP (198.18.0.1/24) runs
dnsmasq (DHCP and DNS), then runs firmware/main.py, unchanged, on one of

  - the virtual board (default, BOARD=virtual): CPython running the real W5500
    (default) or ENC28J60 driver against the chip emulator whose wire is the TAP;
  - an emulated RP2040 (BOARD=w5500_evb_pico or BOARD=pico_enc28j60): the
    genuine MicroPython RPI_PICO firmware in rp2040js (tools/emu/rp2), booting
    from a littlefs image holding what `make deploy` copies (main.py and
    config.json included), with the board's chip model on its SPI bus and the
    TAP as the chip's wire.  Its console is shown as it comes ("board: ...").

The board gets its address by DHCP, the kernel fetches the page and the JSON
status with curl and pings the board to prove it works, and a port on
127.0.0.1 is forwarded into the namespace so a browser on this machine can open
the page.  Serves until Ctrl-C, or DEMO_SECONDS.

    make demo                          # W5500, serve until Ctrl-C
    make demo CHIP=enc28j60 DEMO_SECONDS=10 DEMO_PORT=8080
    make demo BOARD=w5500_evb_pico     # the MicroPython firmware on an emulated RP2040

Needs root (namespaces, TAP devices).  Exit status 0 only if every check passed.

SIGINT (Ctrl-C), SIGTERM and SIGHUP all stop it the same way, at any moment,
start-up included: board, forwarder, dnsmasq (and anything else in the
namespace), TAP and namespace are removed before it exits.  A run killed with
SIGKILL leaves the namespace and dnsmasq; the next demo (or `make clean-net`)
removes them (netns.clean_leftovers).
"""
import importlib.util
import ipaddress
import json
import os
import shutil
import signal
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
_out = threading.Lock()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by the first SIGINT, SIGTERM or SIGHUP."""


def say(msg, prefix="demo: "):
    with _out:
        try:
            sys.stdout.write(prefix + msg + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):
            pass                   # the terminal went away (SIGHUP): keep cleaning up


def load_firmware():
    """firmware/main.py as a module (the file a board runs at boot)."""
    spec = importlib.util.spec_from_file_location("uipy_firmware_main", os.path.join(ROOT, "firmware", "main.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_dnsmasq(ns, tap, workdir):
    import dnsmasq
    exe = shutil.which("dnsmasq")
    if not exe:
        raise SystemExit("demo: dnsmasq is missing (Debian package dnsmasq-base; make demo installs it)")
    return dnsmasq.start(ns, dnsmasq.command(exe, tap.kernel_if, workdir, DHCP_RANGE,
                                             extra=["--dhcp-option=option:router," + KERNEL_IP]), workdir)


# --- the boards: each starts on the TAP, reports the address it got, and says whether it still runs ---

class VirtualBoard:
    """firmware/main.py on CPython in a thread, a chip emulator on the TAP."""
    slow = 1                       # timeouts of the checks are multiplied by this
    lease_timeout = 20

    def __init__(self, chip):
        self.chip = chip
        self.device = None
        self.runner = None
        self.stop = threading.Event()

    def describe(self, tap):
        return ["%s chip emulator on TAP %s" % (self.chip.upper(), tap.kernel_if)]

    def start(self, tap, workdir):
        import boards
        firmware = load_firmware()
        nic = boards.nic("virtual", chip=self.chip, tap=tap)
        cfg = firmware.load_config(os.path.join(workdir, "none.json"), {
            "board": "virtual", "hostname": HOSTNAME, "dhcp": True,
            "www": os.path.join(ROOT, "firmware", "www")})
        self.device = firmware.Device(cfg, nic=nic)
        self.runner = threading.Thread(target=self.device.run, args=(self.stop.is_set,), daemon=True)
        self.runner.start()

    def wait_address(self):
        deadline = time.monotonic() + self.lease_timeout
        while not self.device.stack.configured and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.device.stack.configured:
            say("FAILED: no DHCP lease within %d s" % self.lease_timeout)
            return None
        return self.device.address()

    def stats(self, ns, ip):
        return self.device.stack.stats

    def alive(self):
        return self.runner.is_alive()

    def close(self):
        self.stop.set()
        if self.runner is not None:
            self.runner.join(2)


class EmulatedRp2:
    """The MicroPython RPI_PICO firmware in rp2040js (tools/emu/rp2/rp2board.py)
    booting firmware/main.py from the deployed files; the board's chip model on
    its SPI bus, the TAP as the chip's wire."""
    slow = 4                       # the emulation may run at half real time or slower
    lease_timeout = 90             # boot, imports and DHCP: about 10 s of wall time

    def __init__(self, board):
        import rp2board
        self.board = board
        self.chip = rp2board.board_wiring(board)[0]
        self.firmware = rp2board.firmware_path()
        self.rp2 = None
        self.started = None
        self.printed = 0
        self.print_lock = threading.Lock()
        self.stop = threading.Event()
        self.printer = threading.Thread(target=self._print_console, daemon=True)

    def describe(self, tap):
        return ["%s chip model on the SPI bus of %s, an emulated RP2040 (rp2040js) running "
                "MicroPython %s" % (self.chip.upper(), self.board, os.path.basename(self.firmware)),
                "the chip's wire is TAP %s; the board boots firmware/main.py and config.json "
                "as make deploy would copy them" % tap.kernel_if]

    def start(self, tap, workdir):
        import fsimage
        from rp2board import Rp2Board
        files = fsimage.deploy_files(self.board, with_main=True, config={"hostname": HOSTNAME})
        say("booting %s (%d files, %d KB)" % (self.board, len(files), sum(map(len, files.values())) // 1024))
        self.started = time.monotonic()
        self.rp2 = Rp2Board(files=files, board=self.board, link=tap)
        self.printer.start()

    def _print_console(self):
        """The board's console, line by line, as it comes."""
        while not self.stop.wait(0.05):
            self._print_new()
        self._print_new(final=True)

    def _print_new(self, final=False):
        with self.print_lock:
            data = bytes(self.rp2.console[self.printed:])
            lines = data.split(b"\n")
            rest = b"" if final else lines.pop()
            for line in lines:
                text = line.decode("utf-8", "replace").rstrip("\r")
                if text.strip():
                    say(text, prefix="board: ")
            self.printed += len(data) - len(rest)

    def wait_address(self):
        from rp2board import Rp2Error
        try:
            end = self.rp2.wait_for("serving http://", self.lease_timeout)
            self.rp2.wait_for("\n", 5, end)
            self._print_new()                      # the console up to the URL line, then ours
        except Rp2Error as e:
            say("FAILED: the board did not serve within %d s" % self.lease_timeout)
            print(e, file=sys.stderr)
            return None
        ip = bytes(self.rp2.console[end:end + 40]).split(b"/")[0].split(b":")[0].decode()
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            say("FAILED: cannot read an address from the console line 'serving http://%s'" % ip)
            return None
        return ip

    def stats(self, ns, ip):
        """The stack's counters as /status.json reports them now."""
        return (get_status(ns, ip, self.slow) or {}).get("stats", {})

    def alive(self):
        return self.rp2.proc.poll() is None

    def close(self):
        if self.rp2 is None:
            return
        sim, wall = self.rp2.sim_seconds, time.monotonic() - self.started
        self.rp2.close()
        if self.printer.is_alive():
            self.stop.set()
            self.printer.join(2)
        if sim:
            say("the emulated RP2040 ran %.1f s of board time in %.1f s (%.0f%% of real time)"
                % (sim, wall, 100 * sim / wall))


def rp2_boards():
    """The device boards with an RP2040 (boards/__init__.py BOARDS, port rp2)."""
    import mpy_build
    return [b for b in mpy_build.board_names() if mpy_build.board_info(b)["port"] == "rp2"]


def choose_board(name, chip=None):
    """The board to run for BOARD=name (CHIP=chip, which only the virtual board
    can change); a one-line error (str) when there is none."""
    import mpy_build
    key = mpy_build.normalize(name or "virtual")
    if key == "virtual":
        return VirtualBoard(chip or "w5500")
    allowed = ["virtual"] + rp2_boards()
    if key not in allowed:
        kind = "not an RP2040 board" if key in mpy_build.board_names() else "not a board"
        return "demo: BOARD=%s is %s; BOARD must be one of: %s" % (name, kind, ", ".join(allowed))
    import rp2board
    why = rp2board.missing_files()
    if why:
        return "demo: BOARD=%s needs the MicroPython firmware for the emulated RP2040: %s" % (name, why)
    if not shutil.which("node"):
        return "demo: BOARD=%s needs node (Node.js runs the rp2040js emulator; make setup)" % name
    has = rp2board.board_wiring(key)[0]
    if chip and mpy_build.normalize(chip) != has:
        say("CHIP=%s ignored: %s has a %s" % (chip, key, has.upper()))
    return EmulatedRp2(key)


# --- what the demo does with the board, whichever it is ---

def get_status(ns, ip, slow):
    """The board's /status.json as a dict, or None."""
    text = ns.run(["curl", "-s", "-m", str(5 * slow), "http://%s/status.json" % ip], check=False).stdout
    try:
        info = json.loads(text)
    except ValueError:
        info = None
    return info if isinstance(info, dict) else None


def check_board(ns, ip, slow):
    """Page, status and ping from the kernel side; True if all were good."""
    page = ns.run(["curl", "-s", "-m", str(5 * slow), "-w", "\n%{http_code} %{time_starttransfer}",
                   "http://%s/" % ip], check=False).stdout
    body, _, tail = page.rpartition("\n")
    code, ttfb = (tail.split() + ["", ""])[:2]
    good = code == "200" and HOSTNAME in body or code == "200" and "<html" in body.lower()
    say("kernel: GET / -> %s, %d bytes, first byte after %.1f ms %s"
        % (code, len(body), float(ttfb or 0) * 1000, "ok" if good else "FAILED"))
    ok = good
    info = get_status(ns, ip, slow)
    if info is None:
        say("kernel: GET /status.json FAILED")
        ok = False
    else:
        heap = info.get("heap_free")
        say("kernel: GET /status.json -> name %s, uptime %s s, %s frames received%s"
            % (info.get("name"), info.get("uptime_s"), info.get("stats", {}).get("rx_frames"),
               "" if heap is None else ", %d bytes of heap free" % heap))
    ping = ns.run(["ping", "-c", "3", "-i", "0.2", "-W", str(slow), ip], check=False).stdout
    ok &= " 0% packet loss" in ping
    say("kernel: ping %s: %s" % (ip, [l for l in ping.splitlines() if "packet loss" in l][:1]))
    return ok


def open_forward(ns, ip, port):
    from forward import PortForward
    try:
        forward = PortForward(ns.name, ip, 80, listen_port=port)
    except OSError as e:
        say("could not listen on 127.0.0.1:%d (%s); set DEMO_PORT" % (port, e))
        return None
    say("open http://127.0.0.1:%d/ in a browser on this machine" % forward.port)
    return forward


def serve(board, seconds):
    """Until Ctrl-C or seconds have passed; False if the board stopped running."""
    if seconds:
        say("serving for %g s" % seconds)
    else:
        say("serving until Ctrl-C")
    deadline = time.monotonic() + seconds
    while not seconds or time.monotonic() < deadline:
        time.sleep(min(1, max(0.01, deadline - time.monotonic())) if seconds else 1)
        if not board.alive():
            say("FAILED: the board stopped running")
            return False
    return True


def die_with_parent():
    """SIGTERM to us when our parent goes.  `kill <pid of make>` ends make
    without passing the signal on: the demo would be orphaned, its namespace,
    TAP and dnsmasq running on.  (Linux: prctl PR_SET_PDEATHSIG.)"""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    parent = os.getppid()
    if ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
        return
    if os.getppid() != parent:     # it went before the call
        os.kill(os.getpid(), signal.SIGTERM)


def main():
    board = choose_board(os.environ.get("BOARD", ""), os.environ.get("CHIP"))
    if isinstance(board, str):
        print(board, file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("demo: needs root to create a network namespace and a TAP device.\n"
              "      run it as root: sudo make demo", file=sys.stderr)
        return 2
    seconds = float(os.environ.get("DEMO_SECONDS", "0") or 0)
    port = int(os.environ.get("DEMO_PORT", "8080"))
    stopping = []                  # the signal that stopped us; later ones are ignored

    def on_signal(signum, frame):
        if not stopping:
            stopping.append(signum)
            raise Stopped(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    die_with_parent()
    ns = forward = workdir = None
    ok = checked = False
    try:
        from netns import Namespace, clean_leftovers, create_tap_in_ns
        swept = clean_leftovers()
        if swept:
            say("removed leftovers of a killed run: %s" % ", ".join(swept))
        workdir = tempfile.mkdtemp(prefix="uipy-demo-")
        ns = Namespace()           # its name is known before it exists: delete() covers a half-made one
        ns.create()
        tap = create_tap_in_ns(ns, KERNEL_IP + "/24")
        start_dnsmasq(ns, tap, workdir)
        first, *more = board.describe(tap)
        say("namespace %s: kernel at %s with dnsmasq, %s" % (ns.name, KERNEL_IP, first))
        for line in more:
            say(line)
        board.start(tap, workdir)
        ip = board.wait_address()
        if ip is None:
            return 1
        say("board got %s by DHCP" % ip)
        ok = check_board(ns, ip, board.slow)
        forward = open_forward(ns, ip, port)
        say("%s (stats: %s)" % ("all checks passed" if ok else "SOME CHECKS FAILED",
                                ", ".join("%s=%d" % kv for kv in sorted(board.stats(ns, ip).items())
                                          if kv[1])[:300]))
        checked = True
        ok &= serve(board, seconds)
    except KeyboardInterrupt as e:
        name = signal.Signals(e.args[0]).name if isinstance(e, Stopped) else "SIGINT"
        say("%s: stopping%s" % (name, "" if checked else " before the checks finished"))
    finally:
        stopping.append(None)      # from here on a signal changes nothing
        board.close()
        if forward:
            forward.close()
        if ns is not None:
            ns.delete()            # dnsmasq and anything else in it, the TAP, the namespace
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if ok and checked else 1


if __name__ == "__main__":
    sys.exit(main())
