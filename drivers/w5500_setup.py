"""W5500 bring-up: reset, the chip check, buffer sizes, socket 0 opened in
MACRAW. W5500() imports this module for the call and drops it after: it runs
once, and on a stock board code is heap (drivers/w5500.py keeps what runs per
frame and the recovery). Register facts: shared/HARDWARE.md section 1.
"""
import time

try:
    from micropython import const  # type: ignore  (typed differently by the stubs)
except ImportError:
    def const(x):
        return x

from uipy.compat import ticks_ms, ticks_diff
from w5500 import W5500Error

# as in drivers/w5500.py
_MR = const(0x0000)
_SHAR = const(0x0009)
_SIMR = const(0x0018)
_VERSIONR = const(0x0039)
_SN_RXBUF_SIZE = const(0x001E)
_SN_IMR = const(0x002C)
_COMMON_R = const(0x00)
_COMMON_W = const(0x04)
_S0_W = const(0x0C)
_MR_RST = const(0x80)
_VERSION = const(0x04)
_IR_RECV = const(0x04)
_RESET_WAIT_MS = const(50)


def _sleep_ms(ms):
    time.sleep(ms / 1000)


def init(nic, rst, accept_multicast):
    """The chip reset (RSTn when wired, else MR.RST), checked, and socket 0
    opened; W5500Error when it is missing or will not open."""
    nic.cs.value(1)
    if rst is not None:
        rst.value(0)
        _sleep_ms(1)
        rst.value(1)
        _sleep_ms(_RESET_WAIT_MS)
    else:
        nic._write8(_MR, _COMMON_W, _MR_RST)
        t0 = ticks_ms()         # MR.RST clears itself once the reset is done
        while nic._read8(_MR, _COMMON_R) and ticks_diff(ticks_ms(), t0) <= 50:
            _sleep_ms(1)
    _check_version(nic)
    nic._write8(_SIMR, _COMMON_W, 0)
    w = bytearray(9)
    w[3:9] = nic.mac
    nic._write(_SHAR, _COMMON_W, w)
    # all 16 KB to socket 0, nothing to sockets 1-7; sizes before OPEN
    w = nic._w2
    for n in range(8):
        kb = 16 if n == 0 else 0
        w[3] = kb
        w[4] = kb
        nic._write(_SN_RXBUF_SIZE, _S0_W + 0x20 * n, w)
    nic.allow_multicast(accept_multicast)
    nic._write8(_SN_IMR, _S0_W, _IR_RECV)
    nic._write8(_SIMR, _COMMON_W, 1 if nic.int_pin is not None else 0)


def _check_version(nic):
    # some parts read 0 right after reset: poll briefly
    t0 = ticks_ms()
    while True:
        v = nic._read8(_VERSIONR, _COMMON_R)
        if v == _VERSION:
            return
        if ticks_diff(ticks_ms(), t0) > 20:
            break
        _sleep_ms(1)
    if v == 0xFF:
        what, hint = "not answering", ("MISO floating or pulled high: check MISO wiring, "
                                       "the CS pin, power and reset")
    elif v == 0:
        what, hint = "not answering", "check MISO/MOSI/SCK/CS wiring, power and reset"
    else:
        what, hint = "not recognised", ("wrong chip, SPI mode (use mode 0) or clock too "
                                        "fast for the wiring")
    raise W5500Error("W5500 %s: VERSIONR read 0x%02X (expected 0x04); %s" % (what, v, hint))


def dma(nic, how):
    """Two DMA channels that clock a frame's data out of the driver's own
    copy: one feeds the SPI's TX FIFO, one drains its RX FIFO (its end is the
    frame's last byte on the wire). how: True for an RP2040's own SPI (its
    number from the bus's repr, "SPI(0, ..."; elsewhere nothing changes), or
    (tx channel, rx channel, buffer, its address) as a test gives them."""
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
