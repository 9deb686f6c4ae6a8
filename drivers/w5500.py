"""WIZnet W5500 driver: socket 0 in MACRAW mode passes raw Ethernet frames.

Register facts come from shared/HARDWARE.md section 1 ([V2] facts only).
Socket 0 gets all 16 KB of RX and TX buffer. Frame data moves in one SPI
transaction per frame, straight between the chip and the caller's buffer.

SPI cost per frame (measured against tools/emu/w5500_emu.py, see host_tests):
receive 6 transactions for a lone frame (RSR+RX_RD read twice, header and
payload in one CS frame, RX_RD write, RECV, Sn_CR check) and 4 for each
further frame already known to be waiting; send 7 (FSR..TX_WR read twice,
data, TX_WR, SEND, Sn_CR+Sn_IR poll, SEND_OK clear). The only allocation per
frame is the memoryview slice the SPI call needs (two for a padded frame).
recv_into() needs a memoryview (a bytearray slice would be a copy).

tx_dma=True (on an RP2040's own SPI; ignored elsewhere): a frame of 512 B or
more is copied into a buffer of the driver's (1.5 KB) and clocked out by two
DMA channels (two memoryview slices per frame), and send() returns at once:
the CPU builds the next segment while the bus runs (a 1514 B frame is 1 ms of
SPI at the 12 MHz a 20 MHz request gets from the RP2040's 48 MHz peripheral
clock). The frame is finished (CS up, Sn_TX_WR, SEND, SEND_OK) by the next
call of the driver, so a loop about to sleep calls flush() first
(firmware/main.py does); a device sharing the SPI bus must not be used
before then.

The bring-up (reset, chip check, buffer sizes, first OPEN) is
drivers/w5500_setup.py, loaded by the constructor and dropped after: on a
stock board code is heap.

Multicast (HARDWARE.md 1.12): with MFEN=1 the chip accepts frames for SHAR
and broadcast, and whether it passes multicast is unspecified (reports say
some is dropped). So accept_multicast=True clears MFEN as well as MMB: the
chip is then promiscuous and the stack's Ethernet layer drops unicast frames
meant for other hosts. accept_multicast=False sets MFEN|MMB. Filter bits are
set before OPEN (changes after OPEN are [U]), so changing them reopens socket 0.
"""
try:
    from micropython import const  # type: ignore  (typed differently by the stubs)
except ImportError:
    def const(x):
        return x

from uipy.compat import ticks_ms, ticks_diff

# len() runs for every SPI frame: as a module global it is found at once,
# where a builtin is first missed in this module's globals (about 20 us
# less per received frame on the emulated RP2040)
len = len

# common registers (block 0)
_PHYCFGR = const(0x002E)
# socket registers
_SN_MR = const(0x0000)
_SN_CR = const(0x0001)
_SN_IR = const(0x0002)
_SN_SR = const(0x0003)
_SN_TX_FSR = const(0x0020)
_SN_TX_WR = const(0x0024)
_SN_RX_RSR = const(0x0026)
_SN_RX_RD = const(0x0028)
_SN_RX_WR = const(0x002A)
_QUIET_POLLS = const(20)  # with INTn wired, empty polls between two Sn_RX_RSR reads
# control bytes: BSB << 3 | RWB << 2, variable-length mode
_COMMON_R = const(0x00)
_S0_R = const(0x08)
_S0_W = const(0x0C)
_S0_TX_W = const(0x14)
_S0_RX_R = const(0x18)
# values
_MACRAW = const(0x04)
_MFEN = const(0x80)
_MMB = const(0x20)
_MIP6B = const(0x10)
_CMD_OPEN = const(0x01)
_CMD_CLOSE = const(0x10)
_CMD_SEND = const(0x20)
_CMD_RECV = const(0x40)
_SOCK_MACRAW = const(0x42)
_IR_SEND_OK = const(0x10)
_IR_RECV = const(0x04)
_BUF_SIZE = const(16384)
_MIN_FRAME = const(60)
_MAX_FRAME = const(1514)
_CMD_TIMEOUT_MS = const(100)
_DMA_MIN = const(512)    # shorter frames take less SPI time than DMA's set-up saves
_COUNT_MASK = const(0x3FFFFFFF)  # counters wrap before they become heap ints
# whole CS frames the send path writes as they are: SEND into Sn_CR; a read of
# Sn_CR and Sn_IR (3 header bytes, 2 dummies); SEND_OK cleared in Sn_IR
_SEND_CMD = b"\x00\x01\x0c\x20"
_CR_IR_READ = b"\x00\x01\x08\x00\x00"
_CLEAR_SEND_OK = b"\x00\x02\x0c\x10"
# and the receive path's: Sn_RX_RSR and Sn_RX_RD read (3 + 4 bytes); RECV into
# Sn_CR; a read of Sn_CR
_RSR_READ = b"\x00\x26\x08\x00\x00\x00\x00"
_RECV_CMD = b"\x00\x01\x0c\x40"
_CR_READ = b"\x00\x01\x08\x00"


class W5500Error(OSError):
    """The chip is missing, miswired or would not enter MACRAW mode."""


class W5500:
    def __init__(self, spi, cs, rst=None, int_pin=None, mac=b"\x02\x00\x00\x55\x00\x01",
                 accept_multicast=False, block_ipv6=True, tx_timeout_ms=100, tx_dma=False):
        self.spi = spi
        self.cs = cs
        self.int_pin = int_pin
        self.mac = bytes(mac)
        self.tx_timeout_ms = tx_timeout_ms
        # one per CS frame / bytes clocked with headers; both wrap at 2**30
        self.spi_transactions = 0
        self.spi_bytes = 0
        self.stats = {"rx_frames": 0, "tx_frames": 0, "rx_errors": 0, "tx_errors": 0,
                      "tx_timeouts": 0, "recoveries": 0, "cmd_timeouts": 0}
        # preallocated buffers: 3 header bytes followed by the register data
        self._r1 = bytearray(4)
        self._r2 = bytearray(5)
        self._r4 = bytearray(7)
        self._r6 = bytearray(9)
        self._w1 = bytearray(4)
        self._w2 = bytearray(5)
        self._hdr = bytearray(3)
        self._txwr = bytearray(b"\x00\x24\x0c\x00\x00")  # Sn_TX_WR write
        self._len = bytearray(2)
        self._pad = memoryview(bytearray(_MIN_FRAME))
        self._rx_rd = 0     # chip's RX read pointer, as we last wrote it
        self._rx_avail = 0  # bytes of complete frames known to wait at _rx_rd
        self._tx_failed = False
        self._tx_wr = -1    # Sn_TX_WR as we last wrote it (-1: read it from the chip)
        self._quiet = 0     # polls answered from the INTn level alone
        self._block_ipv6 = block_ipv6
        self._mode = 0
        # tx_dma (w5500_setup.dma): frame data leaves by DMA while the caller
        # goes on; the frame is finished (Sn_TX_WR, SEND) at the next call
        self._dma = None    # (tx registers, rx registers, rx channel, buffer address, buffer)
        self._tx_busy = False  # a frame's data written, its CS frame open: flush() ends it
        self._tx_end = 0    # Sn_TX_WR after that frame, and its size
        self._tx_size = 0

        # reset, chip check, buffer sizes, socket 0 opened: set-up code,
        # imported for the call and dropped after (on a stock board code is heap)
        import sys
        import w5500_setup
        try:
            w5500_setup.init(self, rst, accept_multicast)
            if tx_dma:
                w5500_setup.dma(self, tx_dma)
        finally:
            sys.modules.pop("w5500_setup", None)

    # ------------------------------------------------------------ SPI frames
    def _read(self, addr, ctrl, buf):
        """One CS frame reading len(buf) - 3 bytes into buf[3:]."""
        if self._tx_busy:
            self.flush()
        buf[0] = addr >> 8
        buf[1] = addr & 0xFF
        buf[2] = ctrl
        self.cs.value(0)
        try:
            self.spi.write_readinto(buf, buf)
        finally:
            self.cs.value(1)
        self.spi_transactions = (self.spi_transactions + 1) & _COUNT_MASK
        self.spi_bytes = (self.spi_bytes + len(buf)) & _COUNT_MASK

    def _write(self, addr, ctrl, buf):
        """One CS frame writing buf[3:]."""
        if self._tx_busy:
            self.flush()
        buf[0] = addr >> 8
        buf[1] = addr & 0xFF
        buf[2] = ctrl
        self.cs.value(0)
        try:
            self.spi.write(buf)
        finally:
            self.cs.value(1)
        self.spi_transactions = (self.spi_transactions + 1) & _COUNT_MASK
        self.spi_bytes = (self.spi_bytes + len(buf)) & _COUNT_MASK

    def _read8(self, addr, ctrl):
        self._read(addr, ctrl, self._r1)
        return self._r1[3]

    def _write8(self, addr, ctrl, v):
        self._w1[3] = v
        self._write(addr, ctrl, self._w1)

    def _read_stable(self, addr, buf):
        """Burst-read socket-0 registers from addr until the leading 16-bit
        field reads the same twice (HARDWARE.md 1.8). Returns the value, or -1
        if it never settles."""
        self._read(addr, _S0_R, buf)
        v = (buf[3] << 8) | buf[4]
        for _ in range(4):
            self._read(addr, _S0_R, buf)
            w = (buf[3] << 8) | buf[4]
            if w == v:
                return v
            v = w
        return -1

    # ------------------------------------------------------------ bring-up
    def _command(self, cmd):
        """cmd into Sn_CR (0: already written), then a bounded wait for the
        chip to clear Sn_CR, which it does once it has taken the command."""
        if cmd:
            self._write8(_SN_CR, _S0_W, cmd)
        b = self._r1
        t0 = -1
        while True:
            self._read(_SN_CR, _S0_R, b)
            if b[3] == 0:
                return True
            if t0 < 0:
                t0 = ticks_ms()
            elif ticks_diff(ticks_ms(), t0) > _CMD_TIMEOUT_MS:
                self.stats["cmd_timeouts"] += 1
                return False

    def _open(self):
        """(Re)open socket 0 in MACRAW with the current filter mode."""
        self._rx_avail = 0
        self._tx_wr = -1    # unknown until read from the chip at the next send
        for _ in range(3):
            self._command(_CMD_CLOSE)
            self._write8(_SN_MR, _S0_W, self._mode)
            self._command(_CMD_OPEN)
            if self._read8(_SN_SR, _S0_R) == _SOCK_MACRAW:
                self._write8(_SN_IR, _S0_W, 0xFF)
                return
        raise W5500Error("W5500 socket 0 would not open in MACRAW mode")

    def _reopen(self):
        self.stats["recoveries"] += 1
        try:
            self._open()
        except OSError:
            pass  # counted; the next call tries again through recovery

    def allow_multicast(self, on):
        """Accept multicast (and so all frames) or block it; reopens socket 0."""
        mode = _MACRAW | (_MIP6B if self._block_ipv6 else 0)
        if not on:
            mode |= _MFEN | _MMB
        self._mode = mode
        self._open()

    # ------------------------------------------------------------ NIC API
    def link_up(self):
        return bool(self._read8(_PHYCFGR, _COMMON_R) & 1)

    def irq_pending(self):
        """True when INTn is asserted (a frame arrived); True without an INT pin."""
        return self.int_pin is None or self.int_pin.value() == 0

    def recv_into(self, mv):
        if self._tx_busy:
            self.flush()
        if self._rx_avail == 0:
            p = self.int_pin
            if p is not None and p.value() and self._quiet < _QUIET_POLLS:
                # INTn is high: no RECV flag, so nothing arrived since we last
                # looked (HARDWARE.md 1.15: a level, not an edge); Sn_RX_RSR is still
                # read every _QUIET_POLLS-th poll in case an interrupt was lost
                self._quiet += 1
                return 0
            self._quiet = 0
            rsr = self._rx_waiting()
            if rsr == 0 and p is not None and p.value() == 0:
                # clear RECV before looking again, so a frame landing now re-asserts INTn
                self._write8(_SN_IR, _S0_W, _IR_RECV)
                rsr = self._rx_waiting()
            if rsr <= 0:
                return 0
            self._rx_avail = rsr
        ptr = self._rx_rd
        h = self._hdr
        h[0] = ptr >> 8
        h[1] = ptr & 0xFF
        h[2] = _S0_RX_R
        ln = self._len
        spi = self.spi
        cs = self.cs
        # length header and payload in one CS frame
        try:
            cs.value(0)
            spi.write(h)
            spi.readinto(ln)
            size = (ln[0] << 8) | ln[1]
            n = size - 2
            ok = _MIN_FRAME <= n <= _MAX_FRAME and size <= self._rx_avail
            if ok and n <= len(mv):
                spi.readinto(mv[:n])
            cs.value(1)
            if ok:
                # Sn_RX_RD, RECV, then the Sn_CR poll: CS frames written inline
                # (no _write/_command calls: each call costs on an RP2040)
                ptr = (ptr + size) & 0xFFFF
                w = self._w2
                w[0] = 0
                w[1] = _SN_RX_RD
                w[2] = _S0_W
                w[3] = ptr >> 8
                w[4] = ptr & 0xFF
                cs.value(0)
                spi.write(w)
                cs.value(1)
                cs.value(0)
                spi.write(_RECV_CMD)
                cs.value(1)
                r = self._r1
                cs.value(0)
                spi.write_readinto(_CR_READ, r)
                cs.value(1)
        finally:
            cs.value(1)
        if not ok:
            self.spi_transactions = (self.spi_transactions + 1) & _COUNT_MASK
            self.spi_bytes = (self.spi_bytes + 5) & _COUNT_MASK
            self._rx_recover()
            return 0
        self.spi_transactions = (self.spi_transactions + 4) & _COUNT_MASK
        self._rx_rd = ptr
        self._rx_avail -= size
        if r[3]:  # Sn_CR not cleared yet: _command's bounded wait
            self._command(0)
        if n > len(mv):  # caller's buffer too small: frame skipped
            self.spi_bytes = (self.spi_bytes + 18) & _COUNT_MASK
            self.stats["rx_errors"] += 1
            return 0
        self.spi_bytes = (self.spi_bytes + 18 + n) & _COUNT_MASK
        self.stats["rx_frames"] += 1
        return n

    def _rx_waiting(self):
        """Bytes waiting, loading _rx_rd; 0 none, -1 after a recovery. Sn_RX_RSR
        (with Sn_RX_RD behind it) is read until it reads the same twice
        (HARDWARE.md 1.8), at most 5 reads: CS frames written inline."""
        b = self._r4
        spi = self.spi
        cs = self.cs
        v = 0  # a first reading of 0 is taken as it is
        try:
            for k in range(1, 6):
                cs.value(0)
                spi.write_readinto(_RSR_READ, b)
                cs.value(1)
                w = (b[3] << 8) | b[4]
                if w == v:
                    break
                v = w
            else:
                w = -1  # never read the same twice
        finally:
            cs.value(1)
        self.spi_transactions = (self.spi_transactions + k) & _COUNT_MASK
        self.spi_bytes = (self.spi_bytes + 7 * k) & _COUNT_MASK
        if w == 0:
            return 0
        if w < 0 or w > _BUF_SIZE:
            self._rx_recover()
            return -1
        self._rx_rd = (b[5] << 8) | b[6]
        return w

    def _rx_recover(self):
        """Bad length header or pointers: drop everything waiting (RX_RD = RX_WR)."""
        self.stats["rx_errors"] += 1
        self.stats["recoveries"] += 1
        self._rx_avail = 0
        wr = self._read_stable(_SN_RX_WR, self._r2)
        if wr < 0:
            self._reopen()
            return
        w = self._w2
        w[3] = wr >> 8
        w[4] = wr & 0xFF
        self._write(_SN_RX_RD, _S0_W, w)
        if not self._command(_CMD_RECV):
            self._reopen()

    def send(self, mv, n):
        if self._tx_busy:
            self.flush()
        if n < 14 or n > _MAX_FRAME:
            self.stats["tx_errors"] += 1
            return False
        if self._tx_failed:
            # after a timeout, check the link first rather than block again
            if not self.link_up():
                self.stats["tx_errors"] += 1
                return False
            self._tx_failed = False
        size = n if n >= _MIN_FRAME else _MIN_FRAME
        ptr = self._tx_wr
        if ptr < 0:
            # first send since the socket opened: free space and write pointer
            # from the chip; after that the buffer is empty again at every
            # SEND_OK and only we move Sn_TX_WR, so they are known
            b = self._r6
            free = self._read_stable(_SN_TX_FSR, b)
            if free < size:
                # nothing else sends on socket 0, so the buffer should be empty
                self.stats["tx_errors"] += 1
                self._reopen()
                return False
            ptr = (b[7] << 8) | b[8]
        end = (ptr + size) & 0xFFFF
        self._tx_end = end
        self._tx_size = size
        self._tx_busy = True
        h = self._hdr
        h[0] = ptr >> 8
        h[1] = ptr & 0xFF
        h[2] = _S0_TX_W
        spi = self.spi
        cs = self.cs
        d = self._dma
        cs.value(0)
        try:
            spi.write(h)
            if d is not None and n >= _DMA_MIN:
                # the frame is copied (the caller reuses mv at once) and
                # clocked out by DMA in this CS frame, which flush() ends
                d[4][:n] = mv[:n]
                d[1][7] = n     # rx channel: TRANS_COUNT_TRIG (drains MISO)
                t = d[0]
                t[0] = d[3]     # tx channel: READ_ADDR, the copy's start
                t[7] = n        # and TRANS_COUNT_TRIG
                return True
            spi.write(mv if n == len(mv) else mv[:n])
            if n < size:  # pad short frames with zeros
                spi.write(self._pad[n:])
        except Exception:
            cs.value(1)
            self._tx_busy = False
            raise
        return self.flush()

    def flush(self):
        """Finish the frame whose data was written (by DMA, maybe still under
        way: wait for its last byte): end its CS frame, then Sn_TX_WR, SEND and
        the wait for SEND_OK (HARDWARE.md 1.10 steps 4-6). send() calls it for
        a frame it writes itself; with tx_dma a caller about to idle calls it,
        or the frame leaves only at the driver's next call. False when the
        frame could not be sent (counted)."""
        if not self._tx_busy:
            return True
        self._tx_busy = False
        d = self._dma
        if d is not None:
            rx = d[2]
            while rx.active():
                pass
        end = self._tx_end
        w = self._txwr
        w[3] = end >> 8
        w[4] = end & 0xFF
        # Sn_TX_WR, SEND, the Sn_CR+Sn_IR poll, SEND_OK cleared: CS frames
        # written inline (no _write calls: each call costs on an RP2040)
        spi = self.spi
        cs = self.cs
        r = self._r2
        k = 0
        ok = False
        try:
            cs.value(1)
            cs.value(0)
            spi.write(w)
            cs.value(1)
            cs.value(0)
            spi.write(_SEND_CMD)
            cs.value(1)
            # wait for Sn_CR == 0 and SEND_OK together (Sn_CR, Sn_IR are adjacent)
            t0 = -1
            while True:
                cs.value(0)
                spi.write_readinto(_CR_IR_READ, r)
                cs.value(1)
                k += 1
                if r[3] == 0 and r[4] & _IR_SEND_OK:
                    cs.value(0)
                    spi.write(_CLEAR_SEND_OK)
                    cs.value(1)
                    ok = True
                    break
                if t0 < 0:
                    t0 = ticks_ms()
                elif ticks_diff(ticks_ms(), t0) > self.tx_timeout_ms:
                    break
        finally:
            cs.value(1)
        # data, Sn_TX_WR, SEND, the polls, the clear
        self.spi_transactions = (self.spi_transactions + 3 + k + ok) & _COUNT_MASK
        self.spi_bytes = (self.spi_bytes + 12 + self._tx_size + 5 * k + 4 * ok) & _COUNT_MASK
        if not ok:
            # no SEND_OK: link down or chip stuck; reopen to drop the frame
            self.stats["tx_timeouts"] += 1
            self._tx_failed = True
            self._reopen()
            return False
        self._tx_wr = end
        self.stats["tx_frames"] += 1
        return True
