# ENC28J60 bring-up: reset, the chip check and the register set-up, with
# the default MAC. drivers/enc28j60.py imports this module for reset() and
# reinit() (the constructor runs reinit) and drops it after: it runs rarely,
# and on a stock board code is heap. Facts and errata: shared/HARDWARE.md
# section 2; the errata list is in drivers/enc28j60.py.
try:
    from micropython import const  # type: ignore  (typed differently by the stubs)
except ImportError:
    def const(x):
        return x

try:
    from time import sleep_ms  # type: ignore  (MicroPython only)
except ImportError:
    from time import sleep as _sleep

    def sleep_ms(ms):
        _sleep(ms / 1000)

# as in drivers/enc28j60.py
_BFS = const(0x80)
_BFC = const(0xA0)
_EIE = const(0x1B)
_EIR = const(0x1C)
_ESTAT = const(0x1D)
_ECON2 = const(0x1E)
_ECON1 = const(0x1F)
_ETXSTL = const(0x04)
_ERXFCON = const(0x38)
_MACON1 = const(0xC0)
_MACON3 = const(0xC2)
_MACON4 = const(0xC3)
_MABBIPG = const(0xC4)
_MAIPGL = const(0xC6)
_MAIPGH = const(0xC7)
_MACLCON2 = const(0xC9)
_MAMXFLL = const(0xCA)
_EREVID = const(0x72)
_ECON1_RXEN = const(0x04)
_ECON2_AUTOINC = const(0x80)
_ECON2_PWRSV = const(0x20)
_PHCON1 = const(0x00)
_PHCON2 = const(0x10)
_PHIE = const(0x12)
_PHIR = const(0x13)
_TX_START = const(0x1A00)
_MAX_FRAME_FCS = const(1518)


def reinit(nic):
    # full reset and set-up (ENC28J60.reinit); the constructor runs it
    if not nic.mac:
        nic.mac = _default_mac()
    reset(nic)
    _setup(nic)


def reset(nic):
    # Hardware (if wired) and system reset, then check the chip answers.
    if nic.rst is not None:
        nic.rst.value(0)
        sleep_ms(1)
        nic.rst.value(1)
        sleep_ms(2)
    # errata #19: SRC is ignored in power-save, so leave it first
    nic._cmd(_BFC | _ECON2, _ECON2_PWRSV)
    sleep_ms(1)
    nic.cs.value(0)
    nic.spi.write(b"\xff")
    nic.cs.value(1)
    nic.spi_transactions += 1
    nic.spi_bytes += 1
    nic._bank = 0
    sleep_ms(2)  # errata #2: CLKRDY can be set before the chip is usable
    ready = False
    estat = 0
    for _ in range(50):
        estat = nic._rd(_ESTAT)
        # bit 3 reads 0 on a live chip; MISO stuck high sets it
        if estat & 0x09 == 0x01:
            ready = True
            break
        sleep_ms(1)
    rev = nic._rd(_EREVID)
    if rev == 0x00 or rev == 0xFF:
        raise OSError("ENC28J60 not answering: EREVID read 0x%02X; "
                      "check MISO/MOSI/SCK/CS wiring and 3.3 V power" % rev)
    if not ready:
        raise OSError("ENC28J60 clock not ready: ESTAT read 0x%02X; "
                      "check the 25 MHz crystal and 3.3 V power" % estat)
    nic.revision = rev



def _setup(nic):
    fd = nic.full_duplex
    nic._wr(_ECON1, 0)  # bank 0, RX off
    nic._bank = 0
    nic._bfs(_ECON2, _ECON2_AUTOINC)  # reset value not trusted
    nic._rx_pointers()
    nic._wr16(_ETXSTL, _TX_START)
    nic._txnd = -1
    nic._wr(_ERXFCON, nic._rxfcon)
    nic._wr(_MACON1, 0x0D)  # MARXEN | TXPAUS | RXPAUS
    nic._wr(_MACON3, 0x33 if fd else 0x32)  # pad to 60 + CRC + length check
    nic._wr(_MACON4, 0x00 if fd else 0x40)  # DEFER in half duplex
    nic._wr16(_MAMXFLL, _MAX_FRAME_FCS)
    nic._wr(_MABBIPG, 0x15 if fd else 0x12)
    nic._wr(_MAIPGL, 0x12)
    nic._wr(_MAIPGH, 0x0C)
    if not fd:
        nic._wr(_MACLCON2, 63)  # errata #13: fewer false late collisions
    # MAADR registers (bank 3) holding mac[0]..mac[5], HARDWARE.md 2.4
    for i, reg in enumerate(b"\xe4\xe5\xe2\xe3\xe0\xe1"):
        nic._wr(reg, nic.mac[i])
    if nic._rd(_MAMXFLL) != _MAX_FRAME_FCS & 0xFF:
        raise OSError("ENC28J60 ignores MAC register writes "
                      "(SPI clock below 8 MHz? errata #1)")
    # duplex must agree between MAC (MACON3.FULDPX) and PHY (PHCON1.PDPXMD)
    nic.phy_write(_PHCON1, 0x0100 if fd else 0x0000)
    nic.phy_write(_PHCON2, 0x0000 if fd else 0x0100)  # errata #9: HDLDIS
    nic.phy_write(_PHIE, 0x0012)  # PGEIE | PLNKIE: link changes latch in PHIR
    nic.phy_read(_PHIR)
    nic._bfc(_EIR, 0x7F)
    nic._wr(_EIE, 0xD1)  # INTIE | PKTIE | LINKIE | RXERIE
    nic._bfs(_ECON1, _ECON1_RXEN)



def _default_mac():
    # locally administered, from the board's unique id when there is one
    try:
        import machine
        uid = machine.unique_id()
        return bytes((0x02, uid[-4], uid[-3], uid[-2], uid[-1], 0x28))
    except Exception:
        return b"\x02\x00\xec\x28\x60\x01"


def dma(nic, how):
    """Two DMA channels that clock a frame's data out of the driver's own
    copy: one feeds the SPI's TX FIFO, one drains its RX FIFO (its end is the
    frame's last byte on the wire). how: True for an RP2040's own SPI (its
    number from the bus's repr, "SPI(1, ..."; elsewhere nothing changes), or
    (tx channel, rx channel, buffer, its address) as a test gives them.
    (The same as drivers/w5500_setup.py's: a board carries one driver.)"""
    if how is True:
        try:
            import sys
            import rp2  # type: ignore  (RP2040 only)
            import uctypes
        except ImportError:
            return
        r = repr(nic.spi)
        if "RP2040" not in sys.implementation._machine or not r.startswith("SPI(") or r[5] != ",":
            return
        k = int(r[4])           # SPI0/SPI1: registers at 0x4003C000/0x40040000, DREQ 16+2k (TX), 17+2k (RX)
        dr = 0x4003C008 + 0x4000 * k
        buf = bytearray(1514)
        tx = rp2.DMA()
        rx = rp2.DMA()
        tx.config(read=buf, write=dr, count=0,
                  ctrl=tx.pack_ctrl(size=0, inc_read=True, inc_write=False, treq_sel=16 + 2 * k))
        sink = bytearray(4)
        rx.config(read=dr, write=sink, count=0,
                  ctrl=rx.pack_ctrl(size=0, inc_read=False, inc_write=False, treq_sel=17 + 2 * k))
        addr = uctypes.addressof(buf)
    else:
        tx, rx, buf, addr = how
        sink = None
    nic._dma = (tx.registers, rx.registers, rx, addr, memoryview(buf))  # type: ignore  (.registers: not in the stubs)
    nic._dma_keep = (tx, rx, sink)  # kept: the channels and the RX sink stay in use
