"""Raspberry Pi Pico (RP2040) + ENC28J60 module on SPI1; wiring from shared/HARDWARE.md 4.2.

The wiring of przemobe/micropy-ENC28J60: SCK GP10, MOSI (SI) GP11, MISO (SO)
GP8, CS GP13, INT GP15; no RESET line (the driver resets with SRC);
10 MHz. Power the module from 3V3 only.

    import boards
    nic = boards.nic("pico_enc28j60")                 # or pico_enc28j60.nic()
    nic = boards.nic("pico_enc28j60", baudrate=8000000, mac=b"\x02\x00\x00\x00\x00\x07")

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

from .spi_board import build_nic, mac_from_uid  # noqa: F401 (mac_from_uid: part of the board API)


def nic(mac=None, **overrides):
    """The ENC28J60 driver on this wiring.  mac: 6 bytes, default from
    machine.unique_id(); overrides: spi_id, sck, mosi, miso, cs, rst, int (a GPIO
    number, or None when not wired), baudrate, spi (a machine.SPI already made),
    or driver options (full_duplex=True, ...)."""
    wiring = {"spi_id": SPI_ID, "sck": SCK, "mosi": MOSI, "miso": MISO, "cs": CS,
              "rst": RST, "int": INT, "baudrate": BAUDRATE}
    return build_nic(CHIP, wiring, mac, overrides)
