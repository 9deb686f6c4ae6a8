"""A virtual RP2040 board (host only): the genuine MicroPython rp2 firmware in
rp2040js (tools/emu/rp2/rp2run.mjs), its filesystem as a littlefs image, a chip
model on its SPI bus (chipbus.py) whose wire is a frame link, and the raw REPL.

    with Rp2Board(files=fsimage.deploy_files("w5500_evb_pico", with_main=False),
                  board="w5500_evb_pico", link=tap) as b:
        print(b.exec("import uipy.stack; print('ok')"))

firmware: a MicroPython RPI_PICO .uf2; default $UIPY_RP2_FIRMWARE, else
../shared/rp2/RPI_PICO-v1.28.0.uf2 beside the checkout. Every wait is bounded:
a firmware that does not boot, a REPL that does not answer or a chip model that
dies raises Rp2Error with the console output so far.
"""
import os
import subprocess
import tempfile
import threading
import time

import fsimage
from chipbus import ChipBus, SimClock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SHARED_RP2 = os.path.join(os.path.dirname(ROOT), "shared", "rp2")
DEFAULT_FIRMWARE = os.path.join(SHARED_RP2, "RPI_PICO-v1.28.0.uf2")
BOOTROM = os.path.join(SHARED_RP2, "bootrom-b1.bin")
GET_FIRMWARE = ("download the RPI_PICO .uf2 from https://micropython.org/download/RPI_PICO/ "
                "and set UIPY_RP2_FIRMWARE=/path/to/RPI_PICO-<version>.uf2")


class Rp2Error(RuntimeError):
    pass


def firmware_path():
    return os.environ.get("UIPY_RP2_FIRMWARE") or DEFAULT_FIRMWARE


def bootrom_path():
    return os.environ.get("UIPY_RP2_BOOTROM") or BOOTROM


def missing_files(firmware=None):
    """Why the firmware (default firmware_path()) cannot run here; None when it can."""
    for path, what in ((firmware or firmware_path(), "firmware"), (bootrom_path(), "RP2040 bootrom")):
        if not os.path.exists(path):
            return "no %s at %s: %s" % (what, path, GET_FIRMWARE if what == "firmware"
                                        else "set UIPY_RP2_BOOTROM (rp2040js's demo bootrom, B1)")
    return None


def board_wiring(board):
    """(chip, spi_id, cs, rst, int) from the board module (boards/<board>.py),
    which must be an RP2040 board."""
    import mpy_build
    info = mpy_build.board_info(board)
    if info["port"] != "rp2":
        raise ValueError("uipy: %s is not an RP2040 board" % board)
    c = info["constants"]
    return c["CHIP"], c["SPI_ID"], c["CS"], c.get("RST"), c.get("INT")


def make_chip(chip, clock):
    if chip == "w5500":
        from w5500_emu import W5500Emulator
        return W5500Emulator()
    if chip == "enc28j60":
        from enc28j60_emu import ENC28J60Emu
        return ENC28J60Emu(clock_us=clock.us)
    raise ValueError("uipy: chip must be w5500 or enc28j60, not %r" % (chip,))


class Rp2Board:
    """board: a board module name (its chip and pins), or None for a bare Pico.
    link: the chip's wire (TapNic or any frame link); files: {device path: bytes};
    romfs: a ROMFS image (bytes) for a firmware built with a ROMFS partition.
    bus=False leaves the SPI bus empty (nothing answers: MISO reads 0xFF)."""

    def __init__(self, files=None, board=None, link=None, firmware=None, bus=True,
                 realtime=True, echo=False, romfs=None):
        self.firmware = firmware or firmware_path()
        self.board = board
        self.link = link
        self.echo = echo
        self.console = bytearray()
        self.stderr = bytearray()                # the runner's own messages
        self._cond = threading.Condition()
        self._tmp = tempfile.TemporaryDirectory(prefix="uipy-rp2-")
        self.fs_path = fsimage.write(files or {}, os.path.join(self._tmp.name, "fs.img"))
        self.romfs_path = None                  # a ROMFS image, for firmware built with one
        if romfs is not None:
            self.romfs_path = os.path.join(self._tmp.name, "romfs.img")
            with open(self.romfs_path, "wb") as f:
                f.write(romfs)
        self.emu = None
        self.bus = None
        self.clock = SimClock()
        self.proc = None
        self._start(bus, realtime)

    def _start(self, bus, realtime):
        why = missing_files(self.firmware)
        if why:
            raise Rp2Error("uipy: " + why)
        argv = ["node", os.path.join(HERE, "rp2run.mjs"), "--firmware", self.firmware,
                "--bootrom", bootrom_path(), "--fs", self.fs_path,
                "--realtime", "1" if realtime else "0"]
        if self.romfs_path:
            argv += ["--romfs", self.romfs_path]
        pass_fds = ()
        if self.board is not None:
            chip, spi_id, cs, rst, irq = board_wiring(self.board)
            req_r, req_w = os.pipe()
            rep_r, rep_w = os.pipe()
            argv += ["--spi", str(spi_id), "--cs", str(cs), "--req-fd", str(req_w),
                     "--rep-fd", str(rep_r)]
            if rst is not None:
                argv += ["--rst", str(rst)]
            if irq is not None:
                argv += ["--int", str(irq)]
            pass_fds = (req_w, rep_r)
            if bus:
                self.emu = make_chip(chip, self.clock)
                if self.link is not None:
                    self.emu.attach(self.link)
            else:
                self.emu = _NoChip()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, pass_fds=pass_fds,
                                     cwd=os.path.join(ROOT, "tools", "emu", "rp2"))
        if pass_fds:
            os.close(req_w)
            os.close(rep_r)
            self.bus = ChipBus(self.emu, req_r, rep_w, wired=self.link is not None, clock=self.clock).start()
        threading.Thread(target=self._reader, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._reader, args=(self.proc.stderr, False), daemon=True).start()

    def _reader(self, stream, is_console):
        while True:
            chunk = stream.read1(65536)
            if not chunk:
                break
            with self._cond:
                (self.console if is_console else self.stderr).extend(chunk)
                self._cond.notify_all()
            if self.echo and is_console:
                os.write(1, chunk)
        with self._cond:
            self._cond.notify_all()

    # --- the console ---

    def write(self, data):
        if self.proc.poll() is not None:
            self._fail("the RP2040 runner has exited (code %s)" % self.proc.returncode)
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            self._fail("the RP2040 runner has exited")

    def wait_for(self, token, timeout, start=0):
        """Wait until token appears in the console after offset start; returns the
        offset just past it."""
        if isinstance(token, str):
            token = token.encode()
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                i = self.console.find(token, start)
                if i >= 0:
                    return i + len(token)
                if self.proc.poll() is not None:
                    self._fail("the RP2040 runner exited (code %s) while waiting for %r"
                               % (self.proc.returncode, token))
                if self.bus is not None and self.bus.error is not None:
                    self._fail("the chip model failed: %r" % (self.bus.error,))
                left = deadline - time.monotonic()
                if left <= 0:
                    self._fail("no %r on the console within %.0f s" % (token, timeout))
                self._cond.wait(min(left, 0.5))

    def _fail(self, msg):
        tail = bytes(self.console[-3000:]).decode("utf-8", "replace")
        err = bytes(self.stderr[-2000:]).decode("utf-8", "replace")
        if self.bus is not None and self.bus.error is not None:
            err += "\nchip model: %s" % self.bus.error_text
        raise Rp2Error("uipy: RP2040 (%s): %s\n--- console (last 3000 bytes) ---\n%s\n--- runner stderr ---\n%s"
                       % (os.path.basename(self.firmware), msg, tail, err))

    def enter_raw(self, timeout=60):
        """Interrupt whatever runs (main.py, a loop), then enter the raw REPL."""
        deadline = time.monotonic() + timeout
        while True:
            mark = len(self.console)
            self.write(b"\r\x03\x03")
            time.sleep(0.2)
            self.write(b"\x01")
            try:
                self.wait_for(b"raw REPL; CTRL-B to exit\r\n>", min(10, max(1, deadline - time.monotonic())), mark)
                return
            except Rp2Error:
                if time.monotonic() >= deadline:
                    raise

    def soft_reset(self, timeout=60):
        """A fresh heap: soft reset from the raw REPL (main.py does not run)."""
        mark = len(self.console)
        self.write(b"\x04")
        self.wait_for(b"soft reboot", timeout, mark)
        self.wait_for(b"raw REPL; CTRL-B to exit\r\n>", timeout, mark)

    def exec(self, code, timeout=120):
        """Run code in the raw REPL; its output. An exception on the board raises
        Rp2Error with the traceback."""
        return self.finish(self.start(code), timeout)

    def start(self, code):
        """Send code to the raw REPL and run it without waiting; finish() waits."""
        if isinstance(code, str):
            code = code.encode()
        mark = len(self.console)
        for i in range(0, len(code), 256):          # paced: the CDC FIFO holds 512 bytes
            self.write(code[i:i + 256])
        self.write(b"\x04")
        return mark

    def finish(self, mark, timeout=120):
        """Wait for the code start() sent to end; its output (Rp2Error if it raised)."""
        start = self.wait_for(b"OK", timeout, mark)
        out_end = self.wait_for(b"\x04", timeout, start)
        err_end = self.wait_for(b"\x04", timeout, out_end)
        self.wait_for(b">", timeout, err_end)
        out = bytes(self.console[start:out_end - 1]).decode("utf-8", "replace")
        err = bytes(self.console[out_end:err_end - 1]).decode("utf-8", "replace")
        if err:
            raise Rp2Error("uipy: the board raised:\n%s\n(output before: %s)" % (err, out))
        return out

    def boot(self, timeout=60):
        """Wait for the firmware to come up and enter the raw REPL."""
        self.enter_raw(timeout)
        return self

    @property
    def sim_seconds(self):
        return self.bus.sim_ns / 1e9 if self.bus else None

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _NoChip:
    """An empty SPI bus: nothing drives MISO (pulled up: 0xFF), INT stays high."""

    class _Pin:
        def __init__(self):
            self.level = 1

        def value(self, v=None):
            if v is None:
                return self.level
            self.level = v

    class _Spi:
        @staticmethod
        def _transfer(out):
            return b"\xff" * len(out)

    def __init__(self):
        self.cs = self._Pin()
        self.rst = self._Pin()
        self.int_pin = self._Pin()
        self.spi = self._Spi()

    def service(self, n):
        return 0
