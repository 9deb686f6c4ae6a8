"""Register-level model of a WIZnet W5500 behind a fake SPI bus (host only).

Follows shared/HARDWARE.md 1.16. What is modelled:
- SPI frames in VDM: 2-byte address, control byte (BSB, RWB, OM), data with
  16-bit auto-increment; MISO returns 0x01 0x02 0x03 during the header.
- common registers, 8 socket register blocks, 16 KB TX and RX memories split
  between sockets from the Sn_RXBUF_SIZE / Sn_TXBUF_SIZE registers; a buffer
  block accepts any 16-bit offset and maps it to offset & (size - 1).
- read-only and write-1-to-clear registers, MR.RST, commands OPEN / CLOSE /
  SEND / RECV on socket 0 in MACRAW, RX frames stored as BE16(len + 2) + frame.
- PHYCFGR link status, INTn (low while IR & IMR or SIR & SIMR), MAC filter
  (MFEN, BCASTB, MMB, MIP6B) latched at OPEN.

Model choices where HARDWARE.md says [U]: Sn_MR filter bits take effect at
OPEN only (so drivers must reopen to change them); with MFEN=1 multicast is
dropped (the strict reading of the MFEN description); a SEND while the link
is down waits (no SEND_OK) until the link comes up or the socket closes;
pointers after OPEN are `open_pointer` (0 unless a test sets it); INTLEVEL is
ignored; frames shorter than 60 bytes are padded with zeros on the "wire" as
the sending MAC would; TX frames leave as written (no padding by the chip).

Fault hooks (attributes and methods): miso_stuck (0x00 / 0xFF: the chip never
answers), bit_error_rate (seeded MISO bit flips), set_link(), corrupt_next_header(),
withhold_send_ok, inject_during_rsr_read() (RSR changes between its two
bytes), version_zero_reads, reset_busy_reads, cr_stuck, and the RX buffer
simply filling up (frames dropped and counted).
"""
import random
from collections import deque

from fake_spi import FakePin, FakeSPI

# common registers
MR = 0x00
SHAR = 0x09
IR = 0x15
IMR = 0x16
SIR = 0x17
SIMR = 0x18
PHYCFGR = 0x2E
VERSIONR = 0x39
_COMMON_RESET = {0x19: 0x07, 0x1A: 0xD0, 0x1B: 0x08, 0x1C: 0x28, 0x26: 0xFF,
                 0x27: 0xFF, PHYCFGR: 0xB8, VERSIONR: 0x04}
_COMMON_READ_ONLY = set([SIR, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, VERSIONR]
                        + list(range(0x2F, 0x39)))

# socket registers
SN_MR = 0x00
SN_CR = 0x01
SN_IR = 0x02
SN_SR = 0x03
SN_RXBUF_SIZE = 0x1E
SN_TXBUF_SIZE = 0x1F
SN_TX_FSR = 0x20
SN_TX_RD = 0x22
SN_TX_WR = 0x24
SN_RX_RSR = 0x26
SN_RX_RD = 0x28
SN_RX_WR = 0x2A
SN_IMR = 0x2C
_SOCK_RESET = {0x06: 0xFF, 0x07: 0xFF, 0x08: 0xFF, 0x09: 0xFF, 0x0A: 0xFF, 0x0B: 0xFF,
               0x16: 0x80, SN_RXBUF_SIZE: 2, SN_TXBUF_SIZE: 2, SN_IMR: 0xFF, 0x2D: 0x40}
_SOCK_READ_ONLY = (SN_SR, 0x20, 0x21, 0x22, 0x23, 0x26, 0x27, 0x2A, 0x2B)

CMD_OPEN = 0x01
CMD_CLOSE = 0x10
CMD_SEND = 0x20
CMD_RECV = 0x40
SOCK_MACRAW = 0x42
IR_SEND_OK = 0x10
IR_RECV = 0x04

_VALID_KB = (0, 1, 2, 4, 8, 16)
MEM_SIZE = 0x4000


class W5500Emulator:
    def __init__(self, link=True, seed=1):
        self.spi = FakeSPI()
        self.cs = FakePin(1)
        self.rst = FakePin(1, on_change=self._rst_edge)
        self.int_pin = FakePin(1)
        self.spi.attach(self, self.cs)
        self.rng = random.Random(seed)
        self.link = link
        self.txmem = bytearray(MEM_SIZE)
        self.rxmem = bytearray(MEM_SIZE)
        # where sent frames go: attach(link) > on_send(frame) > self.wire
        self.wire = deque()
        self.on_send = None
        self._link_obj = None
        self._link_buf = bytearray(1600)
        # fault hooks
        self.miso_stuck = None
        self.bit_error_rate = 0.0
        self.withhold_send_ok = False
        self.version_zero_reads = 0
        self.reset_busy_reads = 0
        self.cr_stuck = False
        self.open_pointer = 0
        self._corrupt_len = None
        self._tear_frames = []
        self.counters = dict(
            rx_accepted=0, rx_dropped_full=0, rx_dropped_filter=0, rx_dropped_link=0,
            rx_dropped_closed=0, rx_dropped_size=0, tx_sent=0, tx_bad_len=0,
            spi_frames=0, bit_flips=0, resets=0)
        self._in_reset = False
        self._selected = False
        self._reset()

    # ------------------------------------------------------------ reset
    def _reset(self):
        self.common = bytearray(0x40)
        for a, v in _COMMON_RESET.items():
            self.common[a] = v
        self.sock = []
        for _ in range(8):
            regs = bytearray(0x30)
            for a, v in _SOCK_RESET.items():
                regs[a] = v
            self.sock.append(regs)
        self.rsr = [0] * 8
        self._filter_mr = 0
        self._pending_send = False
        self.counters["resets"] += 1
        self._update_int()

    def _rst_edge(self, level):
        # RSTn active low: held in reset while low, registers reset on release
        self._in_reset = not level
        if level:
            self._reset()

    # ------------------------------------------------------------ SPI side
    def cs_low(self):
        self._selected = True
        self._hdr = bytearray()
        self.counters["spi_frames"] += 1

    def cs_high(self):
        self._selected = False

    def transfer(self, out):
        n = len(out)
        if self._in_reset:
            return b"\xff" * n
        if self.miso_stuck is not None:
            return bytes((self.miso_stuck,)) * n
        res = bytearray(n)
        i = 0
        while i < n and len(self._hdr) < 3:
            self._hdr.append(out[i])
            res[i] = len(self._hdr)  # 0x01 0x02 0x03, as Zephyr reports
            i += 1
            if len(self._hdr) == 3:
                self._addr = (self._hdr[0] << 8) | self._hdr[1]
                self._bsb = self._hdr[2] >> 3
                self._is_write = bool(self._hdr[2] & 0x04)
        if i < n:
            if self._is_write:
                self._write_data(bytes(out[i:]))
            else:
                res[i:] = self._read_data(n - i)
        if self.bit_error_rate:
            for k in range(n):
                if self.rng.random() < self.bit_error_rate:
                    res[k] ^= 1 << self.rng.randrange(8)
                    self.counters["bit_flips"] += 1
        return bytes(res)

    def _block(self):
        """(kind, socket): kind 0 common, 1 socket regs, 2 TX buf, 3 RX buf, None reserved."""
        if self._bsb == 0:
            return 0, 0
        k = (self._bsb - 1) & 3
        if k == 3:
            return None, 0
        return k + 1, (self._bsb - 1) >> 2

    def _read_data(self, n):
        kind, s = self._block()
        a = self._addr
        self._addr = (a + n) & 0xFFFF
        if kind == 2 or kind == 3:
            mem, base, size = self._geometry(kind, s)
            return self._mem_read(mem, base, size, a, n)
        out = bytearray(n)
        for k in range(n):
            if kind == 0:
                out[k] = self._common_read((a + k) & 0xFFFF)
            elif kind == 1:
                out[k] = self._sock_read(s, (a + k) & 0xFFFF)
        return out

    def _write_data(self, data):
        kind, s = self._block()
        a = self._addr
        n = len(data)
        self._addr = (a + n) & 0xFFFF
        if kind == 2 or kind == 3:
            mem, base, size = self._geometry(kind, s)
            self._mem_write(mem, base, size, a, data)
            return
        for k in range(n):
            if kind == 0:
                self._common_write((a + k) & 0xFFFF, data[k])
            elif kind == 1:
                self._sock_write(s, (a + k) & 0xFFFF, data[k])
        self._update_int()

    # ------------------------------------------------------------ buffers
    def _geometry(self, kind, s):
        """(memory, physical base, size) of socket s's TX (kind 2) or RX (kind 3) buffer."""
        reg = SN_TXBUF_SIZE if kind == 2 else SN_RXBUF_SIZE
        base = 0
        for i in range(s):
            kb = self.sock[i][reg]
            base += kb * 1024 if kb in _VALID_KB else 0
        kb = self.sock[s][reg]
        size = kb * 1024 if kb in _VALID_KB else 0
        return (self.txmem if kind == 2 else self.rxmem), base, size

    @staticmethod
    def _spans(base, size, offset, n):
        """Physical (address, length) runs for n bytes from a 16-bit offset."""
        pos = 0
        while pos < n:
            o = (offset + pos) & (size - 1)
            phys = (base + o) & (MEM_SIZE - 1)
            run = min(n - pos, size - o, MEM_SIZE - phys)
            yield pos, phys, run
            pos += run

    def _mem_read(self, mem, base, size, offset, n):
        out = bytearray(n)
        if size:
            for pos, phys, run in self._spans(base, size, offset, n):
                out[pos:pos + run] = mem[phys:phys + run]
        return out

    def _mem_write(self, mem, base, size, offset, data):
        if size:
            for pos, phys, run in self._spans(base, size, offset, len(data)):
                mem[phys:phys + run] = data[pos:pos + run]

    # ------------------------------------------------------------ registers
    def _common_read(self, a):
        if a >= 0x40:
            return 0
        if a == MR and self.reset_busy_reads:
            self.reset_busy_reads -= 1
            return 0x80
        if a == VERSIONR and self.version_zero_reads:
            self.version_zero_reads -= 1
            return 0
        if a == PHYCFGR:
            return (self.common[a] & 0xF8) | (0x07 if self.link else 0)
        if a == SIR:
            return self._sir()
        return self.common[a]

    def _common_write(self, a, v):
        if a >= 0x40 or a in _COMMON_READ_ONLY:
            return
        if a == MR and v & 0x80:
            self._reset()
        elif a == IR:
            self.common[a] &= ~v & 0xFF
        else:
            self.common[a] = v

    def _get16(self, s, a):
        r = self.sock[s]
        return (r[a] << 8) | r[a + 1]

    def _set16(self, s, a, v):
        r = self.sock[s]
        r[a] = (v >> 8) & 0xFF
        r[a + 1] = v & 0xFF

    def _sock_read(self, s, a):
        if a >= 0x30:
            return 0
        if a == SN_TX_FSR or a == SN_TX_FSR + 1:
            size = self._geometry(2, s)[2]
            used = (self._get16(s, SN_TX_WR) - self._get16(s, SN_TX_RD)) & 0xFFFF
            free = max(0, size - used)
            return free >> 8 if a == SN_TX_FSR else free & 0xFF
        if a == SN_RX_RSR:
            v = self.rsr[s] >> 8
            if s == 0 and self._tear_frames:
                # a frame lands between the two byte reads of RSR
                frames, self._tear_frames = self._tear_frames, []
                for f in frames:
                    self.inject(f)
            return v
        if a == SN_RX_RSR + 1:
            return self.rsr[s] & 0xFF
        if a == SN_CR and self.cr_stuck:
            return self.sock[s][SN_CR]
        return self.sock[s][a]

    def _sock_write(self, s, a, v):
        if a >= 0x30 or a in _SOCK_READ_ONLY:
            return
        if a == SN_IR:
            self.sock[s][a] &= ~v & 0xFF
        elif a == SN_CR:
            self.sock[s][a] = v  # reads back as the command only while cr_stuck
            self._command(s, v)
            if not self.cr_stuck:
                self.sock[s][a] = 0
        else:
            self.sock[s][a] = v

    def _sir(self):
        bits = 0
        for s in range(8):
            if self.sock[s][SN_IR] & self.sock[s][SN_IMR]:
                bits |= 1 << s
        return bits

    def _update_int(self):
        c = self.common
        asserted = (c[IR] & c[IMR]) or (self._sir() & c[SIMR])
        self.int_pin.drive(0 if asserted else 1)

    # ------------------------------------------------------------ commands
    def _command(self, s, cmd):
        r = self.sock[s]
        if cmd == CMD_OPEN:
            proto = r[SN_MR] & 0x0F
            if proto == 4 and s == 0:
                r[SN_SR] = SOCK_MACRAW
                self._filter_mr = r[SN_MR]
                for a in (SN_TX_RD, SN_TX_WR, SN_RX_RD, SN_RX_WR):
                    self._set16(s, a, self.open_pointer)
                self.rsr[s] = 0
                self._pending_send = False
            elif proto == 1:
                r[SN_SR] = 0x13
            elif proto == 2:
                r[SN_SR] = 0x22
            else:
                r[SN_SR] = 0
        elif cmd == CMD_CLOSE:
            r[SN_SR] = 0
            if s == 0:
                self._pending_send = False
        elif cmd == CMD_SEND and s == 0 and r[SN_SR] == SOCK_MACRAW:
            self._pending_send = True
            self._try_send()
        elif cmd == CMD_RECV:
            size = self._geometry(3, s)[2]
            self.rsr[s] = min(size, (self._get16(s, SN_RX_WR) - self._get16(s, SN_RX_RD)) & 0xFFFF)

    def _try_send(self):
        if not self._pending_send or not self.link:
            return
        self._pending_send = False
        rd = self._get16(0, SN_TX_RD)
        wr = self._get16(0, SN_TX_WR)
        n = (wr - rd) & 0xFFFF
        self._set16(0, SN_TX_RD, wr)
        if 0 < n <= 1514:
            mem, base, size = self._geometry(2, 0)
            self._emit(bytes(self._mem_read(mem, base, size, rd, n)))
        else:
            self.counters["tx_bad_len"] += 1
        if not self.withhold_send_ok:
            self.sock[0][SN_IR] |= IR_SEND_OK
        self._update_int()

    def _emit(self, frame):
        self.counters["tx_sent"] += 1
        if self._link_obj is not None:
            self._link_obj.send(memoryview(frame), len(frame))
        elif self.on_send is not None:
            self.on_send(frame)
        else:
            self.wire.append(frame)

    # ------------------------------------------------------------ wire side
    def inject(self, frame):
        """A frame arrives from the wire (no FCS). Returns True when stored."""
        frame = bytes(frame)
        r = self.sock[0]
        if self._in_reset or r[SN_SR] != SOCK_MACRAW:
            self.counters["rx_dropped_closed"] += 1
            return False
        if not self.link:
            self.counters["rx_dropped_link"] += 1
            return False
        if len(frame) > 1514 or len(frame) < 14:
            self.counters["rx_dropped_size"] += 1
            return False
        if len(frame) < 60:
            frame += bytes(60 - len(frame))
        if not self._passes_filter(frame):
            self.counters["rx_dropped_filter"] += 1
            return False
        mem, base, size = self._geometry(3, 0)
        total = len(frame) + 2
        if total > size - self.rsr[0]:
            self.counters["rx_dropped_full"] += 1
            return False
        length = total if self._corrupt_len is None else self._corrupt_len
        self._corrupt_len = None
        wr = self._get16(0, SN_RX_WR)
        self._mem_write(mem, base, size, wr, bytes((length >> 8, length & 0xFF)) + frame)
        self._set16(0, SN_RX_WR, (wr + total) & 0xFFFF)
        self.rsr[0] += total
        r[SN_IR] |= IR_RECV
        self.counters["rx_accepted"] += 1
        self._update_int()
        return True

    def _passes_filter(self, frame):
        mr = self._filter_mr
        dst = frame[0:6]
        bcast = dst == b"\xff" * 6
        mcast = bool(dst[0] & 1) and not bcast
        if bcast and mr & 0x40:
            return False
        if mcast and mr & 0x20:
            return False
        if mr & 0x10 and frame[12:14] == b"\x86\xdd":
            return False
        if mr & 0x80 and not bcast and dst != bytes(self.common[SHAR:SHAR + 6]):
            return False
        return True

    def set_link(self, up):
        self.link = bool(up)
        if self.link:
            self._try_send()

    # ------------------------------------------------------------ fault hooks
    def corrupt_next_header(self, value):
        """The next stored frame gets this 16-bit length header instead of len + 2."""
        self._corrupt_len = value & 0xFFFF

    def inject_during_rsr_read(self, frame):
        """Deliver frame right after the host reads the high byte of S0_RX_RSR."""
        self._tear_frames.append(bytes(frame))

    # ------------------------------------------------------------ frame link
    def attach(self, link):
        """Put a NIC-like link (recv_into(mv) / send(mv, n)) on the wire: the
        chip's sent frames go to link.send; service() pulls received ones."""
        self._link_obj = link

    def service(self, max_frames=16):
        """Move up to max_frames frames from the attached link into the chip."""
        link = self._link_obj
        if link is None:
            return 0
        mv = memoryview(self._link_buf)
        moved = 0
        while moved < max_frames:
            n = link.recv_into(mv)
            if not n:
                break
            self.inject(mv[:n])
            moved += 1
        return moved

    # ------------------------------------------------------------ inspection
    @property
    def mac(self):
        return bytes(self.common[SHAR:SHAR + 6])

    def socket_status(self, s=0):
        return self.sock[s][SN_SR]
