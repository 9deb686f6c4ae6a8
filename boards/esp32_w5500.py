"""ESP32 DevKitC + W5500 on VSPI (MicroPython SPI(2)); wiring from shared/HARDWARE.md 4.3.

SCK 18, MOSI 23, MISO 19 (the VSPI IO_MUX pins), CS 5, INTn 4; RSTn not
wired (the driver resets through MR.RST); pass rst=<gpio> if yours is.
20 MHz, as ESP32 network.LAN drives the W5500.

    import boards
    nic = boards.nic("esp32_w5500")                 # or esp32_w5500.nic()
    nic = boards.nic("esp32_w5500", baudrate=10000000, mac=b"\x02\x00\x00\x00\x00\x07")

Self-contained on purpose (no import of other board modules): copy this one
file next to the driver and it works, as a package member or on its own.
"""
CHIP = "w5500"
SPI_ID = 2
SCK = 18
MOSI = 23
MISO = 19
CS = 5
RST = None
INT = 4
BAUDRATE = 20000000  # as MicroPython's esp32 network.LAN for the W5500

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
    """Build machine.SPI and machine.Pin objects with this wiring; return the W5500 driver.

    mac: 6 bytes, default mac_from_uid(machine.unique_id()).
    overrides: spi_id, sck, mosi, miso, cs, rst, int (a GPIO number, or None
    for rst/int when not wired), baudrate, or spi (a machine.SPI already made,
    e.g. a bus shared with other devices); other keywords go to the driver
    (accept_multicast=True, block_ipv6=False, tx_timeout_ms=...).
    """
    import machine
    from w5500 import W5500
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
    return W5500(spi, cs, rst=rst, int_pin=irq, mac=mac, **overrides)
