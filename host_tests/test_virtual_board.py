"""End to end through each emulated chip: the virtual board (boards/virtual.py)
puts the real W5500 or ENC28J60 driver, over a fake SPI bus, in front of the
chip emulator whose wire is a TAP; the kernel side of the TAP is 198.18.0.1
in a network namespace made here, the uipy Stack is 198.18.0.2 in a
StackThread. The kernel pings, exchanges UDP with an echo service, and curl
fetches a page and 1 MB over TCP. Needs root (skipped locally without it, a
failure under CI=true)."""
import hashlib
import json
import os
import re
import sys
import time

import pytest

from kernel_net import KERNEL_IP, STACK_IP, KernelNet
from levels import ROOT, need_root, tool

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)          # `import boards` (the package)

ECHO_PORT = 7
BIG_PORT = 8080
BIG = os.urandom(1 << 20)


class Board(KernelNet):
    """The kernel on a TAP, the virtual board with chip on it, a Stack in a thread."""

    def __init__(self, chip):
        self.chip = chip
        super().__init__(chip=chip)
        self.start(self._build)

    def _build(self, nic):
        from uipy.httpd_min import MinimalHttp
        from uipy.stack import Stack
        stack = Stack(nic, ip=STACK_IP, gateway=KERNEL_IP, tcp={"window": 8 * 1460})

        def echo(data, ip, port):
            stack.udp.send_payload(len(data), ip, port, ECHO_PORT)

        stack.udp_bind(ECHO_PORT, echo)
        self.http = MinimalHttp(stack, 80)
        self.big = MinimalHttp(stack, BIG_PORT, page=BIG)
        return stack


@pytest.fixture(scope="module", params=["w5500", "enc28j60"])
def board(request):
    need_root()
    tool("ip")
    tool("ping")
    tool("curl")
    b = Board(request.param)
    yield b
    b.close()


def test_kernel_pings_stack_through_chip(board):
    r = board.ns.run(["ping", "-n", "-q", "-c", "50", "-i", "0.01", "-W", "1", STACK_IP],
                     check=False, timeout=30)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    assert m and (int(m.group(1)), int(m.group(2))) == (50, 50), r.stdout + r.stderr
    st = board.call(lambda s: dict(s.stats))
    assert st["icmp_echo_rx"] >= 50 and st["handler_errors"] == 0
    assert board.ns.neigh_mac(STACK_IP) == board.nic.mac


UDP_SCRIPT = r"""
import json, socket, sys
ip, port, sizes = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((ip, port))
s.settimeout(0.5)
bad, retries = [], 0
for n in sizes:
    data = bytes((n * 7 + i * 13) & 0xFF for i in range(n))
    got = None
    for attempt in range(4):
        s.send(data)
        try:
            got = s.recv(4096)
            break
        except socket.timeout:
            retries += 1
    if got != data:
        bad.append(n)
print(json.dumps({"bad": bad, "retries": retries, "count": len(sizes)}))
"""


def test_udp_echo_sizes_through_chip(board):
    # every size up to past the 60-byte padding boundary, then sampled, and the largest
    sizes = list(range(1, 48)) + list(range(48, 1472, 29)) + [1471, 1472]
    r = board.ns.run([sys.executable, "-c", UDP_SCRIPT, STACK_IP, str(ECHO_PORT), json.dumps(sizes)],
                     timeout=30)
    res = json.loads(r.stdout)
    assert res["bad"] == [] and res["count"] == len(sizes), res
    assert res["retries"] <= 1, res
    assert board.call(lambda s: s.stats["udp_drop_checksum"]) == 0


def curl(board, url, out_path, timeout=20):
    r = board.ns.run(["curl", "-sS", "--noproxy", "*", "--max-time", str(timeout),
                      "-o", out_path, "-w", "%{http_code} %{size_download}", url],
                     check=False, timeout=timeout + 5)
    assert r.returncode == 0, r.stderr
    code, size = r.stdout.split()
    with open(out_path, "rb") as f:
        return int(code), int(size), f.read()


def test_curl_fetches_page_through_chip(board, tmp_path):
    from uipy.httpd_min import DEFAULT_PAGE
    code, size, body = curl(board, "http://%s/" % STACK_IP, str(tmp_path / "page"))
    assert code == 200 and body == DEFAULT_PAGE and size == len(DEFAULT_PAGE)
    code, _, body = curl(board, "http://%s/missing" % STACK_IP, str(tmp_path / "404"))
    assert code == 404
    assert board.http.requests == 2


def test_one_megabyte_download_through_chip(board, tmp_path):
    t0 = time.monotonic()
    code, size, body = curl(board, "http://%s:%d/" % (STACK_IP, BIG_PORT), str(tmp_path / "big"), 40)
    seconds = time.monotonic() - t0
    assert code == 200 and size == len(BIG)
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(BIG).hexdigest()
    print("%s: 1 MB in %.2f s (%.2f MB/s)" % (board.chip, seconds, 1 / seconds))
    st = board.call(lambda s: dict(s.stats))
    assert st["handler_errors"] == 0, board.stack.last_error
    assert st["tcp_retransmits"] <= 20, st


def test_chip_and_driver_counters_clean(board):
    """Run last for each chip: no overflow in the emulated chip (the pump
    refills only an empty chip), no driver errors, no register misuse."""
    def counters(s):
        nic = s.nic
        if nic.chip == "w5500":
            return dict(nic.driver.stats), dict(nic.emu.counters)
        d = nic.driver
        return ({"tx_errors": d.tx_errors, "rx_resets": d.rx_resets, "overflows": d.overflows,
                 "rx_dropped_crc": d.rx_dropped_crc, "rx_dropped_len": d.rx_dropped_len},
                {"rx_overflow_drops": nic.emu.rx_overflow_drops, "violations": list(nic.emu.violations),
                 "tx_sent": nic.emu.tx_sent, "rx_stored": nic.emu.rx_stored})

    drv, emu = board.call(counters)
    if board.chip == "w5500":
        assert drv["rx_errors"] == drv["tx_errors"] == drv["recoveries"] == 0, drv
        assert emu["rx_dropped_full"] == 0 and emu["tx_sent"] > 700, emu
        assert drv["rx_frames"] > 100
    else:
        assert drv == {"tx_errors": 0, "rx_resets": 0, "overflows": 0, "rx_dropped_crc": 0,
                       "rx_dropped_len": 0}, drv
        assert emu["rx_overflow_drops"] == 0 and emu["violations"] == [], emu
        assert emu["tx_sent"] > 700 and emu["rx_stored"] > 100
    assert board.nic.spi_transactions > 1000
