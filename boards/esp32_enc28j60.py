"""ESP32 DevKitC + ENC28J60 on HSPI (MicroPython SPI(1)); wiring from shared/HARDWARE.md 4.4.

SCK 14, MOSI 13, MISO 12, CS 15, INT 4 (ESP-IDF enc28j60 example, [V2]);
no RESET line; 8 MHz. GPIO12 is a boot strapping pin: a module holding
MISO high at reset can upset boot (HARDWARE.md 4.4, [U]).

    import boards
    nic = boards.nic("esp32_enc28j60")                 # or esp32_enc28j60.nic()
    nic = boards.nic("esp32_enc28j60", baudrate=10000000, mac=b"\x02\x00\x00\x00\x00\x07")

"""
CHIP = "enc28j60"
SPI_ID = 1
SCK = 14
MOSI = 13
MISO = 12
CS = 15
RST = None
INT = 4
BAUDRATE = 8000000  # ESP-IDF example clock; keep >= 8 MHz (errata #1)

from .spi_board import build_nic, mac_from_uid  # noqa: F401 (mac_from_uid: part of the board API)


def nic(mac=None, **overrides):
    """The ENC28J60 driver on this wiring.  mac: 6 bytes, default from
    machine.unique_id(); overrides: spi_id, sck, mosi, miso, cs, rst, int (a GPIO
    number, or None when not wired), baudrate, spi (a machine.SPI already made),
    or driver options (full_duplex=True, ...)."""
    wiring = {"spi_id": SPI_ID, "sck": SCK, "mosi": MOSI, "miso": MISO, "cs": CS,
              "rst": RST, "int": INT, "baudrate": BAUDRATE}
    return build_nic(CHIP, wiring, mac, overrides)
