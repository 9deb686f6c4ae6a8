"""W5500 MACRAW driver (drivers/w5500.py) against the register-level emulator
(tools/emu/w5500_emu.py): bring-up, frames of every size, pointer wrap, faults."""
import os
import random
import shutil
import subprocess
import time

import pytest

from w5500 import W5500, W5500Error
from w5500_emu import W5500Emulator, SN_RX_WR, SN_TX_WR

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".venv", "bin")
MAC = b"\x02\x00\x00\x12\x34\x56"
OTHER = b"\x02\x00\x00\x99\x99\x99"
BCAST = b"\xff" * 6
MCAST = b"\x01\x00\x5e\x00\x00\xfb"  # mDNS group


def frame(n, dst=MAC, seed=0, ethertype=b"\x08\x00"):
    rng = random.Random(n * 7919 + seed)
    body = bytes(rng.getrandbits(8) for _ in range(n - 14))
    return dst + OTHER + ethertype + body


def make(int_pin=True, rst=True, **kw):
    emu = W5500Emulator()
    for k, v in kw.pop("emu", {}).items():
        setattr(emu, k, v)
    nic = W5500(emu.spi, emu.cs, rst=emu.rst if rst else None,
                int_pin=emu.int_pin if int_pin else None, mac=MAC, **kw)
    return emu, nic


@pytest.fixture
def buf():
    return memoryview(bytearray(1600))


def receive(nic, buf):
    n = nic.recv_into(buf)
    return bytes(buf[:n])


# ---------------------------------------------------------------- bring-up

def test_init_configures_macraw_socket0_with_all_buffer_memory():
    emu, nic = make()
    assert nic.mac == MAC and emu.mac == MAC
    assert emu.socket_status(0) == 0x42
    assert emu.sock[0][0x1E] == 16 and emu.sock[0][0x1F] == 16
    for s in range(1, 8):
        assert emu.sock[s][0x1E] == 0 and emu.sock[s][0x1F] == 0
    # MACRAW + MFEN + MMB + MIP6B by default, latched by OPEN
    assert emu.sock[0][0] == 0xB4 and emu._filter_mr == 0xB4
    assert emu.common[0x18] == 0x01  # SIMR: socket 0 on INTn
    assert emu.sock[0][0x2C] == 0x04  # S0_IMR: RECV only
    assert nic.link_up()


def test_software_reset_when_no_rst_pin_and_version_reads_zero_at_first():
    emu = W5500Emulator()
    emu.common[0x01] = 0xAA  # GAR byte: must be wiped by MR.RST
    emu.version_zero_reads = 3
    emu.reset_busy_reads = 2
    resets = emu.counters["resets"]
    nic = W5500(emu.spi, emu.cs, mac=MAC)
    assert emu.counters["resets"] == resets + 1
    assert emu.common[0x01] == 0
    assert emu.version_zero_reads == 0 and emu.reset_busy_reads == 0
    assert emu.socket_status(0) == 0x42 and nic.link_up()


def test_hardware_reset_through_rst_pin():
    emu = W5500Emulator()
    emu.common[0x01] = 0xAA
    resets = emu.counters["resets"]
    W5500(emu.spi, emu.cs, rst=emu.rst, mac=MAC)
    assert emu.counters["resets"] == resets + 1
    assert emu.common[0x01] == 0 and emu.rst.value() == 1


@pytest.mark.parametrize("level, words", [
    (0x00, ["VERSIONR read 0x00", "expected 0x04", "MISO/MOSI/SCK/CS", "power", "reset"]),
    (0xFF, ["VERSIONR read 0xFF", "expected 0x04", "MISO floating", "CS pin"]),
])
def test_chip_not_answering_gives_wiring_hint(level, words):
    emu = W5500Emulator()
    emu.miso_stuck = level
    t0 = time.monotonic()
    with pytest.raises(W5500Error) as err:
        W5500(emu.spi, emu.cs, mac=MAC)
    assert time.monotonic() - t0 < 1.0
    assert isinstance(err.value, OSError)
    for w in words:
        assert w in str(err.value)


def test_wrong_version_is_reported():
    emu = W5500Emulator()
    real = emu._common_read
    emu._common_read = lambda a: 0x51 if a == 0x39 else real(a)  # survives MR.RST
    with pytest.raises(W5500Error, match="0x51"):
        W5500(emu.spi, emu.cs, mac=MAC)


# ---------------------------------------------------------------- link

def test_link_up_down_flap(buf):
    emu, nic = make(tx_timeout_ms=20)
    assert nic.link_up()
    emu.set_link(False)
    assert not nic.link_up()
    assert not emu.inject(frame(100))  # nothing arrives without a link
    assert nic.recv_into(buf) == 0
    # a send while the link is down times out, is counted and leaves nothing behind
    f = frame(200, dst=OTHER)
    assert nic.send(memoryview(f), len(f)) is False
    assert nic.stats["tx_timeouts"] == 1
    t0 = time.monotonic()  # the next send checks the link instead of waiting again
    assert nic.send(memoryview(f), len(f)) is False
    assert time.monotonic() - t0 < 0.015 and nic.stats["tx_timeouts"] == 1
    emu.set_link(True)
    assert nic.link_up()
    assert list(emu.wire) == []
    for i in range(20):  # flap
        emu.set_link(i % 2 == 1)
        assert nic.link_up() == (i % 2 == 1)
    f2 = frame(300, dst=OTHER)
    assert nic.send(memoryview(f2), len(f2))
    assert list(emu.wire) == [f2]
    assert emu.inject(frame(100))
    assert receive(nic, buf) == frame(100)


# ---------------------------------------------------------------- data path

def test_rx_every_size_byte_exact(buf):
    emu, nic = make()
    for n in range(60, 1515):
        f = frame(n)
        assert emu.inject(f)
        assert receive(nic, buf) == f, n
    assert nic.recv_into(buf) == 0
    assert nic.stats["rx_frames"] == 1455 and nic.stats["rx_errors"] == 0


def test_tx_every_size_byte_exact():
    emu, nic = make()
    out = bytearray(1600)
    for n in range(60, 1515):
        f = frame(n, dst=OTHER)
        out[:n] = f
        assert nic.send(memoryview(out), n)
        assert emu.wire.popleft() == f, n
    assert nic.stats["tx_frames"] == 1455 and not emu.wire


def test_short_frames_are_padded(buf):
    emu, nic = make()
    emu.txmem[:] = b"\xaa" * len(emu.txmem)  # stale bytes must not leak into the padding
    f = frame(42, dst=OTHER)
    assert nic.send(memoryview(f), 42)
    assert emu.wire.popleft() == f + bytes(18)
    assert emu.inject(frame(42))  # the wire pads runts, as the sending MAC does
    assert receive(nic, buf) == frame(42) + bytes(18)
    assert nic.send(memoryview(bytes(1515)), 1515) is False
    assert nic.stats["tx_errors"] == 1


def test_pointer_wrap_over_thousands_of_frames(buf):
    emu, nic = make(emu={"open_pointer": 0xFF00})
    nic.allow_multicast(False)  # reopen so the odd start pointer applies
    assert emu.sock[0][SN_RX_WR] == 0xFF
    rng = random.Random(5)
    rx_wraps = tx_wraps = 0
    rx_bytes = 0
    out = bytearray(1600)
    for i in range(3000):
        burst = [frame(rng.randrange(60, 1515), seed=i * 8 + k) for k in range(rng.randrange(1, 6))]
        wr0 = emu._get16(0, SN_RX_WR)
        for f in burst:
            assert emu.inject(f)
            rx_bytes += len(f) + 2
        rx_wraps += emu._get16(0, SN_RX_WR) < wr0
        for f in burst:
            assert receive(nic, buf) == f
        assert nic.recv_into(buf) == 0
        n = rng.randrange(60, 1515)
        out[:n] = frame(n, dst=OTHER, seed=i)
        tx0 = emu._get16(0, SN_TX_WR)
        assert nic.send(memoryview(out), n)
        tx_wraps += emu._get16(0, SN_TX_WR) < tx0
        assert emu.wire.popleft() == bytes(out[:n])
    assert rx_wraps >= 50 and tx_wraps >= 20
    assert rx_bytes > 50 * 65536
    assert nic.stats["rx_errors"] == 0 and nic.stats["recoveries"] == 0


def test_rx_overflow_drops_at_chip_and_driver_keeps_working(buf):
    emu, nic = make()
    accepted = []
    i = 0
    while True:
        f = frame(1514, seed=i)
        i += 1
        if not emu.inject(f):
            break
        accepted.append(f)
    assert len(accepted) == 16384 // 1516
    for k in range(5):
        assert not emu.inject(frame(1300, seed=k))  # 1224 bytes left
    assert emu.counters["rx_dropped_full"] == 6
    # a small frame still fits in the tail
    small = frame(60, seed=99)
    assert emu.inject(small)
    accepted.append(small)
    # half-drain, refill, drain everything: order and bytes preserved
    for f in accepted[:4]:
        assert receive(nic, buf) == f
    more = [frame(1514, seed=100 + k) for k in range(4)]
    for f in more:
        assert emu.inject(f)
    for f in accepted[4:] + more:
        assert receive(nic, buf) == f
    assert nic.recv_into(buf) == 0
    assert nic.stats["rx_errors"] == 0


@pytest.mark.parametrize("bad", [0x0000, 0x0001, 61, 1517, 0xFFFE, 0x0400])
def test_corrupted_length_header_recovers(buf, bad):
    emu, nic = make()
    a, b, c, d = frame(100, seed=1), frame(300, seed=2), frame(500, seed=3), frame(700, seed=4)
    assert emu.inject(a)
    emu.corrupt_next_header(bad)  # 0x0400 is in range but beyond what is waiting
    assert emu.inject(b)
    assert emu.inject(c)
    assert receive(nic, buf) == a
    assert nic.recv_into(buf) == 0  # bad header: everything waiting is dropped
    assert nic.stats["rx_errors"] == 1 and nic.stats["recoveries"] == 1
    assert nic.recv_into(buf) == 0
    assert emu.inject(d)
    assert receive(nic, buf) == d
    assert nic.stats["rx_errors"] == 1


def test_send_ok_withheld_times_out_and_recovers():
    emu, nic = make(tx_timeout_ms=50)
    emu.withhold_send_ok = True
    f = frame(128, dst=OTHER)
    t0 = time.monotonic()
    assert nic.send(memoryview(f), len(f)) is False
    took = time.monotonic() - t0
    assert 0.04 <= took < 0.5
    assert nic.stats["tx_timeouts"] == 1 and nic.stats["tx_frames"] == 0
    emu.withhold_send_ok = False
    emu.wire.clear()
    assert nic.send(memoryview(f), len(f))
    assert list(emu.wire) == [f]
    assert emu.sock[0][2] & 0x10 == 0  # SEND_OK cleared after use


def test_command_register_stuck_is_bounded():
    emu, nic = make(tx_timeout_ms=30)
    emu.cr_stuck = True
    f = frame(100, dst=OTHER)
    t0 = time.monotonic()
    assert nic.send(memoryview(f), len(f)) is False
    assert time.monotonic() - t0 < 2.0
    assert nic.stats["tx_timeouts"] == 1


def test_rsr_changing_between_its_two_bytes(buf):
    emu, nic = make()
    a = frame(252)                 # RSR = 0x00FE
    b = frame(0x64 - 2, seed=5)    # lands mid-read: RSR 0x0162, torn read 0x0062
    assert emu.inject(a)
    emu.inject_during_rsr_read(b)
    before = nic.spi_transactions
    assert receive(nic, buf) == a
    assert nic.spi_transactions - before == 7  # one extra RSR read to settle
    assert receive(nic, buf) == b
    assert nic.stats["rx_errors"] == 0


def test_multicast_acceptance_toggled(buf):
    emu, nic = make()
    assert emu.inject(frame(100))              # to us
    assert emu.inject(frame(100, dst=BCAST))   # broadcast
    assert not emu.inject(frame(100, dst=OTHER))
    assert not emu.inject(frame(100, dst=MCAST))
    assert not emu.inject(frame(100, dst=b"\x33\x33\x00\x00\x00\x01", ethertype=b"\x86\xdd"))
    assert receive(nic, buf) == frame(100)
    assert receive(nic, buf) == frame(100, dst=BCAST)
    nic.allow_multicast(True)
    assert emu._filter_mr == 0x14  # MFEN and MMB off (HARDWARE.md 1.12), IPv6 still blocked
    m = frame(200, dst=MCAST)
    assert emu.inject(m)
    assert receive(nic, buf) == m
    nic.allow_multicast(False)
    assert emu._filter_mr == 0xB4
    assert not emu.inject(m)
    assert nic.recv_into(buf) == 0


def test_interrupt_pin_follows_received_frames(buf):
    emu, nic = make()
    falls = []
    emu.int_pin.irq(lambda p: falls.append(1), emu.int_pin.IRQ_FALLING)
    assert emu.int_pin.value() == 1 and not nic.irq_pending()
    assert emu.inject(frame(100)) and emu.inject(frame(200))
    assert emu.int_pin.value() == 0 and nic.irq_pending() and falls == [1]
    assert receive(nic, buf) == frame(100)
    assert receive(nic, buf) == frame(200)
    assert nic.recv_into(buf) == 0
    assert emu.int_pin.value() == 1 and not nic.irq_pending()
    # sending does not raise INTn (SEND_OK is masked)
    f = frame(100, dst=OTHER)
    assert nic.send(memoryview(f), len(f))
    assert emu.int_pin.value() == 1
    assert emu.inject(frame(300))
    assert falls == [1, 1] and nic.irq_pending()
    assert receive(nic, buf) == frame(300)
    assert nic.recv_into(buf) == 0 and emu.int_pin.value() == 1


def test_no_int_pin_leaves_interrupts_off(buf):
    emu, nic = make(int_pin=False)
    assert emu.common[0x18] == 0
    assert emu.inject(frame(100))
    assert emu.int_pin.value() == 1 and nic.irq_pending()
    assert receive(nic, buf) == frame(100)


def test_spi_transactions_per_frame(buf):
    emu, nic = make()
    # a lone frame
    assert emu.inject(frame(1000))
    t, fr = nic.spi_transactions, emu.counters["spi_frames"]
    assert nic.recv_into(buf) == 1000
    lone = nic.spi_transactions - t
    assert emu.counters["spi_frames"] - fr == lone  # the driver counts every CS frame
    # an empty poll (the first one after frames also clears the RECV flag)
    assert nic.recv_into(buf) == 0
    t = nic.spi_transactions
    assert nic.recv_into(buf) == 0
    idle = nic.spi_transactions - t
    # five frames waiting
    for k in range(5):
        assert emu.inject(frame(600, seed=k))
    t, b = nic.spi_transactions, nic.spi_bytes
    for k in range(5):
        assert nic.recv_into(buf) == 600
    burst = (nic.spi_transactions - t) / 5
    rx_overhead = (nic.spi_bytes - b) / 5 - 600
    f = frame(600, dst=OTHER)
    t, b = nic.spi_transactions, nic.spi_bytes
    assert nic.send(memoryview(f), 600)
    tx = nic.spi_transactions - t
    tx_overhead = nic.spi_bytes - b - 600
    print("rx lone %d, rx burst %.1f, idle %d, tx %d transactions; overhead bytes rx %.0f tx %d"
          % (lone, burst, idle, tx, rx_overhead, tx_overhead))
    assert lone <= 6 and burst <= 4.5 and idle == 0 and tx <= 7   # idle: INTn high, no SPI
    assert rx_overhead < 40 and tx_overhead < 50


def test_a_lost_interrupt_delays_a_frame_by_at_most_20_polls(buf):
    """With INTn wired an empty poll reads nothing over SPI; Sn_RX_RSR is still
    read every 20th poll, so a frame whose interrupt never showed is found."""
    emu, nic = make()
    assert nic.recv_into(buf) == 0
    assert emu.inject(frame(700))
    emu.int_pin.drive(1)                  # the INTn edge/level is lost
    polls = 0
    while nic.recv_into(buf) == 0:
        polls += 1
        emu.int_pin.drive(1)
        assert polls <= 20
    assert polls >= 1


def test_spi_bit_errors_never_escape_and_driver_resynchronises(buf):
    emu, nic = make(tx_timeout_ms=20, int_pin=False)
    emu.bit_error_rate = 2e-4
    rng = random.Random(3)
    out = memoryview(bytearray(1600))
    for i in range(400):
        for k in range(rng.randrange(0, 3)):
            emu.inject(frame(rng.randrange(60, 1515), seed=i))
        n = nic.recv_into(buf)
        assert n == 0 or 60 <= n <= 1514
        if i % 5 == 0:
            nic.send(out, rng.randrange(60, 1515))
    assert emu.counters["bit_flips"] > 20
    emu.bit_error_rate = 0.0
    while nic.recv_into(buf):
        pass
    for i in range(3):  # at most a recovery or two before clean frames flow
        emu.inject(frame(100, seed=1000 + i))
        nic.recv_into(buf)
    for i in range(20):
        f = frame(200 + i, seed=i)
        assert emu.inject(f)
        assert receive(nic, buf) == f
    emu.wire.clear()
    f = frame(300, dst=OTHER)
    assert nic.send(memoryview(f), 300) and list(emu.wire) == [f]


class PipeLink:
    """Minimal NIC-like link: frames queued in, frames collected out."""

    def __init__(self):
        self.incoming = []
        self.sent = []

    def recv_into(self, mv):
        if not self.incoming:
            return 0
        f = self.incoming.pop(0)
        mv[:len(f)] = f
        return len(f)

    def send(self, mv, n):
        self.sent.append(bytes(mv[:n]))


def test_attach_link_pumps_both_ways(buf):
    emu, nic = make()
    link = PipeLink()
    emu.attach(link)
    link.incoming = [frame(100), frame(64, dst=OTHER), frame(400, dst=BCAST)]
    assert emu.service() == 3
    assert receive(nic, buf) == frame(100)
    assert receive(nic, buf) == frame(400, dst=BCAST)  # OTHER filtered by MFEN
    f = frame(90, dst=OTHER)
    assert nic.send(memoryview(f), 90)
    assert link.sent == [f]


# ---------------------------------------------------------------- DMA send (tx_dma)

class FakeDma:
    """An rp2.DMA channel as the driver drives it: registers[7] (TRANS_COUNT_TRIG)
    starts it; on the TX channel that clocks the driver's copy out on the bus.
    active() stays True for `busy` calls after a start, like a transfer under way."""

    def __init__(self, spi=None, busy=2):
        self.spi = spi
        self.nic = None
        self.busy = busy
        self.left = 0
        self.starts = 0
        self.registers = self

    def __setitem__(self, i, v):
        if i == 7:
            self.starts += 1
            self.left = self.busy
            if self.spi is not None:
                self.spi.write(bytes(self.nic._dma[4][:v]))

    def active(self):
        self.left -= 1
        return self.left >= 0


def make_dma(**kw):
    emu = W5500Emulator()
    tx, rx = FakeDma(emu.spi), FakeDma()
    nic = W5500(emu.spi, emu.cs, rst=emu.rst, int_pin=emu.int_pin, mac=MAC,
                tx_dma=(tx, rx, bytearray(1514), 0), **kw)
    tx.nic = nic
    return emu, nic, tx, rx


def test_tx_dma_frame_leaves_at_the_next_call(buf):
    emu, nic, tx, rx = make_dma()
    f = frame(1514, dst=BCAST)
    assert nic.send(memoryview(f), 1514)
    # the data went out in an open CS frame; no SEND yet
    assert tx.starts == 1 and rx.starts == 1
    assert emu.cs.value() == 0 and not emu.wire
    # the next call waits for the DMA, ends the CS frame, then Sn_TX_WR and SEND
    assert nic.recv_into(buf) == 0
    assert emu.cs.value() == 1 and list(emu.wire) == [f]
    g = frame(1000, seed=3)
    assert nic.send(memoryview(g), 1000)
    h = frame(700, seed=4)
    assert nic.send(memoryview(h), 700)      # ends g first
    assert list(emu.wire) == [f, g]
    nic.flush()
    nic.flush()                              # nothing in flight: no-op
    assert list(emu.wire) == [f, g, h]
    assert nic.stats["tx_frames"] == 3 and tx.starts == 3


def test_tx_dma_short_frames_and_pointer_wrap():
    emu, nic, tx, rx = make_dma()
    out = []
    for i in range(40):                      # 40 * ~1 KB: the 16 KB TX pointer wraps
        n = (60, 511, 512, 1514)[i % 4] if i % 5 else 42
        f = frame(max(n, 14), seed=i, dst=BCAST)
        assert nic.send(memoryview(f), len(f))
        out.append(f + bytes(60 - len(f)) if len(f) < 60 else f)
    nic.flush()
    assert [bytes(x) for x in emu.wire] == out
    assert tx.starts == 16                   # 512 B and longer: DMA; shorter: written at once


def test_tx_dma_link_down_counted_at_the_flush():
    emu, nic, tx, rx = make_dma(tx_timeout_ms=20)
    emu.set_link(False)
    f = frame(1514, dst=BCAST)
    assert nic.send(memoryview(f), 1514)     # handed over; the failure shows at the flush
    nic.flush()
    assert nic.stats["tx_timeouts"] == 1 and not emu.wire
    emu.set_link(True)
    assert nic.send(memoryview(f), 1514)
    assert nic.link_up()                     # a register read ends the frame first
    assert list(emu.wire) == [f]


def test_tx_dma_true_off_an_rp2040_changes_nothing():
    emu = W5500Emulator()
    nic = W5500(emu.spi, emu.cs, rst=emu.rst, mac=MAC, tx_dma=True)
    assert nic._dma is None
    f = frame(1514, dst=BCAST)
    assert nic.send(memoryview(f), 1514) and list(emu.wire) == [f]


# ---------------------------------------------------------------- real MicroPython

def _tool(name):
    path = os.path.join(BIN, name)
    if os.path.exists(path):
        return path
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(name + " not installed")
        pytest.skip(name + " not installed")
    return path


@pytest.mark.parametrize("arch", ["armv6m", "xtensawin"])
def test_mpy_cross_compiles_driver(tmp_path, arch):
    out = tmp_path / ("w5500_%s.mpy" % arch)
    r = subprocess.run([_tool("mpy-cross"), "-march=" + arch, "-o", str(out),
                        os.path.join(ROOT, "drivers", "w5500.py")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 1000


def test_driver_under_micropython_unix_port():
    r = subprocess.run([_tool("micropython"), "-X", "heapsize=128K",
                        os.path.join(ROOT, "host_tests", "mpy", "w5500_check.py")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("OK"), r.stdout
