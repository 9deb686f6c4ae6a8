"""A fake SPI bus and fake pins for driving chip emulators in tests.

Portable: runs under CPython and MicroPython, so device scripts can use it too.

A device on the bus implements three methods:
    cs_low()                 chip select went low: a new SPI frame starts
    transfer(out) -> bytes   one byte back (MISO) for every byte out (MOSI)
    cs_high()                chip select went high: the frame ends
Attach it with bus.attach(device, cs_pin); bytes go to the device whose CS is
low, and with none selected MISO reads 0xFF (a pulled-up, idle line).
"""


class FakePin:
    """machine.Pin look-alike. value(v) from the host and drive(v) from a
    device both change the level; on_change(level) and the irq handler (on
    the configured edge) are called when it changes."""

    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, value=1, on_change=None):
        self._level = 1 if value else 0
        self.on_change = on_change
        self._handler = None
        self._trigger = 0

    def init(self, mode=-1, pull=-1, value=None, **kw):
        if value is not None:
            self.drive(value)

    def value(self, v=None):
        if v is None:
            return self._level
        self.drive(v)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.drive(1)

    def off(self):
        self.drive(0)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, **kw):
        self._handler = handler
        self._trigger = trigger

    def drive(self, v):
        level = 1 if v else 0
        if level == self._level:
            return
        self._level = level
        if self.on_change is not None:
            self.on_change(level)
        h = self._handler
        if h is not None:
            if (level == 0 and self._trigger & FakePin.IRQ_FALLING) or (
                level == 1 and self._trigger & FakePin.IRQ_RISING
            ):
                h(self)


class FakeSPI:
    """machine.SPI look-alike routing bytes to the selected device."""

    MSB = 0
    LSB = 1

    def __init__(self, device=None, cs=None):
        self._devices = []
        self.zero_length_error = True  # like the esp32 port
        if device is not None:
            self.attach(device, cs)

    def attach(self, device, cs):
        """Connect device to the bus behind chip-select pin cs (a FakePin)."""
        self._devices.append((device, cs))

        def edge(level):
            if level:
                device.cs_high()
            else:
                device.cs_low()

        cs.on_change = edge

    def init(self, *args, **kw):
        pass

    def deinit(self):
        pass

    def _transfer(self, out):
        if not len(out) and self.zero_length_error:
            raise ValueError("buffer too short")
        for device, cs in self._devices:
            if cs.value() == 0:
                return device.transfer(out)
        return b"\xff" * len(out)

    def write(self, buf):
        self._transfer(bytes(buf))

    def read(self, n, write=0):
        return bytes(self._transfer(bytes((write,)) * n))

    def readinto(self, buf, write=0):
        n = len(buf)
        buf[0:n] = self._transfer(bytes((write,)) * n)

    def write_readinto(self, wbuf, rbuf):
        n = len(wbuf)
        if n != len(rbuf):
            raise ValueError("buffers must be the same length")
        rbuf[0:n] = self._transfer(bytes(wbuf))
