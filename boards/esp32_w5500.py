"""ESP32 DevKitC + W5500 on VSPI (MicroPython SPI(2)); wiring from shared/HARDWARE.md 4.3.

SCK 18, MOSI 23, MISO 19 (the VSPI IO_MUX pins), CS 5, INTn 4; RSTn not
wired (the driver resets through MR.RST); pass rst=<gpio> if yours is.
20 MHz, as ESP32 network.LAN drives the W5500.

    import boards
    nic = boards.nic("esp32_w5500")                 # or esp32_w5500.nic()
    nic = boards.nic("esp32_w5500", baudrate=10000000, mac=b"\x02\x00\x00\x00\x00\x07")

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

from .spi_board import build_nic, mac_from_uid  # noqa: F401 (mac_from_uid: part of the board API)


def nic(mac=None, **overrides):
    """The W5500 driver on this wiring.  mac: 6 bytes, default from
    machine.unique_id(); overrides: spi_id, sck, mosi, miso, cs, rst, int (a GPIO
    number, or None when not wired), baudrate, spi (a machine.SPI already made),
    or driver options (accept_multicast=True, block_ipv6=False, tx_timeout_ms=...)."""
    wiring = {"spi_id": SPI_ID, "sck": SCK, "mosi": MOSI, "miso": MISO, "cs": CS,
              "rst": RST, "int": INT, "baudrate": BAUDRATE}
    return build_nic(CHIP, wiring, mac, overrides)
