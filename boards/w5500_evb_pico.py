"""WIZnet W5500-EVB-Pico (RP2040): a W5500 on SPI0; wiring from shared/HARDWARE.md 4.1.

SCK GP18, MOSI GP19, MISO GP16, CS GP17, RSTn GP20, INTn GP21 (all [V2]);
SPI0 at 20 MHz as in MicroPython's W5500_EVB_PICO board config.

    import boards
    nic = boards.nic("w5500_evb_pico")                 # or w5500_evb_pico.nic()
    nic = boards.nic("w5500_evb_pico", baudrate=10000000, mac=b"\x02\x00\x00\x00\x00\x07")

Self-contained on purpose (no import of other board modules): copy this one
file next to the driver and it works, as a package member or on its own.
"""
CHIP = "w5500"
SPI_ID = 0
SCK = 18
MOSI = 19
MISO = 16
CS = 17
RST = 20
INT = 21
BAUDRATE = 20000000  # ports/rp2/boards/W5500_EVB_PICO sets SPI0 to 20 MHz

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
