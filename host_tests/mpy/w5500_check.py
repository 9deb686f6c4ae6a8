"""Run under the MicroPython unix port: drivers/w5500.py against a small fake chip.
Usage: micropython -X heapsize=64K host_tests/mpy/w5500_check.py [repo root]

The fake here is deliberately separate from tools/emu/w5500_emu.py (which is
CPython-only and complete): a second, minimal reading of HARDWARE.md 1.16.
Its buffers are 2 KB (offsets masked with 0x7FF) to stay small on the heap;
the driver only learns sizes through FSR/RSR, so that is transparent to it.
"""
import gc
import sys

# the fake chip's buffer memories, allocated before imports fragment the heap
_MASK = 0x7FF
_TXMEM = bytearray(_MASK + 1)
_RXMEM = bytearray(_MASK + 1)



def _root_from(path):
    """Repository root from this script's path (no os.path on MicroPython)."""
    parts = path.split("/")
    if len(parts) > 3:
        return "/".join(parts[:-3]) or "/"
    return "/".join([".."] * (3 - len(parts))) or "."


try:
    _here = __file__
except NameError:
    _here = "w5500_check.py"
root = sys.argv[1] if len(sys.argv) > 1 else _root_from(_here)
for sub in ("/lib", "/drivers", "/tools/emu"):
    sys.path.insert(0, root + sub)

# the driver first: compiling its source is what needs the most heap here
gc.collect()
from w5500 import W5500, W5500Error  # noqa: E402
gc.collect()
from fake_spi import FakePin, FakeSPI  # noqa: E402


class MiniW5500:
    def __init__(self, tx=_TXMEM, rx=_RXMEM):
        self.common = bytearray(0x40)
        self.s0 = bytearray(0x30)
        self.other = bytearray(0x30)  # sockets 1-7 share one scratch block
        self.tx = tx
        self.rx = rx
        self.rsr = 0
        self.sent = []
        self.dead = None
        self.common[0x39] = 4
        self.common[0x2E] = 0xBF

    def cs_low(self):
        self.hdr = 0
        self.h = bytearray(3)

    def cs_high(self):
        pass

    def get16(self, a):
        return (self.s0[a] << 8) | self.s0[a + 1]

    def set16(self, a, v):
        self.s0[a] = (v >> 8) & 0xFF
        self.s0[a + 1] = v & 0xFF

    def transfer(self, out):
        if self.dead is not None:
            return bytes((self.dead,)) * len(out)
        res = bytearray(len(out))
        for i in range(len(out)):
            if self.hdr < 3:
                self.h[self.hdr] = out[i]
                self.hdr += 1
                self.addr = (self.h[0] << 8) | self.h[1]
                continue
            bsb = self.h[2] >> 3
            a = self.addr
            self.addr = (a + 1) & 0xFFFF
            if self.h[2] & 4:
                self.write(bsb, a, out[i])
            else:
                res[i] = self.read(bsb, a)
        return bytes(res)

    def read(self, bsb, a):
        if bsb == 0:
            return self.common[a] if a < 0x40 else 0
        if bsb == 1:
            if a == 0x20 or a == 0x21:
                free = (_MASK + 1) - ((self.get16(0x24) - self.get16(0x22)) & 0xFFFF)
                return free >> 8 if a == 0x20 else free & 0xFF
            if a == 0x26:
                return self.rsr >> 8
            if a == 0x27:
                return self.rsr & 0xFF
            return self.s0[a] if a < 0x30 else 0
        if bsb == 3:
            return self.rx[a & _MASK]
        return 0

    def write(self, bsb, a, v):
        if bsb == 0:
            if a == 0 and v & 0x80:
                self.common[0] = 0
            elif a < 0x39:
                self.common[a] = v
        elif bsb == 1:
            if a == 1:
                self.command(v)
            elif a == 2:
                self.s0[2] &= ~v
            elif a in (0x24, 0x25, 0x28, 0x29) or a < 0x20 and a != 3:
                self.s0[a] = v
        elif bsb == 2:
            self.tx[a & _MASK] = v
        elif (bsb - 1) & 3 == 0:
            self.other[a % 0x30] = v

    def command(self, cmd):
        if cmd == 0x01 and self.s0[0] & 0x0F == 4:
            self.s0[3] = 0x42
            for a in (0x22, 0x24, 0x28, 0x2A):
                self.set16(a, 0xFFC0)  # start close to the 16-bit wrap
            self.rsr = 0
        elif cmd == 0x10:
            self.s0[3] = 0
        elif cmd == 0x20:
            rd, wr = self.get16(0x22), self.get16(0x24)
            n = (wr - rd) & 0xFFFF
            f = bytearray(n)
            for i in range(n):
                f[i] = self.tx[(rd + i) & _MASK]
            self.sent.append(bytes(f))
            self.set16(0x22, wr)
            self.s0[2] |= 0x10
        elif cmd == 0x40:
            self.rsr = (self.get16(0x2A) - self.get16(0x28)) & 0xFFFF

    def inject(self, frame, header=None):
        total = len(frame) + 2
        if total > (_MASK + 1) - self.rsr:
            return False
        h = total if header is None else header
        wr = self.get16(0x2A)
        self.rx[wr & _MASK] = h >> 8
        self.rx[(wr + 1) & _MASK] = h & 0xFF
        for i in range(len(frame)):
            self.rx[(wr + 2 + i) & _MASK] = frame[i]
        self.set16(0x2A, (wr + total) & 0xFFFF)
        self.rsr += total
        self.s0[2] |= 0x04
        return True


def make_frame(n, seed):
    f = bytearray(n)
    for i in range(n):
        f[i] = (i * 31 + seed) & 0xFF
    f[0:6] = MAC
    return f


def check(cond, what):
    if not cond:
        print("FAIL", what)
        sys.exit(1)


MAC = b"\x02\x00\x00\x12\x34\x56"

gc.collect()
print("heap free after imports:", gc.mem_free())
chip = MiniW5500()
spi = FakeSPI()
cs = FakePin(1)
spi.attach(chip, cs)
nic = W5500(spi, cs, mac=MAC)
check(chip.s0[3] == 0x42, "socket 0 open in MACRAW")
check(bytes(chip.common[9:15]) == MAC, "SHAR written")
check(chip.s0[0x1E] == 16 and chip.s0[0x1F] == 16, "16 KB to socket 0")
check(nic.link_up(), "link up")
chip.common[0x2E] = 0xB8
check(not nic.link_up(), "link down")
chip.common[0x2E] = 0xBF

buf = bytearray(1600)
mv = memoryview(buf)
check(nic.recv_into(mv) == 0, "nothing waiting")
sizes = (60, 61, 64, 100, 511, 512, 1000, 1513, 1514)
total = 0
for rnd in range(12):  # wraps the 16-bit pointers and the 2 KB buffer
    for n in sizes:
        gc.collect()  # the fake allocates per transfer; keep the 64K heap tidy
        f = make_frame(n, rnd + n)
        check(chip.inject(f), "inject %d" % n)
        got = nic.recv_into(mv)
        check(got == n and buf[:n] == f, "rx %d bytes" % n)
        check(nic.send(mv, n), "tx %d" % n)
        check(chip.sent.pop() == f, "tx %d bytes" % n)
        total += n
check(nic.stats["rx_frames"] == 12 * len(sizes), "rx count")
check(nic.stats["tx_frames"] == 12 * len(sizes), "tx count")

# back-to-back frames
frames = [make_frame(n, 7) for n in (70, 800, 1000)]
for f in frames:
    check(chip.inject(f), "inject back-to-back")
for f in frames:
    n = nic.recv_into(mv)
    check(buf[:n] == f, "back-to-back")
check(nic.recv_into(mv) == 0, "drained")

# short frame padded on send
short = make_frame(20, 1)
check(nic.send(memoryview(short), 20), "short tx")
check(chip.sent.pop() == bytes(short) + bytes(40), "short frame padded to 60")

# corrupted length header: dropped, counted, then frames flow again
chip.inject(make_frame(100, 2), header=0xFFFE)
check(nic.recv_into(mv) == 0, "bad header rejected")
check(nic.stats["rx_errors"] == 1 and nic.stats["recoveries"] == 1, "bad header counted")
good = make_frame(300, 3)
chip.inject(good)
check(nic.recv_into(mv) == 300 and buf[:300] == good, "rx after recovery")

# a chip that never answers
for level, word in ((0x00, "0x00"), (0xFF, "0xFF")):
    dead = MiniW5500(bytearray(8), bytearray(8))
    dead.dead = level
    spi2 = FakeSPI()
    cs2 = FakePin(1)
    spi2.attach(dead, cs2)
    try:
        W5500(spi2, cs2, mac=MAC)
        check(False, "dead chip detected")
    except W5500Error as e:
        check(word in str(e) and "expected 0x04" in str(e), "message for " + word)

print("spi transactions:", nic.spi_transactions, "bytes:", nic.spi_bytes)
print("OK")
