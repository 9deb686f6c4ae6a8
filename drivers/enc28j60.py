# Microchip ENC28J60 driver (10BASE-T MAC+PHY on SPI) for uipy.
#
# Runs on MicroPython 1.22+ and on CPython (host tests against
# tools/emu/enc28j60_emu.py). Register facts and errata: shared/HARDWARE.md section 2.
#
# Interface (DESIGN.md): .mac, recv_into(mv), send(mv, n), link_up(),
# irq_pending(); plus link_changed(), allow_multicast(on), phy_read/phy_write.
#
# allow_multicast(True) sets ERXFCON.MCEN: every frame whose destination has the
# group bit set is accepted (all multicast, e.g. mDNS 01:00:5e:00:00:fb); the
# stack filters further in software. The hash filter is not used.
#
# tx_dma=True (an RP2040's own SPI; ignored elsewhere): a frame of 512 B or
# more is copied into the driver's 1.5 KB buffer and clocked out by two DMA
# channels while send() returns; the next call of the driver (or flush(),
# which a loop calls before it sleeps) ends it and sets TXRTS. A device
# sharing the SPI bus must not be used before then.
#
# Buffer layout: RX ring 0x0000-0x19FF (errata #5: must start at 0; ERXND odd
# for errata #14), TX area 0x1A00-0x1FFF (control byte + 1514 + 7-byte TSV).
#
# Errata handled (DS80349C numbering, HARDWARE.md 2.12):
#   #2  CLKRDY set early: fixed 2 ms wait after reset before polling CLKRDY.
#   #5  RX buffer starts at 0x0000.
#   #6  EIR.PKTIF unreliable: frames waiting are counted with EPKTCNT.
#   #9  half duplex: PHCON2.HDLDIS set.
#   #12 TX logic stall: bounded wait for TXIF; on timeout or TXERIF the TX
#       logic is reset (TXRST set/clear) and TXIF/TXERIF are cleared after it.
#   #13 false late collisions: MACLCON2 = 63; retransmit (<= 16 times) when the
#       TSV says late collision.
#   #14 ERXRDPT written odd only (next - 1, or ERXND), low byte first.
#   #15 ESTAT.LATECOL unreliable: the TSV late-collision bit is used instead.
#   #19 SRC ignored in power-save: ECON2.PWRSV cleared before SRC.
#   #1 (SPI >= 8 MHz on B1/B4), #17 (DMA checksum) and #18 (pattern filter):
#       board choice / features not used. Init reads MAMXFL back, so a chip
#       dropping MAC writes (errata #1) fails loudly.
#
try:
    from micropython import const  # type: ignore  (typed differently by the stubs)
except ImportError:
    def const(x):
        return x

try:
    from time import sleep_us  # type: ignore  (MicroPython only)
except ImportError:
    from time import sleep as _sleep

    def sleep_us(us):
        _sleep(us / 1000000)

# SPI opcodes
_RCR = const(0x00)
_RBM = const(0x3A)
_WCR = const(0x40)
_WBM = const(0x7A)
_BFS = const(0x80)
_BFC = const(0xA0)

# Register encoding: bits 4:0 address, bits 6:5 bank, bit 7 MAC/MII (these
# answer a read with a dummy byte first). 0x1B..0x1F exist in every bank.
_MM = const(0x80)
_EIR = const(0x1C)
_ECON2 = const(0x1E)
_ECON1 = const(0x1F)
# bank 0
_ERDPTL = const(0x00)
_EWRPTL = const(0x02)
_ETXNDL = const(0x06)
_ERXSTL = const(0x08)
_ERXNDL = const(0x0A)
_ERXRDPTL = const(0x0C)
# bank 1
_ERXFCON = const(0x38)
_EPKTCNT = const(0x39)
# bank 2 (MAC/MII)
_MICMD = const(0xD2)
_MIREGADR = const(0xD4)
_MIWRL = const(0xD6)
_MIWRH = const(0xD7)
_MIRDL = const(0xD8)
_MIRDH = const(0xD9)
# bank 3
_MISTAT = const(0xEA)

# bits
_EIR_TXIF = const(0x08)
_EIR_TXERIF = const(0x02)
_EIR_RXERIF = const(0x01)
_ECON1_TXRST = const(0x80)
_ECON1_RXRST = const(0x40)
_ECON1_TXRTS = const(0x08)
_ECON1_RXEN = const(0x04)
_ECON2_PKTDEC = const(0x40)
_RXFCON_NORMAL = const(0xA1)  # UCEN | CRCEN | BCEN
_RXFCON_MCEN = const(0x02)

# PHY registers
PHCON1 = const(0x00)
PHCON2 = const(0x10)
PHSTAT2 = const(0x11)
PHIE = const(0x12)
PHIR = const(0x13)

# buffer layout
RX_START = const(0x0000)
RX_END = const(0x19FF)
TX_START = const(0x1A00)

MAX_FRAME = const(1514)
_DMA_MIN = const(512)    # shorter frames take less SPI time than DMA's set-up saves
_TX_POLLS = const(1000)
_TX_RETRIES = const(16)
_MII_POLLS = const(1000)


class ENC28J60:
    def __init__(self, spi, cs, rst=None, int_pin=None, mac=None,
                 full_duplex=False, tx_dma=False):
        self.spi = spi
        self.cs = cs
        self.rst = rst
        self.int_pin = int_pin
        self.full_duplex = full_duplex
        # mac None: made from the board's unique id (drivers/enc28j60_setup.py)
        self.mac = b"" if mac is None else bytes(mac)
        cs.value(1)
        # small buffers made once: no allocation for register access
        self._o2 = bytearray(2)
        self._i2 = bytearray(2)
        self._o3 = bytearray(3)
        self._i3 = bytearray(3)
        self._rbm = bytearray((_RBM,))
        self._wbm = bytearray((_WBM, 0x00))  # opcode + per-packet control byte
        self._hdr = bytearray(6)
        self._tsv = bytearray(7)
        tail = memoryview(bytearray(5))  # the frame's FCS and its pad byte
        self._tail4 = tail[:4]
        self._tail5 = tail
        self._rxfcon = _RXFCON_NORMAL
        # counters
        self.rx_frames = 0
        self.tx_frames = 0
        self.rx_dropped_crc = 0
        self.rx_dropped_len = 0
        self.tx_retries = 0
        self.tx_errors = 0
        self.overflows = 0
        self.rx_resets = 0
        self.mii_timeouts = 0
        self.spi_transactions = 0
        self.spi_bytes = 0
        self.revision = 0
        self._bank = 0
        self._next = RX_START
        self._pending = 0
        self._txnd = -1
        # tx_dma (enc28j60_setup.dma): frame data leaves by DMA while the
        # caller goes on; the frame is finished (TXRTS) at the next call
        self._dma = None    # (tx registers, rx registers, rx channel, buffer address, buffer)
        self._tx_busy = False
        self._tx_n = 0      # length of the frame in flight
        self.reinit()
        if tx_dma:
            self._run("dma", tx_dma)

    # ---- SPI primitives: each is one CS frame ----

    def _cmd(self, op, arg):
        if self._tx_busy:
            self.flush()
        o = self._o2
        o[0] = op
        o[1] = arg
        self.cs.value(0)
        self.spi.write(o)
        self.cs.value(1)
        self.spi_transactions += 1
        self.spi_bytes += 2

    def _select(self, reg):
        # ECON1 is only touched when the bank really changes
        bank = (reg >> 5) & 3
        if (reg & 0x1F) < 0x1B and bank != self._bank:
            clear = self._bank & ~bank
            if clear:
                self._cmd(_BFC | _ECON1, clear)
            setb = bank & ~self._bank
            if setb:
                self._cmd(_BFS | _ECON1, setb)
            self._bank = bank

    def _rd(self, reg):
        if self._tx_busy:
            self.flush()
        self._select(reg)
        if reg & _MM:
            o = self._o3
            i = self._i3
        else:
            o = self._o2
            i = self._i2
        o[0] = _RCR | (reg & 0x1F)
        self.cs.value(0)
        self.spi.write_readinto(o, i)
        self.cs.value(1)
        self.spi_transactions += 1
        self.spi_bytes += len(o)
        return i[len(i) - 1]

    def _wr(self, reg, value):
        self._select(reg)
        self._cmd(_WCR | (reg & 0x1F), value)

    def _wr16(self, reg, value):
        # low byte first (matters for ERXRDPT)
        self._wr(reg, value & 0xFF)
        self._wr(reg + 1, value >> 8)

    def _bfs(self, reg, mask):
        self._select(reg)
        self._cmd(_BFS | (reg & 0x1F), mask)

    def _bfc(self, reg, mask):
        self._select(reg)
        self._cmd(_BFC | (reg & 0x1F), mask)

    def _read_mem(self, buf):
        if self._tx_busy:
            self.flush()
        self.cs.value(0)
        self.spi.write(self._rbm)
        self.spi.readinto(buf)
        self.cs.value(1)
        self.spi_transactions += 1
        self.spi_bytes += 1 + len(buf)

    # ---- PHY through MII ----

    def _mii_wait(self):
        sleep_us(12)  # BUSY may not show during the first 10.24 us
        for _ in range(_MII_POLLS):
            if not self._rd(_MISTAT) & 1:
                return True
        self.mii_timeouts += 1
        return False

    def phy_read(self, reg):
        self._wr(_MIREGADR, reg)
        self._wr(_MICMD, 0x01)  # MIIRD
        self._mii_wait()
        self._wr(_MICMD, 0x00)
        return self._rd(_MIRDL) | (self._rd(_MIRDH) << 8)

    def phy_write(self, reg, value):
        self._wr(_MIREGADR, reg)
        self._wr(_MIWRL, value & 0xFF)
        self._wr(_MIWRH, value >> 8)  # starts the write
        self._mii_wait()

    # ---- bring-up ----

    def reset(self):
        # Hardware (if wired) and system reset, then check the chip answers.
        self._run("reset")

    def reinit(self):
        # full reset and set-up, e.g. after the chip was found deaf or unplugged
        self._run("reinit")

    def _run(self, name, *args):
        # bring-up code (drivers/enc28j60_setup.py) is imported for the call
        # and dropped after: it runs rarely, and on a stock board code is heap
        import sys
        import enc28j60_setup
        try:
            getattr(enc28j60_setup, name)(self, *args)
        finally:
            sys.modules.pop("enc28j60_setup", None)

    def _rx_pointers(self):
        # errata #5: RX at 0; errata #14: ERXRDPT odd
        self._wr16(_ERXSTL, RX_START)
        self._wr16(_ERXNDL, RX_END)
        self._wr16(_ERXRDPTL, RX_END)
        self._wr16(_ERDPTL, RX_START)
        self._next = RX_START
        self._pending = 0

    # ---- receive ----

    def _rx_reset(self):
        # The ring is lost (corrupt header): reset the RX logic and start over.
        self.rx_resets += 1
        self._bfc(_ECON1, _ECON1_RXEN)
        self._bfs(_ECON1, _ECON1_RXRST)
        self._bfc(_ECON1, _ECON1_RXRST)
        # stored frames are gone; bring EPKTCNT to 0 whether RXRST cleared it or not
        for _ in range(256):
            if not self._rd(_EPKTCNT):
                break
            self._bfs(_ECON2, _ECON2_PKTDEC)
        self._rx_pointers()
        self._bfc(_EIR, _EIR_RXERIF)
        self._bfs(_ECON1, _ECON1_RXEN)

    def _release(self, nxt):
        # errata #14: ERXRDPT must be odd: one below the next packet, low
        # byte first, in bank 0; then PKTDEC, once per packet, good or bad.
        # CS frames written inline (same traffic as _wr, _wr, _bfs: each
        # method call costs on an RP2040)
        rd = nxt - 1 if nxt != RX_START else RX_END
        spi = self.spi
        cs = self.cs
        o = self._o2
        t = 3
        bank = self._bank
        if bank:
            o[0] = _BFC | _ECON1
            o[1] = bank
            cs.value(0)
            spi.write(o)
            cs.value(1)
            t = 4
            self._bank = 0
        o[0] = _WCR | _ERXRDPTL
        o[1] = rd & 0xFF
        cs.value(0)
        spi.write(o)
        cs.value(1)
        o[0] = _WCR | (_ERXRDPTL + 1)
        o[1] = rd >> 8
        cs.value(0)
        spi.write(o)
        cs.value(1)
        o[0] = _BFS | _ECON2
        o[1] = _ECON2_PKTDEC
        cs.value(0)
        spi.write(o)
        cs.value(1)
        self.spi_transactions += t
        self.spi_bytes += 2 * t
        self._pending -= 1
        self._next = nxt

    def recv_into(self, mv):
        # Copy one received frame (without FCS) into mv; return its length or 0.
        # EPKTCNT/EIR reads and the header read are written inline (same
        # transactions, same order as _rd/_select/_cmd/_read_mem: each method
        # call costs on an RP2040).
        if self._tx_busy:
            self.flush()
        spi = self.spi
        cs = self.cs
        o = self._o2
        t = 0  # SPI transactions of the EPKTCNT/EIR reads (2 bytes each)
        if not self._pending:
            # errata #6: count with EPKTCNT (bank 1), never EIR.PKTIF
            if self._bank == 0:
                # bank 0 -> 1 (after a send or a release): ECON1.BSEL0 set inline
                o[0] = _BFS | _ECON1
                o[1] = 1
                cs.value(0)
                spi.write(o)
                cs.value(1)
                self._bank = 1
                self.spi_transactions += 1
                self.spi_bytes += 2
            elif self._bank != 1:
                self._select(_EPKTCNT)  # counts its own transactions
            i = self._i2
            o[0] = _RCR | (_EPKTCNT & 0x1F)
            cs.value(0)
            spi.write_readinto(o, i)
            cs.value(1)
            if not i[1]:
                self.spi_transactions += 1
                self.spi_bytes += 2
                return 0
            self._pending = i[1]
            o[0] = _RCR | _EIR
            cs.value(0)
            spi.write_readinto(o, i)
            cs.value(1)
            if i[1] & _EIR_RXERIF:
                self.overflows += 1
                self._bfc(_EIR, _EIR_RXERIF)  # counts its own transaction
            t = 2
        h = self._hdr
        # ERDPT already sits at the next packet
        cs.value(0)
        spi.write(self._rbm)
        spi.readinto(h)
        cs.value(1)
        self.spi_transactions += t + 1
        self.spi_bytes += 2 * t + 7
        nxt = h[0] | (h[1] << 8)
        count = h[2] | (h[3] << 8)
        expect = self._next + 6 + count
        expect += expect & 1
        if expect > RX_END:
            expect -= RX_END + 1 - RX_START
        if nxt != expect or nxt > RX_END or h[5] & 0x80:
            self._rx_reset()
            return 0
        flen = count - 4
        status = h[4]
        if status & 0x10 or not status & 0x80:  # CRC error / not received OK
            self.rx_dropped_crc += 1
        elif status & 0x20 or flen < 14 or flen > len(mv):  # length check
            self.rx_dropped_len += 1
        else:
            if not isinstance(mv, memoryview):
                mv = memoryview(mv)
            # frame, FCS and pad in one CS frame: ERDPT ends at the next packet
            cs.value(0)
            spi.write(self._rbm)
            spi.readinto(mv[:flen])
            spi.readinto(self._tail5 if count & 1 else self._tail4)
            cs.value(1)
            self.spi_transactions += 1
            self.spi_bytes += 6 + flen + (count & 1)
            self._release(nxt)
            self.rx_frames += 1
            return flen
        self._wr16(_ERDPTL, nxt)
        self._release(nxt)
        return 0

    # ---- transmit ----

    def _tx_reset(self):
        # errata #12: reset the TX logic; TXIF/TXERIF are cleared afterwards
        # because clearing TXRST can raise TXERIF
        self._bfc(_ECON1, _ECON1_TXRTS)
        self._bfs(_ECON1, _ECON1_TXRST)
        self._bfc(_ECON1, _ECON1_TXRST)

    def _late_collision(self, end):
        # errata #15: ESTAT.LATECOL is unreliable; TSV bit 29 is not
        self._wr16(_ERDPTL, end + 1)
        self._read_mem(self._tsv)
        self._wr16(_ERDPTL, self._next)  # RX relies on ERDPT at the next packet
        return self._tsv[3] & 0x20

    def send(self, mv, n):
        # Send the first n bytes of mv as one frame; True when it left (with
        # tx_dma, a long frame: True when handed over; flush() sends it).
        if self._tx_busy:
            self.flush()
        if n < 14 or n > MAX_FRAME:
            self.tx_errors += 1
            return False
        # EWRPT = TX_START (bank 0, low byte first): CS frames written inline
        # (same traffic as _wr16: each method call costs on an RP2040)
        spi = self.spi
        cs = self.cs
        o = self._o2
        t = 2
        if self._bank:
            o[0] = _BFC | _ECON1
            o[1] = self._bank
            cs.value(0)
            spi.write(o)
            cs.value(1)
            t = 3
            self._bank = 0
        o[0] = _WCR | _EWRPTL
        o[1] = TX_START & 0xFF
        cs.value(0)
        spi.write(o)
        cs.value(1)
        o[0] = _WCR | (_EWRPTL + 1)
        o[1] = TX_START >> 8
        cs.value(0)
        spi.write(o)
        cs.value(1)
        self.spi_transactions += t
        self.spi_bytes += 2 * t
        d = self._dma
        if d is not None and n >= _DMA_MIN:
            # the frame is copied (the caller reuses mv at once) and clocked
            # out by DMA after the control byte, in the CS frame opened here
            d[4][:n] = mv[:n]
            self._tx_n = n
            self._tx_busy = True
            cs.value(0)
            spi.write(self._wbm)
            d[1][7] = n         # rx channel: TRANS_COUNT_TRIG (drains MISO)
            t = d[0]
            t[0] = d[3]         # tx channel: READ_ADDR, the copy's start
            t[7] = n            # and TRANS_COUNT_TRIG
            return True
        if n != len(mv):
            if not isinstance(mv, memoryview):
                mv = memoryview(mv)
            mv = mv[:n]
        # control byte 0x00 (MACON3 rules) and the frame in one CS frame
        cs.value(0)
        spi.write(self._wbm)
        spi.write(mv)
        cs.value(1)
        self.spi_transactions += 1
        self.spi_bytes += 2 + n
        return self._transmit(n)

    def flush(self):
        # Finish a frame whose data DMA is still clocking out: wait for its
        # last byte, end its CS frame, then TXRTS. A caller about to idle
        # calls this first, or the frame leaves only at the next call.
        d = self._dma
        if self._tx_busy and d is not None:
            rx = d[2]
            while rx.active():
                pass
            self.cs.value(1)
            self._tx_busy = False
            self.spi_transactions += 1
            self.spi_bytes += 2 + self._tx_n
            self._transmit(self._tx_n)

    def _transmit(self, n):
        # The frame is in the TX area: ETXND, then TXRTS until it leaves
        end = TX_START + n
        if end != self._txnd:
            self._wr16(_ETXNDL, end)
            self._txnd = end
        spi = self.spi
        cs = self.cs
        o = self._o2
        i = self._i2
        for attempt in range(_TX_RETRIES + 1):
            # TXIF/TXERIF cleared, TXRTS set, EIR polled until the frame is
            # out: CS frames written inline (EIR and ECON1 are in every bank)
            o[0] = _BFC | _EIR
            o[1] = _EIR_TXIF | _EIR_TXERIF
            cs.value(0)
            spi.write(o)
            cs.value(1)
            o[0] = _BFS | _ECON1
            o[1] = _ECON1_TXRTS
            cs.value(0)
            spi.write(o)
            cs.value(1)
            o[0] = _RCR | _EIR
            eir = 0
            k = 0
            while k < _TX_POLLS:
                cs.value(0)
                spi.write_readinto(o, i)
                cs.value(1)
                k += 1
                eir = i[1]
                if eir & (_EIR_TXIF | _EIR_TXERIF):
                    break
            self.spi_transactions += 2 + k
            self.spi_bytes += 4 + 2 * k
            if eir & _EIR_TXIF and not eir & _EIR_TXERIF:
                self.tx_frames += 1
                return True
            # aborted or stalled; only late collisions and stalls are retried
            retry = not eir & _EIR_TXERIF or self._late_collision(end)
            self._tx_reset()
            if not retry or attempt == _TX_RETRIES:
                break
            self.tx_retries += 1
        self.tx_errors += 1
        return False

    # ---- link, filters, interrupts ----

    def link_up(self):
        return bool(self.phy_read(PHSTAT2) & 0x0400)  # LSTAT

    def link_changed(self):
        # True once after each link change (reads and clears PHIR.PLNKIF).
        return bool(self.phy_read(PHIR) & 0x10)

    def allow_multicast(self, on=True):
        # Accept every multicast destination (ERXFCON.MCEN), e.g. for mDNS.
        if on:
            self._rxfcon |= _RXFCON_MCEN
        else:
            self._rxfcon &= ~_RXFCON_MCEN
        # ERXFCON may only change while reception is off
        self._bfc(_ECON1, _ECON1_RXEN)
        self._wr(_ERXFCON, self._rxfcon)
        self._bfs(_ECON1, _ECON1_RXEN)

    def irq_pending(self):
        # INT pin asserted (active low); True when no INT pin is wired.
        if self.int_pin is None:
            return True
        return not self.int_pin.value()

