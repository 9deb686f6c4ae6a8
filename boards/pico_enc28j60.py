"""Raspberry Pi Pico (RP2040) + ENC28J60 module on SPI1; wiring from shared/HARDWARE.md 4.2.

The wiring of przemobe/micropy-ENC28J60: SCK GP10, MOSI (SI) GP11, MISO (SO)
GP8, CS GP13, INT GP15; no RESET line (the driver resets with SRC);
10 MHz. Power the module from 3V3 only.

    import boards
    nic = boards.nic("pico_enc28j60")                 # or pico_enc28j60.nic()
    nic = boards.nic("pico_enc28j60", baudrate=8000000, mac=b"\x02\x00\x00\x00\x00\x07")

Self-contained on purpose (no import of other board modules): copy this one
file next to the driver and it works, as a package member or on its own.
"""
CHIP = "enc28j60"
SPI_ID = 1
SCK = 10
MOSI = 11
MISO = 8
CS = 13
RST = None
INT = 15
BAUDRATE = 10000000  # as micropy-ENC28J60 on rp2; keep >= 8 MHz (errata #1)

# keys nic() takes to change the wiring; anything else goes to the driver
WIRING = ("spi_id", "sck", "mosi", "miso", "cs", "rst", "int", "baudrate")


def mac_from_uid(uid):
    """A locally administered unicast MAC from machine.unique_id() (any length):
    the id is XOR-folded into 6 bytes, then the group bit is cleared and the
    locally administered bit set. The same board always gets the same MAC."""
    m = bytearray(6)
    for i in range(len(uid)):
        m[i % 6] ^= uid[i]
    m[0] = (m[0] & 0xFC) | 0x02
    return bytes(m)


def nic(mac=None, **overrides):
    """Build machine.SPI and machine.Pin objects with this wiring; return the ENC28J60 driver.

    mac: 6 bytes, default mac_from_uid(machine.unique_id()).
    overrides: spi_id, sck, mosi, miso, cs, rst, int (a GPIO number, or None
    for rst/int when not wired), baudrate, or spi (a machine.SPI already made,
    e.g. a bus shared with other devices); other keywords go to the driver
    (full_duplex=True, ...).
    """
    import machine
    from enc28j60 import ENC28J60
    w = {"spi_id": SPI_ID, "sck": SCK, "mosi": MOSI, "miso": MISO, "cs": CS,
         "rst": RST, "int": INT, "baudrate": BAUDRATE}
    for k in WIRING:
        if k in overrides:
            w[k] = overrides.pop(k)
    spi = overrides.pop("spi", None)
    Pin = machine.Pin
    if spi is None:
        spi = machine.SPI(w["spi_id"], baudrate=w["baudrate"], polarity=0, phase=0,
                          sck=Pin(w["sck"]), mosi=Pin(w["mosi"]), miso=Pin(w["miso"]))
    cs = Pin(w["cs"], Pin.OUT, value=1)
    rst = None if w["rst"] is None else Pin(w["rst"], Pin.OUT, value=1)
    irq = None if w["int"] is None else Pin(w["int"], Pin.IN, Pin.PULL_UP)
    if mac is None:
        mac = mac_from_uid(machine.unique_id())
    return ENC28J60(spi, cs, rst=rst, int_pin=irq, mac=mac, **overrides)
