"""Board modules (boards/): each builds machine.SPI, machine.Pin and its chip's
driver with the wiring of shared/HARDWARE.md section 4, against a fake
`machine` module whose SPI bus is the matching chip emulator's; the MAC comes
from machine.unique_id(); boards.nic() names the known boards on a typo; the
virtual board works over an in-memory link; and the same modules run under
the MicroPython unix port."""
import sys
import types

import pytest

from levels import ROOT, VENV_BIN, run, tool

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)          # `import boards` (the package)

import boards  # noqa: E402
from enc28j60 import ENC28J60  # noqa: E402
from enc28j60_emu import ENC28J60Emu, MAADR  # noqa: E402
from w5500 import W5500  # noqa: E402
from w5500_emu import SOCK_MACRAW, W5500Emulator  # noqa: E402

# The wiring, restated from HARDWARE.md 4.1-4.4 (not read from the modules).
WIRING = {
    "w5500_evb_pico": dict(port="rp2", chip="w5500", spi_id=0, sck=18, mosi=19, miso=16,
                           cs=17, rst=20, int=21, baudrate=20_000_000),
    "pico_enc28j60": dict(port="rp2", chip="enc28j60", spi_id=1, sck=10, mosi=11, miso=8,
                          cs=13, rst=None, int=15, baudrate=10_000_000),
    "esp32_w5500": dict(port="esp32", chip="w5500", spi_id=2, sck=18, mosi=23, miso=19,
                        cs=5, rst=None, int=4, baudrate=20_000_000),
    "esp32_enc28j60": dict(port="esp32", chip="enc28j60", spi_id=1, sck=14, mosi=13, miso=12,
                           cs=15, rst=None, int=4, baudrate=8_000_000),
}
DEVICE_BOARDS = sorted(WIRING)
RP2_UID = bytes.fromhex("e661410403 5b2c2f".replace(" ", ""))   # 8-byte flash id
ESP32_UID = bytes.fromhex("240ac4123456")                        # the factory MAC
PEER = bytes.fromhex("020000000099")


# ---------------------------------------------------------------- fake machine

class FakeMachine(types.ModuleType):
    """A `machine` module for one port: SPI and Pin check the port's rules
    (HARDWARE.md 3.1) and hand out the emulator's bus and pins."""

    def __init__(self, port, emu, pin_map, uid):
        super().__init__("machine")
        self.port = port
        self.spis = []                # (id, kwargs) per SPI made
        self.pins = []                # (id, mode, pull, value) per Pin made
        self.uid = uid
        machine = self

        class Pin:
            IN = 0
            OUT = 1
            OPEN_DRAIN = 2
            PULL_UP = 1
            PULL_DOWN = 2
            IRQ_FALLING = 4
            IRQ_RISING = 8

            def __init__(self, id, mode=-1, pull=-1, *, value=None):
                machine.pins.append((id, mode, pull, value))
                self.id = id
                self.target = pin_map.get(id)
                if self.target is None:
                    from fake_spi import FakePin
                    self.target = FakePin(1)
                if value is not None:
                    self.target.value(value)

            def value(self, v=None):
                return self.target.value(v)

            def __call__(self, v=None):
                return self.target.value(v)

            def on(self):
                self.target.value(1)

            def off(self):
                self.target.value(0)

            def irq(self, *a, **kw):
                return self.target.irq(*a, **kw)

        class SPI:
            MSB = 0
            LSB = 1

            def __init__(self, id, baudrate=1_000_000, *, polarity=0, phase=0, bits=8,
                         firstbit=0, sck=None, mosi=None, miso=None):
                pins = (sck, mosi, miso)
                if machine.port == "rp2":
                    if id not in (0, 1):
                        raise ValueError("SPI(%d) doesn't exist" % id)
                    ok_range = (set(range(0, 8)) | set(range(16, 24)) if id == 0
                                else set(range(8, 16)) | set(range(24, 30)))
                    for p, rem in zip(pins, (2, 3, 0)):
                        if p is None or p.id not in ok_range or p.id % 4 != rem:
                            raise ValueError("bad SCK/MOSI/MISO pin")
                else:
                    if id not in (1, 2):
                        raise ValueError("SPI(%d) doesn't exist" % id)
                    if None in pins:
                        raise ValueError("esp32 board modules should name their pins")
                machine.spis.append((id, dict(baudrate=baudrate, polarity=polarity, phase=phase,
                                              bits=bits, firstbit=firstbit,
                                              sck=sck.id, mosi=mosi.id, miso=miso.id)))
                self.bus = emu.spi

            def write(self, buf):
                self.bus.write(buf)

            def readinto(self, buf, write=0):
                self.bus.readinto(buf, write)

            def write_readinto(self, wbuf, rbuf):
                self.bus.write_readinto(wbuf, rbuf)

            def read(self, n, write=0):
                return self.bus.read(n, write)

        self.Pin = Pin
        self.SPI = SPI

    def unique_id(self):
        return self.uid


def make_emu(chip):
    return W5500Emulator() if chip == "w5500" else ENC28J60Emu()


def install(monkeypatch, name, uid=None, **wiring_changes):
    """A fake machine for board name, wired to a fresh emulator of its chip."""
    w = dict(WIRING[name], **wiring_changes)
    emu = make_emu(w["chip"])
    pin_map = {w["cs"]: emu.cs}
    if w["rst"] is not None:
        pin_map[w["rst"]] = emu.rst
    if w["int"] is not None:
        pin_map[w["int"]] = emu.int_pin
    if uid is None:
        uid = RP2_UID if w["port"] == "rp2" else ESP32_UID
    m = FakeMachine(w["port"], emu, pin_map, uid)
    monkeypatch.setitem(sys.modules, "machine", m)
    return m, emu


def frame_to(mac, n=100, seq=1):
    head = mac + PEER + b"\x08\x00"
    return head + bytes((seq + i) & 0xFF for i in range(n - len(head)))


def exchange_frames(nic, emu):
    """One frame each way through driver and emulator."""
    f = frame_to(nic.mac, 300)
    assert emu.inject(f)
    buf = memoryview(bytearray(1600))
    n = 0
    for _ in range(3):
        n = nic.recv_into(buf)
        if n:
            break
    assert bytes(buf[:n]) == f
    out = PEER + nic.mac + b"\x08\x00" + bytes(range(200))
    assert nic.send(memoryview(bytearray(out)), len(out))
    sent = list(emu.wire) if isinstance(emu, W5500Emulator) else emu.tx_frames
    assert sent[-1][:len(out)] == out


# ---------------------------------------------------------------- the boards

@pytest.mark.parametrize("name", DEVICE_BOARDS)
def test_module_constants_match_hardware_md(name):
    m = boards.load(name)
    w = WIRING[name]
    assert (m.CHIP, m.SPI_ID, m.SCK, m.MOSI, m.MISO, m.CS, m.RST, m.INT, m.BAUDRATE) == (
        w["chip"], w["spi_id"], w["sck"], w["mosi"], w["miso"], w["cs"], w["rst"], w["int"],
        w["baudrate"])


@pytest.mark.parametrize("name", DEVICE_BOARDS)
def test_board_builds_driver_on_its_wiring(monkeypatch, name):
    machine, emu = install(monkeypatch, name)
    w = WIRING[name]
    nic = boards.nic(name)
    # one SPI bus, mode 0, the board's id, clock and pins
    assert machine.spis == [(w["spi_id"], dict(baudrate=w["baudrate"], polarity=0, phase=0, bits=8,
                                                firstbit=0, sck=w["sck"], mosi=w["mosi"],
                                                miso=w["miso"]))]
    made = {p[0]: p[1:] for p in machine.pins}
    P = machine.Pin
    assert made[w["cs"]] == (P.OUT, -1, 1)                    # CS idles high
    if w["rst"] is not None:
        assert made[w["rst"]] == (P.OUT, -1, 1)
    assert made[w["int"]] == (P.IN, P.PULL_UP, None)          # INTn is active low
    assert set(made) == {w[k] for k in ("sck", "mosi", "miso", "cs", "rst", "int")} - {None}
    # the driver really brought the emulated chip up
    if w["chip"] == "w5500":
        assert isinstance(nic, W5500)
        assert emu.socket_status() == SOCK_MACRAW
        assert emu.mac == nic.mac
        if w["rst"] is not None:
            assert emu.counters["resets"] >= 2                # power-on, then RSTn pulse
    else:
        assert isinstance(nic, ENC28J60)
        assert nic.revision == 0x06
        assert bytes(emu.regs[a] for a in MAADR) == nic.mac
        assert emu.violations == []
    assert nic.int_pin is not None and nic.link_up()
    exchange_frames(nic, emu)
    if w["chip"] == "enc28j60":
        assert emu.violations == []


@pytest.mark.parametrize("name", DEVICE_BOARDS)
def test_fake_machine_refuses_a_wrong_wiring(monkeypatch, name):
    """The port rules in the fake are live: the boards pass them, a bad pin does not."""
    w = WIRING[name]
    install(monkeypatch, name)
    with pytest.raises(ValueError):
        boards.nic(name, spi_id=3)
    if w["port"] == "rp2":
        with pytest.raises(ValueError, match="bad SCK/MOSI/MISO"):
            boards.nic(name, sck=w["sck"] + 1)


def test_overrides_change_wiring_and_reach_the_driver(monkeypatch):
    machine, emu = install(monkeypatch, "w5500_evb_pico", rst=None)
    nic = boards.nic("w5500_evb_pico", baudrate=10_000_000, rst=None, accept_multicast=True,
                     mac=b"\x02\x00\x00\x00\x00\x07")
    assert machine.spis[0][1]["baudrate"] == 10_000_000
    assert 20 not in [p[0] for p in machine.pins]             # no RST pin made
    assert nic.mac == emu.mac == b"\x02\x00\x00\x00\x00\x07"
    assert emu.inject(b"\x01\x00\x5e\x00\x00\xfb" + PEER + b"\x08\x00" + bytes(60))  # multicast passes
    # a shared bus: spi= is used as is, no SPI made
    machine2, emu2 = install(monkeypatch, "pico_enc28j60")
    bus = machine2.SPI(1, 10_000_000, sck=machine2.Pin(10), mosi=machine2.Pin(11), miso=machine2.Pin(8))
    machine2.spis.clear()
    nic2 = boards.nic("pico_enc28j60", spi=bus, full_duplex=True)
    assert machine2.spis == [] and nic2.full_duplex and emu2.violations == []
    with pytest.raises(TypeError):
        boards.nic("pico_enc28j60", no_such_option=1)


# ---------------------------------------------------------------- the MAC

def is_local_unicast(mac):
    return len(mac) == 6 and mac[0] & 0x02 and not mac[0] & 0x01


@pytest.mark.parametrize("name", DEVICE_BOARDS)
def test_mac_from_unique_id(monkeypatch, name):
    install(monkeypatch, name)
    a = boards.nic(name).mac
    install(monkeypatch, name)
    b = boards.nic(name).mac
    assert a == b and is_local_unicast(a)                      # stable, locally administered unicast
    install(monkeypatch, name, uid=bytes(8))
    assert is_local_unicast(boards.nic(name).mac)
    install(monkeypatch, name, uid=b"\x01\x02\x03\x04\x05\x06\x07\x09")
    other = boards.nic(name).mac
    assert other != a and is_local_unicast(other)
    install(monkeypatch, name)
    assert boards.nic(name, mac=b"\x02\xaa\xbb\xcc\xdd\xee").mac == b"\x02\xaa\xbb\xcc\xdd\xee"


def test_mac_derivation_is_the_same_on_every_board():
    uids = [RP2_UID, ESP32_UID, bytes(8), b"\xff" * 8, b"\x01", b"\x03" * 6, bytes(range(16))]
    for uid in uids:
        macs = {boards.load(n).mac_from_uid(uid) for n in DEVICE_BOARDS}
        assert len(macs) == 1, (uid, macs)
        assert is_local_unicast(macs.pop())
    f = boards.load("esp32_w5500").mac_from_uid
    # ESP32: the factory MAC with the locally administered bit set
    assert f(ESP32_UID) == bytes.fromhex("260ac4123456")
    # RP2040: the 8-byte id folded into 6 bytes, all of it counts
    assert f(RP2_UID) == bytes.fromhex("ca4e4104035b")
    assert f(RP2_UID[:6] + b"\x00\x00") != f(RP2_UID)
    # 1000 different ids: 1000 different MACs
    assert len({f(i.to_bytes(8, "big")) for i in range(0, 1000 * 7919, 7919)}) == 1000


# ---------------------------------------------------------------- boards.nic()

def test_unknown_board_names_the_known_ones():
    with pytest.raises(ValueError) as e:
        boards.nic("w5500_evb_pic0")
    msg = str(e.value)
    assert "w5500_evb_pic0" in msg
    for name in DEVICE_BOARDS + ["virtual"]:
        assert name in msg
    assert set(boards.BOARDS) == set(DEVICE_BOARDS) | {"virtual"}
    assert boards.load("W5500-EVB-Pico") is boards.load("w5500_evb_pico")


def test_board_modules_import_without_machine(monkeypatch):
    """Importing a board module needs no machine module (only nic() does)."""
    monkeypatch.delitem(sys.modules, "machine", raising=False)
    for name in DEVICE_BOARDS:
        assert callable(boards.load(name).nic)


# ---------------------------------------------------------------- virtual board

@pytest.mark.parametrize("chip", ["w5500", "enc28j60"])
def test_virtual_board_over_a_pipe(chip):
    """Two stacks on an in-memory link, one of them behind the emulated chip:
    ARP, ping and UDP echo through driver + emulator (no root needed)."""
    from pipe import make_pipe
    from uipy.compat import VirtualClock
    from uipy.stack import Stack

    a, b = make_pipe(b"\x02\x00\x00\x00\x00\x0a", b"\x02\x00\x00\x00\x00\x0b")
    nic = boards.nic("virtual", chip=chip, tap=a)
    assert nic.mac == a.mac and nic.chip == chip
    clock = VirtualClock(1000)
    board = Stack(nic, ip="198.18.0.2", clock=clock, tcp=False)
    peer = Stack(b, ip="198.18.0.1", clock=clock, tcp=False)
    board.udp_bind(7, lambda data, ip, port: board.udp.send_payload(len(data), ip, port, 7))
    got = []
    peer.udp_bind(5000, lambda data, ip, port: got.append(bytes(data)))
    replies = []
    peer.icmp.on_echo_reply = lambda src, seq, rtt: replies.append(seq)

    def spin(ms):
        for _ in range(ms):
            clock.advance(1)
            board.poll()
            peer.poll()

    for seq in range(1, 4):
        peer.ping("198.18.0.2", seq, size=56)
        spin(20)
    assert replies[-2:] == [2, 3]
    for size in (1, 18, 19, 500, 1472):
        data = bytes((size + i) & 0xFF for i in range(size))
        peer.udp_sendto(data, "198.18.0.2", 7, 5000)
        spin(10)
        assert got and got[-1] == data, size
    assert board.stats["handler_errors"] == 0
    assert nic.frames_in >= 8 and nic.spi_transactions > 0
    if chip == "enc28j60":
        assert nic.emu.violations == []


def test_virtual_board_errors():
    from pipe import make_pipe
    a, _ = make_pipe(b"\x02\x00\x00\x00\x00\x0a", b"\x02\x00\x00\x00\x00\x0b")
    with pytest.raises(ValueError, match="w5500, enc28j60"):
        boards.nic("virtual", chip="rtl8019", tap=a)
    with pytest.raises(ValueError, match="frame link"):
        boards.nic("virtual", chip="w5500")


# ---------------------------------------------------------------- MicroPython

MPY_SCRIPT = r"""
import sys
root = sys.argv[1]
for d in ("/tools/emu", "/drivers", "/lib", ""):
    sys.path.insert(0, root + d)


class Deque(list):
    def popleft(self):
        return self.pop(0)


class collections:               # the W5500 emulator's deque(), random.Random
    deque = Deque


class Rng:
    def random(self):
        return 0.5

    def randrange(self, n):
        return 0


class random:
    @staticmethod
    def Random(seed=0):
        return Rng()


sys.modules["collections"] = collections
sys.modules["random"] = random
import boards
from fake_spi import FakePin

WIRING = %s


class Bus:
    def __init__(self, spi):
        self.spi = spi

    def write(self, b):
        self.spi.write(b)

    def readinto(self, b, w=0):
        self.spi.readinto(b)

    def write_readinto(self, a, b):
        self.spi.write_readinto(a, b)


made = []
for name in sorted(WIRING):
    w = WIRING[name]
    if w["chip"] == "w5500":
        from w5500_emu import W5500Emulator
        emu = W5500Emulator()
    else:
        from enc28j60_emu import ENC28J60Emu
        emu = ENC28J60Emu()
    pin_map = {w["cs"]: emu.cs, w["rst"]: emu.rst, w["int"]: emu.int_pin}

    class Pin:
        IN = 0
        OUT = 1
        PULL_UP = 1

        def __init__(self, n, mode=-1, pull=-1, value=None):
            made.append((name, n))
            self.p = pin_map.get(n) or FakePin(1)
            if value is not None:
                self.p.value(value)

        def value(self, v=None):
            return self.p.value(v)

    def make_spi(id, baudrate=0, polarity=0, phase=0, sck=None, mosi=None, miso=None, emu=emu):
        made.append((name, "SPI", id, baudrate))
        return Bus(emu.spi)

    class machine:
        SPI = make_spi

        @staticmethod
        def unique_id():
            return b"\xe6\x61\x41\x04\x03\x5b\x2c\x2f"

    machine.Pin = Pin
    sys.modules["machine"] = machine
    nic = boards.nic(name)
    ok = nic.mac == b"\xca\x4e\x41\x04\x03\x5b"
    if w["chip"] == "w5500":
        ok = ok and emu.socket_status() == 0x42 and emu.mac == nic.mac
    else:
        ok = ok and nic.revision == 6 and not emu.violations
    print(name, "ok" if ok else "BAD", (name, "SPI", w["spi_id"], w["baudrate"]) in made)
try:
    boards.nic("nope")
except ValueError as e:
    print("unknown:", e)
"""


def test_boards_under_micropython_unix(tmp_path):
    """The package import, relative imports, nic() and the MAC on real
    MicroPython, each board against its chip emulator."""
    mp = tool("micropython", VENV_BIN)
    script = tmp_path / "boards_check.py"
    script.write_text(MPY_SCRIPT % repr(WIRING))
    r = run([mp, "-X", "heapsize=8M", str(script), ROOT])
    assert r.returncode == 0, r.stdout + r.stderr
    for name in DEVICE_BOARDS:
        assert "%s ok True" % name in r.stdout, r.stdout
    assert "unknown board 'nope'; known boards: w5500_evb_pico" in r.stdout
