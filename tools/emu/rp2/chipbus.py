"""The chip model's end of the RP2040 runner's SPI pipes (host only).

tools/emu/rp2/rp2run.mjs sends every byte the firmware clocks out on its SPI
bus, the chip-select and reset edges, and a poll every simulated millisecond;
ChipBus plays them into one of the project's register-level chip models
(W5500Emulator, ENC28J60Emu: the same models the CPython virtual board uses)
and answers MISO plus the INT line. Frames from the model's wire (a TAP, any
frame link) are moved into the chip at every poll and every chip select, as a
real chip receives them whenever they arrive; when its buffer is full they are
dropped and counted by the model, as on silicon.

The messages (see rp2run.mjs): 'C' level, 'R' level, 'X' nanos n MOSI[n] ->
MISO[n] pins, 'P' nanos -> pins. nanos is the simulated time (float64), kept in
the SimClock (self.sim_ns), so the chip and host code time things in the board's
own clock.
"""
import os
import struct
import threading


class ChipDied(RuntimeError):
    pass


class SimClock:
    """The board's simulated time as the runner last reported it: the chip
    models time their delays (reset, PHY busy) by it, not by the host's clock."""

    def __init__(self):
        self.ns = 0.0

    def us(self):
        return int(self.ns // 1000)


class ChipBus:
    def __init__(self, emu, req_fd, rep_fd, wired=True, link_burst=8, clock=None):
        self.emu = emu
        self.clock = clock or SimClock()
        self.wired = wired                  # a link is attached: frames to move in
        self.req = req_fd
        self.rep = rep_fd
        self.link_burst = link_burst
        self.exchanges = 0
        self.bytes = 0
        self.frames_in = 0
        self.error = None
        self._buf = bytearray()
        self._thread = threading.Thread(target=self._serve, name="rp2-chipbus", daemon=True)

    @property
    def sim_ns(self):
        return self.clock.ns

    def start(self):
        self._thread.start()
        return self

    def _read(self, n):
        buf = self._buf
        while len(buf) < n:
            chunk = os.read(self.req, 65536)
            if not chunk:
                raise EOFError
            buf += chunk
        out = bytes(buf[:n])
        del buf[:n]
        return out

    def _pins(self):
        return 1 if self.emu.int_pin.value() else 0

    def _service(self):
        if self.wired:
            self.frames_in += self.emu.service(self.link_burst)

    def _serve(self):
        emu = self.emu
        try:
            while True:
                kind = self._read(1)
                if kind == b"C":
                    level = self._read(1)[0]
                    if not level:
                        self._service()
                    emu.cs.value(level)
                elif kind == b"R":
                    emu.rst.value(self._read(1)[0])
                elif kind == b"X":
                    self.clock.ns, n = struct.unpack("<dH", self._read(10))
                    mosi = self._read(n)
                    miso = emu.spi._transfer(mosi) if emu.cs.value() == 0 else b"\xff" * n
                    self.exchanges += 1
                    self.bytes += n
                    os.write(self.rep, bytes(miso) + bytes((self._pins(),)))
                elif kind == b"P":
                    self.clock.ns = struct.unpack("<d", self._read(8))[0]
                    self._service()
                    os.write(self.rep, bytes((self._pins(),)))
                else:
                    raise ChipDied("uipy: unknown message %r from the RP2040 runner (then %r)"
                                   % (kind, bytes(self._buf[:40])))
        except EOFError:
            pass                                  # the runner ended
        except Exception as e:                    # a model bug: the runner sees the pipe close
            import traceback
            self.error = e
            self.error_text = traceback.format_exc()
        finally:
            for fd in (self.req, self.rep):
                try:
                    os.close(fd)
                except OSError:
                    pass
