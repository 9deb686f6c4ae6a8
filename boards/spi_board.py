"""What every SPI board module shares: the MAC from the chip id, and building
machine.SPI, the pins and the driver from a wiring (a board module's constants)."""

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


def build_nic(chip, wiring, mac, overrides):
    """machine.SPI and machine.Pin objects for wiring (a dict with the WIRING
    keys), then the chip's driver.  overrides may change any wiring key, give
    spi= (a bus already made, e.g. shared with other devices) or pass driver
    options (accept_multicast=True, full_duplex=True, ...)."""
    import machine
    w = dict(wiring)
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
    if chip == "w5500":
        from w5500 import W5500 as Driver
    else:
        from enc28j60 import ENC28J60 as Driver
    return Driver(spi, cs, rst=rst, int_pin=irq, mac=mac, **overrides)
