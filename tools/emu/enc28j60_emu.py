"""Register-level model of a Microchip ENC28J60 behind a fake SPI bus.

Host tool (written portably enough to also run under the MicroPython unix
port). Follows shared/HARDWARE.md 2.15.

    emu = ENC28J60Emu()
    nic = ENC28J60(emu.spi, emu.cs, rst=emu.rst, int_pin=emu.int_pin)
    emu.inject(frame)        # a frame arrives from the wire -> bool stored
    emu.tx_frames            # frames the chip sent (list), or emu.on_tx(frame)
    emu.attach(link); emu.service()   # a frame link (recv_into/send) as wire

Modelled: the 7 SPI instructions; 4 banks with the common 0x1B-0x1F; dummy
byte on MAC/MII reads; read-only registers; 8 KB memory with auto-increment
(RBM wraps ERXND -> ERXST, else 0x1FFF -> 0); RX ring with next-packet pointer
and 6-byte RSV, pad to even, ERXRDPT limit, EPKTCNT/PKTDEC, RXERIF on a full
ring or EPKTCNT = 255; TX with control byte, MACON3 padding/CRC, 7-byte TSV
after the frame; MII with BUSY for mii_busy_us of real time; PHY link
(PHSTAT2.LSTAT, latching-low PHSTAT1.LLSTAT, PHIR.PLNKIF -> EIR.LINKIF);
EIE/EIR/INT pin (active low); ERXFCON unicast/broadcast/multicast/CRC with
ANDOR; MAMXFL on receive; length check (FRMLNEN).
Not modelled: DMA, hash table, pattern match, magic packet, flow control,
power-save current, CLKOUT.

Model choices where HARDWARE.md says [U]: MISO is 0x00 during opcode bytes and
the dummy byte is pseudo-random; RCR repeats the value on extra clock bytes;
RXRST keeps EPKTCNT unless rxrst_clears_pktcnt; pointer reset values 0x05FA;
AUTOINC resets to autoinc_at_reset (1).

Errata switches (DS80349C numbers; True = behave like real silicon):
  errata_clkrdy_early (#2)  CLKRDY reads 1 at once, but writes within
                            settle_us of a reset are lost
  errata_rxst_wrpt (#5)     writing ERXST/ERXND loads 0 into the write pointer
  errata_pktif (#6)         EIR.PKTIF reads 0 although packets wait (the INT
                            pin still works)
  errata_hd_loopback (#9)   half duplex without PHCON2.HDLDIS: own TX frames
                            loop back into RX
  errata_txrst_txerif (#12) clearing TXRST raises TXERIF
  tx_stalls = n (#12)       the next n TXRTS never complete until TXRST
  late_collisions = n (#13) the next n half-duplex TX end in a late collision
  errata_even_rdpt (#14)    a packet stored while ERXRDPT is even gets a
                            corrupted next pointer
  errata_latecol (#15)      ESTAT.LATECOL never set
  errata_src_pwrsv (#19)    SRC ignored while ECON2.PWRSV is set
Fault hooks: miso_stuck (0x00/0xFF), bit_error_rate (seeded MISO flips),
set_link(up), corrupt_next_header(), pktcnt can be set directly.
Driver mistakes are appended to emu.violations (tests assert it stays empty).
"""
import time
from binascii import crc32

from fake_spi import FakePin, FakeSPI

try:
    from time import ticks_us, ticks_diff
except ImportError:
    def ticks_us():
        return int(time.perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b

# register indexes: bank * 32 + address; the common ones live in bank 0
EIE = 0x1B
EIR = 0x1C
ESTAT = 0x1D
ECON2 = 0x1E
ECON1 = 0x1F
ERDPTL = 0x00
EWRPTL = 0x02
ETXSTL = 0x04
ETXNDL = 0x06
ERXSTL = 0x08
ERXNDL = 0x0A
ERXRDPTL = 0x0C
ERXRDPTH = 0x0D
ERXWRPTL = 0x0E
ERXWRPTH = 0x0F
ERXFCON = 0x20 + 0x18
EPKTCNT = 0x20 + 0x19
MACON1 = 0x40 + 0x00
MACON3 = 0x40 + 0x02
MACON4 = 0x40 + 0x03
MAMXFLL = 0x40 + 0x0A
MAMXFLH = 0x40 + 0x0B
MICMD = 0x40 + 0x12
MIREGADR = 0x40 + 0x14
MIWRL = 0x40 + 0x16
MIWRH = 0x40 + 0x17
MIRDL = 0x40 + 0x18
MIRDH = 0x40 + 0x19
MISTAT = 0x60 + 0x0A
EREVID = 0x60 + 0x12
# MAADR registers in bank 3, in MAC byte order (HARDWARE.md 2.4)
MAADR = (0x64, 0x65, 0x62, 0x63, 0x60, 0x61)

# PHY registers
PHCON1 = 0x00
PHSTAT1 = 0x01
PHID1 = 0x02
PHID2 = 0x03
PHCON2 = 0x10
PHSTAT2 = 0x11
PHIE = 0x12
PHIR = 0x13
PHLCON = 0x14
_PHY_READ_ONLY = (PHSTAT1, PHID1, PHID2, PHSTAT2, PHIR)

# bits
TXIF = 0x08
TXERIF = 0x02
RXERIF = 0x01
PKTIF = 0x40
LINKIF = 0x10
TXRST = 0x80
RXRST = 0x40
TXRTS = 0x08
RXEN = 0x04
AUTOINC = 0x80
PKTDEC = 0x40
PWRSV = 0x20
UCEN, ANDOR, CRCEN, PMEN, MPEN, HTEN, MCEN, BCEN = 0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01

_READ_ONLY = (ERXWRPTL, ERXWRPTH, EPKTCNT, EREVID)


def is_mac_mii(idx):
    """MAC/MII registers answer RCR with a dummy byte and ignore BFS/BFC."""
    bank = idx >> 5
    addr = idx & 0x1F
    if addr >= 0x1B:
        return False
    return bank == 2 or (bank == 3 and (addr <= 0x05 or addr == 0x0A))


class ENC28J60Emu:
    def __init__(self, mac=None, revision=0x06, seed=1, clock_us=None):
        self.clock_us = clock_us or ticks_us   # the RP2040 bridge gives the board's simulated time
        self.revision = revision
        self.regs = bytearray(128)
        self.mem = bytearray(8192)
        self.phy = [0] * 32
        # errata switches (see module doc)
        self.errata_clkrdy_early = True
        self.errata_rxst_wrpt = True
        self.errata_pktif = False
        self.errata_hd_loopback = True
        self.errata_txrst_txerif = True
        self.errata_even_rdpt = True
        self.errata_latecol = True
        self.errata_src_pwrsv = True
        self.tx_stalls = 0
        self.late_collisions = 0
        # model choices and timing
        self.rxrst_clears_pktcnt = False
        self.autoinc_at_reset = 1
        self.settle_us = 1000
        self.mii_busy_us = 10.24
        # faults
        self.miso_stuck = None
        self.bit_error_rate = 0.0
        self._rng = seed or 1
        # wire
        self.link_is_up = True
        self.tx_frames = []
        self.on_tx = None
        self.link = None
        self.last_tx_crc = False
        # statistics and diagnostics
        self.violations = []
        self.cs_frames = 0
        self.econ1_writes = 0
        self.lost_writes = 0
        self.rx_stored = 0
        self.rx_filtered = 0
        self.rx_ignored = 0
        self.rx_overflow_drops = 0
        self.rx_too_long = 0
        self.tx_sent = 0
        self.tx_aborted = 0
        # pins and bus
        self.cs = FakePin(1)
        self.rst = FakePin(1, on_change=self._rst_edge)
        self.int_pin = FakePin(1)
        self.spi = FakeSPI()
        self.spi.attach(self, self.cs)
        self._held = False
        self._op = None
        self._reset()
        self._settled = True  # powered up long ago
        if mac is not None:
            for i in range(6):
                self.regs[MAADR[i]] = mac[i]

    # ---- reset ----

    def _reset(self):
        r = self.regs
        for i in range(128):
            r[i] = 0
        r[ECON2] = AUTOINC if self.autoinc_at_reset else 0
        for lo, v in ((ERDPTL, 0x05FA), (ERXSTL, 0x05FA), (ERXNDL, 0x1FFF),
                      (ERXRDPTL, 0x05FA), (ETXSTL, 0), (ETXNDL, 0)):
            r[lo] = v & 0xFF
            r[lo + 1] = v >> 8
        r[ERXFCON] = 0xA1
        r[0x48] = 0x0F  # MACLCON1
        r[0x49] = 0x37  # MACLCON2
        r[MAMXFLH] = 0x06
        self._rdpt = 0x05FA
        self._rdpt_low = 0xFA
        self.wrpt = 0
        self.pktcnt = 0
        self._tx_stalled = False
        self._mii_op = None
        self._mii_t0 = 0
        p = self.phy
        for i in range(32):
            p[i] = 0
        p[PHID1] = 0x0083
        p[PHID2] = 0x1400
        p[PHLCON] = 0x3422
        self._llstat = self.link_is_up
        self._plnkif = False
        self._reset_t = self.clock_us()
        self._settled = False

    def _rst_edge(self, level):
        self._held = not level
        if level:
            self._reset()

    def _is_settled(self):
        if not self._settled and ticks_diff(self.clock_us(), self._reset_t) >= self.settle_us:
            self._settled = True
        return self._settled

    # ---- SPI device protocol (fake_spi) ----

    def cs_low(self):
        self._op = None
        self._pos = 0
        self.cs_frames += 1

    def cs_high(self):
        self._op = None
        self._update_int()

    def transfer(self, out):
        n = len(out)
        if self.miso_stuck is not None or self._held:
            return bytes((0xFF if self._held else self.miso_stuck,)) * n
        res = bytearray(n)
        i = 0
        while i < n:
            op = self._op
            if op is None:
                self._begin(out[i])
                i += 1
            elif op == 0x3A:  # RBM
                res[i:] = self._mem_read(n - i)
                i = n
            elif op == 0x7A:  # WBM
                self._mem_write(out[i:])
                i = n
            elif op == 0x00:  # RCR
                if self._pos == 0 and is_mac_mii(self._reg):
                    res[i] = self._rand() & 0xFF  # dummy byte
                else:
                    if self._value is None:
                        self._value = self._read_reg(self._reg)
                    res[i] = self._value
                self._pos += 1
                i += 1
            elif op in (0x40, 0x80, 0xA0):  # WCR, BFS, BFC: one data byte
                if self._pos == 0:
                    self._command(op, self._reg, out[i])
                self._pos += 1
                i += 1
            else:  # SRC: extra bytes do nothing
                i += 1
        if self.bit_error_rate:
            for k in range(n):
                if self._rand() % 1000000 < self.bit_error_rate * 1000000:
                    res[k] ^= 1 << (self._rand() & 7)
        return bytes(res)

    def _rand(self):
        # xorshift32: seeded and portable
        x = self._rng
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._rng = x
        return x

    def _begin(self, b):
        if b == 0xFF:
            self._op = 0xFF
            if self.errata_src_pwrsv and self.regs[ECON2] & PWRSV:
                return  # errata #19
            self._reset()
            return
        op = b & 0xE0
        if b in (0x3A, 0x7A):
            op = b
        self._op = op
        self._reg = (self.regs[ECON1] & 3) * 32 + (b & 0x1F) if (b & 0x1F) < 0x1B else b & 0x1F
        self._value = None

    # ---- registers ----

    def _read_reg(self, idx):
        r = self.regs
        if idx == EIR:
            v = r[EIR] & 0x2F
            if self.pktcnt and not self.errata_pktif:
                v |= PKTIF
            if self._linkif():
                v |= LINKIF
            return v
        if idx == ESTAT:
            v = r[ESTAT] & 0x52
            if self.errata_clkrdy_early or self._is_settled():
                v |= 0x01
            if self._int_active():
                v |= 0x80
            return v
        if idx == ECON2:
            return r[ECON2] & 0xA8
        if idx == ERXWRPTL:
            return self.wrpt & 0xFF
        if idx == ERXWRPTH:
            return self.wrpt >> 8
        if idx == ERXRDPTL:
            return self._rdpt & 0xFF
        if idx == ERXRDPTH:
            return self._rdpt >> 8
        if idx == EPKTCNT:
            return self.pktcnt
        if idx == EREVID:
            return self.revision
        if idx == MISTAT:
            return 1 if self._mii_busy() else 0
        if idx in (MIRDL, MIRDH):
            self._mii_busy()
        return r[idx]

    def _command(self, op, idx, v):
        if idx == ECON1:
            self.econ1_writes += 1
        if op != 0x40:
            if is_mac_mii(idx):
                self.violations.append("BFS/BFC on MAC/MII register 0x%02X" % idx)
                return
            old = self.regs[idx]
            v = old | v if op == 0x80 else old & ~v & 0xFF
            if idx == ECON2 and op == 0xA0:
                v &= ~PKTDEC
        self._write_reg(idx, v)

    def _write_reg(self, idx, v):
        r = self.regs
        if self.errata_clkrdy_early and not self._is_settled():
            self.lost_writes += 1  # errata #2: the chip is not really up yet
            return
        if idx in _READ_ONLY:
            self.violations.append("write to read-only register 0x%02X" % idx)
            return
        if idx == ECON1:
            self._write_econ1(v)
        elif idx == ECON2:
            if v & PKTDEC:
                if self.pktcnt:
                    self.pktcnt -= 1
                v &= ~PKTDEC
            r[ECON2] = v
        elif idx == EIR:
            r[EIR] = v & 0x2F  # PKTIF/LINKIF are read-only
        elif idx == ESTAT:
            r[ESTAT] = v & 0x52
        elif idx in (ERXSTL, ERXSTL + 1, ERXNDL, ERXNDL + 1, ERXFCON):
            if r[ECON1] & RXEN:
                self.violations.append("register 0x%02X changed while RXEN" % idx)
            r[idx] = v
            if idx != ERXFCON:
                # errata #5: the internal write pointer is loaded with 0
                self.wrpt = 0 if self.errata_rxst_wrpt else self._get16(ERXSTL)
        elif idx == ERXRDPTL:
            self._rdpt_low = v  # takes effect when the high byte is written
        elif idx == ERXRDPTH:
            self._rdpt = ((v & 0x1F) << 8) | self._rdpt_low
            if not self._rdpt & 1:
                self.violations.append("even ERXRDPT 0x%04X (errata #14)" % self._rdpt)
        elif idx == MICMD:
            if v & 1 and not r[MICMD] & 1:
                self._mii_start(("r", r[MIREGADR] & 0x1F))
            r[idx] = v
        elif idx == MIWRH:
            r[idx] = v
            self._mii_start(("w", r[MIREGADR] & 0x1F, r[MIWRL] | (v << 8)))
        else:
            r[idx] = v

    def _write_econ1(self, v):
        r = self.regs
        old = r[ECON1]
        r[ECON1] = v
        if v & TXRST:
            self._tx_stalled = False
            r[ECON1] &= ~TXRTS
        elif old & TXRST and self.errata_txrst_txerif:
            r[EIR] |= TXERIF  # errata #12
        if v & RXRST and not old & RXRST:
            self.wrpt = self._get16(ERXSTL)
            if self.rxrst_clears_pktcnt:
                self.pktcnt = 0
        if v & TXRTS and not old & TXRTS and not v & TXRST:
            self._transmit()

    def _get16(self, lo):
        return self.regs[lo] | ((self.regs[lo + 1] & 0x1F) << 8)

    def _set16(self, lo, v):
        self.regs[lo] = v & 0xFF
        self.regs[lo + 1] = (v >> 8) & 0x1F

    # ---- buffer memory ----

    def _mem_read(self, n):
        r = self.regs
        p = self._get16(ERDPTL)
        if not r[ECON2] & AUTOINC:
            return bytes((self.mem[p],)) * n
        st = self._get16(ERXSTL)
        nd = self._get16(ERXNDL)
        out = bytearray()
        while n:
            # read up to the next wrap point: ERXND inside the RX window, else 0x1FFF
            stop = nd if st <= p <= nd else 0x1FFF
            k = min(n, stop - p + 1)
            out += self.mem[p:p + k]
            n -= k
            p += k
            if p == stop + 1:
                p = st if stop == nd else 0
        self._set16(ERDPTL, p)
        return out

    def _mem_write(self, data):
        r = self.regs
        p = self._get16(EWRPTL)
        if not r[ECON2] & AUTOINC:
            self.mem[p] = data[len(data) - 1]
            return
        i = 0
        n = len(data)
        while i < n:
            k = min(n - i, 0x2000 - p)
            self.mem[p:p + k] = data[i:i + k]
            i += k
            p = (p + k) & 0x1FFF
        self._set16(EWRPTL, p)

    def _ring_write(self, p, data):
        # the receive side wraps at ERXND back to ERXST
        st = self._get16(ERXSTL)
        nd = self._get16(ERXNDL)
        i = 0
        n = len(data)
        while i < n:
            stop = nd if st <= p <= nd else 0x1FFF
            k = min(n - i, stop - p + 1)
            self.mem[p:p + k] = data[i:i + k]
            i += k
            p += k
            if p == stop + 1:
                p = st if stop == nd else 0
        return p

    # ---- MII / PHY ----

    def _mii_start(self, op):
        self._mii_op = op
        self._mii_t0 = self.clock_us()

    def _mii_busy(self):
        op = self._mii_op
        if op is None:
            return False
        if ticks_diff(self.clock_us(), self._mii_t0) < self.mii_busy_us:
            return True
        self._mii_op = None
        if op[0] == "r":
            v = self._phy_read(op[1])
            self.regs[MIRDL] = v & 0xFF
            self.regs[MIRDH] = v >> 8
        else:
            self._phy_write(op[1], op[2])
        return False

    def _phy_read(self, reg):
        p = self.phy
        if reg == PHSTAT1:
            v = 0x1800 | (0x04 if self._llstat else 0)
            self._llstat = self.link_is_up  # latch re-arms on read
            return v
        if reg == PHSTAT2:
            return (0x0400 if self.link_is_up else 0) | (0x0200 if p[PHCON1] & 0x0100 else 0)
        if reg == PHIR:
            v = 0x10 if self._plnkif else 0
            self._plnkif = False
            return v
        return p[reg]

    def _phy_write(self, reg, v):
        if reg in _PHY_READ_ONLY:
            self.violations.append("write to read-only PHY register 0x%02X" % reg)
            return
        self.phy[reg] = v & 0x7FFF if reg == PHCON1 else v  # PRST self-clears

    def _linkif(self):
        return self._plnkif and self.phy[PHIE] & 0x12 == 0x12

    def set_link(self, up):
        """Plug (True) or unplug (False) the cable."""
        up = bool(up)
        if up == self.link_is_up:
            return
        self.link_is_up = up
        self._plnkif = True
        if not up:
            self._llstat = False
        self._update_int()

    # ---- interrupts ----

    def _int_active(self):
        r = self.regs
        if not r[EIE] & 0x80:
            return False
        flags = r[EIR] & 0x2F
        if self.pktcnt:
            flags |= PKTIF
        if self._linkif():
            flags |= LINKIF
        return bool(flags & r[EIE] & 0x7F)

    def _update_int(self):
        self.int_pin.drive(0 if self._int_active() else 1)

    # ---- transmit ----

    def _transmit(self):
        r = self.regs
        if self._tx_stalled or self.tx_stalls:
            if self.tx_stalls:
                self.tx_stalls -= 1
            self._tx_stalled = True  # errata #12: TXRTS stays set, no flags
            return
        st = self._get16(ETXSTL)
        nd = self._get16(ETXNDL)
        rxs = self._get16(ERXSTL)
        rxe = self._get16(ERXNDL)
        if nd < st or not (nd + 7 < rxs or st > rxe):
            self.violations.append("TX area 0x%04X-0x%04X overlaps RX ring" % (st, nd + 7))
        ctrl = self.mem[st]
        frame = bytearray(self.mem[st + 1:nd + 1])
        macon3 = r[MACON3]
        if ctrl & 1:
            pad, crc, huge = ctrl & 4, ctrl & 2, ctrl & 8
        else:
            pad, crc, huge = macon3 & 0xE0, macon3 & 0x10, macon3 & 0x04
        if pad and len(frame) < 60:
            frame += bytes(60 - len(frame))
        wire_len = len(frame) + (4 if crc else 0)
        full = macon3 & 1
        if bool(full) != bool(self.phy[PHCON1] & 0x0100):
            self.violations.append("duplex differs: MACON3.FULDPX vs PHCON1.PDPXMD")
        late = False
        if not full and self.late_collisions:
            self.late_collisions -= 1
            late = True
        giant = not huge and wire_len > self._get16(MAMXFLL)
        tsv = bytearray(7)
        tsv[0] = wire_len & 0xFF
        tsv[1] = wire_len >> 8
        if frame[0] == 0xFF and frame[:6] == b"\xff" * 6:
            tsv[3] |= 0x02
        elif frame[0] & 1:
            tsv[3] |= 0x01
        if late:
            tsv[3] |= 0x20
        if giant:
            tsv[3] |= 0x40
        tsv[4] = tsv[0]
        tsv[5] = tsv[1]
        if late or giant:
            self.tx_aborted += 1
            r[EIR] |= TXERIF
            r[ESTAT] |= 0x02  # TXABRT
            if late and not self.errata_latecol:
                r[ESTAT] |= 0x10
        else:
            tsv[2] |= 0x80  # done
            self.tx_sent += 1
            self.last_tx_crc = bool(crc)
            if self.link_is_up:
                self._deliver(bytes(frame))
            if (not full and not self.phy[PHCON2] & 0x0100 and self.errata_hd_loopback):
                self.inject(frame)  # errata #9: half-duplex loopback
        p = (nd + 1) & 0x1FFF
        for b in tsv:
            self.mem[p] = b
            p = (p + 1) & 0x1FFF
        r[EIR] |= TXIF
        r[ECON1] &= ~TXRTS

    def _deliver(self, frame):
        if self.link is not None:
            self.link.send(memoryview(bytearray(frame)), len(frame))
        elif self.on_tx is not None:
            self.on_tx(frame)
        else:
            self.tx_frames.append(frame)

    # ---- receive ----

    def _accepts(self, frame, crc_ok):
        f = self.regs[ERXFCON]
        if not f:
            return True  # promiscuous, bad CRC included
        if f & CRCEN and not crc_ok:
            return False
        da = frame[:6]
        results = []
        if f & UCEN:
            results.append(da == bytes([self.regs[a] for a in MAADR]))
        if f & BCEN:
            results.append(da == b"\xff" * 6)
        if f & MCEN:
            results.append(bool(da[0] & 1))
        if f & (HTEN | PMEN | MPEN):
            results.append(False)  # not modelled
        if not results:
            return True
        if f & ANDOR:
            return all(results)
        return any(results)

    def inject(self, frame, bad_crc=False):
        """A frame (without FCS) arrives from the wire; True when stored."""
        frame = bytes(frame)
        if len(frame) < 60:
            frame += bytes(60 - len(frame))  # the sender pads
        if not self.regs[ECON1] & RXEN or not self.link_is_up or self._held:
            self.rx_ignored += 1
            return False
        fcs = (crc32(frame) & 0xFFFFFFFF).to_bytes(4, "little")
        if bad_crc:
            fcs = bytes((fcs[0] ^ 0xFF,)) + fcs[1:]
        if not self._accepts(frame, not bad_crc):
            self.rx_filtered += 1
            return False
        count = len(frame) + 4
        macon3 = self.regs[MACON3]
        if count > self._get16(MAMXFLL) and not macon3 & 0x04:
            self.rx_too_long += 1
            return False
        st = self._get16(ERXSTL)
        nd = self._get16(ERXNDL)
        size = nd - st + 1
        need = 6 + count + (count & 1)
        room = (self._rdpt - self.wrpt) % size if size > 0 else 0
        if room == 0:
            room = size - 1
        if need > room or self.pktcnt >= 255:
            self.rx_overflow_drops += 1
            self.regs[EIR] |= RXERIF
            self._update_int()
            return False
        start = self.wrpt
        nxt = start + need
        if nxt > nd:
            nxt -= size
        s4 = 0x10 if bad_crc else 0x80
        typelen = (frame[12] << 8) | frame[13]
        if typelen > 1500:
            s4 |= 0x40  # length out of range: a type field, normal
        elif macon3 & 0x02:
            payload = len(frame) - 14
            if typelen != payload and not (payload == 46 and typelen < 46):
                s4 |= 0x20  # length check error
        s5 = 0
        if frame[:6] == b"\xff" * 6:
            s5 |= 0x02
        elif frame[0] & 1:
            s5 |= 0x01
        stored_next = nxt
        if self.errata_even_rdpt and not self._rdpt & 1:
            stored_next ^= 0x0001  # errata #14: corrupted next pointer
        hdr = bytes((stored_next & 0xFF, stored_next >> 8, count & 0xFF, count >> 8, s4, s5))
        p = self._ring_write(start, hdr)
        self._ring_write(p, frame + fcs)
        self.wrpt = nxt
        self.pktcnt += 1
        self.rx_stored += 1
        self._update_int()
        return True

    def corrupt_next_header(self):
        """Scribble on the header of the oldest unread packet (a 'deaf' chip)."""
        st = self._get16(ERXSTL)
        nd = self._get16(ERXNDL)
        p = st if self._rdpt == nd else self._rdpt + 1
        self.mem[p] ^= 0x55
        self.mem[p + 1] ^= 0x0A

    # ---- frame link as the wire ----

    def attach(self, link):
        """Put a frame link (recv_into/send, e.g. a TAP NIC) on the wire."""
        self.link = link
        self._wire_buf = memoryview(bytearray(1518))

    def service(self, limit=64):
        """Move frames from the link into the chip; return how many arrived."""
        n = 0
        while n < limit:
            k = self.link.recv_into(self._wire_buf)
            if not k:
                break
            self.inject(self._wire_buf[:k])
            n += 1
        return n
