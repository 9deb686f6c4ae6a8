"""Run under the MicroPython unix port: drivers/enc28j60.py against a small chip model.
Usage: micropython -X heapsize=64K host_tests/mpy/enc28j60_check.py [repo root]

The full emulator (tools/emu/enc28j60_emu.py) needs more heap to compile than this
check gets, so MiniChip below models just what the driver touches: banks, the
MAC/MII dummy byte, buffer memory with auto-increment and RX wrap, the RX ring
header, EPKTCNT/PKTDEC, TX with TXIF and a TSV (late collisions on request),
and MII. It reuses the portable tools/emu/fake_spi.py."""
import sys

if len(sys.argv) > 1:
    root = sys.argv[1]
else:
    root = (__file__.rsplit("/", 1)[0] if "/" in __file__ else ".") + "/../.."
sys.path.insert(0, root + "/tools/emu")
sys.path.insert(0, root + "/drivers")

import gc

gc.collect()  # compiling the driver is the peak of this script's heap use
from enc28j60 import ENC28J60
from fake_spi import FakePin, FakeSPI

MAC = b"\x02\x00\x00\x00\x00\x01"


class MiniChip:
    def __init__(self):
        self.r = bytearray(128)
        self.mem = bytearray(8192)
        self.phy = [0] * 32
        self.pktcnt = 0
        self.wrpt = 0
        self.sent = []
        self.late = 0
        self.bad = []
        self.cs = FakePin(1)
        self.spi = FakeSPI(self, self.cs)

    def cs_low(self):
        self.op = None

    def cs_high(self):
        pass

    def p16(self, lo, v=None):
        if v is None:
            return self.r[lo] | (self.r[lo + 1] << 8)
        self.r[lo] = v & 0xFF
        self.r[lo + 1] = v >> 8

    def transfer(self, out):
        res = bytearray(len(out))
        for i in range(len(out)):
            b = out[i]
            if self.op is None:
                self.op = b
                self.n = 0
                a = b & 0x1F
                self.reg = a if a >= 0x1B else (self.r[0x1F] & 3) * 32 + a
                if b == 0xFF:
                    self.r[0x1E] = 0x80
                continue
            op = self.op
            if op == 0x3A:  # RBM with ERXND -> ERXST wrap
                p = self.p16(0)
                res[i] = self.mem[p]
                self.p16(0, 0 if p == 0x19FF else (p + 1) & 0x1FFF)
            elif op == 0x7A:  # WBM
                p = self.p16(2)
                self.mem[p] = b
                self.p16(2, (p + 1) & 0x1FFF)
            elif op < 0x20:  # RCR; MAC/MII answer a dummy byte first
                mac = self.reg >= 0x40 and (self.reg < 0x66 or self.reg == 0x6A)
                if self.n == 0 and mac:
                    res[i] = 0x5A
                else:
                    res[i] = self.read(self.reg)
                self.n += 1
            elif self.n == 0:  # WCR / BFS / BFC
                v = self.r[self.reg]
                v = b if op < 0x60 else (v | b if op < 0xA0 else v & ~b)
                self.write(self.reg, v)
                self.n = 1
        return bytes(res)

    def read(self, reg):
        if reg == 0x1D:
            return 0x01  # CLKRDY
        if reg == 0x39:
            return self.pktcnt
        if reg == 0x72:
            return 0x06
        if reg == 0x6A:
            return 0  # MII never busy
        return self.r[reg]

    def write(self, reg, v):
        self.r[reg] = v & 0xFF
        if reg == 0x1E and v & 0x40:  # PKTDEC
            self.pktcnt -= 1
            self.r[reg] &= ~0x40
        elif reg == 0x0D and not self.p16(0x0C) & 1:
            self.bad.append("even ERXRDPT")
        elif reg == 0x52 and v & 1:  # MICMD.MIIRD
            self.p16(0x58, self.phy[self.r[0x54]])
        elif reg == 0x57:  # MIWRH starts a PHY write
            self.phy[self.r[0x54]] = self.p16(0x56)
        elif reg == 0x1F and v & 0x08:  # TXRTS
            st = self.p16(4)
            nd = self.p16(6)
            tsv = bytearray(7)
            if self.late:
                self.late -= 1
                tsv[3] = 0x20
                self.r[0x1C] |= 0x0A  # TXIF | TXERIF
            else:
                self.sent.append(bytes(self.mem[st + 1:nd + 1]))
                self.r[0x1C] |= 0x08
            self.mem[nd + 1:nd + 8] = tsv
            self.r[0x1F] &= ~0x08

    def inject(self, frame):
        count = len(frame) + 4
        need = 6 + count + (count & 1)
        nxt = (self.wrpt + need) % 0x1A00
        data = bytes((nxt & 0xFF, nxt >> 8, count & 0xFF, count >> 8, 0xC0, 0)) + frame
        p = self.wrpt
        for b in data:
            self.mem[p] = b
            p = (p + 1) % 0x1A00
        self.wrpt = nxt
        self.pktcnt += 1


def check(cond, what):
    if not cond:
        print("FAIL", what)
        sys.exit(1)


def frame(size, seq):
    f = bytearray(size)
    f[0:6] = MAC
    f[12] = 0x08
    for i in range(14, size):
        f[i] = (seq + i) & 0xFF
    return f


gc.collect()
chip = MiniChip()  # its 8 KB memory first, while the heap is in one piece
chip.phy[0x11] = 0x0400  # PHSTAT2.LSTAT

for stuck in (0x00, 0xFF):
    bus = FakeSPI()  # nothing attached: MISO idles high; 0x00 from a shorted line
    if stuck == 0:
        bus._transfer = lambda out: bytes(len(out))
    try:
        ENC28J60(bus, FakePin(1), mac=MAC)
        check(False, "no error for a silent chip")
    except OSError as e:
        check(str(e).startswith("ENC28J60 not answering: EREVID read 0x%02X" % stuck), str(e))

nic = ENC28J60(chip.spi, chip.cs, mac=MAC)
check(nic.revision == 6, "revision")
check(nic.link_up(), "link")
check(chip.phy[0x10] == 0x0100, "HDLDIS")
buf = bytearray(1514)
mv = memoryview(buf)
sizes = (60, 61, 100, 577, 1513, 1514)
for k in range(60):
    size = sizes[k % len(sizes)]
    f = frame(size, k)
    chip.inject(f)
    n = nic.recv_into(mv)
    check(n == size and buf[:n] == f, "rx frame %d" % k)
    check(nic.send(mv, n), "tx frame %d" % k)
    check(chip.sent.pop() == f, "wire frame %d" % k)
check(nic.recv_into(mv) == 0, "ring empty")
chip.late = 2
check(nic.send(mv, 100) and nic.tx_retries == 2, "late collision retries")
chip.inject(frame(200, 7))
check(nic.recv_into(mv) == 200 and buf[:200] == frame(200, 7), "rx after TSV read")
check(chip.bad == [], str(chip.bad))

gc.collect()
print("rx", nic.rx_frames, "tx", nic.tx_frames, "spi", nic.spi_transactions,
      "heap free:", gc.mem_free())
print("OK")
