"""Device figures on the stock RP2040 firmware (rp2040js, tools/emu/rp2): heap
held per configuration, CPU per packet in the board's own clock (ticks_us at
125 MHz), allocation per SYN, SPI time per received frame, and, with root, the
emulated W5500-EVB-Pico / Pico+ENC28J60 serving curl over a TAP.

    python tools/bench/bench_rp2.py [--no-network]     # prints the rp2_ figures as JSON

Network figures are timed in simulated time at the chip's pins: the chip model
stamps the frames it takes from and puts on the wire (TimedLink), so the kernel
peer's wall clock (the emulation runs at about half real time) does not enter.
"""
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.join(ROOT, "tools"), os.path.join(ROOT, "host_tests")]
import paths  # noqa: E402,F401

import rp2_files  # noqa: E402
from rp2board import SHARED_RP2, Rp2Board, missing_files  # noqa: E402

BOARD = "w5500_evb_pico"
MAC = "b'\\x02\\x00\\x00\\x00\\x00\\x55'"

NULL_NIC = """
class NullNic:
    mac = b'\\x02\\x00\\x00\\x00\\x00\\x01'
    def recv_into(self, mv):
        return 0
    def send(self, mv, n):
        return True
    def link_up(self):
        return True
"""

# heap held: a fresh heap, gc, what is allocated after building the thing, gc
HEAP = {
    "rp2_heap_bytes_stack_udp": NULL_NIC + "from uipy.stack import Stack\nx = Stack(NullNic(), ip='198.18.0.2', tcp=False)\n",
    "rp2_heap_bytes_stack_tcp": NULL_NIC + "from uipy.stack import Stack\nx = Stack(NullNic(), ip='198.18.0.2')\n",
    "rp2_heap_bytes_device": ("import uipy_main\ncfg = uipy_main.load_config()\ncfg['board_options'] = {'mac': %s}\n"
                              "x = uipy_main.Device(cfg)\n" % MAC),
}
HEAP_FRAME = """
import gc, micropython
gc.collect()
micropython.qstr_info()
_before = gc.mem_alloc()
%s
gc.collect()
print('held', gc.mem_alloc() - _before)
micropython.qstr_info()
"""

# garbage an import leaves behind (the compiler's and loader's temporary blocks)
IMPORT_GARBAGE = """
import gc
worst = (0, '')
for name in %r:
    gc.collect()
    a = gc.mem_alloc()
    __import__(name)
    b = gc.mem_alloc()
    gc.collect()
    g = b - gc.mem_alloc()
    if g > worst[0]:
        worst = (g, name)
print('rp2_import_garbage_bytes_max', worst[0])
print('worst_import', worst[1])
"""
IMPORT_ORDER = ["uipy.compat", "uipy.frame", "uipy.arp", "uipy.ipv4", "uipy.icmp", "uipy.udp",
                "uipy.stack", "uipy.tcp", "uipy.dhcp", "uipy.dhcp_msg", "uipy.dns", "uipy.mdns", "uipy.httpd",
                "w5500", "boards", "uipy_main"]

IDLE_POLL = """
import boards, time
from uipy.stack import Stack
stack = Stack(boards.nic(%r, mac=%s), ip='198.18.0.2')
import gc
for _ in range(50):
    stack.poll()
gc.collect()
t0 = time.ticks_us()
for _ in range(500):
    stack.poll()
print('rp2_us_per_idle_poll', time.ticks_diff(time.ticks_us(), t0) / 500)
""" % (BOARD, MAC)

# buf is a memoryview, as the stack passes it: a bytearray would be sliced by
# copy, and the figure would time a 1.5 KB allocation per frame, whose search
# for a free run depends on the holes in the heap (1981 or 2593 us for the same
# driver code, after a change elsewhere left a hole)
SPI_RX = """
import boards, time, gc
nic = boards.nic(%r, mac=%s)
buf = memoryview(bytearray(1536))
gc.collect()
print('ready')
times = []
t_end = time.ticks_add(time.ticks_ms(), 20000)
while len(times) < %d and time.ticks_diff(t_end, time.ticks_ms()) > 0:
    t0 = time.ticks_us()
    n = nic.recv_into(buf)
    dt = time.ticks_diff(time.ticks_us(), t0)
    if n == 1514:
        times.append(dt)
times.sort()
print('rp2_spi_us_per_rx_frame_w5500', times[len(times) // 2] if times else -1)
"""


class QueueLink:
    """A frame link the host fills: the chip model takes frames from it."""

    def __init__(self):
        self.frames = []
        self.sent = 0

    def recv_into(self, mv):
        if not self.frames:
            return 0
        f = self.frames.pop(0)
        mv[:len(f)] = f
        return len(f)

    def send(self, mv, n):
        self.sent += 1
        return True


def pool_own(out, held):
    """held without the qstr pool's own growth, plus the strings interned
    meanwhile and 8 bytes of pool entry for each. The pool grows by doubling:
    one name more can add a mostly empty chunk of several KB (the stack with
    TCP: 620 names fit in 5 chunks, the 621st took a 6th of 3.9 KB), so the
    held figure jumps by that much with code that did not change; this one
    does not move with the chunk boundaries."""
    import re
    pools = [dict((k, int(v)) for k, v in re.findall(r"(n_\w+)=(\d+)", line))
             for line in out.splitlines() if line.startswith("qstr pool:")]
    a, b = pools[0], pools[-1]
    return held - (b["n_total_bytes"] - a["n_total_bytes"]) + (b["n_str_data_bytes"] - a["n_str_data_bytes"]) \
        + 8 * (b["n_qstr"] - a["n_qstr"])


def socket_own(out):
    """socket_heap_bytes net of the qstr pool's chunks (pool_own)."""
    return pool_own(out, rp2_files.figures(out)["socket_heap_bytes"])


def fresh(board, code, timeout=600):
    board.soft_reset()
    return board.exec(code, timeout)


def device_figures():
    """Figures that need only the firmware (no root, no network)."""
    figures = {}
    link = QueueLink()
    with open(os.path.join(ROOT, "firmware", "main.py"), "rb") as f:
        main_py = f.read()
    files = rp2_files.board_files(BOARD, extra={"/uipy_main.py": main_py})
    with Rp2Board(files=files, board=BOARD, link=link) as b:
        b.boot(60)
        for name, code in HEAP.items():
            out = fresh(b, HEAP_FRAME % code)
            figures[name] = int(out.split("held")[1].split()[0])
            figures[name + "_own"] = pool_own(out, figures[name])
        out = fresh(b, IMPORT_GARBAGE % (IMPORT_ORDER,))
        figures.update(rp2_files.figures(out))
        print("largest import garbage from", out.split("worst_import")[1].split()[0], file=sys.stderr)
        out = fresh(b, "import rp2_probe\nrp2_probe.socket_heap()\n")
        figures["rp2_heap_bytes_socket"] = rp2_files.figures(out)["socket_heap_bytes"]
        figures["rp2_heap_bytes_socket_own"] = socket_own(out)
        # the stack's first active open (uipy.tcp_more), made before the socket's
        figures["rp2_heap_bytes_tcp_connect"] = rp2_files.figures(out)["stack_connect_bytes"]
        probes = ("packets(%r)" % rp2_files.GOLDEN, "tcp_rx()", "tcp_tx()", "tcp_syn()")
        for probe in probes:
            out = fresh(b, "import rp2_probe\nrp2_probe.%s\n" % probe)
            for k, v in rp2_files.figures(out).items():
                figures["rp2_" + k if k.startswith("alloc") else "rp2_us_per_" + k[:-3]] = v
        figures.update(rp2_files.figures(fresh(b, IDLE_POLL)))
        rounds = 20
        frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x99" + b"\x88\xb5" + bytes(1500)
        b.soft_reset()
        mark = b.start(SPI_RX % (BOARD, MAC, rounds))
        b.wait_for("ready", 60, mark)
        for _ in range(rounds + 5):
            link.frames.append(frame)
            time.sleep(0.05)
        figures.update(rp2_files.figures(b.finish(mark, 120)))
    return figures


def romfs_figures():
    """The device's heap when the modules run in place from a ROMFS partition
    (the custom RPI_PICO_ROMFS build in ../shared/rp2; a frozen build keeps
    code in flash the same way): what code costs on a stock board, by contrast."""
    import subprocess
    fw = os.environ.get("UIPY_RP2_ROMFS_FIRMWARE") or os.path.join(SHARED_RP2, "RPI_PICO_ROMFS-v1.28.0.uf2")
    if not os.path.exists(fw):
        return {}
    files = rp2_files.board_files(BOARD)
    with open(os.path.join(ROOT, "firmware", "main.py"), "rb") as f:
        files["/uipy_main.py"] = f.read()
    with tempfile.TemporaryDirectory() as tmp:
        for path in [p for p in files if p.startswith("/lib/")]:
            dest = os.path.join(tmp, "rom", path[1:])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(files.pop(path))      # the modules live in ROMFS only
        image = os.path.join(tmp, "romfs.img")
        subprocess.run([os.path.join(ROOT, ".venv", "bin", "mpremote"), "romfs", "--no-mpy", "-o", image,
                        "build", os.path.join(tmp, "rom")], check=True, capture_output=True)
        with open(image, "rb") as f:
            romfs = f.read()
    with Rp2Board(files=files, board=BOARD, firmware=fw, romfs=romfs) as b:
        b.boot(60)
        out = fresh(b, HEAP_FRAME % HEAP["rp2_heap_bytes_device"])
        sock = fresh(b, "import rp2_probe\nrp2_probe.socket_heap()\n")
    return {"rp2_romfs_heap_bytes_device": int(out.split("held")[1].split()[0]),
            "rp2_romfs_heap_bytes_socket": rp2_files.figures(sock)["socket_heap_bytes"]}


class TimedLink:
    """A TAP as the chip's wire, stamping frames in the board's simulated time
    (ChipBus.sim_ns): ICMP echo request in / reply out, a SYN to port 80 in,
    the first and the last data segment out of port 80."""

    def __init__(self, link):
        self.link = link
        self.mac = getattr(link, "mac", None)
        self.bus = None
        self.echo_in = {}
        self.rtts = []
        self.syn_at = None
        self.first_data_at = None
        self.last_data_at = None
        self.bytes_out = 0

    def now(self):
        return self.bus.sim_ns / 1e6 if self.bus else 0.0

    def recv_into(self, mv):
        n = self.link.recv_into(mv)
        if n >= 42 and mv[12] == 8 and mv[13] == 0:
            ihl = (mv[14] & 15) * 4
            t = 14 + ihl
            if mv[23] == 1 and mv[t] == 8:
                self.echo_in[bytes(mv[t + 4:t + 8])] = self.now()
            elif mv[23] == 6 and mv[t + 2] == 0 and mv[t + 3] == 80 and mv[t + 13] & 0x3F == 0x02:
                self.syn_at = self.now()
                self.first_data_at = self.last_data_at = None
                self.bytes_out = 0
        return n

    def send(self, mv, n):
        mv = memoryview(mv)
        if n >= 42 and mv[12] == 8 and mv[13] == 0:
            ihl = (mv[14] & 15) * 4
            t = 14 + ihl
            if mv[23] == 1 and mv[t] == 0:
                start = self.echo_in.pop(bytes(mv[t + 4:t + 8]), None)
                if start is not None:
                    self.rtts.append(self.now() - start)
            elif mv[23] == 6 and mv[t] == 0 and mv[t + 1] == 80:
                total = (mv[16] << 8) | mv[17]
                payload = total - ihl - (mv[t + 12] >> 4) * 4
                if payload > 0:
                    self.bytes_out += payload
                    self.last_data_at = self.now()
                    if self.first_data_at is None:
                        self.first_data_at = self.last_data_at
        return self.link.send(mv, n)

    def link_up(self):
        return True


def network_figures(board, big=1 << 20):
    """The emulated board runs firmware/main.py with dnsmasq on a TAP; curl
    fetches a 1 MB file and the page, ping measures the round trip."""
    import dnsmasq
    from netns import Namespace, create_tap_in_ns
    chip = "w5500" if "w5500" in board else "enc28j60"
    figures = {}
    extra = {"/www/big.bin": bytes(range(256)) * (big // 256)}
    files = rp2_files.board_files(board, with_main=True, config={"hostname": "bench"}, extra=extra)
    with Namespace() as ns, tempfile.TemporaryDirectory() as wd:
        tap = create_tap_in_ns(ns, "198.18.0.1/24")
        ns.own(tap)
        dnsmasq.start(ns, dnsmasq.command(shutil.which("dnsmasq"), tap.kernel_if, wd,
                                          ("198.18.0.100", "198.18.0.150")), wd)
        link = TimedLink(tap)
        with Rp2Board(files=files, board=board, link=link) as b:
            link.bus = b.bus
            end = b.wait_for("serving http://", 120)
            ip = bytes(b.console[end:end + 40]).split(b"/")[0].decode()
            r = ns.run(["curl", "-s", "-m", "300", "-o", "/dev/null", "-w", "%{size_download}",
                        "http://%s/big.bin" % ip], check=False, timeout=320)
            if r.stdout.strip() == str(big) and link.last_data_at and link.syn_at:
                seconds = (link.last_data_at - link.syn_at) / 1000
                figures["rp2_http_download_kBps_" + chip] = round(big / 1000 / seconds, 1)
            if chip == "w5500":
                ttfb = []
                for _ in range(5):
                    ns.run(["curl", "-s", "-m", "30", "-o", "/dev/null", "http://%s/" % ip], check=False, timeout=40)
                    if link.first_data_at and link.syn_at:
                        ttfb.append(link.first_data_at - link.syn_at)
                ns.run(["ping", "-c", "10", "-i", "0.2", "-W", "2", ip], check=False, timeout=60)
                if ttfb:
                    figures["rp2_page_ttfb_ms_w5500"] = round(sorted(ttfb)[len(ttfb) // 2], 2)
                if link.rtts:
                    figures["rp2_ping_rtt_ms_w5500"] = round(sorted(link.rtts)[len(link.rtts) // 2], 3)
    return figures


def rp2_figures(network=True):
    why = missing_files()
    if why:
        print("bench_rp2: skipped: " + why, file=sys.stderr)
        return {}
    figures = device_figures()
    figures.update(romfs_figures())
    if network and os.geteuid() == 0:
        for board in ("w5500_evb_pico", "pico_enc28j60"):
            figures.update(network_figures(board))
    return figures


if __name__ == "__main__":
    print(json.dumps(rp2_figures("--no-network" not in sys.argv), indent=1, sort_keys=True))
