"""Level 6, the real firmware: stock MicroPython RPI_PICO (v1.28.0 from
../shared/rp2, or $UIPY_RP2_FIRMWARE) in the rp2040js emulator, with the files
`make deploy` copies in its littlefs, and the W5500 or ENC28J60 chip model on its
SPI bus (tools/emu/rp2). Here heap, allocation and behaviour are what a board has.
"""
import os
import sys
import tempfile

import pytest

from levels import ROOT, need_root, need_rp2_firmware, tool

import rp2_files

RP2_BOARDS = ("w5500_evb_pico", "pico_enc28j60")
KERNEL_IP = "198.18.0.1"
BOARD_IP = "198.18.0.2"


@pytest.fixture(scope="module", autouse=True)
def firmware_present():
    need_rp2_firmware()


def booted(board="w5500_evb_pico", **kw):
    from rp2board import Rp2Board
    b = Rp2Board(files=kw.pop("files", None) or rp2_files.board_files(board), board=board, **kw)
    try:
        b.boot(60)
    except BaseException:
        b.close()
        raise
    return b


def test_golden_frames_replay_on_the_rp2040():
    with booted() as b:
        out = b.exec("import golden_replay\n"
                     "count, failures = golden_replay.replay(%r)\n"
                     "for f in failures[:5]: print('FAIL', f)\n"
                     "print('cases', count, 'failures', len(failures))\n" % rp2_files.GOLDEN, 600)
    assert "failures 0" in out, out
    assert int(out.split("cases ")[1].split()[0]) >= 40, out


def test_packet_paths_allocate_nothing_under_heap_lock():
    """ARP, ICMP echo, SYN, pure ACK, in-order data and conn.send, each under
    micropython.heap_lock() on the real firmware."""
    with booted() as b:
        out = b.exec(rp2_files.script("host_tests/mpy/alloc_check.py", GOLDEN=rp2_files.GOLDEN), 600)
        assert "maxsize: 2147483647" in out and out.strip().endswith("OK"), out
        for case in ("arp_request", "icmp_echo_56", "icmp_echo_1472"):
            assert "%s heap_locked=ok bytes_per_packet=0" % case in out, out
        b.soft_reset()
        out = b.exec(rp2_files.script("host_tests/mpy/tcp_alloc_check.py"), 600)
        assert "pure_ack heap_locked=ok" in out and "data_segment heap_locked=ok" in out, out
        b.soft_reset()
        out = b.exec("import rp2_probe\nrp2_probe.alloc_syn_and_send()\n", 600)
        assert "syn heap_locked=ok" in out, out
        assert "send heap_locked=ok" in out, out


@pytest.mark.parametrize("board", RP2_BOARDS)
def test_nic_with_nothing_on_the_bus_says_so(board):
    with booted(board, bus=False) as b:
        out = b.exec("import boards\n"
                     "try:\n"
                     "    boards.nic(%r)\n"
                     "except OSError as e:\n"
                     "    print('ERROR', e)\n" % board, 120)
    chip = "W5500" if "w5500" in board else "ENC28J60"
    assert "ERROR %s not answering" % chip in out, out
    assert "0xFF" in out, out


def test_spi_traffic_with_cs_high_does_not_reach_the_chip():
    """Bytes clocked while the chip is not selected are answered 0xFF and the
    chip still comes up after them (the bus stays in step with the runner)."""
    with booted() as b:
        out = b.exec("import machine, boards\n"
                     "spi = machine.SPI(0, baudrate=20000000, sck=machine.Pin(18), mosi=machine.Pin(19),"
                     " miso=machine.Pin(16))\n"
                     "machine.Pin(17, machine.Pin.OUT, value=1)\n"
                     "got = bytearray(300)\n"
                     "spi.write_readinto(bytes(range(256)) + bytes(44), got)\n"
                     "print('idle bus', set(got))\n"
                     "nic = boards.nic('w5500_evb_pico', mac=b'\\x02\\x00\\x00\\x00\\x00\\x67', spi=spi)\n"
                     "print('link', nic.link_up())\n", 120)
    assert "idle bus {255}" in out and "link True" in out, out


def test_bad_firmware_file_is_a_clear_error(tmp_path):
    from rp2board import Rp2Board, Rp2Error
    bad = tmp_path / "not-a-firmware.uf2"
    bad.write_bytes(b"hello" * 100)
    with pytest.raises(Rp2Error) as e:
        with Rp2Board(firmware=str(bad)) as b:
            b.boot(10)
    assert "is not a UF2 file" in str(e.value)


def test_a_chip_model_that_dies_ends_the_run_with_its_traceback():
    with booted() as b:
        def broken(out):
            raise RuntimeError("model exploded")
        b.emu.spi._transfer = broken
        with pytest.raises(Exception) as e:
            b.exec("import boards\nboards.nic('w5500_evb_pico')\n", 60)
    assert "model exploded" in str(e.value)
    assert "the chip model" in str(e.value)


@pytest.fixture
def lan():
    """A namespace whose kernel is on a TAP at 198.18.0.1, with dnsmasq."""
    need_root()
    import dnsmasq
    from netns import Namespace, create_tap_in_ns
    exe = tool("dnsmasq")
    with Namespace() as ns, tempfile.TemporaryDirectory() as wd:
        tap = create_tap_in_ns(ns, KERNEL_IP + "/24")
        ns.own(tap)
        dnsmasq.start(ns, dnsmasq.command(exe, tap.kernel_if, wd, ("198.18.0.100", "198.18.0.150")), wd)
        yield ns, tap


@pytest.mark.parametrize("board", RP2_BOARDS)
def test_firmware_main_leases_and_serves_the_page(lan, board):
    ns, tap = lan
    from rp2board import Rp2Board
    files = rp2_files.board_files(board, with_main=True, config={"hostname": "pico6"})
    with Rp2Board(files=files, board=board, link=tap) as b:
        end = b.wait_for("serving http://", 120)
        ip = bytes(b.console[end:end + 40]).split(b"/")[0].decode()
        assert ip.startswith("198.18.0.1"), b.console
        page = ns.run(["curl", "-s", "-m", "30", "http://%s/" % ip], check=False, timeout=40).stdout
        status = ns.run(["curl", "-s", "-m", "30", "http://%s/status.json" % ip], check=False, timeout=40).stdout
    with open(os.path.join(ROOT, "firmware", "www", "index.html")) as f:
        assert page == f.read()
    assert '"board": "%s"' % board in status and '"dhcp": "BOUND"' in status, status
    assert b"lease bound: " + ip.encode() in b.console


BOARD_SERVER = """
import hashlib, time, boards
from uipy.stack import Stack
from uipy.tcp_conn import CONNECTED, NEWDATA, ACKED, CLOSED, ABORTED, TIMEDOUT
nic = boards.nic(%(board)r, mac=b'\\x02\\x00\\x00\\x00\\x00\\x66')
stack = Stack(nic, ip=%(ip)r, gateway=%(gw)r)
TOTAL = %(total)d
block = bytes(range(256)) * 16
state = {'sink': 0, 'sent': 0, 'done': 0, 'err': None}
h = hashlib.sha256()
def sink(conn, ev):
    if ev & NEWDATA:
        h.update(conn.data)
        state['sink'] += len(conn.data)
    if ev & CLOSED:
        conn.send(('%%d %%s\\n' %% (state['sink'], ''.join('%%02x' %% x for x in h.digest()))).encode())
        conn.close()
        state['done'] += 1
    if ev & (ABORTED | TIMEDOUT):
        state['err'] = ev
def source(conn, ev):
    if ev & (CONNECTED | ACKED):
        while state['sent'] < TOTAL and conn.send_queue_free():
            n = min(len(block), TOTAL - state['sent'])
            conn.send(block if n == len(block) else block[:n])
            state['sent'] += n
        if state['sent'] >= TOTAL and conn.unacked() == 0:
            conn.close()
            state['done'] += 1
    if ev & (ABORTED | TIMEDOUT):
        state['err'] = ev
stack.listen(9000, sink)
stack.listen(9001, source)
print('listening')
t0 = time.ticks_ms()
while state['done'] < 2 and state['err'] is None and time.ticks_diff(time.ticks_ms(), t0) < 120000:
    stack.poll()
for _ in range(2000):
    stack.poll()
print('board: sink', state['sink'], 'sent', state['sent'], 'err', state['err'], 'ms', time.ticks_diff(time.ticks_ms(), t0))
"""

KERNEL_CLIENT = """
import hashlib, os, socket, sys
ip, total = sys.argv[1], int(sys.argv[2])
data = os.urandom(total)
s = socket.create_connection((ip, 9000), timeout=60)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
reply = b''
while not reply.endswith(b'\\n'):
    chunk = s.recv(100)
    if not chunk:
        break
    reply += chunk
s.close()
n, digest = reply.split()
print('upload', n.decode(), digest.decode() == hashlib.sha256(data).hexdigest())
s = socket.create_connection((ip, 9001), timeout=60)
got = bytearray()
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
block = bytes(range(256)) * 16
want = (block * (total // len(block) + 1))[:total]
print('download', len(got), bytes(got) == want)
"""


@pytest.mark.parametrize("board", RP2_BOARDS)
def test_tcp_256k_each_way_against_the_kernel(lan, board):
    ns, tap = lan
    from rp2board import Rp2Board
    total = 256 * 1024
    with Rp2Board(files=rp2_files.board_files(board), board=board, link=tap) as b:
        b.boot(60)
        code = BOARD_SERVER % {"board": board, "ip": BOARD_IP, "gw": KERNEL_IP, "total": total}
        mark = b.start(code)
        b.wait_for("listening", 60, mark)
        r = ns.run([sys.executable, "-c", KERNEL_CLIENT, BOARD_IP, str(total)], check=False, timeout=240)
        board_line = b.finish(mark, 150)
    assert "upload %d True" % total in r.stdout, r.stdout + r.stderr + board_line
    assert "download %d True" % total in r.stdout, r.stdout + r.stderr + board_line
    assert "err None" in board_line, board_line


BOARD_ASYNCIO = """
import asyncio, boards, gc
from uipy.stack import Stack
import uipy.socket
nic = boards.nic('w5500_evb_pico', mac=b'\\x02\\x00\\x00\\x00\\x00\\x67')
uipy.socket.use(Stack(nic, ip=%(ip)r, gateway=%(gw)r))
uipy.socket.install()              # asyncio's start_server does `import socket`
done = asyncio.Event()
async def echo(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line)
        await writer.drain()
        if line == b'quit\\n':
            done.set()
    writer.close()
async def main():
    server = await asyncio.start_server(echo, '0.0.0.0', 7)
    gc.collect()
    print('listening', gc.mem_free())
    try:
        await asyncio.wait_for(done.wait(), 90)
    except asyncio.TimeoutError:
        print('board: timed out')
    server.close()
asyncio.run(main())
print('board: done')
"""

KERNEL_ECHO_CLIENT = r"""
import json, socket, sys, time
s = socket.create_connection((sys.argv[1], 7), timeout=30)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb")
rtts = []
for i in range(20):
    t0 = time.perf_counter()
    s.sendall(b"ping %d\n" % i)
    assert f.readline() == b"ping %d\n" % i
    rtts.append((time.perf_counter() - t0) * 1000)
lines = [b"%05d " % i + b"x" * 58 + b"\n" for i in range(256)]   # 16 KB
s.sendall(b"".join(lines))
echoed = [f.readline() for _ in lines]
s.sendall(b"quit\n")
assert f.readline() == b"quit\n"
rtts.sort()
print(json.dumps({"median_ms": rtts[10], "bulk_ok": echoed == lines}))
"""


def test_asyncio_server_over_uipy_socket_on_the_rp2040(lan):
    """MicroPython's asyncio on the real firmware (no threads, poll sleeping in
    WFE between interrupts): asyncio.start_server over uipy.socket and the W5500
    model, the pump keeping frames moving; line echo round trips and 16 KB."""
    ns, tap = lan
    import json
    from rp2board import Rp2Board
    with Rp2Board(files=rp2_files.board_files("w5500_evb_pico"), board="w5500_evb_pico", link=tap) as b:
        b.boot(60)
        mark = b.start(BOARD_ASYNCIO % {"ip": BOARD_IP, "gw": KERNEL_IP})
        b.wait_for("listening", 60, mark)
        r = ns.run([sys.executable, "-c", KERNEL_ECHO_CLIENT, BOARD_IP], check=False, timeout=120)
        board_out = b.finish(mark, 60)
    assert r.returncode == 0, r.stdout + r.stderr + board_out
    result = json.loads(r.stdout)
    assert result["bulk_ok"], board_out
    assert result["median_ms"] < 60, result          # wall clock; the emulator runs about 1x to 4x slower
    assert "board: done" in board_out and "timed out" not in board_out, board_out
