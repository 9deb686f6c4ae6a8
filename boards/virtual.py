"""The virtual board (host only, CPython): the real W5500 or ENC28J60 driver
talking over a fake SPI bus to the register-level chip emulator in tools/emu/,
whose wire is a frame link: a TAP device (drivers/tap.py), an AF_PACKET link,
an in-memory pipe end: anything with recv_into(mv) and send(mv, n).

    tap = create_tap_in_ns(ns, "198.18.0.1/24")          # tools/net/netns.py
    nic = boards.nic("virtual", chip="enc28j60", tap=tap)
    stack = Stack(nic, ip="198.18.0.2", gateway="198.18.0.1")
    StackThread(stack, nic).start()                       # tools/net/hostrun.py

The drivers stay untouched; VirtualNic wraps one and pumps the emulator:
recv_into() lets the driver read what the chip holds and, only when the chip
is empty, moves up to `burst` frames from the link into the chip
(emulator.service) and reads again. A chip refilled only when empty never
holds more than `burst` frames, so it does not overflow however fast the
link is (the kernel's TAP queue is the buffer). send() goes to the driver;
the emulator puts the frame on the link when the driver starts the send.
fileno() is the link's, so a select() loop wakes when a frame arrives.

Not a device module: it imports the emulators from tools/emu/.
"""
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _d in ("lib", "drivers", os.path.join("tools", "emu")):
    _p = os.path.join(_ROOT, _d)
    if _p not in sys.path:
        sys.path.append(_p)

CHIPS = ("w5500", "enc28j60")
DEFAULT_MAC = b"\x02\x00\x00\x00\x55\x02"


class VirtualNic:
    """A driver plus the emulator it talks to; the NIC interface the stack needs."""

    def __init__(self, chip, driver, emu, link, burst=4):
        self.chip = chip
        self.driver = driver
        self.emu = emu
        self.link = link
        self.burst = burst
        self.mac = driver.mac
        self.frames_in = 0            # frames moved from the link into the chip

    def pump(self, limit=None):
        """Move up to limit (default burst) frames from the link into the chip."""
        n = self.emu.service(self.burst if limit is None else limit)
        self.frames_in += n
        return n

    def recv_into(self, mv):
        n = self.driver.recv_into(mv)
        if not n and self.pump():
            n = self.driver.recv_into(mv)
        return n

    def send(self, mv, n):
        return self.driver.send(mv, n)

    def allow_multicast(self, on=True):
        return self.driver.allow_multicast(on)

    def link_up(self):
        return self.driver.link_up()

    def irq_pending(self):
        return self.driver.irq_pending()

    def wait(self, timeout):
        """Block up to timeout seconds for a frame on the link (host main loops)."""
        import select
        return bool(select.select([self.fileno()], [], [], timeout)[0])

    def fileno(self):
        return self.link.fileno()

    @property
    def spi_transactions(self):
        return self.driver.spi_transactions

    @property
    def spi_bytes(self):
        return self.driver.spi_bytes


def make_chip(chip="w5500", mac=None, **driver_kw):
    """(driver, emulator) for chip, joined by the emulator's fake SPI bus and
    its CS, RST and INT pins; the emulator has no wire yet (emu.attach(link))."""
    if chip == "w5500":
        from w5500 import W5500
        from w5500_emu import W5500Emulator
        emu = W5500Emulator()
        cls = W5500
    elif chip == "enc28j60":
        from enc28j60 import ENC28J60
        from enc28j60_emu import ENC28J60Emu
        emu = ENC28J60Emu()
        cls = ENC28J60
    else:
        raise ValueError("uipy: virtual board chip must be one of %s, not %r" % (", ".join(CHIPS), chip))
    driver = cls(emu.spi, emu.cs, rst=emu.rst, int_pin=emu.int_pin,
                 mac=DEFAULT_MAC if mac is None else mac, **driver_kw)
    return driver, emu


def nic(chip="w5500", tap=None, mac=None, burst=4, **driver_kw):
    """A VirtualNic: the chip's driver and emulator, the emulator's wire on tap
    (any frame link). mac defaults to tap.mac when the link has one."""
    if tap is None:
        raise ValueError("uipy: the virtual board needs a frame link: nic(chip, tap=TapNic(...))")
    if burst < 1:
        raise ValueError("uipy: burst must be at least 1")
    if mac is None:
        mac = getattr(tap, "mac", None)
    driver, emu = make_chip(chip, mac, **driver_kw)
    emu.attach(tap)
    return VirtualNic(chip, driver, emu, tap, burst)
